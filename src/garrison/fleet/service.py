"""``FleetService``: what the console does for its hosts — enrol them, know them by their
certificate, and store what they report — on the console's store.

It holds no state of its own: the CA, hosts, tokens, audits, models and policies are all in
the store, so several console replicas on one PostgreSQL answer alike. Every method runs on
a worker thread (the store blocks).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from cryptography import x509

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import InvalidInput, StoreError
from garrison.fleet.batches import BatchWriter
from garrison.fleet.enroll import (
    TokenRecord,
    TokenRefused,
    make_token,
    parse_token,
    redeem,
    spend,
)
from garrison.fleet.pki import ConsoleCA, check_host_name, check_request
from garrison.fleet.sync import HeldSync, policies_tag
from garrison.fleet.tls import PeerRefused, peer_certificate
from garrison.fleet.wire import POLICY_KINDS
from garrison.model.clock import Clock, system_clock
from garrison.model.merge import merge_docs
from garrison.store.base import (
    AuditBatch,
    BlockedContainer,
    Doc,
    HostRecord,
    Store,
    SyncMarks,
    check_audit,
    dump_doc,
    profile_of,
)
from garrison.store.tokenbook import StoreTokenBook

log = logging.getLogger(__name__)

SEEN_EVERY = 10.0  # seconds between writes of a host's last_seen
REPORTS_EVERY = 1.0  # seconds between writes of what hosts reported (statuses, last_seen)
# How long the hosts' records are taken without reading the store again: a revocation reaches
# a host's open connection within this (docs/fleet.md).
KNOWN_FOR = 2.0
KNOWN_MAX = 100_000  # certificates remembered at most (then forgotten all at once)
POLICIES_FOR = 0.5  # the policies, the same for every host, read once per this (no marks)
MODELS_KEPT = 64  # answers to "models since" kept for hosts asking from the same cursor
STATUS_PREFIX = "defender:"


EPOCH = re.compile(r"[0-9a-f]{16,64}")


def _owned(audit: Audit, host: str) -> Audit:
    """``audit`` as ``host``'s: its hostname is the certificate's, whatever it said."""
    return audit if audit.hostname == host else dataclasses.replace(audit, hostname=host)


def spool_of(host: str, epoch: str) -> str:
    """The store's name for the spool mark of ``host``'s link of ``epoch``: a link made anew
    (a new data folder, a reinstalled host) numbers its audits from 1 again under a new epoch,
    so its first audits are not mistaken for ones stored before."""
    if not EPOCH.fullmatch(epoch):
        raise InvalidInput("an audit epoch is 16 to 64 lower-case hex digits")
    return f"audits:{host}:{epoch}"


def _taken(token_id: str, host: str) -> TokenRefused:
    return TokenRefused(
        f"enrolment token {token_id} refused: host {host} is enrolled already (a token for "
        "several hosts enrols new names only; enrol it again with a one-use token)"
    )


class FleetService:
    def __init__(self, store: Store, ca: ConsoleCA, clock: Clock = system_clock) -> None:
        self.store = store
        self.ca = ca
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._writer = BatchWriter(store)
        self._seen_due: dict[str, float] = {}  # last requests not written yet
        self._statuses: dict[str, Doc] = {}  # statuses not written yet, by source
        self._peers: dict[bytes, tuple[str, str, float]] = {}  # checked certificates
        self._hosts: tuple[float, dict[str, HostRecord]] = (float("-inf"), {})
        self._policies: tuple[float, Doc, str] | None = None  # (mark, policies, tag)
        self._models: dict[tuple[float, float], tuple[list[Doc], float]] = {}
        self._lock = threading.Lock()

    # -- enrolment ---------------------------------------------------------------------------

    def make_enrol_token(self, ttl: float, uses: int = 1) -> tuple[str, TokenRecord]:
        """A token for ``uses`` hosts (shown once) and its stored record."""
        text, record = make_token(ttl, self.clock(), uses)
        self.store.add_enrol_token(record)
        return text, record

    def enrol(self, token: str, host: str, csr_pem: bytes) -> bytes:
        """Spend ``token`` and sign the host's request: its client certificate (PEM). The request
        is checked first, so a faulty one leaves the token unspent. The host becomes known
        under this certificate's serial alone: an older certificate of the same name (an
        earlier enrolment) stops working — with a one-use token: a token for several hosts
        enrols only names not enrolled yet, so whoever holds a token shared by a DaemonSet's
        nodes cannot take over a host's name. TokenRefused, InvalidInput."""
        name = check_host_name(host)
        check_request(csr_pem, name)  # a faulty request does not cost the host its token
        now = self.clock()
        self._refuse_taken(token, name, now)  # before a use is spent
        spent = spend(StoreTokenBook(self.store), token, now)
        cert_pem = self.ca.issue_client(csr_pem, host=name)
        serial = x509.load_pem_x509_certificate(cert_pem).serial_number
        record = HostRecord(name, str(serial), now)
        if spent.max_uses == 1:
            self.store.enrol_host(record)
        elif not self.store.add_new_host(record):  # enrolled by another at this instant
            raise _taken(spent.id, name)
        log.info("host %s enrolled (certificate %x)", name, serial)
        return cert_pem

    def _refuse_taken(self, token: str, name: str, now: float) -> None:
        """TokenRefused when ``token`` is for several hosts and ``name`` is enrolled; only
        to whoever holds the token's secret (``redeem``): nobody else learns the name."""
        record = self.store.get_enrol_token(parse_token(token)[0])
        if record is None or record.max_uses == 1 or self.store.get_host(name) is None:
            return
        redeem(record, token, now)
        raise _taken(record.id, name)

    # -- who is talking -----------------------------------------------------------------------

    def authenticate(self, der: bytes | None) -> str:
        """The host that presented ``der`` in its handshake; PeerRefused when none, or when
        the certificate is not the host's current one (revoked, or enrolled again since).

        A certificate is checked against the CA once and remembered; whether it is still its
        host's is asked of a view of all hosts read at most every KNOWN_FOR (one query for
        all, where a query per request was a fifth of a busy console's time)."""
        if not der:
            raise PeerRefused("this path needs the host's client certificate")
        host, serial, not_after = self._peer(der)
        if self.clock() > not_after:
            raise PeerRefused(f"host {host}: its certificate has expired")
        record = self._hosts_now(host, serial)
        if record is None or record.revoked is not None or record.serial != serial:
            raise PeerRefused(f"host {host}: certificate revoked or replaced")
        self._mark_seen(host)
        return host

    def _peer(self, der: bytes) -> tuple[str, str, float]:
        """(host, serial, end of validity) of a certificate the CA issued; PeerRefused."""
        with self._lock:
            known = self._peers.get(der)
        if known is not None:
            return known
        host = self.ca.check_peer(der)
        cert = peer_certificate(der)
        known = (host, str(cert.serial_number), cert.not_valid_after_utc.timestamp())
        with self._lock:
            if len(self._peers) >= KNOWN_MAX:
                self._peers.clear()
            self._peers[der] = known
        return known

    def _hosts_now(self, host: str, serial: str) -> HostRecord | None:
        """``host``'s record in the view of all hosts, read again when older than KNOWN_FOR,
        or when it does not know this certificate (the host enrolled since) and it is older
        than a tenth of that."""
        now = self.clock()
        with self._lock:
            read_at, view = self._hosts
        age = now - read_at
        record = view.get(host)
        unknown = record is None or record.serial != serial
        if age >= KNOWN_FOR or (unknown and age >= KNOWN_FOR / 10):
            view = {record.name: record for record in self.store.list_hosts()}
            with self._lock:
                self._hosts = (now, view)
        return view.get(host)

    def _mark_seen(self, host: str) -> None:
        now = self.clock()
        with self._lock:
            if now - self._seen.get(host, 0.0) < SEEN_EVERY:
                return
            self._seen[host] = now
            self._seen_due[host] = now  # written by flush_reports

    def flush_reports(self) -> None:
        """Write the statuses and last requests gathered since the last call, in one
        transaction (the listener calls it every REPORTS_EVERY); kept for the next call when
        the store fails (newer ones win)."""
        with self._lock:
            statuses, seen = self._statuses, self._seen_due
            self._statuses, self._seen_due = {}, {}
        if not statuses and not seen:
            return
        try:
            self.store.save_host_reports(statuses, seen)
        except StoreError as exc:
            log.warning("hosts' statuses not written (will retry): %s", exc)
            with self._lock:
                self._statuses = {**statuses, **self._statuses}
                self._seen_due = {**seen, **self._seen_due}

    # -- what a host reports -------------------------------------------------------------------

    def submit_batch(
        self, host: str, epoch: str, mark: int, audits: Sequence[Audit]
    ) -> Future[None]:
        """Queue a spooled batch of ``host``'s audits numbered up to ``mark``: stored once (a
        batch sent again, its answer lost, finds the mark stored and adds nothing), in the next
        transaction with the other hosts' batches that wait (fleet/batches.py). The future is
        done when it is committed; ``mark`` tells where the host's spool then stands."""
        spool = spool_of(host, epoch)
        owned = [check_audit(_owned(a, host)) for a in audits]
        return self._writer.submit(AuditBatch(spool, mark, owned))

    def mark(self, host: str, epoch: str) -> int:
        return self.store.spool_mark(spool_of(host, epoch))

    def store_audit(self, host: str, audit: Audit) -> Audit:
        (stored,) = self.store.add_audits([dataclasses.replace(audit, hostname=host)])
        return stored

    def report_status(self, host: str, doc: Mapping[str, Any]) -> None:
        """Kept until the next ``flush_reports``: one write a second for every host. A status
        the store could not take is refused now (InvalidInput), not at the write."""
        status = {**doc, "host": host}
        dump_doc(status, f"status of {host}")
        with self._lock:
            self._statuses[STATUS_PREFIX + host] = status

    def save_models(
        self, host: str, docs: Sequence[Mapping[str, Any]], deletes: Sequence[str]
    ) -> None:
        """``host``'s models, each merged with what the console has of it (what other hosts
        learned of the image): the image's one model (garrison.model.merge), which records
        ``host`` among those that saved it. The store reads and writes each in one
        transaction, so two hosts saving one model at once both find their part in it."""
        merged = self.store.merge_models(docs, merge_docs)
        if merged:
            self.store.record_model_hosts(host, [profile_of(d) for d in merged], self.clock())
        if deletes:
            self.store.delete_models(list(deletes))

    def sync_round(self, host: str, held: HeldSync, marks: SyncMarks | None) -> tuple[Doc, bool]:
        """The answer to ``host``'s sync as the store stands at ``marks`` (None: read it all
        now), and whether it holds news for the host: if not, the request may be held. The
        host's commands are read again only when the newest command moved."""
        policies, tag = self._policies_now(marks)
        if held.commands is None or marks is None or held.commands_mark != marks.commands:
            held.commands = [c.to_json() for c in self.store.pending_model_commands(host=host)]
            held.commands_mark = None if marks is None else marks.commands
        if held.blocked is None or marks is None or held.blocked_mark != marks.blocked:
            held.blocked = [r.container_id for r in self.store.list_blocked(host=host)]
            held.blocked_mark = None if marks is None else marks.blocked
        answer: Doc = {"policies": policies, "policiesTag": tag, "commands": held.commands,
                       "blocked": held.blocked}  # fmt: skip
        given = {c.get("id") for c in held.commands}
        unblocked = held.ask.blocked - set(held.blocked)  # at the console: the host restores
        news = tag != held.ask.policies or given != held.ask.commands or bool(unblocked)
        if held.ask.models is not None:
            models, cursor = self._models_since(held.ask.models, marks)
            answer |= {"models": models, "cursor": cursor}
            news = news or bool(models)
        return answer, news

    def sync_from_memory(
        self, host: str, held: HeldSync, marks: SyncMarks | None
    ) -> tuple[Doc, bool] | None:
        """``sync_round`` when it needs no read of the store (the policies and models read
        already at ``marks``, no new command), else None: what a thousand hosts woken by a
        policy change ask, answered on the event loop instead of queueing for a thread."""
        if marks is None or held.commands is None or held.commands_mark != marks.commands:
            return None
        if held.blocked is None or held.blocked_mark != marks.blocked:
            return None
        with self._lock:
            cached = self._policies
            models = self._models.get((held.ask.models or 0.0, marks.models))
        if cached is None or cached[0] != marks.policies:
            return None
        stale = held.ask.models is not None and marks.models > held.ask.models
        if stale and models is None:
            return None
        return self.sync_round(host, held, marks)

    def _policies_now(self, marks: SyncMarks | None) -> tuple[Doc, str]:
        """The policies hosts enforce and their tag, read from the store once per change of
        its policies mark (without marks: at most every POLICIES_FOR)."""
        key = self.clock() // POLICIES_FOR if marks is None else marks.policies
        with self._lock:
            cached = self._policies
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        policies = {kind: self.store.get_policy(kind) for kind in POLICY_KINDS}
        tag = policies_tag(policies)
        with self._lock:
            self._policies = (key, policies, tag)
        return policies, tag

    def _models_since(self, cursor: float, marks: SyncMarks | None) -> tuple[list[Doc], float]:
        """The models saved after ``cursor`` and the cursor to ask from next; none without a
        query when the models mark is not past it. Hosts at one cursor share one read."""
        if marks is None:
            return self._read_models(cursor)
        if marks.models <= cursor:
            return [], cursor
        key = (cursor, marks.models)
        with self._lock:
            found = self._models.get(key)
        if found is None:
            found = self._read_models(cursor)
            with self._lock:
                if len(self._models) >= MODELS_KEPT:
                    self._models.clear()
                self._models[key] = found
        return found

    def _read_models(self, cursor: float) -> tuple[list[Doc], float]:
        changed = self.store.models_since(cursor)
        return [doc for _, doc in changed], max([cursor, *(t for t, _ in changed)])

    def finish_commands(self, host: str, ids: Sequence[int]) -> None:
        self.store.finish_model_commands(ids, host=host)

    def block(
        self, host: str, record: BlockedContainer, audit: Audit | None, update: bool = False
    ) -> BlockedContainer | None:
        """A host's block: its audit and pending record at once, or the record alone. A
        record without its audit's id names the container's newest block audit from the
        host (the host sends the audit, in its batches, before the record). ``update``: the
        console took this record before; None when it has it no more (a user unblocked the
        container here, maybe while the host was away), and nothing is written."""
        record = dataclasses.replace(record, host=host)
        if audit is not None:
            return self.store.begin_block(record, dataclasses.replace(audit, hostname=host))
        if record.audit_id is None:
            query = AuditFilter(container=record.container_id, host=host, effect="block", limit=1)
            newest = self.store.list_audits(query)
            if newest:
                record = dataclasses.replace(record, audit_id=newest[0].id)
        if update:
            return record if self.store.update_blocked(record) else None
        self.store.add_blocked(record)
        return record

    def unblocked(self, host: str, container_id: str) -> bool:
        """The host's record of ``container_id`` removed; False when there was none of its."""
        if not any(r.container_id == container_id for r in self.store.list_blocked(host=host)):
            return False
        return self.store.remove_blocked(container_id)

    def audits_of(self, host: str, container_id: str, limit: int) -> list[Audit]:
        query = AuditFilter(container=container_id, host=host, limit=limit)
        return self.store.list_audits(query)
