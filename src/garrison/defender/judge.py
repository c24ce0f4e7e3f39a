"""Verdicts on permission events: from memory, at once, on the sensors' threads.

An exec (or an open for writing, in guarded containers) is evaluated against the container's
policy and model. Findings go to the defender's loop as a ``Judged`` record (audits, block);
the verdict goes back to the kernel: DENY on prevent or block. ``ALLOW_ALWAYS`` — a kernel
ignore mark, so the kernel stops asking — only for a file no exec of which could be refused
(``garrison.policy.exec_ignorable``); the proc connector still records those execs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from garrison.defender.facts import exec_facts
from garrison.defender.policies import Policies
from garrison.model.book import ModelBook
from garrison.policy import (
    NO_MODEL,
    Decision,
    FileFacts,
    ModelView,
    evaluate_file,
    evaluate_process,
    exec_ignorable,
    verdict_of,
)
from garrison.policy.detections import reads_shell_stdio
from garrison.sensors.events import FileEvent, ProcessEvent, Verdict

SEEN_SECONDS = 5.0
SEEN_MAX = 65_536


@dataclass(frozen=True, slots=True)
class Judged:
    """Findings on an event, strongest first; ``refused``: the kernel was told DENY."""

    event: ProcessEvent | FileEvent
    decisions: tuple[Decision, ...]
    refused: bool

    @property
    def container_id(self) -> str:
        return self.event.container_id


class Judge:
    def __init__(
        self, book: ModelBook, policies: Policies, report: Callable[[Judged], None]
    ) -> None:
        self.book = book
        self.policies = policies
        self.report = report
        self.verdicts = 0
        self._seen: dict[int, tuple[float, list[str]]] = {}  # pid → (when, files run)
        self._always: dict[str, set[str]] = {}  # container → files the kernel skips
        self._answered: set[int] = set()  # pids whose exec the kernel let go before judging
        # Does the kernel record the execs it skips in this container (its model learns and
        # the BPF process events run)? Set by the sensors.
        self.records_skipped: Callable[[str], bool] = lambda container_id: False

    def _model(self, container_id: str) -> ModelView:
        return self.book.for_container(container_id) or NO_MODEL

    def admit(self, event: ProcessEvent) -> bool:
        """An exec about to be judged (``ExecAdmit``): remembered for the proc connector's
        ``claim`` (before the exec may go on, so that the connector always finds it), and
        True when the container's policy could refuse it — the kernel then waits for the
        verdict; otherwise it lets the exec go on and the verdict follows at once."""
        self._remember(event)
        policy = self.policies.for_container(event.container_id)
        # A shell let go first may be gone, its descriptors with it, before the judge looks.
        refusable = policy is not None and (
            policy.processes.refuses
            or reads_shell_stdio(policy.processes.detections.reverse_shell, event.path)
        )
        if not refusable:
            if len(self._answered) >= SEEN_MAX:
                self._answered.clear()
            self._answered.add(event.pid)
        return refusable

    def __call__(self, event: ProcessEvent) -> Verdict:
        """An exec (``ExecJudge``), after ``admit``. A finding that would refuse an exec
        already let through (rules changed in between) is acted on after the fact."""
        self.verdicts += 1
        waited = event.pid not in self._answered
        self._answered.discard(event.pid)
        policy = self.policies.for_container(event.container_id)
        if policy is None:  # not (or no longer) a container this defender follows
            return Verdict.ALLOW
        model = self._model(event.container_id)
        facts = exec_facts(event, self.policies.upper_dir(event.container_id))
        decisions = evaluate_process(policy, model, event, facts)
        if decisions:
            verdict = verdict_of(decisions)
            refused = waited and verdict is Verdict.DENY
            if refused:  # the exec fails: nothing of it will come to be claimed
                self._unremember(event.pid)
            self.report(Judged(event, tuple(decisions), refused))
            return verdict
        if exec_ignorable(policy, model, event, facts, self.records_skipped(event.container_id)):
            self._always.setdefault(event.container_id, set()).add(event.path)
            return Verdict.ALLOW_ALWAYS
        return Verdict.ALLOW

    def file(self, event: FileEvent) -> Verdict:
        """An open for writing in a guarded container (``FileJudge``). Alerts are left to the
        write's notification, after the fact; only what refuses is acted on here."""
        policy = self.policies.for_container(event.container_id)
        if policy is None:
            return Verdict.ALLOW
        decisions = evaluate_file(policy, self._model(event.container_id), event, FileFacts())
        acting = tuple(d for d in decisions if d.effect != "alert")
        if not acting:
            return Verdict.ALLOW
        self.report(Judged(event, acting, True))
        return Verdict.DENY

    def linked_names(self, container_id: str) -> tuple[str, ...]:
        """The names the container's policy protects, for writes through hard links."""
        policy = self.policies.for_container(container_id)
        return policy.filesystem.protected_names if policy is not None else ()

    def may_deny(self, container_id: str, path: str) -> bool:
        """Could a write to ``path`` be refused? False lets the guard ignore the file."""
        policy = self.policies.for_container(container_id)
        if policy is None:
            return False
        probe = FileEvent(container_id, path, "write", 0, "", 0.0)
        found = evaluate_file(policy, self._model(container_id), probe, FileFacts())
        custom = any(c.effect != "alert" for c in policy.filesystem.custom)
        return custom or any(d.effect != "alert" for d in found)

    def already_seen(self, container_id: str, pid: int, exe: str) -> bool:
        """Need the proc connector not report this exec? Yes for a file this judge let the
        kernel skip: every exec of it is allowed and, the model being active, teaches
        nothing. That saves reading /proc for each exec of a learned workload."""
        return exe in self._always.get(container_id, ())

    def claim(self, pid: int) -> str | None:
        """The file this pid's oldest exec not yet claimed ran, when the fanotify sensor
        judged it a moment ago: the proc connector then knows it without reading /proc, and
        reports nothing (it was reported). An exec nobody judged — off the root file system,
        ``sh -c 'exec /volume/x'`` — finds nothing to claim and is read and reported."""
        entry = self._seen.get(pid)
        if entry is None or time.monotonic() - entry[0] >= SEEN_SECONDS:
            return None
        files = entry[1]
        exe = files.pop(0) if files else None
        if not files:
            self._seen.pop(pid, None)
        return exe

    def forget_always(self) -> None:
        """The kernel's skips were dropped (rules or a model changed)."""
        self._always = {}

    def _unremember(self, pid: int) -> None:
        entry = self._seen.get(pid)
        if entry is not None and entry[1]:
            entry[1].pop()
            if not entry[1]:
                del self._seen[pid]

    def _remember(self, event: ProcessEvent) -> None:
        now = time.monotonic()
        if len(self._seen) >= SEEN_MAX:
            self._seen = {p: e for p, e in list(self._seen.items()) if now - e[0] < SEEN_SECONDS}
        exe = event.resolved_path or event.path
        entry = self._seen.get(event.pid)
        if entry is None or now - entry[0] >= SEEN_SECONDS:
            self._seen[event.pid] = (now, [exe])
        else:
            entry[1].append(exe)  # execs in a row (sh -c 'exec …'): claimed in order
