"""The store seam: what the console keeps, whichever database keeps it (SQLite now,
PostgreSQL later). ``MemoryStore`` is the fake for tests of other parts."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.incidents.record import Incident, IncidentFilter, IncidentState
from garrison.model.commands import ModelCommand
from garrison.runtime.base import RestartPolicy
from garrison.scan.report import ScanReport

if TYPE_CHECKING:
    # Not imported at run time: garrison.fleet loads cryptography, which a defender opening
    # its store does not need (and garrison.fleet imports garrison.store).
    from garrison.fleet.enroll import TokenRecord as EnrolToken

Doc = dict[str, Any]
MergeDocs = Callable[[Doc, Doc], Doc]
KEEP_SCANS = 5  # scan reports kept per image (per container), the newest


BlockState = Literal["pending", "done"]
# A block's forensics bundle: none asked for (""), being captured, or captured (its manifest
# says what it holds and what is missing).
CaptureState = Literal["", "pending", "done", "failed"]


class AuditBatch(NamedTuple):
    """Audits of a spool numbered up to ``mark``: stored once (``Store.add_audit_batches``)."""

    spool: str
    mark: int
    audits: Sequence[Audit]


class SyncMarks(NamedTuple):
    """Where what hosts pull stands: the newest update of a policy and of a model, the
    newest model command's id, and the blocked containers (how many, the newest block's
    time: an unblock moves one). Compared for a change only (a console's hosts wait on one)."""

    policies: float
    models: float
    commands: int
    blocked: tuple[int, float] = (0, 0.0)


@dataclass(frozen=True, slots=True)
class BlockedContainer:
    """A container Garrison stops, and what is needed to let it run again.

    A block is recorded ``pending`` — with the audit and the original restart policy — before
    the container is killed, and ``done`` once it is stopped and its policy changed: a
    defender that dies in between finishes it when it starts again (``reason`` says what
    keeps a pending block from being done, e.g. Docker refusing the kill)."""

    container_id: str
    name: str
    image: str
    restart_policy: RestartPolicy  # the policy it had before Garrison changed it
    audit_id: int | None
    time: float
    state: BlockState = "done"
    reason: str = ""
    bundle: str = ""  # the forensics bundle's id
    capture: CaptureState = ""
    host: str = ""  # the host whose defender blocked it ("": the console's own, one host)

    def to_json(self) -> Doc:
        return {
            "containerId": self.container_id,
            "containerName": self.name,
            "imageName": self.image,
            "restartPolicy": {
                "name": self.restart_policy.name,
                "maximumRetryCount": self.restart_policy.maximum_retry_count,
            },
            "auditId": self.audit_id,
            "time": self.time,
            "state": self.state,
            "reason": self.reason,
            "bundle": self.bundle,
            "capture": self.capture,
            "host": self.host,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> BlockedContainer:
        policy = doc["restartPolicy"]
        return cls(
            container_id=str(doc["containerId"]),
            name=str(doc["containerName"]),
            image=str(doc["imageName"]),
            restart_policy=RestartPolicy(str(policy["name"]), int(policy["maximumRetryCount"])),
            audit_id=None if doc["auditId"] is None else int(doc["auditId"]),
            time=float(doc["time"]),
            state="pending" if doc.get("state") == "pending" else "done",
            reason=str(doc.get("reason") or ""),
            bundle=str(doc.get("bundle") or ""),
            capture=_capture_state(doc.get("capture")),
            host=str(doc.get("host") or ""),
        )


def _capture_state(value: object) -> CaptureState:
    states: dict[object, CaptureState] = {"pending": "pending", "done": "done", "failed": "failed"}
    return states.get(value, "")


@dataclass(frozen=True, slots=True)
class HostRecord:
    """A host enrolled with a console (garrison.fleet): the serial of its current client
    certificate (decimal text), when it was enrolled, revoked (None: it is not) and last
    heard from (None: never)."""

    name: str
    serial: str
    enrolled: float
    revoked: float | None = None
    last_seen: float | None = None

    def to_json(self) -> Doc:
        return {
            "name": self.name,
            "serial": self.serial,
            "enrolled": self.enrolled,
            "revoked": self.revoked,
            "lastSeen": self.last_seen,
        }


@dataclass(frozen=True, slots=True)
class ModelHost:
    """A host that saved a model (one per image across hosts): its first and last save."""

    host: str
    first_saved: float
    last_saved: float

    def to_json(self) -> Doc:
        return {"host": self.host, "firstSaved": self.first_saved, "lastSaved": self.last_saved}


@dataclass(frozen=True, slots=True)
class CARecord:
    """The console's CA as stored (garrison.fleet): its certificate and unencrypted private
    key, PEM, and when it was made (epoch seconds). The store holding it is as secret as the
    key (docs/security.md)."""

    cert_pem: str
    key_pem: str
    created: float


@dataclass(frozen=True, slots=True)
class RevokedSerial:
    """A client certificate the console's CA revoked: its serial (decimal text), the host it
    was issued to, and when it was revoked."""

    serial: str
    host: str
    revoked: float


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """An alert channel as stored: a name and the destination URL (secrets included: the
    store is owner-only; what prints it uses ``garrison.alerts.redacted``)."""

    name: str
    url: str
    created: float


DeliveryState = Literal["pending", "sent", "skipped"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One audit to send to one channel: the alerting outbox's row. Made in the transaction
    that stores the audit (when the audit is new), for every channel there is then; ``sent``
    once the channel took it; retried with backoff until then."""

    id: int
    channel: str
    audit: Audit
    state: DeliveryState
    attempts: int
    next_try: float
    created: float
    sent: float | None = None
    error: str = ""  # why the last attempt failed (redacted); why it was skipped
    folded: int = 0  # 0: the audit's first alert; N: a summary of N more occurrences

    def to_json(self) -> dict[str, Any]:
        """As ``garrison alerts outbox --json`` and the API print it."""
        return {
            "id": self.id, "channel": self.channel, "auditId": self.audit.id,
            "folded": self.folded, "state": self.state, "attempts": self.attempts,
            "nextTry": self.next_try, "created": self.created, "sent": self.sent,
            "error": self.error, "audit": self.audit.to_json(),
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Delivery:
        states: dict[object, DeliveryState] = {s: s for s in ("pending", "sent", "skipped")}
        sent = doc.get("sent")
        return cls(
            id=int(doc["id"]), channel=str(doc["channel"]), audit=Audit.from_json(doc["audit"]),
            state=states[doc["state"]], attempts=int(doc["attempts"]),
            next_try=float(doc["nextTry"]), created=float(doc["created"]),
            sent=None if sent is None else float(sent), error=str(doc.get("error") or ""),
            folded=int(doc.get("folded") or 0),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A console user as stored (``garrison.auth.User`` is what leaves the store: no hash)."""

    name: str
    role: str  # auditor, operator, admin (garrison.auth checks it)
    password_hash: str  # argon2id, PHC string
    created: float
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token as stored: its public id and the SHA-256 (hex) of its secret."""

    id: str
    user: str
    name: str
    secret_hash: str
    created: float
    expires: float | None = None
    last_used: float | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A page session as stored, keyed by the SHA-256 (hex) of its cookie."""

    key_hash: str
    user: str
    csrf: str
    created: float
    expires: float


class Store(Protocol):
    """Persistence. Every write is atomic: on an error nothing already stored is lost.

    Raises StoreError when the database fails and InvalidInput for a document that is not
    JSON (checked before anything is written).
    """

    def close(self) -> None: ...

    # Models: JSON documents (``RuntimeModel.to_doc``) keyed by their "profileId".
    def save_models(self, docs: Sequence[Mapping[str, Any]]) -> None: ...
    def merge_models(self, docs: Sequence[Mapping[str, Any]], merge: MergeDocs) -> list[Doc]:
        """Each document saved merged with the stored one (``merge(stored, incoming)``), the
        reads and the writes in one transaction that other writers wait for: two hosts
        saving one model at once both find their part in it. Returns what was saved."""
        ...

    def delete_models(self, profile_ids: Sequence[str]) -> None: ...
    def load_models(self) -> list[Doc]: ...
    def get_model(self, profile_id: str) -> Doc | None: ...

    def save_host_reports(self, statuses: Mapping[str, Doc], seen: Mapping[str, float]) -> None:
        """In one transaction: statuses by source (as ``set_status``) and hosts' last
        requests by name (as ``host_seen``) — what a console gathers from its hosts each
        second, one commit for all instead of one each."""
        ...

    def sync_marks(self) -> SyncMarks:
        """Where policies, models and model commands stand: one cheap read, which a console
        repeats to know when to answer the hosts waiting for a change (``fleet/sync.py``)."""
        ...

    def models_since(self, since: float) -> list[tuple[float, Doc]]:
        """(updated, doc) of the models saved after ``since``, oldest first: what a defender
        pulls of the models other hosts saved (it asks again from the last ``updated``)."""
        ...

    # Which hosts saved each model; ``delete_models`` deletes a model's hosts with it.
    def record_model_hosts(self, host: str, profile_ids: Sequence[str], when: float) -> None:
        """``host`` saved these models at ``when``: its first save is kept, its last becomes
        the later of the two. Ids of no stored model are ignored (call it after the save).
        InvalidInput for an empty host name."""
        ...

    def model_hosts(self, profile_id: str) -> list[ModelHost]:
        """The hosts that saved the model, by name ([] for no such model)."""
        ...

    def model_host_counts(self) -> dict[str, int]:
        """How many hosts saved each model, by profile id (a model none saved is missing)."""
        ...

    # Audits: one with the ``key()`` of a stored one adds its count and moves its time.
    def add_audits(
        self, audits: Sequence[Audit], spool_mark: int | None = None, spool: str = "audits"
    ) -> list[Audit]:
        """Store audits (one seen before adds to its count); ``spool_mark``: the highest
        sequence number they hold of the spool named ``spool`` (one per host), kept in the
        same transaction. When that spool's stored mark is already ``spool_mark`` or more,
        the batch was stored before (sent again after a lost answer): nothing is stored, and
        the answer is []. The mark is checked and moved in the write transaction."""
        ...

    def add_audit_batches(self, batches: Sequence[AuditBatch]) -> None:
        """Several spooled batches (of several hosts) in one transaction, each as
        ``add_audits(audits, spool_mark=mark, spool=spool)`` would store it: a console
        gathers the batches arriving together into one commit."""
        ...

    def spool_mark(self, spool: str = "audits") -> int:
        """The highest sequence number stored of the spool named ``spool`` (0: none)."""
        ...

    def list_audits(self, query: AuditFilter | None = None) -> list[Audit]: ...
    def iter_audits(self, query: AuditFilter | None = None) -> Iterator[Audit]:
        """As ``list_audits``, one at a time from one consistent read (an export of millions
        holds a batch, not a list); exhaust or close it."""
        ...

    def prune_audits(self, before: float | None, keep: int) -> int:
        """Delete the audits last seen before ``before`` (None: any time) and those beyond the
        newest ``keep`` (0: no cap), oldest first, with their deliveries; never one with a
        delivery still pending (not forwarded yet) nor the one a blocked container names.
        How many were deleted."""
        ...

    def audit_totals(self) -> dict[tuple[str, str], int]:
        """Occurrences (counts summed) by (type, effect), those of audits retention deleted
        included: the metrics' audit counters, which must never go down."""
        ...

    # Incidents (garrison.incidents): written by one correlator, which reads audits by id.
    def audits_after(self, audit_id: int, limit: int) -> list[Audit]:
        """Audits stored with an id above ``audit_id``, in id order (stored order)."""
        ...

    def get_audits(self, audit_ids: Sequence[int]) -> list[Audit]:
        """The audits of these ids that are stored (in no given order)."""
        ...

    def incident_mark(self) -> int:
        """The last audit id the correlator finished (0: none)."""
        ...

    def save_incident(
        self, incident: Incident, joined: Sequence[tuple[int, float]], mark: int | None = None
    ) -> Incident:
        """Insert (``id`` None) or update an incident; ``joined``: (audit id, time) of audits
        that join its story; ``mark`` moves the correlator's mark in the same transaction."""
        ...

    def set_incident_mark(self, audit_id: int) -> None: ...
    def open_incident(self, container_id: str, anchor: str) -> Incident | None: ...
    def get_incident(self, incident_id: int) -> Incident | None: ...
    def list_incidents(self, query: IncidentFilter) -> list[Incident]: ...
    def set_incident_state(self, incident_id: int, state: IncidentState) -> bool: ...

    # Policies: one JSON document per kind ("runtime", "vulnerability", …).
    def get_policy(self, kind: str) -> Doc | None: ...
    def set_policy(self, kind: str, doc: Mapping[str, Any]) -> None: ...

    # Containers Garrison blocked (stopped) and may release.
    def add_blocked(self, record: BlockedContainer) -> None: ...
    def begin_block(self, record: BlockedContainer, audit: Audit) -> BlockedContainer:
        """Store the audit and the (pending) record in one transaction; the record as stored,
        naming the audit."""
        ...

    def update_blocked(self, record: BlockedContainer) -> bool:
        """Replace the record of ``record.container_id`` and ``record.host``; False, with
        nothing written, when the store has none (a user unblocked it meanwhile)."""
        ...

    def remove_blocked(self, container_id: str) -> bool: ...
    def list_blocked(self, host: str | None = None) -> list[BlockedContainer]:
        """Oldest first; those of ``host`` (None: every host's)."""
        ...

    # Alert channels, and the outbox: an audit stored new makes one pending delivery per
    # channel in the same transaction (``add_audits``, ``begin_block``).
    def add_channel(self, record: ChannelRecord) -> None:
        """InvalidInput when a channel of that name exists."""
        ...

    def remove_channel(self, name: str) -> bool:
        """Remove the channel and its deliveries not sent yet; False when there was none."""
        ...

    def list_channels(self) -> list[ChannelRecord]: ...
    def due_deliveries(self, channel: str, now: float, limit: int) -> list[Delivery]:
        """The channel's pending deliveries whose time has come, oldest first."""
        ...

    def delivered(self, delivery_id: int, when: float, period: float = 60.0) -> None:
        """Sent. A first alert starts the audit's summaries on that channel: one occurrence
        told, the next summary due ``period`` seconds later."""
        ...

    def skip(self, delivery_id: int, reason: str) -> None:
        """Not for this channel (no alert profile routes it there)."""
        ...

    def make_summaries(self, channel: str, now: float) -> int:
        """A pending summary delivery for each audit whose count grew since the channel was
        last told and whose period is over; how many were made."""
        ...

    def retry_later(self, delivery_id: int, next_try: float, error: str) -> None: ...
    def outbox_totals(self) -> dict[tuple[str, str], int]:
        """Deliveries by (channel, state)."""
        ...

    def list_deliveries(self, state: str = "", limit: int = 100) -> list[Delivery]:
        """Newest first; ``state`` "pending", "sent" or "skipped" ("" all)."""
        ...

    # Defender status documents (counters…), one per source ("defender:HOST" per host).
    def set_status(self, doc: Mapping[str, Any], source: str = "defender") -> None: ...
    def get_status(self, source: str = "defender") -> Doc | None: ...
    def list_status(self, prefix: str) -> list[tuple[str, Doc]]:
        """(source, doc) of the sources that start with ``prefix`` (literally), by source."""
        ...

    # The model command queue: console → defender(s), across processes.
    def add_model_command(self, command: ModelCommand) -> ModelCommand: ...
    def pending_model_commands(self, host: str | None = None) -> list[ModelCommand]:
        """In queue order. ``host`` None: those no defender applied yet (one host). With a
        host: those that host has not applied, queued at or after its enrolment (a host
        enrolled later does not replay older commands), whether others applied them or not;
        none for a host that is not enrolled."""
        ...

    def finish_model_commands(self, ids: Sequence[int], host: str | None = None) -> None:
        """Applied: by ``host`` (the command is then also done, from the first host's time),
        or (None) by the one defender. Ids unknown, or applied before, are ignored."""
        ...

    # Hosts of a console (garrison.fleet) and their enrolment tokens.
    def enrol_host(self, record: HostRecord) -> None:
        """Add the host, not revoked. A host enrolled again (a new certificate) takes the
        record's serial and enrolment time and is no longer revoked: its older certificate
        no longer matches. Its last_seen is kept."""
        ...

    def get_host(self, name: str) -> HostRecord | None: ...
    def list_hosts(self) -> list[HostRecord]:
        """By name."""
        ...

    def revoke_host(self, name: str, when: float) -> bool:
        """Revoked at ``when`` (a host revoked already keeps its first time); False when
        there is no such host."""
        ...

    def host_seen(self, name: str, when: float) -> None:
        """Heard from at ``when``: last_seen becomes the later of the two. Nothing for an
        unknown host."""
        ...

    def delete_host(self, name: str) -> bool:
        """The host and its model command acknowledgements; False when none."""
        ...

    def add_enrol_token(self, record: EnrolToken) -> None:
        """InvalidInput when a token of that id exists."""
        ...

    def get_enrol_token(self, token_id: str) -> EnrolToken | None: ...
    def mark_enrol_token_used(self, token_id: str, when: float) -> bool:
        """Spend one use of the token at ``when``: True for a caller that got one, False when
        it is unknown or all its uses are spent (atomic: of hosts presenting it at once, no
        more than its ``max_uses`` win)."""
        ...

    def list_enrol_tokens(self) -> list[EnrolToken]:
        """Newest first."""
        ...

    def add_new_host(self, record: HostRecord) -> bool:
        """Add the host when no host of that name is stored (revoked or not); False, and
        nothing written, when one is (atomic: of two enrolling one name at once, one wins)."""
        ...

    # The console's CA and the serials it revoked (garrison.fleet): in the store, so that
    # replicas of the console on one database sign and check alike.
    def get_console_ca(self) -> CARecord | None: ...
    def add_console_ca(self, record: CARecord) -> CARecord:
        """Store ``record`` when the store has no CA yet; the CA stored now, this one or the
        one that was there (atomic: of two replicas adding theirs at once, one wins)."""
        ...

    def add_revoked_serial(self, record: RevokedSerial) -> bool:
        """False when the serial was revoked already (its first record is kept)."""
        ...

    def is_serial_revoked(self, serial: str) -> bool: ...
    def list_revoked_serials(self) -> list[RevokedSerial]:
        """Oldest first."""
        ...

    def delete_enrol_token(self, token_id: str) -> bool: ...

    # Console users, their API tokens and page sessions (garrison.auth). A change that would
    # leave no enabled admin is refused (InvalidInput) in the transaction that makes it, so
    # two admins demoting each other at once cannot both succeed.
    def add_user(self, record: UserRecord) -> None:
        """InvalidInput when a user of that name exists (the store's own check: atomic)."""
        ...

    def get_user(self, name: str) -> UserRecord | None: ...
    def list_users(self) -> list[UserRecord]:
        """By name."""
        ...

    def update_user(
        self,
        name: str,
        *,
        role: str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
    ) -> bool:
        """Change what is given; False when there is no such user."""
        ...

    def delete_user(self, name: str) -> bool:
        """The user with its tokens and sessions, in one transaction; False when none."""
        ...

    def add_token(self, record: TokenRecord) -> None:
        """NotFound when its user does not exist; InvalidInput when its id does."""
        ...

    def get_token(self, token_id: str) -> TokenRecord | None: ...
    def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        """Those of ``user`` (None: everyone's), oldest first."""
        ...

    def delete_token(self, token_id: str) -> bool: ...
    def touch_token(self, token_id: str, when: float) -> None:
        """Record that the token was used at ``when``."""
        ...

    def add_session(self, record: SessionRecord) -> None:
        """NotFound when its user does not exist."""
        ...

    def get_session(self, key_hash: str) -> SessionRecord | None: ...
    def delete_session(self, key_hash: str) -> bool: ...
    def delete_sessions_of(self, user: str) -> int:
        """End every session of ``user``; how many there were."""
        ...

    def prune_sessions(self, now: float) -> int:
        """Delete the sessions expired at ``now``; how many."""
        ...

    # Scan reports (garrison.scan.report), by kind: "image" (an image's scan) or "container"
    # (a container's compliance). Which report a reference names: store/scans.py.
    def save_scan(self, report: ScanReport, keep: int = KEEP_SCANS) -> None:
        """Store the report, then delete its subject's beyond the newest ``keep``."""
        ...

    def latest_scans(self, kind: str = "image") -> list[Doc]:
        """The summary of each subject's newest report, the most recently scanned first."""
        ...

    def latest_scan(self, ref: str, kind: str = "image") -> Doc:
        """The whole newest report of the one subject ``ref`` names: its id, a name it was
        scanned under, or a prefix of 4 characters or more of its id. NotFound when none,
        InvalidInput when empty or a prefix of several ids."""
        ...


def dump_doc(doc: Mapping[str, Any], what: str) -> str:
    """A document as JSON text; InvalidInput (before any write) when it is not JSON."""
    if not isinstance(doc, Mapping):
        raise InvalidInput(f"{what}: expected a JSON object, got {type(doc).__name__}")
    try:
        return json.dumps(doc, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what}: not a JSON document ({exc})") from exc


def profile_of(doc: Mapping[str, Any]) -> str:
    profile_id = doc.get("profileId") if isinstance(doc, Mapping) else None
    if not isinstance(profile_id, str) or not profile_id:
        raise InvalidInput("model document without a profileId")
    return profile_id


def check_kind(kind: str, what: str = "policy kind") -> str:
    if not isinstance(kind, str) or not kind.strip():
        raise InvalidInput(f"{what} must be a non-empty name")
    return kind


def check_audit(audit: Audit) -> Audit:
    if not isinstance(audit, Audit):
        raise InvalidInput(f"not an audit: {type(audit).__name__}")
    if not math.isfinite(audit.time) or audit.count < 1:
        raise InvalidInput(f"audit {audit.attackType}: bad time or count")
    return audit


def check_command(command: ModelCommand) -> ModelCommand:
    if command.op == "extend" and not command.seconds > 0:
        raise InvalidInput("extend needs a positive number of seconds")
    if not command.profile_id:
        raise InvalidInput("a model command needs a profile id")
    return command


def audit_from_doc(doc: Mapping[str, Any], **override: Any) -> Audit:
    fields = {k: v for k, v in doc.items() if k in Audit.__dataclass_fields__}
    fields.update(override)
    return Audit(**fields)


def user_exists(name: str) -> InvalidInput:
    return InvalidInput(f"name: a user named {name[:64]!r} exists")


def last_admin(name: str) -> InvalidInput:
    return InvalidInput(
        f"name: {name[:64]!r} is the last enabled admin; make another user admin first"
    )
