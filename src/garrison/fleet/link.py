"""``RemoteLink``: the console link of a host whose console is elsewhere (``garrison defender
--console https://…``), over mutual TLS.

Every audit is numbered and appended to the host's audit spool first, then sent in batches
by one sender thread; the console stores each batch with its highest number (the *mark*) in
the same transaction and ignores a batch it has stored already, so an answer lost, a console
stopped or a defender killed loses nothing and stores nothing twice. Before sending after any
failure the thread asks the console for its mark and starts after it.

The defender's synchronous calls never wait for the network: policies, model commands and
blocked containers are answered from memory and kept on disk (``LocalState``), so a defender
started while the console is away enforces its last rules and keeps its blocks. Policies,
model commands and other hosts' models come by a second thread's long-polled sync
(``garrison.fleet.sync``): a request the console holds until it has news for this host or
``sync_wait`` seconds passed. ``counters()`` says whether the console answers.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from garrison.audit.record import Audit
from garrison.console.spool import AuditSpool
from garrison.errors import GarrisonError, StoreError
from garrison.fleet import wire
from garrison.fleet.client import ConsoleAway, ConsoleClient, ConsoleRefused, HostRefused
from garrison.fleet.local import LocalState
from garrison.fleet.sync import SyncAsk
from garrison.model.commands import ModelCommand
from garrison.store.base import BlockedContainer, Doc

log = logging.getLogger(__name__)

RETRY_MAX = 5.0  # seconds between attempts while the console is away, at most
STATUS_EVERY = 10.0  # seconds between statuses that say nothing new
STATUS_KEYS = ("state", "rules", "watching", "models")  # a change of these: sent now
SYNC_WAIT = 25.0  # seconds the console may hold a sync until it has news for this host
MAX_PENDING = 50_000  # audits held in memory to send; past it they wait in the spool alone
_REFUSED = object()  # what _posted gives for a POST the console refused
MAX_BATCH_BYTES = 4 * 1024 * 1024  # about: a batch of long command lines stays far below
# the console's bound on a body (wire.MAX_BODY)


@dataclasses.dataclass
class _Queue:
    """What waits to be sent besides audits (the newest of each, where only that counts)."""

    models: dict[str, Doc] = dataclasses.field(default_factory=dict)
    deletes: set[str] = dataclasses.field(default_factory=set)
    acks: list[int] = dataclasses.field(default_factory=list)
    blocks: list[tuple[str, Any]] = dataclasses.field(default_factory=list)  # put/delete

    def __bool__(self) -> bool:
        parts = (self.models, self.deletes, self.acks, self.blocks)
        return any(parts)


class RemoteLink:
    def __init__(
        self,
        client: ConsoleClient,
        sync_client: ConsoleClient,
        watch_client: ConsoleClient,
        local: LocalState,
        spool: AuditSpool,
        *,
        flush_interval: float = 0.5,
        sync_wait: float = SYNC_WAIT,
    ) -> None:
        self.flush_interval = flush_interval
        self.sync_wait = sync_wait
        self._client, self._sync_client = client, sync_client
        self._watch_client = watch_client  # its own connection: held up to sync_wait
        self._sync_lock = threading.Lock()
        self.local, self.spool = local, spool
        self._cond = threading.Condition()
        entries = spool.read(after=local.mark)
        self._pending: list[tuple[int, Audit]] = entries[:MAX_PENDING]
        self._overflow = len(entries) > MAX_PENDING  # some wait in the spool alone
        self._unspooled: list[tuple[int, Audit]] = []  # past the bound, and not in the spool
        self._seq = max([local.mark, *(seq for seq, _ in entries)])
        self._queue = _Queue()
        self._status: Doc | None = None  # the newest status, not sent yet
        self._status_sent: tuple[float, list[Any]] = (-STATUS_EVERY, [])  # when, and its keys
        self._sending = False  # a queue taken out by the thread, not all sent yet
        self._policies = local.policies()
        self._policies_tag = ""  # the console's tag of them: none until it answered
        self._commands: list[ModelCommand] = []
        self._finished: set[int] = set()
        self._blocked = local.blocked()
        # Blocks the console has a record of (kept across restarts: sent again as updates).
        self._acked_blocks = local.acked_blocks() & set(self._blocked)
        self._unblocked: list[BlockedContainer] = []  # unblocked at the console, to restore
        self._queue.blocks = [("put", (r, None)) for r in self._blocked.values()]
        self._models_cache: dict[str, Doc] = {}
        self._model_updates: list[Doc] = []
        self._model_cursor: float | None = None  # None until the models are loaded
        self._mark_known = False
        self._away_since: float | None = None
        self._refused = False  # the console refuses this host's certificate (revoked)
        self._stats = {"sentAudits": 0, "replayedAudits": len(entries), "sendErrors": 0}
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="garrison-remote", daemon=True)
        self._thread.start()
        self._stopped = threading.Event()  # set when closed: the sync thread's pauses end
        self._watcher = threading.Thread(target=self._watch, name="garrison-sync", daemon=True)
        self._watcher.start()

    # -- buffered ---------------------------------------------------------------------------

    def report_audit(self, audit: Audit) -> None:
        with self._cond:
            self._check_open()
            self._seq += 1
            spooled = self.spool.append(self._seq, audit)
            if not (self._overflow or len(self._pending) >= MAX_PENDING):
                self._pending.append((self._seq, audit))
            elif spooled:
                self._overflow = True  # read back from the spool once the rest is sent
            else:  # a full disk: kept in memory, and sent in its turn
                self._overflow = True
                self._unspooled.append((self._seq, audit))
            self._cond.notify_all()

    def save_models(self, docs: Sequence[Mapping[str, Any]]) -> None:
        with self._cond:
            for doc in docs:
                profile_id = str(doc.get("profileId", ""))
                self._queue.models[profile_id] = dict(doc)
                self._queue.deletes.discard(profile_id)
                self._models_cache[profile_id] = dict(doc)

    def delete_models(self, profile_ids: Sequence[str]) -> None:
        with self._cond:
            for profile_id in profile_ids:
                self._queue.models.pop(profile_id, None)
                self._queue.deletes.add(profile_id)
                self._models_cache.pop(profile_id, None)

    def report_status(self, doc: Mapping[str, Any]) -> None:
        """Kept, and sent when it says something new (``STATUS_KEYS``) or STATUS_EVERY after
        the last one sent: a thousand hosts' statuses every 2 s would be the console's load."""
        with self._cond:
            self._status = dict(doc)

    # -- synchronous: from memory, or the console when it answers ------------------------------

    def store_audit(self, audit: Audit) -> Audit:
        """Stored at once when the console answers (with its id), else spooled as any."""
        try:
            found = self._ask("post", wire.AUDIT, {"audit": wire.audit_doc(audit)})
            return wire.audit_of(found["audit"])
        except (GarrisonError, KeyError, TypeError):
            self.report_audit(audit)
            return audit

    def load_models(self) -> list[Doc]:
        try:
            answer = self._ask("get", wire.MODELS, {"since": "0"})
            docs, cursor = answer["models"], float(answer["cursor"])
        except (GarrisonError, KeyError, TypeError, ValueError) as exc:
            log.warning("models from the console: %s; using those kept here", exc)
            docs, cursor = self.local.models(), 0.0
        with self._cond:
            self._models_cache = {str(d.get("profileId")): d for d in docs}
            self._model_cursor = cursor
        return [d for d in docs if isinstance(d, dict)]

    def model_updates(self) -> list[Doc]:
        with self._cond:
            updates, self._model_updates = self._model_updates, []
            return updates

    def get_policy(self, kind: str) -> Doc | None:
        with self._cond:
            return self._policies.get(kind)

    def pending_model_commands(self) -> list[ModelCommand]:
        with self._cond:
            return [c for c in self._commands if c.id not in self._finished]

    def finish_model_commands(self, ids: Sequence[int]) -> None:
        with self._cond:
            self._finished.update(ids)
            self._queue.acks.extend(ids)

    def begin_block(self, record: BlockedContainer, audit: Audit) -> BlockedContainer:
        """The block's audit goes with the other audits (spooled, sent before the record);
        the record is kept here before the kill, and sent."""
        self.report_audit(audit)
        self.add_blocked(record)
        return record

    def add_blocked(self, record: BlockedContainer) -> None:
        """Keep and send a block, new or changed. One a user just ended at the console (the
        defender has not yet taken it from ``unblocked_at_console``) is not kept again: its
        capture finishing then would make the console's record anew."""
        with self._cond:
            if any(r.container_id == record.container_id for r in self._unblocked):
                return
            self._blocked[record.container_id] = record
            self._save_blocked()
            self._queue.blocks.append(("put", (record, None)))
            self._cond.notify_all()

    def remove_blocked(self, container_id: str) -> bool:
        with self._cond:
            self._acked_blocks.discard(container_id)
            found = self._blocked.pop(container_id, None) is not None
            self._save_blocked()
            self._queue.blocks.append(("delete", container_id))
            return found

    def list_blocked(self) -> list[BlockedContainer]:
        with self._cond:
            return list(self._blocked.values())

    def unblocked_at_console(self) -> list[BlockedContainer]:
        """Blocks a user ended at the console since the last call: no longer in this host's
        record; the defender restores each container's restart policy."""
        with self._cond:
            found, self._unblocked = self._unblocked, []
            return found

    def audits_of(self, container_id: str, limit: int) -> list[Audit]:
        try:
            found = self._ask("get", f"{wire.AUDITS_OF}/{container_id}", {"limit": str(limit)})
            return [wire.audit_of(d) for d in found["audits"]]
        except (GarrisonError, KeyError, TypeError) as exc:
            log.warning("audits of %s from the console: %s", container_id[:12], exc)
            return []

    def counters(self) -> dict[str, int]:
        with self._cond:
            away = self._away_since
            return {
                **self._stats,
                "pendingAudits": len(self._pending),
                "spoolErrors": self.spool.errors,
                "consoleConnected": int(away is None and self._mark_known),
                "consoleAwaySeconds": 0 if away is None else int(time.monotonic() - away),
            }

    def _ask(self, method: str, path: str, body: Any = None) -> Any:
        with self._sync_lock:
            if method == "get":
                return self._sync_client.get(path, body)
            return self._sync_client.post(path, body)

    # -- flushing -----------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        with self._cond:
            self._cond.notify_all()
            return self._cond.wait_for(self._all_sent, timeout)

    def _all_sent(self) -> bool:
        return not (self._pending or self._overflow or self._queue or self._sending)

    def close(self, timeout: float | None = 10.0) -> None:
        if self._closing:
            return
        with self._cond:  # a console away would only make the stop wait: the spool keeps them
            away = self._away_since is not None
        flushed = self.flush(0 if away else timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._stopped.set()
        self._watch_client.interrupt()
        self._thread.join(timeout)
        self._watcher.join(timeout)
        self.spool.close()
        self._client.close()
        self._sync_client.close()
        self._watch_client.close()
        if not flushed:  # they stay in the spool: the next defender sends them
            log.warning("console link closed with %d audit(s) not sent", len(self._pending))

    def _check_open(self) -> None:
        if self._closing:
            raise StoreError("the console link is closed")

    # -- the sender thread ----------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.flush_interval
        while True:
            with self._cond:
                if self._closing:
                    return
                if not (self._pending or self._overflow or self._queue):
                    self._cond.wait(delay)
            try:
                self._round()
                delay = self.flush_interval
            except ConsoleAway as exc:
                delay = min(RETRY_MAX, max(delay * 2, 0.25))
                self._went_away(exc)
                self._pause(delay)
            except ConsoleRefused as exc:  # revoked, or enrolled anew elsewhere: say it, wait
                self._went_away(ConsoleAway(str(exc)))
                self._pause(RETRY_MAX)
            except Exception:  # the thread outlives anything: it is how nothing gets lost
                log.exception("console link")
                self._pause(RETRY_MAX)

    def _pause(self, seconds: float) -> None:
        with self._cond:
            if not self._closing:
                self._cond.wait(seconds)

    def _went_away(self, exc: ConsoleAway) -> None:
        with self._cond:
            self._stats["sendErrors"] += 1
            self._mark_known = False
            refused = isinstance(exc, HostRefused)
            if refused and not self._refused:  # said once, also after an outage
                log.error("%s; its audits are kept, the last policies enforced", exc)
            elif self._away_since is None and not refused:
                log.warning("%s; enforcing with the last policies until it answers", exc)
            self._refused = refused
            if self._away_since is None:
                self._away_since = time.monotonic()

    def _round(self) -> None:
        if not self._mark_known:
            self._learn_mark()
        self._send_audits()
        self._send_queue()
        self._send_status()

    def _learn_mark(self) -> None:
        """Where the console is: audits numbered up to its mark are stored already. The
        console answers again from here on."""
        answer = self._client.get(wire.AUDITS, {"epoch": self.local.epoch})
        mark = int(answer["mark"])
        with self._cond:
            self._pending = [(seq, a) for seq, a in self._pending if seq > mark]
            self._seq = max(self._seq, mark)
            self._mark_known = True
            if self._away_since is not None:
                log.info("console answers again")
            self._away_since = None
            self._refused = False
            self._cond.notify_all()
        self._acknowledged(mark)

    def _send_audits(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                return
            mark = batch[-1][0]
            body = {"epoch": self.local.epoch, "mark": mark, "audits": [d for _, d in batch]}
            try:
                self._client.post(wire.AUDITS, body)
            except HostRefused:  # kept, and sent once the host is let back
                raise
            except ConsoleRefused as exc:  # never storable: dropped, not retried forever
                log.error("%d audit(s) refused by the console: %s", len(batch), exc)
            with self._cond:  # the batch is the head of the list: only this thread cuts it
                del self._pending[: len(batch)]
                self._stats["sentAudits"] += len(batch)
            self._acknowledged(mark)

    def _next_batch(self) -> list[tuple[int, dict[str, Any]]]:
        """The next audits to send, in order: at most MAX_BATCH, and about MAX_BATCH_BYTES."""
        with self._cond:
            if not self._pending and self._overflow:
                self._refill()
            head = self._pending[: wire.MAX_BATCH]
        batch: list[tuple[int, dict[str, Any]]] = []
        size = 0
        for seq, audit in head:
            doc = wire.audit_doc(audit)
            size += 512 + sum(len(v) for v in doc.values() if isinstance(v, str))
            if batch and size > MAX_BATCH_BYTES:
                break
            batch.append((seq, doc))
        return batch

    def _refill(self) -> None:
        """The next audits to send, read back from the spool, with those the spool could not
        take, in their order (a batch's mark must never pass an audit not sent yet)."""
        spooled = self.spool.read(after=self.local.mark)
        entries = sorted([*spooled, *self._unspooled], key=lambda entry: entry[0])
        self._pending = entries[:MAX_PENDING]
        kept = {seq for seq, _ in self._unspooled}
        self._unspooled = [e for e in entries[MAX_PENDING:] if e[0] in kept]
        self._overflow = len(entries) > MAX_PENDING

    def _acknowledged(self, mark: int) -> None:
        """Keep the mark; empty the spool once it holds nothing unsent (and the mark is kept,
        so that numbering goes on after it). The mark's file is written (and synced) outside
        the lock that reporting an audit takes."""
        if mark > self.local.mark and not self.local.save_mark(mark):
            return  # not kept: the spool stays, so nothing is numbered twice
        with self._cond:
            if not self._pending and not self._overflow and self._seq <= self.local.mark:
                self.spool.empty()

    def _send_queue(self) -> None:
        with self._cond:
            queue, self._queue = self._queue, _Queue()
            self._sending = True
        try:
            self._send_parts(queue)
        except ConsoleAway:
            with self._cond:  # put back under what came since
                self._queue = _merge(queue, self._queue)
            raise
        finally:
            with self._cond:
                self._sending = False
                self._cond.notify_all()

    def _send_parts(self, queue: _Queue) -> None:
        while queue.blocks:
            op, arg = queue.blocks[0]
            self._send_block(op, arg)
            queue.blocks.pop(0)
        if queue.models or queue.deletes:
            self._refusable(wire.MODELS, {"save": list(queue.models.values()),
                                          "delete": sorted(queue.deletes)})  # fmt: skip
            queue.models, queue.deletes = {}, set()
            with self._cond:
                cache = list(self._models_cache.values())
            self.local.save_models(cache)
        if queue.acks:
            self._refusable(wire.COMMANDS_DONE, {"ids": queue.acks})
            queue.acks = []

    def _send_status(self) -> None:
        with self._cond:
            doc, (when, said) = self._status, self._status_sent
            keys = [None if doc is None else doc.get(k) for k in STATUS_KEYS]
            if doc is None or (keys == said and time.monotonic() - when < STATUS_EVERY):
                return
            self._status = None
        try:
            self._refusable(wire.STATUS, {"status": doc})
        except ConsoleAway:
            with self._cond:
                self._status = self._status or doc
            raise
        with self._cond:
            self._status_sent = (time.monotonic(), keys)

    def _send_block(self, op: str, arg: Any) -> None:
        if op == "delete":
            try:
                self._client.delete(f"{wire.BLOCKS}/{arg}")
            except HostRefused:  # kept, and sent once the host is let back
                raise
            except ConsoleRefused as exc:
                log.error("unblock of %s refused by the console: %s", str(arg)[:12], exc)
            return
        record, audit = arg
        with self._cond:
            if record.container_id not in self._blocked:
                return  # unblocked since it was queued (here, or at the console)
            update = record.container_id in self._acked_blocks
        body = {"record": record.to_json(), "audit": audit, "update": update}
        answer = self._posted(wire.BLOCKS, body)
        if answer is _REFUSED:
            return
        if isinstance(answer, dict) and answer.get("unblocked") is True:
            self._forget_unblocked({record.container_id})  # while this host was away, maybe
            return
        with self._cond:
            if record.container_id in self._blocked and not update:
                self._acked_blocks.add(record.container_id)
                self._save_blocked()

    def _refusable(self, path: str, body: Any) -> bool:
        """POST ``body``; False when the console refused it (said once here, not retried)."""
        return self._posted(path, body) is not _REFUSED

    def _posted(self, path: str, body: Any) -> Any:
        """The console's answer to POST ``body``; _REFUSED when it refused it."""
        try:
            return self._client.post(path, body)
        except HostRefused:
            raise
        except ConsoleRefused as exc:
            log.error("console refused %s: %s", path, exc)
            return _REFUSED

    def _save_blocked(self) -> None:
        """This host's blocks on disk, with those the console took (under ``_cond``)."""
        self.local.save_blocked(self._blocked, self._acked_blocks)

    # -- the sync thread ------------------------------------------------------------------------

    def _watch(self) -> None:
        """Ask the console for news until closed; a failure waits, longer each time (the
        sender thread says whether the console answers)."""
        delay = 0.25
        while not self._stopped.is_set():
            try:
                self._sync()
                delay = 0.25
            except ConsoleAway:  # away, or this host refused: the sender thread says so
                self._stopped.wait(delay)
                delay = min(RETRY_MAX, delay * 2)
            except Exception:  # the thread outlives anything
                log.exception("console sync")
                self._stopped.wait(RETRY_MAX)

    def _sync(self) -> None:
        with self._cond:
            given = frozenset(c.id for c in self._commands if c.id is not None)
            held = frozenset(self._acked_blocks)
            ask = SyncAsk(self._policies_tag, self._model_cursor, given, self.sync_wait, held)
        answer = self._watch_client.get(wire.SYNC, ask.query())
        policies = answer.get("policies") if isinstance(answer, dict) else None
        commands = answer.get("commands") if isinstance(answer, dict) else None
        if not isinstance(policies, dict) or not isinstance(commands, list):
            log.error("console sync answer not understood")
            self._stopped.wait(RETRY_MAX)
            return
        with self._cond:
            if self._closing:
                return
            changed = policies != self._policies
            self._policies = policies
            self._policies_tag = str(answer.get("policiesTag", ""))
            self._commands = [c for c in map(_command, commands) if c is not None]
            self._finished &= {c.id for c in self._commands if c.id is not None}
        if changed:
            self.local.save_policies(policies)
        self._take_models(answer, ask.models)
        self._take_unblocks(answer, ask.blocked)

    def _take_unblocks(self, answer: Doc, held: frozenset[str]) -> None:
        """Blocks the console had and has no more: a user unblocked them there."""
        listed = answer.get("blocked")
        if not isinstance(listed, list):
            return
        self._forget_unblocked(held - set(listed))

    def _forget_unblocked(self, container_ids: set[str] | frozenset[str]) -> None:
        """Blocks a user ended at the console: forgotten here, for the defender to restore."""
        with self._cond:
            gone = [self._blocked.pop(c) for c in container_ids if c in self._blocked]
            self._acked_blocks -= container_ids
            self._unblocked.extend(gone)
            if gone:
                self._save_blocked()
        for record in gone:
            log.info("container %s unblocked at the console", record.container_id[:12])

    def _take_models(self, answer: Doc, cursor: float | None) -> None:
        """Models changed at the console since ``cursor`` (other hosts' learning)."""
        docs = answer.get("models")
        if cursor is None or not isinstance(docs, list):
            return
        with self._cond:
            self._model_updates.extend(d for d in docs if isinstance(d, dict))
            for doc in docs:
                if isinstance(doc, dict):
                    self._models_cache[str(doc.get("profileId"))] = doc
            if self._model_cursor is not None:
                self._model_cursor = max(self._model_cursor, _number(answer.get("cursor")))


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _command(doc: Any) -> ModelCommand | None:
    """A command from the console's answer; None for one it cannot be (no id: it could not be
    acknowledged)."""
    try:
        command = ModelCommand.from_json(doc)
    except (AttributeError, KeyError, TypeError, ValueError, GarrisonError):
        return None
    return command if command.id is not None else None


def _merge(older: _Queue, newer: _Queue) -> _Queue:
    return _Queue(
        models={**older.models, **newer.models},
        deletes=(older.deletes - set(newer.models)) | newer.deletes,
        acks=[*older.acks, *newer.acks],
        blocks=[*older.blocks, *newer.blocks],
    )
