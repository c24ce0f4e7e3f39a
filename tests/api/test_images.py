"""``/api/v1/images``: a scan made through the console is stored, and the API lists its
summary and answers its whole report, by a name with ``/`` and ``:`` in it or by id. The
image and the container come through the scanner's seams (ScanParts), with inspect documents
captured from dockerd on this machine (tests/scan/data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from garrison.scan.report import result_json
from garrison.scan.scanner import ContainerRef, ImageRef, Scanner, ScanParts
from garrison.scan.types import Finding, Inventory, OSInfo, Package, Severity
from tests.api.conftest import Api

DATA = Path(__file__).parents[1] / "scan" / "data"
NAME = "registry.local:5000/team/app:1"
DIGEST = "registry.local:5000/team/app@sha256:" + "d" * 64
OPENSSL = Package("Debian", "libssl3", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1")
ZLIB = Package("Debian", "zlib1g", "1:1.2.13.dfsg-1", "zlib")


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / name).read_text())
    return doc


def image(name: str) -> ImageRef:
    inspect = load("gate_image_bad_inspect.json")
    inspect["RepoDigests"] = ["other/app@sha256:" + "e" * 64, DIGEST]
    return ImageRef(str(inspect["Id"]), name, inspect, load("gate_image_bad_history.json"))


def container(_ref: str) -> ContainerRef:
    inspect = load("gate_container_priv_inspect.json")
    return ContainerRef(str(inspect["Id"]), "gate-priv", inspect, image(NAME))


def inventory(ref: ImageRef) -> Inventory:
    return Inventory(ref.id, ref.name, OSInfo("debian", "12.7"), (OPENSSL, ZLIB))


def match(_inventory: Inventory) -> list[Finding]:
    return [
        Finding("DSA-5001-1", ("CVE-2024-0001",), OPENSSL, OPENSSL.version,
                "3.0.13-1~deb12u1", Severity.CRITICAL, 9.8, "openssl: a flaw"),
        Finding("CVE-2023-45853", (), ZLIB, ZLIB.version, "", Severity.LOW, None, "zlib"),
    ]  # fmt: skip


def scanner() -> Scanner:
    return Scanner(ScanParts(image, inventory, match, container=container))


def test_a_scan_through_the_console_is_listed_and_answered_whole(api: Api) -> None:
    result = api.console.scan_image(scanner(), NAME)
    image_id = image(NAME).id
    reader = api.client("auditor")

    listed = reader.get("/api/v1/images")
    assert listed.status_code == 200, listed.text
    (summary,) = listed.json()
    assert summary["image"] == NAME
    assert summary["imageId"] == image_id
    assert summary["digest"] == DIGEST  # the digest of the repository scanned
    assert summary["packages"] == 2
    assert summary["vulnerabilityTotals"]["critical"] == 1
    assert summary["vulnerabilityTotals"]["total"] == 2
    assert summary["complianceTotals"]["total"] == len(result.compliance) > 0
    assert "vulnerabilities" not in summary

    whole = reader.get(f"/api/v1/images/{NAME}")
    assert whole.status_code == 200, whole.text
    report = whole.json()
    assert {k: report[k] for k in result_json(result, ())} == result_json(result, result.findings)
    assert report["scannedAt"] == summary["scannedAt"]
    assert reader.get(f"/api/v1/images/{image_id[7:19]}").json() == report


def test_an_image_never_scanned_is_404_and_a_container_check_is_not_an_image(api: Api) -> None:
    check = api.console.scan_container(scanner(), "gate-priv")
    assert "GCIS-5.4" in [i.check_id for i in check.issues]  # privileged
    assert api.console.container_report("gate-priv")["containerId"] == check.container_id

    answer = api.client("auditor").get("/api/v1/images/never/scanned:1")
    assert answer.status_code == 404
    assert answer.json()["error"].startswith("no scan report for 'never/scanned:1'")
    assert all(s["kind"] == "image" for s in api.client("auditor").get("/api/v1/images").json())
