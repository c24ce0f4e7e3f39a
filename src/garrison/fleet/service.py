"""``FleetService``: what the console does for its hosts — enrol them, know them by their
certificate, and store what they report — on the console's store.

It holds no state of its own beyond the CA (in the console's data folder): hosts, tokens,
audits, models and policies are all in the store, so several console replicas on one
PostgreSQL answer alike. Every method runs on a worker thread (the store blocks).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.fleet.enroll import TokenRecord, make_token, spend
from garrison.fleet.pki import ConsoleCA, check_host_name, check_request
from garrison.fleet.tls import PeerRefused, peer_certificate
from garrison.fleet.wire import POLICY_KINDS
from garrison.model.clock import Clock, system_clock
from garrison.model.merge import merge_docs
from garrison.store.base import BlockedContainer, Doc, HostRecord, Store, profile_of
from garrison.store.tokenbook import StoreTokenBook

log = logging.getLogger(__name__)

SEEN_EVERY = 10.0  # seconds between writes of a host's last_seen
# How long a certificate found to be its host's current one is taken without reading the
# store again: a revocation reaches a host's open connection within this (docs/fleet.md).
KNOWN_FOR = 2.0
KNOWN_MAX = 100_000  # certificates remembered at most (then forgotten all at once)
POLICIES_FOR = 0.5  # the policies, the same for every host, read once per this
STATUS_PREFIX = "defender:"


EPOCH = re.compile(r"[0-9a-f]{16,64}")


def spool_of(host: str, epoch: str) -> str:
    """The store's name for the spool mark of ``host``'s link of ``epoch``: a link made anew
    (a new data folder, a reinstalled host) numbers its audits from 1 again under a new epoch,
    so its first audits are not mistaken for ones stored before."""
    if not EPOCH.fullmatch(epoch):
        raise InvalidInput("an audit epoch is 16 to 64 lower-case hex digits")
    return f"audits:{host}:{epoch}"


class FleetService:
    def __init__(self, store: Store, ca: ConsoleCA, clock: Clock = system_clock) -> None:
        self.store = store
        self.ca = ca
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._known: dict[bytes, tuple[str, float]] = {}
        self._policies: tuple[float, Doc] | None = None
        self._lock = threading.Lock()

    # -- enrolment ---------------------------------------------------------------------------

    def make_enrol_token(self, ttl: float) -> tuple[str, TokenRecord]:
        """A one-time token (shown once) and its stored record."""
        text, record = make_token(ttl, self.clock())
        self.store.add_enrol_token(record)
        return text, record

    def enrol(self, token: str, host: str, csr_pem: bytes) -> bytes:
        """Spend ``token`` and sign the host's request: its client certificate (PEM). The request
        is checked first, so a faulty one leaves the token unspent. The host becomes known
        under this certificate's serial alone: an older certificate of the same name (an
        earlier enrolment) stops working. TokenRefused, InvalidInput."""
        name = check_host_name(host)
        check_request(csr_pem, name)  # a faulty request does not cost the host its token
        now = self.clock()
        spend(StoreTokenBook(self.store), token, now)
        cert_pem = self.ca.issue_client(csr_pem, host=name)
        serial = x509.load_pem_x509_certificate(cert_pem).serial_number
        self.store.enrol_host(HostRecord(name, str(serial), now))
        log.info("host %s enrolled (certificate %x)", name, serial)
        return cert_pem

    # -- who is talking -----------------------------------------------------------------------

    def authenticate(self, der: bytes | None) -> str:
        """The host that presented ``der`` in its handshake; PeerRefused when none, or when
        the certificate is not the host's current one (revoked, or enrolled again since)."""
        if not der:
            raise PeerRefused("this path needs the host's client certificate")
        now = self.clock()
        with self._lock:
            known = self._known.get(der)
        if known is not None and now - known[1] < KNOWN_FOR:
            host = known[0]
        else:
            host = self._check(der)
            with self._lock:
                if len(self._known) >= KNOWN_MAX:
                    self._known.clear()
                self._known[der] = (host, now)
        self._mark_seen(host)
        return host

    def _check(self, der: bytes) -> str:
        host = self.ca.check_peer(der)
        serial = str(peer_certificate(der).serial_number)
        record = self.store.get_host(host)
        if record is None or record.revoked is not None or record.serial != serial:
            raise PeerRefused(f"host {host}: certificate revoked or replaced")
        return host

    def _mark_seen(self, host: str) -> None:
        now = self.clock()
        with self._lock:
            if now - self._seen.get(host, 0.0) < SEEN_EVERY:
                return
            self._seen[host] = now
        self.store.host_seen(host, now)

    # -- what a host reports -------------------------------------------------------------------

    def store_batch(self, host: str, epoch: str, mark: int, audits: Sequence[Audit]) -> int:
        """Store a spooled batch of ``host``'s audits numbered up to ``mark`` — once: a batch
        sent again (its answer lost) finds the mark stored and adds nothing. The mark now."""
        spool = spool_of(host, epoch)
        owned = [dataclasses.replace(a, hostname=host) for a in audits]
        self.store.add_audits(owned, spool_mark=mark, spool=spool)
        return self.store.spool_mark(spool)

    def mark(self, host: str, epoch: str) -> int:
        return self.store.spool_mark(spool_of(host, epoch))

    def store_audit(self, host: str, audit: Audit) -> Audit:
        (stored,) = self.store.add_audits([dataclasses.replace(audit, hostname=host)])
        return stored

    def report_status(self, host: str, doc: Mapping[str, Any]) -> None:
        self.store.set_status({**doc, "host": host}, source=STATUS_PREFIX + host)

    def save_models(self, docs: Sequence[Mapping[str, Any]], deletes: Sequence[str]) -> None:
        """A host's models, each merged with what the console has of it (what other hosts
        learned of the image): the image's one model (garrison.model.merge). Two hosts saving
        one model at the same instant may lose one merge; the next save of either (a model
        learning is saved every second while it runs) brings it back."""
        merged = []
        for doc in docs:
            stored = self.store.get_model(profile_of(doc))  # InvalidInput before any write
            merged.append(dict(doc) if stored is None else merge_docs(stored, dict(doc)))
        if merged:
            self.store.save_models(merged)
        if deletes:
            self.store.delete_models(list(deletes))

    def sync(self, host: str) -> Doc:
        """What a host pulls every second: the policies it enforces and its model commands."""
        commands = self.store.pending_model_commands(host=host)
        return {"policies": self._policies_now(), "commands": [c.to_json() for c in commands]}

    def _policies_now(self) -> Doc:
        """The policies hosts enforce, read from the store at most every POLICIES_FOR."""
        now = self.clock()
        with self._lock:
            cached = self._policies
        if cached is not None and now - cached[0] < POLICIES_FOR:
            return cached[1]
        policies = {kind: self.store.get_policy(kind) for kind in POLICY_KINDS}
        with self._lock:
            self._policies = (now, policies)
        return policies

    def finish_commands(self, host: str, ids: Sequence[int]) -> None:
        self.store.finish_model_commands(ids, host=host)

    def block(self, host: str, record: BlockedContainer, audit: Audit | None) -> BlockedContainer:
        """A host's block: its audit and pending record at once, or the record alone. A
        record without its audit's id names the container's newest block audit from the
        host (the host sends the audit, in its batches, before the record)."""
        record = dataclasses.replace(record, host=host)
        if audit is not None:
            return self.store.begin_block(record, dataclasses.replace(audit, hostname=host))
        if record.audit_id is None:
            query = AuditFilter(container=record.container_id, host=host, effect="block", limit=1)
            newest = self.store.list_audits(query)
            if newest:
                record = dataclasses.replace(record, audit_id=newest[0].id)
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
