"""Verdicts on exec permission events: from memory, at once, on the sensor's thread.

This issue's judge always lets the exec run. It answers ``ALLOW_ALWAYS`` — a kernel ignore
mark, so the kernel stops asking — only for a file an *active* model already knows, asked for
by its own name (not through a link to a multi-call binary such as busybox). The proc
connector still records those execs, after the fact.
"""

from __future__ import annotations

import time

from garrison.model.book import ModelBook
from garrison.model.lifecycle import State
from garrison.sensors.events import ProcessEvent, Verdict

SEEN_SECONDS = 5.0
SEEN_MAX = 65_536


class Judge:
    def __init__(self, book: ModelBook) -> None:
        self.book = book
        self.verdicts = 0
        self._seen: dict[int, float] = {}

    def __call__(self, event: ProcessEvent) -> Verdict:
        self.verdicts += 1
        seen = self._seen
        if len(seen) >= SEEN_MAX:
            self._prune()
        seen[event.pid] = time.monotonic()
        model = self.book.for_container(event.container_id)
        if (
            model is not None
            and model.state is State.ACTIVE
            and event.resolved_path == event.path
            and model.knows_process(event.path)
        ):
            return Verdict.ALLOW_ALWAYS
        return Verdict.ALLOW

    def already_seen(self, pid: int) -> bool:
        """Did the fanotify sensor report this pid's exec a moment ago? (proc connector dedup)"""
        when = self._seen.get(pid)
        return when is not None and time.monotonic() - when < SEEN_SECONDS

    def _prune(self) -> None:
        cutoff = time.monotonic() - SEEN_SECONDS
        self._seen = {pid: t for pid, t in list(self._seen.items()) if t >= cutoff}
