"""``AuditPruner``: audit retention applied by ``garrison run``, once at start and then every
``interval``, on a thread of its own.

No verdict waits on it: the defender answers the kernel without the store, and the store
deletes in short transactions (``SQLiteStore.prune_audits``), so audits being stored wait one
batch at most. A store error is logged and tried again at the next interval. Stopped while it
deletes, it is abandoned at process exit: the batch under way rolls back whole.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from garrison.errors import GarrisonError
from garrison.model.clock import Clock, system_clock

log = logging.getLogger(__name__)

Prune = Callable[[float], int]  # now → how many audits were deleted


class AuditPruner:
    def __init__(self, prune: Prune, interval: float, *, clock: Clock = system_clock) -> None:
        self.interval = interval
        self.deleted = 0
        self.failures = 0
        self._prune = prune
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AuditPruner:
        self._thread = threading.Thread(target=self._run, name="garrison-retention", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> int:
        """Prune now; how many audits were deleted (0 when the store failed: logged)."""
        try:
            deleted = self._prune(self._clock())
        except GarrisonError as exc:
            self.failures += 1
            log.error("audit retention: %s; trying again in %.0f s", exc, self.interval)
            return 0
        self.deleted += deleted
        if deleted:
            log.info("audit retention: %d audits deleted", deleted)
        return deleted

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.run_once()
            self._stopping.wait(self.interval)
