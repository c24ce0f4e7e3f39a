"""``Console``: the core object the CLI (and later the REST API) translate to and from.

It owns the store. Model commands are not applied here: they are queued in the store, and the
defender holding the models applies them (``sync_models``) — the CLI is another process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.alerts.dispatch import Dispatcher
from garrison.alerts.health import STATUS_SOURCE
from garrison.alerts.profiles import Profiles
from garrison.audit import export
from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.audit.retention import PRUNE_INTERVAL, Retention
from garrison.auth import Accounts
from garrison.console import alerts, forensics, incidents, models, runtime_rules, scans
from garrison.console.inprocess import InProcessLink
from garrison.console.liveness import liveness
from garrison.console.pruner import AuditPruner
from garrison.console.spool import AuditSpool
from garrison.errors import InvalidInput
from garrison.forensics.bundle import Manifest
from garrison.forensics.library import Library
from garrison.incidents import Incident, IncidentFilter
from garrison.incidents.worker import CorrelatorThread
from garrison.model.clock import Clock, system_clock
from garrison.model.commands import ModelCommand, ModelOp
from garrison.policy import RuleSet, RuntimeRule
from garrison.runtime.base import ContainerRuntime
from garrison.scan.rules import KINDS, Policy, load_policies, save_policy
from garrison.scan.types import ContainerCheck, ScanResult
from garrison.store.base import (
    BlockedContainer,
    ChannelRecord,
    Delivery,
    Doc,
    HostRecord,
    RevokedSerial,
    Store,
    check_kind,
)
from garrison.store.datadir import secure_data_dir
from garrison.store.sqlite import SQLiteStore

if TYPE_CHECKING:  # the scanner brings the Docker SDK: only the scan commands import it
    from garrison.scan.gate import ContainerLookup, Gate
    from garrison.scan.gate.gate import PasswdLookup
    from garrison.scan.scanner import Progress, Scanner


class Console:
    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = system_clock,
        data_dir: Path | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.data_dir = data_dir  # where the defender's audit spool lives, with the store
        self.retention = retention or Retention()

    @classmethod
    def open(
        cls,
        data_dir: Path | str,
        *,
        clock: Clock = system_clock,
        retention: Retention | None = None,
        store_url: str | None = None,
    ) -> Console:
        """The console of the SQLite store in ``data_dir`` (created when missing), or of the
        PostgreSQL database at ``store_url`` (``postgresql://…``; ``data_dir`` then keeps only
        this host's files: the first admin's password, forensics bundles)."""
        store: Store
        if store_url:
            from garrison.store.postgres import PostgresStore  # noqa: PLC0415 (its driver)

            store = PostgresStore(store_url)
            secure_data_dir(Path(data_dir))  # made owner-only, as with SQLite in it
        else:
            store = SQLiteStore.in_dir(data_dir)
        return cls(store, clock=clock, data_dir=Path(data_dir), retention=retention)

    def link(self, *, flush_interval: float = 0.5, host: str = "") -> InProcessLink:
        """A link for a defender in this process, with the audit spool of the data directory
        (its audits survive the process's death); ``host``, the name its audits carry, is
        recorded among the hosts that saved each model. Close it before the console."""
        spool = AuditSpool.in_dir(self.data_dir) if self.data_dir is not None else None
        return InProcessLink(self.store, flush_interval=flush_interval, spool=spool, host=host)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def accounts(self) -> Accounts:
        """Users, roles, API tokens and page sessions (garrison.auth)."""
        return Accounts(self.store, self.clock)

    # -- alert channels and the outbox --------------------------------------------------------

    def add_channel(self, name: str, url: str) -> ChannelRecord:
        return alerts.add_channel(self.store, name, url, self.clock())

    def remove_channel(self, name: str) -> bool:
        return self.store.remove_channel(name)

    def list_channels(self) -> list[ChannelRecord]:
        return self.store.list_channels()

    def test_channel(self, name: str, hostname: str) -> None:
        alerts.test_channel(self.store, name, hostname)

    def list_deliveries(self, state: str = "", limit: int = 100) -> list[Delivery]:
        return self.store.list_deliveries(alerts.check_state(state), limit)

    def apply_alert_profiles(self, profiles: Profiles) -> None:
        alerts.apply_profiles(self.store, profiles)

    def alert_profiles(self) -> Profiles:
        """Those in force (none stored: every channel receives every audit)."""
        return alerts.stored_profiles(self.store)

    def dispatcher(self, hostname: str) -> Dispatcher:
        """The sender of the outbox (started by ``garrison run``; stop it before closing)."""
        return Dispatcher(self.store, hostname)

    # -- audits -----------------------------------------------------------------------------

    def list_audits(self, query: AuditFilter | None = None) -> list[Audit]:
        """Newest first (``--json``: ``[a.to_json() for a in ...]``)."""
        return self.store.list_audits(query)

    def export_audits(self, query: AuditFilter, fmt: str) -> Iterator[str]:
        """The audits ``query`` asks for as ``fmt`` ("jsonl" or "csv"), a line at a time,
        streamed from the store (InvalidInput for another format, before any)."""
        return export.chunks(fmt, self.store.iter_audits(query))

    def prune_audits(self, now: float, retention: Retention | None = None) -> int:
        """Apply ``retention`` (the console's when None); how many audits were deleted."""
        rules = retention or self.retention
        return self.store.prune_audits(rules.cutoff(now), rules.max_count)

    def audit_pruner(self, interval: float = PRUNE_INTERVAL) -> AuditPruner:
        """Retention on a thread, at start and every ``interval`` (started by ``garrison
        run``; stop it before closing)."""
        return AuditPruner(self.prune_audits, interval, clock=self.clock)

    # -- incidents (console/incidents.py) ------------------------------------------------------

    def list_incidents(self, query: IncidentFilter | None = None) -> list[Incident]:
        """The most recently active first."""
        return self.store.list_incidents(query or IncidentFilter())

    def show_incident(self, ref: str | int) -> tuple[Incident, list[Audit]]:
        return incidents.show(self.store, ref)

    def archive_incident(self, ref: str | int) -> Incident:
        """Archived: a new audit about the same thing opens a new incident."""
        return incidents.set_state(self.store, ref, "archived")

    def reopen_incident(self, ref: str | int) -> Incident:
        return incidents.set_state(self.store, ref, "open")

    def correlator(self) -> CorrelatorThread:
        """The correlator of audits into incidents (started by ``garrison run``)."""
        return CorrelatorThread(self.store)

    # -- models -----------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """Each model's summary, with how many hosts saved it (``hostCount``)."""
        counts = self.store.model_host_counts()
        return [models.summary(d, counts) for d in self.store.load_models()]

    def show_model(self, ref: str) -> Doc:
        """The whole document of the one model ``ref`` names, with the hosts that saved it
        (``hosts``: name, first and last save) (NotFound, InvalidInput)."""
        doc = models.find_one(self.store.load_models(), ref)
        hosts = self.store.model_hosts(str(doc["profileId"]))
        return {**doc, "hosts": [h.to_json() for h in hosts]}

    def relearn(self, ref: str) -> list[ModelCommand]:
        return self._queue("relearn", ref)

    def extend(self, ref: str, seconds: float) -> list[ModelCommand]:
        return self._queue("extend", ref, seconds)

    def learn_start(self, ref: str) -> list[ModelCommand]:
        return self._queue("learn-start", ref)

    def learn_stop(self, ref: str) -> list[ModelCommand]:
        return self._queue("learn-stop", ref)

    def pending_model_commands(self) -> list[ModelCommand]:
        return self.store.pending_model_commands()

    def _queue(self, op: ModelOp, ref: str, seconds: float = 0.0) -> list[ModelCommand]:
        """Queue the command for every model ``ref`` names (an image may have several: one
        per namespace); the defender applies it on its next sync (about a second)."""
        found = models.find(self.store.load_models(), ref)
        now = self.clock()
        return [
            self.store.add_model_command(ModelCommand(op, str(d["profileId"]), seconds, now))
            for d in found
        ]

    # -- scans (console/scans.py): each one's report stored -----------------------------------

    def scan_image(
        self, scanner: Scanner, image: str, progress: Progress | None = None
    ) -> ScanResult:
        """Scan ``image`` (a name or an id) and store its report, every severity in it."""
        return scans.scan_image(self.store, scanner, image, self.clock, progress)

    def scan_container(self, scanner: Scanner, ref: str) -> ContainerCheck:
        """Check a container's configuration and its image's; store the report."""
        return scans.scan_container(self.store, scanner, ref, self.clock)

    def gate(
        self,
        scanner: Scanner,
        *,
        containers: ContainerLookup | None = None,
        passwd: PasswdLookup | None = None,
        scan_timeout: float = 20.0,
    ) -> Gate:
        """The authorization gate (``garrison authz serve``) on this console: the stored
        vulnerability and compliance policies, its audits stored, the images it scans kept
        as their reports."""
        return scans.gate(self.store, scanner, self.clock, containers=containers, passwd=passwd,
                          scan_timeout=scan_timeout)  # fmt: skip

    def list_images(self) -> list[Doc]:
        """The newest report's summary per image, the most recently scanned first."""
        return self.store.latest_scans("image")

    def image_report(self, ref: str) -> Doc:
        """The newest report, whole, of the image ``ref`` names: a name it was scanned under,
        its id or a prefix of 4 characters or more (NotFound, InvalidInput)."""
        return self.store.latest_scan(ref, "image")

    def container_report(self, ref: str) -> Doc:
        """The newest compliance report of the container ``ref`` names (name, id, prefix)."""
        return self.store.latest_scan(ref, "container")

    # -- status, policies, blocked containers --------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The defender's last report, with model counts by state and queued commands, and
        the alert dispatcher's (``alerts``: each channel's health; None before any)."""
        states: dict[str, int] = {}
        for doc in self.store.load_models():
            state = str(doc.get("state"))
            states[state] = states.get(state, 0) + 1
        report = self.store.get_status()
        return {
            "defender": report,
            "liveness": liveness(report).to_json(),
            "models": states,
            "pendingModelCommands": len(self.store.pending_model_commands()),
            "blockedContainers": len(self.store.list_blocked()),
            "alerts": self.store.get_status(STATUS_SOURCE),
            "hosts": [_host_state(h, self.clock()) for h in self.store.list_hosts()],
        }

    def get_policy(self, kind: str) -> Doc | None:
        return self.store.get_policy(check_kind(kind))

    def set_policy(self, kind: str, doc: Mapping[str, Any]) -> None:
        self.store.set_policy(kind, doc)

    def gate_policy(self, kind: str) -> tuple[Policy, bool]:
        """The gate's ``kind`` policy in force ("vulnerability" or "compliance"), and whether
        it is the default (none stored)."""
        policy: Policy = getattr(load_policies(self.store), _gate_kind(kind))
        return policy, self.store.get_policy(kind) is None

    def apply_gate_policy(self, kind: str, data: str | Mapping[str, Any]) -> Policy:
        """Replace the gate's ``kind`` policy with ``data`` (YAML or JSON text, or a parsed
        document), checked whole first: InvalidInput names the first problem."""
        return save_policy(self.store, _gate_kind(kind), data)

    def list_blocked(self) -> list[BlockedContainer]:
        return self.store.list_blocked()

    def blocked_with_audits(self) -> list[tuple[BlockedContainer, Audit | None]]:
        """Blocked containers, each with the audit that blocked it."""
        return [(b, runtime_rules.blocking_audit(self.store, b)) for b in self.list_blocked()]

    # -- hosts (many hosts: garrison.fleet) ---------------------------------------------------

    def hosts(self) -> list[Doc]:
        """The hosts enrolled, each with its last status (``status``: None before any)."""
        return [
            {**h.to_json(), "status": self.store.get_status(f"defender:{h.name}")}
            for h in self.store.list_hosts()
        ]

    def revoke_host(self, name: str) -> bool:
        """Refuse the host from now on, and its certificate's serial for good (the CA's
        revoked list); False when there is no such host."""
        now = self.clock()
        record = self.store.get_host(name)
        if record is None or not self.store.revoke_host(name, now):
            return False
        self.store.add_revoked_serial(RevokedSerial(record.serial, name, now))
        return True

    def unblock(self, runtime: ContainerRuntime, ref: str) -> BlockedContainer:
        return runtime_rules.unblock(self.store, runtime, ref)

    # -- forensics --------------------------------------------------------------------------

    def bundles(self) -> Library:
        """The forensics bundles kept in the data directory (list, get, pin, remove)."""
        return forensics.library(self.data_dir)

    def journal(self, container_id: str) -> list[dict[str, Any]]:
        """What the defender journaled of the container (spawns, writes, sockets, audits),
        oldest first: the process tree of an audit's page."""
        return forensics.journal_entries(self.data_dir, container_id)

    def export_bundle(self, runtime: ContainerRuntime, ref: str, path: Path) -> Manifest:
        """Capture the container ``ref`` now, into a bundle at ``path``."""
        return forensics.export_bundle(self.store, self.data_dir, runtime, ref, path)

    # -- runtime rules ----------------------------------------------------------------------

    def runtime_rules(self) -> RuleSet:
        return runtime_rules.get_rules(self.store)

    def apply_runtime_rules(self, rules: RuleSet) -> None:
        """Replace the rules in force (a running defender takes them within a second)."""
        runtime_rules.set_rules(self.store, rules)

    def runtime_rule(self, name: str) -> RuntimeRule:
        return runtime_rules.find_rule(self.runtime_rules(), name)

    def delete_runtime_rule(self, name: str) -> RuleSet:
        return runtime_rules.delete_rule(self.store, name)


def _gate_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInput(f"policy kind must be {' or '.join(KINDS)}, not {kind[:20]!r}")
    return kind


SILENT_AFTER = 30.0  # seconds without a request from a host: it is silent (or gone)


def _host_state(host: HostRecord, now: float) -> Doc:
    """A host of the console (``garrison defender``) as ``status`` shows it."""
    if host.revoked is not None:
        state = "revoked"
    elif host.last_seen is not None and now - host.last_seen <= SILENT_AFTER:
        state = "reporting"
    else:
        state = "silent"
    return {"name": host.name, "state": state, "lastSeen": host.last_seen}
