"""The gate's decisions on real AuthZReq messages captured from dockerd 20.10 on this machine
(tests/scan/data/gate_authz_*.json), with images and findings supplied through the
scanner's seams (ScanParts)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from garrison.audit.record import Audit
from garrison.errors import NotFound, ScanError
from garrison.scan.gate import ContainerFacts, Gate, parse_authz
from garrison.scan.rules import Policies, parse_policy
from garrison.scan.scanner import ImageRef, Scanner, ScanParts, empty_inventory
from garrison.scan.types import Finding, Inventory, Package, Severity

DATA = Path(__file__).parent / "data"
IMAGE = "garrison-test/busybox:latest"


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def message(method: str, uri: str, body: Any = None) -> bytes:
    doc: dict[str, Any] = {"RequestMethod": method, "RequestUri": uri, "RequestHeaders": {}}
    if body is not None:
        doc["RequestBody"] = base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps(doc).encode()


def critical(fid: str = "DSA-5001-1") -> Finding:
    pkg = Package("Debian", "libssl3", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1")
    return Finding(
        fid, ("CVE-2024-0001",), pkg, pkg.version, "3.0.13-1~deb12u1", Severity.CRITICAL, 9.8
    )


class World:
    """Images the 'daemon' has and the findings the 'database' reports, for the seams."""

    def __init__(self) -> None:
        inspect = json.loads((DATA / "gate_image_good_inspect.json").read_text())
        self.images = {IMAGE: ImageRef("sha256:busybox", IMAGE, inspect, [])}
        self.findings: list[Finding] = []
        self.scans = 0
        self.fail: Exception | None = None

    def resolve(self, name: str) -> ImageRef:
        if name not in self.images:
            raise NotFound(f"image {name} not found")
        return self.images[name]

    def match(self, _inventory: Inventory) -> list[Finding]:
        self.scans += 1
        if self.fail:
            raise self.fail
        return list(self.findings)

    def scanner(self) -> Scanner:
        return Scanner(ScanParts(self.resolve, empty_inventory, self.match))


def policies(vuln: list[dict[str, Any]], comp: list[dict[str, Any]]) -> Policies:
    v, c = parse_policy("vulnerability", vuln), parse_policy("compliance", comp)
    return Policies(v, c)  # type: ignore[arg-type]


BLOCK_ALL = policies(
    [{"name": "block critical", "effect": "block"}],
    [{"name": "no privileged", "checks": {"5.4": "block", "5.22": "block"}}],
)
ALERT_ALL = policies(
    [{"name": "alert", "effect": "alert"}], [{"name": "c", "default_effect": "alert"}]
)


@pytest.fixture
def world() -> World:
    return World()


def make_gate(world: World, pol: Policies, audits: list[Audit], **kw: Any) -> Gate:
    return Gate(world.scanner(), lambda: pol, on_audit=audits.append, hostname="h", **kw)


def test_privileged_create_is_refused_naming_the_check(world: World) -> None:
    audits: list[Audit] = []
    reply = make_gate(world, BLOCK_ALL, audits).authorize(raw("gate_authz_create_privileged.json"))
    assert not reply.allow
    assert reply.msg == (
        "[Garrison] Container operation blocked by policy: no privileged, violates 1 compliance "
        "check: GCIS-5.4 Privileged container"
    )
    assert reply.to_json() == {"Allow": False, "Msg": reply.msg, "Err": ""}
    assert sorted((a.type, a.effect) for a in audits) == [
        ("compliance", "block"),
        ("vulnerability", "allow"),
    ]


def test_compliant_create_is_allowed_and_audited(world: World) -> None:
    audits: list[Audit] = []
    reply = make_gate(world, BLOCK_ALL, audits).authorize(raw("gate_authz_create_compliant.json"))
    assert reply.allow
    assert {a.effect for a in audits} == {"allow"}
    assert {a.imageId for a in audits} == {"sha256:busybox"}


def test_critical_finding_blocks_under_block_rule_and_alerts_under_alert_rule(world: World) -> None:
    world.findings = [critical()]
    body = raw("gate_authz_create_compliant.json")
    audits: list[Audit] = []
    blocked = make_gate(world, BLOCK_ALL, audits).authorize(body)
    assert blocked.msg == (
        "[Garrison] Container operation blocked by policy: block critical, has 1 vulnerability, "
        "[critical:1]"
    )
    alerted = make_gate(world, ALERT_ALL, audits).authorize(body)
    assert alerted.allow
    vuln_audits = [a for a in audits if a.type == "vulnerability"]
    assert [a.effect for a in vuln_audits] == ["block", "alert"]
    assert vuln_audits[1].ruleName == "alert"
    assert vuln_audits[1].imageName == IMAGE


def test_a_cached_scan_is_reused_for_the_same_image_id(world: World) -> None:
    gate = make_gate(world, BLOCK_ALL, [])
    for _ in range(3):
        gate.authorize(raw("gate_authz_create_compliant.json"))
    assert world.scans == 1


def test_create_with_its_body_withheld_by_dockerd_is_refused_with_the_reason(world: World) -> None:
    reply = make_gate(world, ALERT_ALL, []).authorize(raw("gate_authz_create_chunked_large.json"))
    assert not reply.allow
    assert "without its body" in reply.msg
    assert "CVE-2024-41110" in reply.msg


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[1,2]", b'{"RequestMethod": "POST", "RequestUri": 5}',
     b'{"RequestMethod": "POST", "RequestUri": "/containers/create", "RequestBody": "%%%"}'],
)  # fmt: skip
def test_unreadable_requests_are_refused_never_allowed(world: World, payload: bytes) -> None:
    reply = make_gate(world, ALERT_ALL, []).authorize(payload)
    assert not reply.allow
    assert reply.msg.startswith("[Garrison] Container operation blocked: ")


def test_create_body_that_is_not_json_is_refused(world: World) -> None:
    payload = json.dumps(
        {"RequestMethod": "POST", "RequestUri": "/v1.41/containers/create",
         "RequestBody": base64.b64encode(b"{oops").decode()}
    ).encode()  # fmt: skip
    reply = make_gate(world, ALERT_ALL, []).authorize(payload)
    assert reply.msg.endswith("the /containers/create request body is not JSON")


def test_read_only_and_unpoliced_calls_pass(world: World) -> None:
    gate = make_gate(world, BLOCK_ALL, [])
    assert gate.authorize(message("GET", "/v1.41/images/json")).allow
    assert gate.authorize(message("POST", "/v1.41/images/create?fromImage=x")).allow
    assert gate.authorize(message("DELETE", "/v1.41/containers/abc")).allow


def test_missing_image_is_left_to_dockerd_unless_compliance_blocks(world: World) -> None:
    gate = make_gate(world, BLOCK_ALL, [])
    assert gate.authorize(message("POST", "/containers/create", {"Image": "absent:1"})).allow
    privileged = {"Image": "absent:1", "HostConfig": {"Privileged": True}}
    assert not gate.authorize(message("POST", "/containers/create", privileged)).allow


def test_scan_failure_blocks_only_under_a_block_rule(world: World) -> None:
    world.fail = ScanError("layer 3 is corrupt")
    body = raw("gate_authz_create_compliant.json")
    audits: list[Audit] = []
    refused = make_gate(world, BLOCK_ALL, audits).authorize(body)
    assert refused.msg == (
        "[Garrison] Container operation blocked by policy: block critical, the image could not "
        "be scanned: layer 3 is corrupt"
    )
    assert make_gate(world, ALERT_ALL, audits).authorize(body).allow
    assert audits[-2].effect == "alert"


def test_start_of_a_blocked_container_is_refused(world: World) -> None:
    facts = ContainerFacts("ef0eb231d5bf" + "0" * 52, "web", IMAGE, "sha256:busybox")
    audits: list[Audit] = []
    gate = make_gate(
        world,
        ALERT_ALL,
        audits,
        is_blocked=lambda cid: cid == facts.id,
        containers=lambda _r: facts,
    )
    reply = gate.authorize(raw("gate_authz_start.json"))
    assert reply.msg == (
        "[Garrison] Container operation blocked: container web is blocked by a runtime rule"
    )
    assert (audits[0].containerId, audits[0].effect) == (facts.id, "block")
    free = make_gate(world, ALERT_ALL, [], is_blocked=lambda _cid: False)
    assert free.authorize(raw("gate_authz_start.json")).allow


def test_privileged_exec_is_judged_by_the_compliance_rules(world: World) -> None:
    facts = ContainerFacts("c" * 64, "web", IMAGE)
    audits: list[Audit] = []
    gate = make_gate(world, BLOCK_ALL, audits, containers=lambda _r: facts)
    reply = gate.authorize(raw("gate_authz_exec_privileged.json"))
    assert "GCIS-5.22 Privileged exec" in reply.msg
    assert (audits[0].command, audits[0].attackType) == ("id", "privilegedExec")


def test_a_failing_audit_sink_does_not_change_the_decision(world: World) -> None:
    def broken(_audit: Audit) -> None:
        raise OSError("disk full")

    gate = Gate(world.scanner(), lambda: BLOCK_ALL, on_audit=broken)
    assert gate.authorize(raw("gate_authz_create_compliant.json")).allow


def test_request_uri_is_parsed_without_version_and_with_query() -> None:
    req = parse_authz(message("POST", "/v1.41/containers/create?name=web&platform="))
    assert (req.path, req.query) == ("/containers/create", {"name": "web", "platform": ""})
    start = parse_authz(raw("gate_authz_start.json"))
    assert start.container_ref.startswith("ef0eb231d5bf")
