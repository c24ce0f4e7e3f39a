"""Scan reports in the store, on the real SQLite file and on the in-memory fake alike: the
newest report per image listed as a summary, one image's newest report found by a name it
was scanned under, its id or a prefix of it (an ambiguous prefix refused, an unknown one not
found), the newest five kept per image, container checks apart from image scans; and a
store made before the table gets it when it is opened."""

from __future__ import annotations

import pytest

from garrison.errors import InvalidInput, NotFound
from garrison.scan.report import ScanReport, container_report, image_report
from garrison.scan.types import (
    ComplianceIssue,
    ContainerCheck,
    Finding,
    Inventory,
    OSInfo,
    Package,
    ScanResult,
    Severity,
)

OPENSSL = Package("Debian", "libssl3", "3.0.11-1", "openssl", "3.0.11-1")
ROOT = ComplianceIssue("GCIS-4.1", "4.1", "Image runs as root", Severity.HIGH, "USER", "image")
NGINX_ID = "sha256:" + "a1" * 32
REDIS_ID = "sha256:a1a1" + "c3" * 30  # starts as NGINX_ID does
BUSYBOX_ID = "sha256:" + "b7" * 32


def finding(fid: str, severity: Severity) -> Finding:
    return Finding(fid, (), OPENSSL, OPENSSL.version, "3.0.13-1", severity, None, "s")


def report(name: str, image_id: str, time: float, *severities: Severity) -> ScanReport:
    findings = tuple(finding(f"CVE-2024-{i}", s) for i, s in enumerate(severities))
    inventory = Inventory(image_id, name, OSInfo("debian", "12.7"), (OPENSSL,))
    result = ScanResult(inventory, findings, (ROOT,), ())
    repository = name.partition(":")[0]
    return image_report(result, image_id, f"{repository}@sha256:{'d' * 64}", time)


def totals(**counts: int) -> dict[str, int]:
    severities = ("critical", "high", "medium", "low", "unknown")
    return {**{s: counts.get(s, 0) for s in severities}, "total": sum(counts.values())}


def test_the_newest_report_of_each_image_is_listed_as_a_summary_newest_first(store) -> None:
    store.save_scan(report("nginx:1.25", NGINX_ID, 100.0, Severity.LOW))
    store.save_scan(report("redis:7", REDIS_ID, 200.0))
    store.save_scan(report("nginx:1.25", NGINX_ID, 300.0, Severity.CRITICAL, Severity.HIGH))

    listed = store.latest_scans()

    assert [(s["image"], s["scannedAt"]) for s in listed] == [
        ("nginx:1.25", 300.0),
        ("redis:7", 200.0),
    ]
    assert listed[0] == {
        "kind": "image",
        "image": "nginx:1.25",
        "imageId": NGINX_ID,
        "digest": f"nginx@sha256:{'d' * 64}",
        "scannedAt": 300.0,
        "os": {"family": "debian", "version": "12.7"},
        "packages": 1,
        "vulnerabilityTotals": totals(critical=1, high=1),
        "complianceTotals": totals(high=1),
    }


def test_an_image_report_is_found_whole_by_name_id_or_prefix(store) -> None:
    saved = report("nginx", NGINX_ID, 100.0, Severity.MEDIUM)
    store.save_scan(saved)
    store.save_scan(report("redis:7", REDIS_ID, 200.0))

    for ref in ("nginx", "nginx:latest", "docker.io/library/nginx", NGINX_ID,
                NGINX_ID.removeprefix("sha256:"), "a1a1a", "sha256:a1a1a1"):  # fmt: skip
        assert store.latest_scan(ref) == saved.doc, ref
    assert [v["id"] for v in store.latest_scan("nginx")["vulnerabilities"]] == ["CVE-2024-0"]


def test_a_prefix_of_two_image_ids_is_refused_and_one_naming_none_is_not_found(store) -> None:
    store.save_scan(report("nginx", NGINX_ID, 100.0))
    store.save_scan(report("redis", REDIS_ID, 200.0))

    with pytest.raises(InvalidInput, match=r"'a1a1' is the start of 2 image ids \(a1a1a1"):
        store.latest_scan("a1a1")
    with pytest.raises(InvalidInput, match=r"'sha256:a1a1' is the start of 2 image ids"):
        store.latest_scan("sha256:a1a1")
    with pytest.raises(NotFound, match=r"no scan report for 'postgres'"):
        store.latest_scan("postgres")
    with pytest.raises(NotFound):
        store.latest_scan("a1a")  # under 4 characters: not a prefix
    with pytest.raises(InvalidInput, match="name the image"):
        store.latest_scan(" ")


def test_a_name_means_the_image_scanned_last_under_it(store) -> None:
    store.save_scan(report("app:latest", NGINX_ID, 100.0))
    store.save_scan(report("app:latest", REDIS_ID, 200.0))  # pulled again: another image
    store.save_scan(report("app:old", NGINX_ID, 300.0))

    assert store.latest_scan("app")["imageId"] == REDIS_ID
    assert store.latest_scan("app:old")["imageId"] == NGINX_ID
    assert [s["imageId"] for s in store.latest_scans()] == [NGINX_ID, REDIS_ID]


def test_only_the_newest_five_reports_of_an_image_are_kept(store) -> None:
    for n in range(1, 8):
        store.save_scan(report(f"app:{n}", NGINX_ID, float(n)))
    store.save_scan(report("other:1", REDIS_ID, 0.5))

    with pytest.raises(NotFound):
        store.latest_scan("app:2")  # made under names only the two oldest reports had
    assert store.latest_scan("app:3")["image"] == "app:7"  # the image's newest
    assert store.latest_scan("other:1")["imageId"] == REDIS_ID  # another image's are its own
    assert len(store.latest_scans()) == 2


def test_container_checks_are_kept_apart_from_image_scans(store) -> None:
    check = ContainerCheck("c0ffee" * 10 + "abcd", "web", "nginx", NGINX_ID, "", (ROOT,))
    store.save_scan(container_report(check, 50.0))
    store.save_scan(report("nginx", NGINX_ID, 40.0))

    assert [s["kind"] for s in store.latest_scans()] == ["image"]
    assert [s["containerName"] for s in store.latest_scans("container")] == ["web"]
    found = store.latest_scan("web", "container")
    assert found == store.latest_scan("/web", "container") == store.latest_scan("c0ff", "container")
    assert [i["id"] for i in found["compliance"]] == ["GCIS-4.1"]
    with pytest.raises(NotFound, match="garrison scan container stores one"):
        store.latest_scan("nginx", "container")
    with pytest.raises(InvalidInput, match="scan kind must be image or container"):
        store.latest_scans("images")


def test_a_report_that_is_not_json_is_refused_and_nothing_is_stored(store) -> None:
    bad = report("nginx", NGINX_ID, 100.0)
    bad.doc["cvss"] = float("nan")
    with pytest.raises(InvalidInput, match="not a JSON document"):
        store.save_scan(bad)
    with pytest.raises(InvalidInput, match="bad time"):
        store.save_scan(report("nginx", NGINX_ID, float("inf")))
    with pytest.raises(InvalidInput, match="no image or container id"):
        store.save_scan(report("nginx", "", 1.0))
    assert store.latest_scans() == []
