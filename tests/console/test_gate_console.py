"""The gate made by the console (``garrison authz serve``) works on the console's store: the
policies stored there decide, its audits land there, and each image it scans is kept as that
image's report, which the API and the pages read."""

from __future__ import annotations

from pathlib import Path

from garrison.console import Console
from garrison.scan.rules import save_policy
from tests.scan.test_gate_decisions import World, critical, raw
from tests.support import wait_for


def test_the_consoles_gate_decides_by_the_stored_policy_and_keeps_its_scan(
    tmp_path: Path,
) -> None:
    world = World()
    world.findings = [critical()]
    with Console.open(tmp_path / "data") as console:
        save_policy(console.store, "vulnerability", [{"name": "no critical", "effect": "block"}])
        gate = console.gate(world.scanner())
        reply = gate.authorize(raw("gate_authz_create_compliant.json"))
        assert not reply.allow
        assert "no critical" in reply.msg
        stored = console.list_audits()
        assert ("vulnerability", "block") in {(a.type, a.effect) for a in stored}
        reports = wait_for("the gate's scan kept", console.list_images)
        assert [(r["imageId"], r["vulnerabilityTotals"]["critical"]) for r in reports] == [
            ("sha256:busybox", 1)
        ]
        assert console.image_report("sha256:busybox")["vulnerabilities"][0]["id"] == "DSA-5001-1"
        gate.scans.close()
