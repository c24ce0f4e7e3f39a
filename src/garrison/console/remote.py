"""``RemoteConsole``: a console reached through its REST API, for the CLI.

It answers as ``Console`` does, with the same objects rebuilt from the API's JSON (each
record's ``from_json`` undoes its ``to_json``), so that a command prints the same, ``--json``
byte for byte, whether ``GARRISON_CONSOLE_URL`` is set or not. What the API does not offer
(pruning, alert channels' changes, exporting a live container's bundle) raises ConsoleError
saying so, before anything is sent.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

from garrison.alerts.profiles import Profiles, profiles_from_doc
from garrison.audit import export
from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.audit.retention import Retention
from garrison.console import runtime_rules
from garrison.console.alerts import check_state
from garrison.console.incidents import incident_id
from garrison.console.remote_client import URL_VAR, ApiClient, RemoteSettings
from garrison.errors import ConsoleError, InvalidInput
from garrison.forensics.bundle import Manifest
from garrison.forensics.library import BundleInfo
from garrison.incidents import Incident, IncidentFilter
from garrison.model.commands import ModelCommand, ModelOp
from garrison.policy import RuleSet, RuntimeRule
from garrison.policy.stored import rules_from_doc, rules_to_doc
from garrison.runtime.base import ContainerRuntime
from garrison.scan.rules import (
    Policy,
    default_compliance_policy,
    default_vulnerability_policy,
    parse_policy,
)
from garrison.store.base import BlockedContainer, ChannelRecord, Delivery, Doc

API = "/api/v1"
RULES = f"{API}/policies/runtime/container"
GATE = {"vulnerability": f"{API}/policies/vulnerability/images",
        "compliance": f"{API}/policies/compliance/container"}  # fmt: skip
DEFAULT_GATE = {"vulnerability": default_vulnerability_policy,
                "compliance": default_compliance_policy}  # fmt: skip


class RemoteConsole:
    """The console at ``settings.url``; close it (or use ``with``) when done."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.api = ApiClient(settings)

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> RemoteConsole:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def status(self) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get(f"{API}/status")
        return found

    # -- audits -----------------------------------------------------------------------------

    def list_audits(self, query: AuditFilter | None = None) -> list[Audit]:
        found = self.api.get(f"{API}/audits/runtime/container", _audit_params(query))
        return self.api.each(Audit.from_json, found)

    def export_audits(self, query: AuditFilter, fmt: str) -> Iterator[str]:
        """As ``Console.export_audits``: a CSV record whose cell holds a line end is still
        one item (``audits export`` counts items)."""
        params = {**_audit_params(query), "format": export.check_format(fmt)}
        lines = self.api.lines(f"{API}/audits/runtime/container/download", params)
        return _csv_records(lines) if fmt == "csv" else lines

    def prune_audits(self, now: float, retention: Retention | None = None) -> int:
        _local_only("audits prune")

    # -- alert channels, profiles and the outbox ------------------------------------------------

    def add_channel(self, name: str, url: str) -> ChannelRecord:
        _local_only("alerts channels add")

    def remove_channel(self, name: str) -> bool:
        _local_only("alerts channels remove")

    def test_channel(self, name: str, hostname: str) -> None:
        _local_only("alerts channels test")

    def list_channels(self) -> list[ChannelRecord]:
        """Their URLs as the API gives them: with secrets redacted."""
        found = self.api.get(f"{API}/alerts/channels")
        return self.api.each(lambda c: ChannelRecord(str(c["name"]), str(c["url"]),
                                                  float(c["created"])), found)  # fmt: skip

    def list_deliveries(self, state: str = "", limit: int = 100) -> list[Delivery]:
        params = {"state": check_state(state), "limit": limit}
        return self.api.each(Delivery.from_json, self.api.get(f"{API}/alerts/outbox", params))

    def apply_alert_profiles(self, profiles: Profiles) -> None:
        self.api.put(f"{API}/alerts/profiles", profiles.model_dump(mode="json"))

    def alert_profiles(self) -> Profiles:
        return self.api.read(profiles_from_doc, self.api.get(f"{API}/alerts/profiles"))

    # -- incidents ------------------------------------------------------------------------------

    def list_incidents(self, query: IncidentFilter | None = None) -> list[Incident]:
        q = query or IncidentFilter()
        params = _present(state=q.state, container=q.container, kind=q.kind, limit=q.limit)
        return self.api.each(Incident.from_json, self.api.get(f"{API}/incidents", params))

    def show_incident(self, ref: str | int) -> tuple[Incident, list[Audit]]:
        found = self.api.get(f"{API}/incidents/{incident_id(ref)}")
        story = self.api.each(Audit.from_json, self.api.read(lambda d: d.get("story", []), found))
        return self.api.read(Incident.from_json, found), story

    def archive_incident(self, ref: str | int) -> Incident:
        found = self.api.post(f"{API}/incidents/{incident_id(ref)}/archive")
        return self.api.read(Incident.from_json, found)

    def reopen_incident(self, ref: str | int) -> Incident:
        found = self.api.post(f"{API}/incidents/{incident_id(ref)}/reopen")
        return self.api.read(Incident.from_json, found)

    # -- models ---------------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api.get(f"{API}/profiles/container")
        return found

    def show_model(self, ref: str) -> Doc:
        found: Doc = self.api.get(_model_path(ref))
        return found

    def relearn(self, ref: str) -> list[ModelCommand]:
        return self._queue("relearn", ref)

    def extend(self, ref: str, seconds: float) -> list[ModelCommand]:
        return self._queue("extend", ref, {"seconds": seconds})

    def learn_start(self, ref: str) -> list[ModelCommand]:
        return self._queue("learn-start", ref)

    def learn_stop(self, ref: str) -> list[ModelCommand]:
        return self._queue("learn-stop", ref)

    def _queue(self, op: ModelOp, ref: str, body: Any = None) -> list[ModelCommand]:
        found = self.api.post(f"{_model_path(ref)}/{op}", body)
        return self.api.each(ModelCommand.from_json, found)

    # -- the gate's policies, blocked containers, forensics ------------------------------------

    def gate_policy(self, kind: str) -> tuple[Policy, bool]:
        """The API gives the policy in force, not whether one is stored: a policy equal to
        the default is told as the default."""
        policy = self.api.read(lambda doc: parse_policy(kind, doc), self.api.get(_gate(kind)))
        return policy, policy == DEFAULT_GATE[kind]()

    def apply_gate_policy(self, kind: str, data: str | Mapping[str, Any]) -> Policy:
        policy = parse_policy(kind, data)  # refused here, with the local command's message
        found = self.api.put(_gate(kind), json.loads(policy.model_dump_json()))
        return self.api.read(lambda doc: parse_policy(kind, doc), found)

    def blocked_with_audits(self) -> list[tuple[BlockedContainer, Audit | None]]:
        return self.api.each(_blocked_row, self.api.get(f"{API}/containers/blocked"))

    def unblock(self, runtime: ContainerRuntime, ref: str) -> BlockedContainer:
        """Through the console's own runtime: ``runtime`` (this host's) is not used."""
        blank = "name a blocked container: an id prefix or a name"
        found = self.api.post(f"{API}/containers/{_segment(ref, blank)}/unblock")
        return self.api.read(BlockedContainer.from_json, found)

    def bundles(self) -> RemoteBundles:
        return RemoteBundles(self.api)

    def export_bundle(self, runtime: ContainerRuntime, ref: str, path: Path) -> Manifest:
        _local_only("forensics export")

    # -- runtime rules --------------------------------------------------------------------------

    def runtime_rules(self) -> RuleSet:
        return self.api.read(rules_from_doc, self.api.get(RULES))

    def apply_runtime_rules(self, rules: RuleSet) -> None:
        self.api.put(RULES, rules_to_doc(rules))

    def runtime_rule(self, name: str) -> RuntimeRule:
        return runtime_rules.find_rule(self.runtime_rules(), name)

    def delete_runtime_rule(self, name: str) -> RuleSet:
        """Read, drop the rule, write the rest back: a change made by someone else between
        the two is overwritten (the API has no delete of one rule)."""
        rules = self.runtime_rules()
        runtime_rules.find_rule(rules, name)
        kept = RuleSet(rules=[r for r in rules.rules if r.name != name])
        self.apply_runtime_rules(kept)
        return kept


class RemoteBundles:
    """A remote console's forensics bundles (``BundleShelf``); their ``path`` is on its host."""

    PATH = f"{API}/forensics/bundles"
    BLANK = "name a bundle: an id, an id prefix or a container"

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def list(self) -> builtins.list[BundleInfo]:
        return self.api.each(BundleInfo.from_json, self.api.get(self.PATH))

    def get(self, ref: str) -> BundleInfo:
        found = self.api.get(f"{self.PATH}/{_segment(ref, self.BLANK)}")
        return self.api.read(BundleInfo.from_json, found)

    def pin(self, bundle_id: str, pinned: bool) -> BundleInfo:
        action = "pin" if pinned else "unpin"
        found = self.api.post(f"{self.PATH}/{_segment(bundle_id, self.BLANK)}/{action}")
        return self.api.read(BundleInfo.from_json, found)


def _local_only(command: str) -> NoReturn:
    raise ConsoleError(
        f"`garrison {command}` is not available through a remote console ({URL_VAR} is set): "
        f"run it on the console's host, or unset {URL_VAR} to use the local store"
    )


def _segment(ref: str, blank: str) -> str:
    """``ref`` as one path segment: every ``/`` and ``.`` escaped too, so that a name can
    neither reach another path nor be collapsed as ``..``."""
    if not ref.strip():
        raise InvalidInput(blank)
    return quote(ref, safe="").replace(".", "%2E")


def _model_path(ref: str) -> str:
    blank = "name a model: an image name, an image id or a profile id"
    return f"{API}/profiles/container/{_segment(ref, blank)}"


def _gate(kind: str) -> str:
    if kind not in GATE:
        raise InvalidInput(f"policy kind must be {' or '.join(GATE)}, not {kind[:20]!r}")
    return GATE[kind]


def _present(**params: Any) -> dict[str, Any]:
    """The query parameters that say something ("" is the API's default)."""
    return {k: v for k, v in params.items() if v is not None and v != ""}


def _audit_params(query: AuditFilter | None) -> dict[str, Any]:
    q = query or AuditFilter()
    return _present(
        container=q.container, image=q.image, type=q.type, effect=q.effect, search=q.search,
        rule=q.rule, host=q.host, attackType=q.attack_type, since=q.since, until=q.until,
        limit=q.limit, offset=q.offset,
    )  # fmt: skip


def _blocked_row(doc: Mapping[str, Any]) -> tuple[BlockedContainer, Audit | None]:
    audit = doc.get("audit")
    return BlockedContainer.from_json(doc), Audit.from_json(audit) if audit else None


def _csv_records(lines: Iterator[str]) -> Iterator[str]:
    """Lines joined back into CSV records: a quoted cell may hold line ends, and a record
    is whole once its quotes are even (a quote inside a cell is doubled)."""
    record = ""
    for line in lines:
        record += line
        if record.count('"') % 2 == 0:
            yield record
            record = ""
    if record:
        yield record
