"""Which audits of one container tell one story: pure rules, no store.

``links(audit, recent)`` answers, for an audit just stored and the container's other audits
of the last ``WINDOW`` seconds, the incidents it belongs to. Each rule is a recognisable chain:

- *a program's story* (``writtenThenExecuted``, ``processThenConnection``, ``cryptoMiner``,
  ``reverseShell``, ``portScan``): every audit about one program path — the write of the file,
  its execs, its connections — once that program is suspect: it was written in the container
  (a write audit or drift), is a miner, a reverse shell or a scanning tool, or an unknown
  process that then connected out. The strongest of these names the incident; a later audit
  of the same program joins the same incident.
- ``shellFromServer``: a shell started by a program that is neither a shell nor a launcher
  (a web server, an interpreter running an application).
- ``portScan`` by connections: outbound connections to ``SCAN_PORTS`` or more distinct ports
  within ``SCAN_SECONDS``.

An incident is keyed by (container, anchor): the same anchor later joins the open incident.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from garrison.audit.record import Audit

WINDOW = 3600.0  # how far back an audit is looked for partners
SCAN_PORTS = 8
SCAN_SECONDS = 60.0

# Strongest first: the incident of a program is named by the first that applies.
PROGRAM_KINDS = (
    "cryptoMiner",
    "reverseShell",
    "portScan",
    "writtenThenExecuted",
    "processThenConnection",
)
_SUSPECT_PROCESS = frozenset(
    {
        "unexpectedProcess",
        "explicitlyDeniedProcess",
        "driftBinary",
        "filelessExecution",
        "unexpectedParent",
        "suidBinary",
    }
)
_OUTBOUND = frozenset(
    {
        "unexpectedOutboundPort",
        "unexpectedOutboundAddress",
        "explicitlyDeniedOutboundPort",
        "explicitlyDeniedIP",
    }
)
_WRITTEN = frozenset({"driftBinary", "filelessExecution"})
SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish"})
# Parents that start shells as their job: not a server handing a shell out.
LAUNCHERS = SHELLS | frozenset(
    {
        "", "runc", "runc:[2:INIT]", "containerd-shim", "containerd-shim-runc-v2", "docker-init",
        "tini", "dumb-init", "s6-svscan", "su", "sudo", "login", "env", "nohup", "setsid",
        "timeout", "xargs", "find", "script", "busybox", "make", "run-parts", "start-stop-daemon",
        "cron", "crond",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Link:
    """Audits that belong to one incident: ``kind`` names it, ``anchor`` keys it; ``times``
    (one per audit) order its story."""

    kind: str
    anchor: str
    audits: tuple[Audit, ...]
    times: tuple[float, ...]


def links(audit: Audit, recent: Sequence[Audit]) -> list[Link]:
    """The incidents ``audit`` belongs to, given the container's other ``recent`` audits."""
    if not audit.containerId:
        return []
    others = [
        a for a in recent
        if a.containerId == audit.containerId and a.id != audit.id
        and abs(a.time - audit.time) <= WINDOW
    ]  # fmt: skip
    found = [_program(audit, others), _shell_from_server(audit), _scan_by_ports(audit, others)]
    return [link for link in found if link is not None]


def program_of(audit: Audit) -> str:
    """The program an audit is about: the file written, or the process that acted."""
    if audit.type == "filesystem":
        return audit.filePath
    return audit.processPath if audit.type in ("processes", "network") else ""


def _program(audit: Audit, others: Iterable[Audit]) -> Link | None:
    program = program_of(audit)
    if not program:
        return None
    story = [audit, *(a for a in others if program_of(a) == program)]
    kind = next((k for k in PROGRAM_KINDS if _is(k, story)), None)
    if kind is None:
        return None
    return _link(kind, f"program:{program}", *_causal(story))


def _is(kind: str, story: Sequence[Audit]) -> bool:
    attacks = {a.attackType for a in story}
    if kind == "cryptoMiner":
        return "cryptoMiner" in attacks
    if kind == "reverseShell":
        return "reverseShell" in attacks
    if kind == "portScan":
        return "lateralMovement" in attacks
    if kind == "writtenThenExecuted":
        written = any(a.type == "filesystem" for a in story) or bool(attacks & _WRITTEN)
        return written and any(a.type == "processes" for a in story)
    return bool(attacks & _SUSPECT_PROCESS) and bool(attacks & _OUTBOUND)


def _shell_from_server(audit: Audit) -> Link | None:
    if audit.type != "processes" or not is_shell(audit.processPath):
        return None
    parent = posixpath.basename(audit.parentPath)
    if parent in LAUNCHERS:
        return None
    return _link("shellFromServer", f"shell:{audit.parentPath}>{audit.processPath}", [audit])


def is_shell(path: str) -> bool:
    return posixpath.basename(path) in SHELLS


def _scan_by_ports(audit: Audit, others: Iterable[Audit]) -> Link | None:
    if audit.attackType not in _OUTBOUND:
        return None
    near = [
        a for a in others
        if a.attackType in _OUTBOUND and abs(a.time - audit.time) <= SCAN_SECONDS
    ]  # fmt: skip
    story = [audit, *near]
    if len({a.port for a in story} - {0}) < SCAN_PORTS:
        return None
    return _link("portScan", "ports", story)


def _link(kind: str, anchor: str, story: Sequence[Audit], times: Sequence[float] = ()) -> Link:
    timed = sorted(zip(times or [a.time for a in story], story, strict=True),
                   key=lambda pair: (pair[0], pair[1].id or 0))  # fmt: skip
    return Link(kind, anchor, tuple(a for _, a in timed), tuple(t for t, _ in timed))


def _causal(story: Sequence[Audit]) -> tuple[list[Audit], list[float]]:
    """A program's file is written before it runs, whatever order two sensors read the two
    events in (a few milliseconds apart): a write is placed before the program's first exec."""
    execs = [a.time for a in story if a.type == "processes"]
    first_exec = min(execs, default=float("inf"))
    times = [min(a.time, first_exec - 1e-3) if a.type == "filesystem" else a.time for a in story]
    return list(story), times


def story_order(story: Sequence[Audit]) -> list[Audit]:
    """A story as it happened: by time, a program's file written before it ran."""
    return list(_link("", "", *_causal(story)).audits)
