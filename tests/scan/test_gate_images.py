"""The images the gate keeps resolved (garrison/scan/gate/images.py) and the vulnerability
decisions it remembers (verdicts.py): kept while nothing can have changed them, never after."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from garrison.audit.record import Audit
from garrison.scan.gate import Gate
from garrison.scan.gate.verdicts import VulnerabilityVerdicts
from garrison.scan.rules import parse_policy
from garrison.scan.scanner import ImageRef
from tests.scan.test_gate_decisions import ALERT_ALL, IMAGE, World, critical, message, raw

CREATE = raw("gate_authz_create_compliant.json")


class CountingWorld(World):
    def __init__(self) -> None:
        super().__init__()
        self.resolved = 0

    def resolve(self, name: str) -> ImageRef:
        self.resolved += 1
        return super().resolve(name)


def gate_of(world: World, audits: list[Audit] | None = None) -> Gate:
    sink = audits.append if audits is not None else (lambda _audit: None)
    return Gate(world.scanner(), lambda: ALERT_ALL, on_audit=sink, hostname="h")


def response(method: str, uri: str, body: Any = None) -> bytes:
    """An AuthZRes message as dockerd encodes it (request fields first, then the response)."""
    doc: dict[str, Any] = {"User": "", "RequestMethod": method, "RequestUri": uri}
    doc["ResponseBody"] = base64.b64encode(json.dumps(body or {}).encode()).decode()
    doc["ResponseStatusCode"] = 200
    return json.dumps(doc).encode()


def retag(world: World) -> None:
    """The name now points to another image (a `docker tag` made elsewhere)."""
    old = world.images[IMAGE]
    world.images[IMAGE] = ImageRef("sha256:other", IMAGE, old.inspect, [])


def image_ids(audits: list[Audit]) -> list[str]:
    return [a.imageId for a in audits if a.type == "vulnerability"]


def test_creates_of_one_image_resolve_it_once_while_no_image_changes() -> None:
    world = CountingWorld()
    gate = gate_of(world)
    for _ in range(3):
        assert gate.authorize(CREATE).allow
    assert world.resolved == 1


def test_a_tag_seen_passing_makes_the_next_create_judge_the_image_the_name_now_names() -> None:
    world, audits = World(), []
    gate = gate_of(world, audits)
    gate.authorize(CREATE)
    tag = message("POST", f"/v1.41/images/{IMAGE}/tag?repo=x")
    assert gate.authorize(tag).allow  # its AuthZReq: in flight until its AuthZRes
    retag(world)
    gate.authorize(CREATE)
    gate.response_seen(response("POST", f"/v1.41/images/{IMAGE}/tag?repo=x"))
    gate.authorize(CREATE)
    assert image_ids(audits) == ["sha256:busybox", "sha256:other", "sha256:other"]


def test_nothing_is_kept_while_an_image_call_is_in_flight() -> None:
    world = CountingWorld()
    gate = gate_of(world)
    gate.authorize(message("POST", "/v1.41/images/load"))
    for _ in range(2):
        gate.authorize(CREATE)
    assert world.resolved == 2
    gate.response_seen(response("POST", "/v1.41/images/load"))
    for _ in range(2):
        gate.authorize(CREATE)
    assert world.resolved == 3


def test_a_refused_image_call_is_not_left_in_flight() -> None:
    world = CountingWorld()
    gate = gate_of(world)
    assert not gate.authorize(message("POST", "/v1.41/plugins/pull")).allow  # unjudged: refused
    for _ in range(2):
        gate.authorize(CREATE)
    assert world.resolved == 1


def test_container_calls_and_reads_keep_what_was_resolved() -> None:
    world = CountingWorld()
    gate = gate_of(world)
    gate.authorize(CREATE)
    passing = [
        ("GET", f"/v1.41/images/{IMAGE}/json"),
        ("POST", "/containers/create"),
        ("DELETE", "/v1.41/containers/abc"),
        ("POST", "/containers/abc/kill"),
    ]
    for method, uri in passing:
        gate.response_seen(response(method, uri))
    gate.authorize(CREATE)
    assert world.resolved == 1


def test_an_unreadable_response_or_a_daemon_start_forgets_everything() -> None:
    world = CountingWorld()
    gate = gate_of(world)
    gate.authorize(CREATE)
    gate.response_seen(b"not json")
    gate.authorize(CREATE)
    gate.activated()
    gate.authorize(CREATE)
    assert world.resolved == 3


def test_a_daemon_start_ends_the_calls_it_had_in_flight() -> None:
    world = CountingWorld()
    gate = gate_of(world)
    gate.authorize(message("POST", "/v1.41/build"))  # no AuthZRes: the daemon died meanwhile
    gate.activated()
    for _ in range(2):
        gate.authorize(CREATE)
    assert world.resolved == 1


def test_a_remembered_vulnerability_decision_holds_for_its_rule_findings_and_day_only() -> None:
    today = [dt.date(2026, 12, 4)]
    verdicts = VulnerabilityVerdicts(today=lambda: today[0])
    expiring = {"id": "DSA-5001-1", "expires": "2026-12-04"}
    rules = [{"name": "b", "effect": "block", "exceptions": [expiring]}]
    rule = parse_policy("vulnerability", rules).rules[0]
    findings = (critical(),)
    assert verdicts.decide(rule, findings).effect == "allow"  # the exception holds today
    assert verdicts.decide(rule, findings) is verdicts.decide(rule, findings)
    today[0] = dt.date(2026, 12, 5)
    assert verdicts.decide(rule, findings).effect == "block"  # expired the next day
    other = parse_policy("vulnerability", [{"name": "a", "effect": "alert"}]).rules[0]
    assert verdicts.decide(other, findings).effect == "alert"
    assert verdicts.decide(rule, (*findings, critical("DSA-5002-1"))).counts == {"critical": 2}
