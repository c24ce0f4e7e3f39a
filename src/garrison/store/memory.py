"""``MemoryStore``: the store in dictionaries, for tests of other parts. Same rules as SQLite."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.store.base import (
    AuditBatch,
    BlockedContainer,
    ChannelRecord,
    Delivery,
    Doc,
    MergeDocs,
    SyncMarks,
    check_audit,
    check_kind,
    dump_doc,
    profile_of,
)
from garrison.store.memory_hosts import MemoryHosts
from garrison.store.memory_incidents import MemoryIncidents
from garrison.store.memory_model_hosts import MemoryModelHosts
from garrison.store.memory_scans import MemoryScans
from garrison.store.memory_users import MemoryUsers


class MemoryStore(MemoryIncidents, MemoryUsers, MemoryScans, MemoryHosts, MemoryModelHosts):
    def __init__(self) -> None:
        MemoryIncidents.__init__(self)
        MemoryUsers.__init__(self)
        MemoryScans.__init__(self)
        MemoryHosts.__init__(self)
        MemoryModelHosts.__init__(self)
        self._lock = threading.Lock()
        self._models: dict[str, tuple[float, str]] = {}  # profile id → (updated, doc)
        self._audits: dict[tuple[str, ...], Audit] = {}
        self._pruned_totals: dict[tuple[str, str], int] = {}  # occurrences of pruned audits
        self._policies: dict[str, str] = {}
        self._policy_changes = 0  # policies set so far: the memory store's policies mark
        self._blocked: dict[str, BlockedContainer] = {}
        self._status: dict[str, str] = {}
        self._next_id = 1
        self._spool_marks: dict[str, int] = {}
        self._channels: dict[str, ChannelRecord] = {}
        self._outbox: dict[int, Delivery] = {}
        # (channel, audit key) → [occurrences told, period, next summary]
        self._marks: dict[tuple[str, tuple[str, ...]], list[float]] = {}

    def close(self) -> None:
        pass

    def save_models(self, docs: Sequence[Mapping[str, Any]]) -> None:
        texts = _model_texts(docs)
        with self._lock:
            self._put_models(texts)

    def merge_models(self, docs: Sequence[Mapping[str, Any]], merge: MergeDocs) -> list[Doc]:
        incoming = {profile_of(d): dict(d) for d in docs}
        with self._lock:
            stored = {p: json.loads(self._models[p][1]) for p in incoming if p in self._models}
            merged = [merge(stored[p], d) if p in stored else d for p, d in incoming.items()]
            self._put_models(_model_texts(merged))
        return merged

    def _put_models(self, texts: Mapping[str, str]) -> None:
        now = time.time()
        self._models.update((p, (now, text)) for p, text in texts.items())

    def delete_models(self, profile_ids: Sequence[str]) -> None:
        with self._lock:
            for profile_id in profile_ids:
                self._models.pop(profile_id, None)
            self._forget_model_hosts(profile_ids)

    def load_models(self) -> list[Doc]:
        with self._lock:
            return [json.loads(self._models[p][1]) for p in sorted(self._models)]

    def get_model(self, profile_id: str) -> Doc | None:
        with self._lock:
            found = self._models.get(profile_id)
        return None if found is None else json.loads(found[1])

    def sync_marks(self) -> SyncMarks:
        with self._lock:
            models = max((t for t, _ in self._models.values()), default=0.0)
            newest_block = max((b.time for b in self._blocked.values()), default=0.0)
            blocked = (len(self._blocked), newest_block)
            commands = max(self._commands, default=0)
            return SyncMarks(float(self._policy_changes), models, commands, blocked)

    def models_since(self, since: float) -> list[tuple[float, Doc]]:
        with self._lock:
            found = sorted((t, p, text) for p, (t, text) in self._models.items() if t > since)
        return [(updated, json.loads(text)) for updated, _, text in found]

    def add_audits(
        self, audits: Sequence[Audit], spool_mark: int | None = None, spool: str = "audits"
    ) -> list[Audit]:
        checked = [check_audit(a) for a in audits]
        with self._lock:
            if spool_mark is not None:
                old = self._spool_marks.get(spool)
                if old is not None and old >= spool_mark:
                    return []  # stored before: sent again after its answer was lost
                self._spool_marks[spool] = spool_mark
            for a in checked:
                self._add_audit(a)
            return [self._audits[a.key()] for a in checked]  # as the SQL stores answer

    def add_audit_batches(self, batches: Sequence[AuditBatch]) -> None:
        checked = [[check_audit(a) for a in b.audits] for b in batches]
        with self._lock:
            for batch, audits in zip(batches, checked, strict=True):
                if self._spool_marks.get(batch.spool, 0) < batch.mark:
                    self._spool_marks[batch.spool] = batch.mark
                    for a in audits:
                        self._add_audit(a)

    def spool_mark(self, spool: str = "audits") -> int:
        with self._lock:
            return self._spool_marks.get(spool, 0)

    def _add_audit(self, audit: Audit) -> Audit:
        old = self._audits.get(audit.key())
        if old is None:
            stored = dataclasses.replace(audit, id=self._take_id())
            self._enqueue(stored)
        else:
            stored = dataclasses.replace(
                old, count=old.count + audit.count, time=max(old.time, audit.time)
            )
        self._audits[audit.key()] = stored
        return stored

    def _enqueue(self, audit: Audit) -> None:
        now = time.time()
        for name in self._channels:
            delivery_id = self._take_id()
            self._outbox[delivery_id] = Delivery(
                delivery_id, name, audit, "pending", 0, now, now
            )  # fmt: skip

    def _current(self, delivery: Delivery) -> Delivery:
        """The delivery with its audit as stored now (its count grows)."""
        return dataclasses.replace(delivery, audit=self._audits[delivery.audit.key()])

    def add_channel(self, record: ChannelRecord) -> None:
        with self._lock:
            if record.name in self._channels:
                raise InvalidInput(f"channel name {record.name!r}: a channel of that name exists")
            self._channels[record.name] = record

    def remove_channel(self, name: str) -> bool:
        with self._lock:
            self._outbox = {
                i: d for i, d in self._outbox.items() if d.channel != name or d.state == "sent"
            }
            self._marks = {k: m for k, m in self._marks.items() if k[0] != name}
            return self._channels.pop(name, None) is not None

    def list_channels(self) -> list[ChannelRecord]:
        with self._lock:
            return [self._channels[n] for n in sorted(self._channels)]

    def due_deliveries(self, channel: str, now: float, limit: int) -> list[Delivery]:
        with self._lock:
            due = [
                self._current(d) for d in self._outbox.values()
                if d.channel == channel and d.state == "pending" and d.next_try <= now
            ]  # fmt: skip
        return sorted(due, key=lambda d: (d.next_try, d.id))[:limit]

    def delivered(self, delivery_id: int, when: float, period: float = 60.0) -> None:
        with self._lock:
            d = self._outbox.get(delivery_id)
            if d is None:
                return
            self._outbox[delivery_id] = dataclasses.replace(
                d, state="sent", sent=when, attempts=d.attempts + 1, error=""
            )
            if d.folded == 0:
                self._marks.setdefault((d.channel, d.audit.key()), [1, period, when + period])

    def skip(self, delivery_id: int, reason: str) -> None:
        with self._lock:
            d = self._outbox.get(delivery_id)
            if d is not None and d.state == "pending":
                self._outbox[delivery_id] = dataclasses.replace(
                    d, state="skipped", error=reason[:500]
                )

    def make_summaries(self, channel: str, now: float) -> int:
        made = 0
        with self._lock:
            for (name, key), mark in self._marks.items():
                audit = self._audits[key]
                if name != channel or mark[2] > now or audit.count <= mark[0]:
                    continue
                delivery_id = self._take_id()
                self._outbox[delivery_id] = Delivery(
                    delivery_id, channel, audit, "pending", 0, now, now,
                    folded=audit.count - int(mark[0]),
                )  # fmt: skip
                mark[0], mark[2] = audit.count, now + mark[1]
                made += 1
        return made

    def retry_later(self, delivery_id: int, next_try: float, error: str) -> None:
        with self._lock:
            d = self._outbox.get(delivery_id)
            if d is not None and d.state == "pending":
                self._outbox[delivery_id] = dataclasses.replace(
                    d, next_try=next_try, attempts=d.attempts + 1, error=error[:500]
                )

    def list_deliveries(self, state: str = "", limit: int = 100) -> list[Delivery]:
        with self._lock:
            found = [self._current(d) for d in self._outbox.values() if state in ("", d.state)]
        found.sort(key=lambda d: d.id, reverse=True)
        return found[:limit] if limit else found

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def list_audits(self, query: AuditFilter | None = None) -> list[Audit]:
        query = query or AuditFilter()
        with self._lock:
            found = [a for a in self._audits.values() if query.matches(a)]
        found.sort(key=lambda a: (a.time, a.id or 0), reverse=True)
        found = found[query.offset :]
        return found[: query.limit] if query.limit else found

    def iter_audits(self, query: AuditFilter | None = None) -> Iterator[Audit]:
        yield from self.list_audits(query)

    def prune_audits(self, before: float | None, keep: int) -> int:
        with self._lock:
            oldest_first = sorted(self._audits.values(), key=lambda a: (a.time, a.id or 0))
            beyond = len(oldest_first) - keep if keep else 0
            spared = self._spared()
            gone = [
                a for i, a in enumerate(oldest_first)
                if (i < beyond or (before is not None and a.time < before)) and a.id not in spared
            ]  # fmt: skip
            self._forget(gone)
        return len(gone)

    def _spared(self) -> set[int | None]:
        """Audits retention keeps: owed to a channel, naming a blocked container, the highest
        id (as SQLite, which would give it again)."""
        pending = {d.audit.id for d in self._outbox.values() if d.state == "pending"}
        blocking = {b.audit_id for b in self._blocked.values() if b.audit_id is not None}
        return pending | blocking | {max((a.id or 0 for a in self._audits.values()), default=0)}

    def _forget(self, audits: Sequence[Audit]) -> None:
        """Delete audits with their deliveries, summary marks and incident memberships."""
        keys, ids = {a.key() for a in audits}, {a.id or 0 for a in audits}
        for a in audits:
            kind = (a.type, a.effect)
            self._pruned_totals[kind] = self._pruned_totals.get(kind, 0) + a.count
        self._audits = {k: a for k, a in self._audits.items() if k not in keys}
        self._outbox = {i: d for i, d in self._outbox.items() if d.audit.key() not in keys}
        self._marks = {k: m for k, m in self._marks.items() if k[1] not in keys}
        for links in self._joined.values():
            for audit_id in ids & links.keys():
                del links[audit_id]

    def audit_totals(self) -> dict[tuple[str, str], int]:
        with self._lock:
            totals = dict(self._pruned_totals)
            for a in self._audits.values():
                totals[a.type, a.effect] = totals.get((a.type, a.effect), 0) + a.count
        return totals

    def outbox_totals(self) -> dict[tuple[str, str], int]:
        totals: dict[tuple[str, str], int] = {}
        with self._lock:
            for d in self._outbox.values():
                totals[d.channel, d.state] = totals.get((d.channel, d.state), 0) + 1
        return totals

    def get_policy(self, kind: str) -> Doc | None:
        with self._lock:
            text = self._policies.get(kind)
        return None if text is None else json.loads(text)

    def set_policy(self, kind: str, doc: Mapping[str, Any]) -> None:
        text = dump_doc(doc, f"policy {check_kind(kind)}")
        with self._lock:
            self._policies[kind] = text
            self._policy_changes += 1

    def add_blocked(self, record: BlockedContainer) -> None:
        with self._lock:
            self._blocked[record.container_id] = record

    def begin_block(self, record: BlockedContainer, audit: Audit) -> BlockedContainer:
        checked = check_audit(audit)
        with self._lock:
            record = dataclasses.replace(record, audit_id=self._add_audit(checked).id)
            self._blocked[record.container_id] = record
        return record

    def update_blocked(self, record: BlockedContainer) -> bool:
        dump_doc(record.to_json(), f"blocked container {record.container_id}")
        with self._lock:
            known = self._blocked.get(record.container_id)
            if known is None or known.host != record.host:
                return False
            self._blocked[record.container_id] = record
            return True

    def remove_blocked(self, container_id: str) -> bool:
        with self._lock:
            return self._blocked.pop(container_id, None) is not None

    def list_blocked(self, host: str | None = None) -> list[BlockedContainer]:
        with self._lock:
            found = [b for b in self._blocked.values() if host in (None, b.host)]
        return sorted(found, key=lambda r: r.time)

    def set_status(self, doc: Mapping[str, Any], source: str = "defender") -> None:
        text = dump_doc(doc, f"status {check_kind(source, 'status source')}")
        with self._lock:
            self._status[source] = text

    def save_host_reports(self, statuses: Mapping[str, Doc], seen: Mapping[str, float]) -> None:
        texts = {
            check_kind(k, "status source"): dump_doc(d, f"status {k}") for k, d in statuses.items()
        }
        with self._lock:
            self._status.update(texts)
        for name, when in seen.items():
            self.host_seen(name, when)

    def get_status(self, source: str = "defender") -> Doc | None:
        with self._lock:
            text = self._status.get(source)
        return None if text is None else json.loads(text)

    def list_status(self, prefix: str) -> list[tuple[str, Doc]]:
        with self._lock:
            found = sorted((s, t) for s, t in self._status.items() if s.startswith(prefix))
        return [(source, json.loads(text)) for source, text in found]


def _model_texts(docs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {profile_of(d): dump_doc(d, f"model {profile_of(d)}") for d in docs}
