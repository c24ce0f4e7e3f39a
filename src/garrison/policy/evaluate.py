"""Pure evaluation: one event, the container's policy and model in; findings out.

Nothing here does I/O, takes a lock or allocates more than the findings: it runs inside the
fanotify permission path. Findings come strongest first; an empty list means "nothing to say".

What the rules mean together: the model, plus what a rule explicitly allows, minus what it
explicitly denies. A denied list always wins. An explicitly allowed path is vouched for by the
user: it is spared the model checks and the checks on the file's identity (miner and scanner
names, setuid, drift, parent), but not the reverse-shell check (that is behaviour, not
identity) and not custom rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from garrison.policy import subjects
from garrison.policy.compiled import EffectivePolicy, ProcessPolicy, custom_findings
from garrison.policy.decision import AttackType, Decision, strongest_first
from garrison.policy.detections import (
    is_crypto_miner,
    is_lateral_movement_tool,
    is_reverse_shell,
    is_setuid,
)
from garrison.policy.evaluate_io import evaluate_file, evaluate_network
from garrison.policy.inputs import ACTIVE, ExecFacts, ModelView
from garrison.sensors.events import ProcessEvent

__all__ = ["evaluate_file", "evaluate_network", "evaluate_process"]

NO_EXEC_FACTS = ExecFacts()

ProcessCheck = Callable[[ProcessEvent, ExecFacts], bool]
_IDENTITY_CHECKS: tuple[tuple[str, str, ProcessCheck, str], ...] = (
    (
        "crypto_miners",
        AttackType.CRYPTO_MINER,
        lambda e, f: is_crypto_miner(e.path, e.argv),
        "{path} launched and is detected as a crypto miner. Full command: {command}",
    ),
    (
        "lateral_movement",
        AttackType.LATERAL_MOVEMENT,
        lambda e, f: is_lateral_movement_tool(e.path),
        "{path} launched and is a lateral movement / port scanning tool",
    ),
    (
        "suid_binaries",
        AttackType.SUID_BINARY,
        # For root the set-user-id bit changes nothing: only a raise of privilege counts.
        lambda e, f: e.uid != 0 and is_setuid(f.file_mode),
        "{path} launched from a setuid/setgid binary by {user}",
    ),
    (
        "drift",
        AttackType.DRIFT_BINARY,
        lambda e, f: f.drifted,
        "{path} launched but was written or modified after the container started "
        "(not part of the image)",
    ),
)


def evaluate_process(
    policy: EffectivePolicy,
    model: ModelView,
    event: ProcessEvent,
    facts: ExecFacts = NO_EXEC_FACTS,
) -> list[Decision]:
    """Findings for one exec."""
    p, found = policy.processes, []
    if p.denied.matches(event.path) or p.denied.matches(event.resolved_path):
        msg = f"{event.path} launched and is explicitly denied by rule {policy.rule_name!r}"
        found.append(_finding(policy, p.denied_effect, AttackType.DENIED_PROCESS, msg))
    if not p.allowed.matches(event.path):
        found += _identity(policy, event, facts)
        found += _against_model(policy, model, event)
    det = p.detections.reverse_shell
    if det != "disable" and is_reverse_shell(event.path, facts.stdio_socket):
        msg = f"{event.path} launched with its standard input or output on a socket (reverse shell)"
        found.append(_finding(policy, det, AttackType.REVERSE_SHELL, msg))
    elif det != "disable" and is_reverse_shell(event.path, facts.pty_driver != 0):
        msg = (
            f"{event.path} launched on a terminal driven through a network socket by pid "
            f"{facts.pty_driver} (reverse shell)"
        )
        found.append(_finding(policy, det, AttackType.REVERSE_SHELL, msg))
    if event.fileless and p.detections.fileless != "disable":
        found.append(_finding(policy, p.detections.fileless, AttackType.FILELESS, _fileless(event)))
    if p.custom:
        found += custom_findings(policy, p.custom, "processes", subjects.of_process(event))
    if event.loader:
        found = [_loaded(d, event.loader) for d in found]
    return strongest_first(found) if len(found) > 1 else found


def _fileless(event: ProcessEvent) -> str:
    """What a fileless exec ran: its bytes' digest and size, as far as they were read."""
    sha = f"sha256 {event.sha256}" if event.sha256 else "sha256 unknown (its bytes were gone)"
    size = f"{event.size} bytes" if event.size is not None else "size unknown"
    return (
        f"{event.path} launched from a file with no path on any file system "
        f"(a memfd or a deleted file): fileless execution; {sha}, {size}"
    )


def _loaded(decision: Decision, loader: str) -> Decision:
    return dataclasses.replace(decision, msg=f"{decision.msg} (run through the loader {loader})")


def _finding(policy: EffectivePolicy, effect: str, attack: str, msg: str) -> Decision:
    return Decision(effect, "processes", attack, policy.rule_name, msg)  # type: ignore[arg-type]


def _identity(policy: EffectivePolicy, event: ProcessEvent, facts: ExecFacts) -> list[Decision]:
    det, found = policy.processes.detections, []
    for field, attack, check, template in _IDENTITY_CHECKS:
        effect = getattr(det, field)
        if effect != "disable" and check(event, facts):
            msg = template.format(path=event.path, command=event.command, user=event.user)
            found.append(_finding(policy, effect, attack, msg))
    return found


def _against_model(
    policy: EffectivePolicy, model: ModelView, event: ProcessEvent
) -> list[Decision]:
    p: ProcessPolicy = policy.processes
    if model.state != ACTIVE:
        return []
    # Known by name or by the file run: /bin/sh is the learned /usr/bin/dash; a busybox
    # applet is known by its name only (ProcessEvent.file_identity).
    if not model.knows_process(event.path, event.file_identity):
        if p.effect == "disable":
            return []
        msg = f"{event.path} launched but is not found in the runtime model"
        return [_finding(policy, p.effect, AttackType.UNEXPECTED_PROCESS, msg)]
    check = p.detections.parent_child
    if check == "disable" or not event.parent_path:
        return []
    if model.knows_parent(event.path, event.parent_path, event.file_identity):
        return []
    msg = f"{event.path} launched by {event.parent_path}, not a parent in the runtime model"
    return [_finding(policy, check, AttackType.UNEXPECTED_PARENT, msg)]
