"""Group commit of hosts' audit batches: the batches that arrive while one transaction is being
written go together in the next, so a thousand hosts cost a commit (and its fsync) per
moment, not one each, and their requests do not queue for the store's write lock.

A request hands its batch to ``BatchWriter.submit`` and waits (without holding a thread of
the console's pool) for the commit that holds it; one writer thread stores the waiting
batches. A group that fails is written again
batch by batch, so a batch the store refuses costs itself only.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future

from garrison.store.base import AuditBatch, Store

MAX_GROUP = 5000  # audits in one transaction at most


@dataclasses.dataclass
class _Waiting:
    batch: AuditBatch
    done: Future[None] = dataclasses.field(default_factory=Future)


class BatchWriter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._thread: threading.Thread | None = None

    def write(self, batch: AuditBatch) -> None:
        """Store ``batch`` in the next transaction; the store's error when it failed."""
        self.submit(batch).result()

    def submit(self, batch: AuditBatch) -> Future[None]:
        """``batch`` queued for the next transaction: done when committed, or with the
        store's error."""
        waiting = _Waiting(batch)
        with self._cond:
            self._waiting.append(waiting)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="garrison-audit-writer", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return waiting.done

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._waiting))
                group = self._take()
            self._store(group)

    def _take(self) -> list[_Waiting]:
        """The oldest waiting batches, up to MAX_GROUP audits (at least one batch)."""
        size, count = 0, 0
        for waiting in self._waiting:
            size += len(waiting.batch.audits)
            if count and size > MAX_GROUP:
                break
            count += 1
        group, self._waiting = self._waiting[:count], self._waiting[count:]
        return group

    def _store(self, group: list[_Waiting]) -> None:
        try:
            self.store.add_audit_batches([w.batch for w in group])
        except Exception as exc:  # the requests answer with it; the thread goes on
            if len(group) == 1:
                group[0].done.set_exception(exc)
            else:
                for waiting in group:
                    self._store([waiting])
            return
        for waiting in group:
            waiting.done.set_result(None)
