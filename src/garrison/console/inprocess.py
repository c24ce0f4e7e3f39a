"""``InProcessLink``: a defender and its console in one process, sharing the store.

Reports go into buffers merged in memory (an audit seen again adds to the pending one's
count; a model saved again replaces its pending document), and a writer thread writes them
every ``flush_interval`` seconds or when flushed. A failed write (a full disk, a locked store)
keeps the batch to retry: no alert is dropped unless ``max_pending`` distinct audits wait (no
prevent, block or allow unless twice as many do), and that is counted (and logged at most
once a minute). With a ``spool`` every audit is appended
to it first, so that a crash loses none (see :mod:`garrison.console.spool`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.console.spool import AuditSpool
from garrison.errors import InvalidInput, StoreError
from garrison.model.commands import ModelCommand
from garrison.store.base import BlockedContainer, Doc, Store

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclasses.dataclass(slots=True)
class _Batch:
    audits: dict[tuple[str, ...], Audit] = dataclasses.field(default_factory=dict)
    models: dict[str, Doc] = dataclasses.field(default_factory=dict)
    saved: set[str] = dataclasses.field(default_factory=set)  # their host not recorded yet
    deletes: set[str] = dataclasses.field(default_factory=set)
    status: Doc | None = None
    mark: int = 0  # the highest spool sequence number of the audits held

    def __bool__(self) -> bool:
        return bool(
            self.audits or self.models or self.saved or self.deletes or self.status is not None
        )

    def add_audit(self, audit: Audit) -> None:
        old = self.audits.get(audit.key())
        if old is not None:
            audit = dataclasses.replace(
                old, count=old.count + audit.count, time=max(old.time, audit.time)
            )
        self.audits[audit.key()] = audit

    def merge_older(self, older: _Batch) -> None:
        """Put back a batch that failed to write, under what came since."""
        newer_audits, self.audits = self.audits, {}
        for audit in [*older.audits.values(), *newer_audits.values()]:
            self.add_audit(audit)
        self.models = {**older.models, **self.models}
        self.saved |= older.saved
        self.deletes = (older.deletes - set(self.models)) | self.deletes
        self.status = self.status if self.status is not None else older.status
        self.mark = max(self.mark, older.mark)


@dataclasses.dataclass(slots=True)
class LinkStats:
    written_audits: int = 0
    dropped_audits: int = 0
    write_errors: int = 0
    replayed_audits: int = 0  # found in the spool at start, not stored before


WARN_EVERY_SECONDS = 60.0


class InProcessLink:
    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 0.5,
        max_pending: int = 10_000,
        spool: AuditSpool | None = None,
        host: str = "",
    ) -> None:
        self.store = store
        self.host = host  # recorded among the hosts that saved each model ("": none)
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.spool = spool
        self.stats = LinkStats()
        self._cond = threading.Condition()
        self._batch = _Batch()
        self._reported = 0  # generation of the last report
        self._written = 0  # generation the writer has stored
        self._seq = 0  # the spool sequence number of the last audit
        self._writing: _Batch | None = None  # the batch the writer holds, while it does
        self._warned: dict[str, float] = {}
        self._closing = False
        self._closed = False
        if spool is not None:
            self._replay(spool)
        self._thread = threading.Thread(target=self._run, name="garrison-link", daemon=True)
        self._thread.start()

    def _replay(self, spool: AuditSpool) -> None:
        """Queue the spooled audits a link before this one made but did not store."""
        mark = self.store.spool_mark()
        entries = spool.read(after=mark)
        for seq, audit in entries:
            self._batch.add_audit(audit)
            self._batch.mark = seq
        self._seq = max([mark, *(seq for seq, _ in entries)])
        self.stats.replayed_audits = len(entries)
        if entries:
            self._reported += 1
            log.info("console link: %d spooled audit(s) not stored yet; storing them", len(entries))
        else:
            spool.empty()

    # -- buffered ---------------------------------------------------------------------------

    def report_audit(self, audit: Audit) -> None:
        with self._cond:
            self._check_open()
            batch = self._batch
            if audit.key() not in batch.audits and self._pending() >= self._room(audit):
                self.stats.dropped_audits += 1
                self._warn("drop", "%d audits dropped so far: %d wait to be stored already",
                           self.stats.dropped_audits, len(batch.audits))  # fmt: skip
                return
            self._seq += 1
            if self.spool is not None:
                self.spool.append(self._seq, audit)
            batch.add_audit(audit)
            batch.mark = self._seq
            self._reported += 1

    def save_models(self, docs: Sequence[Mapping[str, Any]]) -> None:
        with self._cond:
            self._check_open()
            for doc in docs:
                profile_id = str(doc.get("profileId", ""))
                self._batch.models[profile_id] = dict(doc)
                self._batch.deletes.discard(profile_id)
            self._reported += 1

    def delete_models(self, profile_ids: Sequence[str]) -> None:
        with self._cond:
            self._check_open()
            for profile_id in profile_ids:
                self._batch.models.pop(profile_id, None)
                self._batch.deletes.add(profile_id)
            self._reported += 1

    def report_status(self, doc: Mapping[str, Any]) -> None:
        with self._cond:
            self._check_open()
            self._batch.status = dict(doc)
            self._reported += 1

    def counters(self) -> dict[str, int]:
        """For the defender's status: what was stored, dropped, waits, failed."""
        with self._cond:
            return {
                "writtenAudits": self.stats.written_audits,
                "droppedAudits": self.stats.dropped_audits,
                "pendingAudits": self._pending(),
                "replayedAudits": self.stats.replayed_audits,
                "writeErrors": self.stats.write_errors,
                "spoolErrors": self.spool.errors if self.spool is not None else 0,
            }

    def _room(self, audit: Audit) -> int:
        """How many audits may wait before this one is dropped: an alert finds the room full
        first, so that what Garrison refused or stopped is still recorded past a flood."""
        return self.max_pending if audit.effect == "alert" else 2 * self.max_pending

    def _pending(self) -> int:
        """Audits not stored yet: those waiting, and those the writer is writing."""
        writing = len(self._writing.audits) if self._writing is not None else 0
        return len(self._batch.audits) + writing

    def _warn(self, kind: str, message: str, *args: object) -> None:
        """A WARNING of this kind at most once a minute (a full disk fails every write)."""
        now = time.monotonic()
        if now - self._warned.get(kind, -WARN_EVERY_SECONDS) >= WARN_EVERY_SECONDS:
            self._warned[kind] = now
            log.warning("console link: " + message, *args)

    def _check_open(self) -> None:
        if self._closing:
            raise StoreError("the console link is closed")

    # -- synchronous ------------------------------------------------------------------------

    def store_audit(self, audit: Audit) -> Audit:
        return self.store.add_audits([audit])[0]

    def load_models(self) -> list[Doc]:
        return self.store.load_models()

    def model_updates(self) -> list[Doc]:
        return []  # no other host reports to this console

    def get_policy(self, kind: str) -> Doc | None:
        return self.store.get_policy(kind)

    def pending_model_commands(self) -> list[ModelCommand]:
        return self.store.pending_model_commands()

    def finish_model_commands(self, ids: Sequence[int]) -> None:
        self.store.finish_model_commands(ids)

    def begin_block(self, record: BlockedContainer, audit: Audit) -> BlockedContainer:
        return self.store.begin_block(record, audit)

    def add_blocked(self, record: BlockedContainer) -> None:
        self.store.add_blocked(record)

    def remove_blocked(self, container_id: str) -> bool:
        return self.store.remove_blocked(container_id)

    def list_blocked(self) -> list[BlockedContainer]:
        return self.store.list_blocked()

    def unblocked_at_console(self) -> list[BlockedContainer]:
        return []  # the store is this host's: an unblock restores the policy itself

    def audits_of(self, container_id: str, limit: int) -> list[Audit]:
        return self.store.list_audits(AuditFilter(container=container_id, limit=limit))

    # -- flushing ---------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        with self._cond:
            target = self._reported
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._written >= target, timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        if self._closed:
            return
        flushed = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._closed = True
        if self.spool is not None:
            self.spool.close()
        if not flushed:
            pending = len(self._batch.audits)
            raise StoreError(f"console link closed with {pending} audit(s) not stored")

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                idle = not self._batch and self._written >= self._reported
                if idle and self._closing:
                    return
                if idle:
                    self._cond.wait(self.flush_interval)
                batch, self._batch = self._batch, _Batch()
                self._writing = batch
                generation = self._reported
            if not self._write(batch, generation):
                with self._cond:
                    if self._closing:
                        return  # close() gave up waiting: it says what was not stored
                    self._cond.wait(self.flush_interval)

    def _write(self, batch: _Batch, generation: int) -> bool:
        try:
            self._store(batch)
        except Exception as exc:  # the writer must outlive any failure: retry later
            with self._cond:
                self.stats.write_errors += 1
                self._warn("write", "%s; will retry (%d audits wait)", exc, len(batch.audits))
                self._batch.merge_older(batch)
                self._writing = None
            return False
        with self._cond:
            self._writing = None
            self._written = max(self._written, generation)
            if self.spool is not None and self._seq == batch.mark and not self._batch.audits:
                self.spool.empty()  # everything spooled is stored
            self._cond.notify_all()
        return True

    def _store(self, batch: _Batch) -> None:
        """Write a batch, emptying each part once stored, so a retry repeats nothing."""
        if batch.models:
            self._each(self.store.save_models, list(batch.models.values()), "model")
            batch.saved |= batch.models.keys()
            batch.models = {}
        if batch.saved:
            if self.host:
                self.store.record_model_hosts(self.host, sorted(batch.saved), time.time())
            batch.saved = set()
        if batch.deletes:
            self.store.delete_models(sorted(batch.deletes))
            batch.deletes = set()
        if batch.audits:
            stored = self._store_audits(list(batch.audits.values()), batch.mark or None)
            batch.audits = {}
            with self._cond:
                self.stats.written_audits += stored
        if batch.status is not None:
            self._each(lambda docs: self.store.set_status(docs[0]), [batch.status], "status")
            batch.status = None

    def _store_audits(self, audits: list[Audit], mark: int | None) -> int:
        """Store the batch with its spool mark. When one audit is refused, each is stored
        alone and the mark after them all: the store ignores a batch at or below the mark it
        has, so the mark must not go with the first of them."""
        try:
            self.store.add_audits(audits, spool_mark=mark)
        except InvalidInput:
            stored = self._each(self.store.add_audits, audits, "audit")
            if mark is not None:
                self.store.add_audits([], spool_mark=mark)
            return stored
        return len(audits)

    def _each(self, write: Callable[[list[_T]], object], items: list[_T], what: str) -> int:
        """Write all at once; on InvalidInput, one by one, dropping (and logging) the bad."""
        try:
            write(items)
        except InvalidInput:
            written = 0
            for item in items:
                try:
                    write([item])
                    written += 1
                except InvalidInput as exc:
                    log.error("console link: %s dropped: %s", what, exc)
                    self.stats.write_errors += 1
            return written
        return len(items)
