"""Matching installed packages against OSV records: the Debian fixture on the real package
list of garrison-test/debian:12, and the OSV evaluation rules per ecosystem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from garrison.scan.types import Finding, OSInfo, Package, Severity
from garrison.scan.vulndb import VulnDB, affects

DATA = Path(__file__).parent / "data"
BOOKWORM = OSInfo("debian", "12.15", "Debian GNU/Linux 12 (bookworm)")
ALPINE = OSInfo("alpine", "3.19.1")


def debian12_packages() -> list[Package]:
    """The image's packages, captured with dpkg-query (Package Version source source-version)."""
    packages = []
    for line in (DATA / "osv_debian12_dpkg_query.txt").read_text().splitlines():
        name, version, source, source_version = line.split()
        packages.append(Package("Debian", name, version, source, source_version))
    return packages


@pytest.fixture
def fixture_db(tmp_path: Path) -> VulnDB:
    db = VulnDB(tmp_path / "vulndb.sqlite")
    db.import_path(DATA / "osv_debian12")
    return db


def by_package(findings: list[Finding]) -> dict[tuple[str, str], Finding]:
    return {(f.id, f.package.name): f for f in findings}


def record(rid: str, *affected: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": rid, "modified": "2024-05-01T00:00:00Z", "affected": list(affected), **extra}


def entry(ecosystem: str, name: str, *events: dict[str, str], **extra: Any) -> dict[str, Any]:
    rng = {"type": extra.pop("range_type", "ECOSYSTEM"), "events": list(events)}
    return {"package": {"ecosystem": ecosystem, "name": name}, "ranges": [rng], **extra}


def db_of(tmp_path: Path, *records: dict[str, Any]) -> VulnDB:
    folder = tmp_path / "records"
    folder.mkdir()
    for rec in records:
        (folder / f"{rec['id']}.json").write_text(json.dumps(rec))
    db = VulnDB(tmp_path / "vulndb.sqlite")
    db.import_path(folder)
    return db


def test_image_package_below_fixed_version_is_reported_with_that_fix(fixture_db: VulnDB) -> None:
    found = by_package(fixture_db.match(debian12_packages(), BOOKWORM))
    libc = found["DEBIAN-CVE-2099-0001", "libc6"]
    assert (libc.installed_version, libc.fixed_version) == ("2.36-9+deb12u14", "2.36-9+deb12u15")
    assert ("DEBIAN-CVE-2099-0001", "libc-bin") in found  # both binaries of source glibc
    assert libc.severity is Severity.CRITICAL
    assert libc.cvss_score == 9.8
    assert libc.aliases == ("CVE-2099-0001",)
    assert libc.fix_date == "2099-01-10"


def test_image_package_at_or_above_fixed_version_is_not_reported(fixture_db: VulnDB) -> None:
    ids = {f.id for f in fixture_db.match(debian12_packages(), BOOKWORM)}
    assert "DEBIAN-CVE-2099-0002" not in ids  # fixed == installed openssl 3.0.22-1~deb12u2
    assert "DSA-5514-1" not in ids  # glibc fixed at 2.36-9+deb12u3, image has deb12u14
    assert "DSA-5532-1" not in ids  # openssl fixed at 3.0.11-1~deb12u2


def test_epoch_fix_matches_and_other_release_entry_is_ignored(fixture_db: VulnDB) -> None:
    found = by_package(fixture_db.match(debian12_packages(), BOOKWORM))
    zlib = found["DEBIAN-CVE-2099-0003", "zlib1g"]
    assert zlib.fixed_version == "1:1.2.13.dfsg-1+deb12u1"  # the Debian:12 entry, not :11
    assert zlib.severity is Severity.MEDIUM  # database_specific "Moderate", no vector
    assert zlib.cvss_score is None


def test_last_affected_is_inclusive_and_has_no_fixed_version(fixture_db: VulnDB) -> None:
    tar = by_package(fixture_db.match(debian12_packages(), BOOKWORM))["DEBIAN-CVE-2099-0004", "tar"]
    assert (tar.fixed_version, tar.fix_date, tar.severity) == ("", "", Severity.LOW)


def test_withdrawn_record_is_ignored_and_bad_range_skipped(fixture_db: VulnDB) -> None:
    found = by_package(fixture_db.match(debian12_packages(), BOOKWORM))
    assert not any(rid == "DEBIAN-CVE-2099-0005" for rid, _ in found)
    ncurses = found["DEBIAN-CVE-2099-0006", "libtinfo6"]  # via the range that parses
    assert (ncurses.fixed_version, ncurses.severity) == ("6.4-4+deb12u1", Severity.HIGH)  # v2 7.5


def test_release_specific_records_need_a_known_release(fixture_db: VulnDB) -> None:
    assert fixture_db.match(debian12_packages(), OSInfo("debian", "")) == []
    assert fixture_db.match(debian12_packages(), OSInfo("debian", "11.9")) == []


def test_findings_come_most_severe_first(fixture_db: VulnDB) -> None:
    severities = [f.severity for f in fixture_db.match(debian12_packages(), BOOKWORM)]
    assert severities == sorted(severities, reverse=True)


def test_alpine_matches_origin_package_on_its_release(tmp_path: Path) -> None:
    db = db_of(
        tmp_path,
        record(
            "ALPINE-CVE-2024-0001",
            entry("Alpine:v3.19", "openssl", {"introduced": "0"}, {"fixed": "3.1.4-r5"}),
        ),
        record(
            "ALPINE-CVE-2024-0002",
            entry("Alpine:v3.18", "openssl", {"introduced": "0"}, {"fixed": "3.1.9-r0"}),
        ),
    )
    libcrypto = Package("Alpine", "libcrypto3", "3.1.4-r4", source_name="openssl")
    [finding] = db.match([libcrypto], ALPINE)
    assert (finding.id, finding.fixed_version) == ("ALPINE-CVE-2024-0001", "3.1.4-r5")
    assert db.match([Package("Alpine", "libcrypto3", "3.1.4-r10", "openssl")], ALPINE) == []


def test_pypi_names_are_normalized_and_pep440_applies(tmp_path: Path) -> None:
    db = db_of(
        tmp_path,
        record(
            "GHSA-xxxx-yyyy-zzzz",
            entry("PyPI", "Foo_Bar", {"introduced": "1.0"}, {"fixed": "1.4.2"}),
            aliases=["CVE-2024-9999"],
            database_specific={"severity": "HIGH"},
        ),
    )
    os = OSInfo("debian", "12")
    [hit] = db.match([Package("PyPI", "foo-bar", "1.4.2rc1")], os)
    assert (hit.fixed_version, hit.severity, hit.aliases) == (
        "1.4.2",
        Severity.HIGH,
        ("CVE-2024-9999",),
    )
    assert db.match([Package("PyPI", "foo.bar", "1.4.2")], os) == []
    assert db.match([Package("PyPI", "foo-bar", "0.9")], os) == []


def test_npm_semver_range_and_explicit_versions(tmp_path: Path) -> None:
    db = db_of(
        tmp_path,
        record(
            "GHSA-npm1",
            entry("npm", "lodash", {"introduced": "0"}, {"fixed": "4.17.21"}, range_type="SEMVER"),
        ),
        record(
            "GHSA-npm2",
            {"package": {"ecosystem": "npm", "name": "left-pad"}, "versions": ["1.1.0", "1.1.1"]},
        ),
    )
    packages = [
        Package("npm", "lodash", "4.17.20"),
        Package("npm", "left-pad", "1.1.1"),
        Package("npm", "left-pad", "1.1.2"),
    ]
    found = {(f.id, f.package.version): f.fixed_version for f in db.match(packages, BOOKWORM)}
    assert found == {("GHSA-npm1", "4.17.20"): "4.17.21", ("GHSA-npm2", "1.1.1"): ""}


def test_unparsable_installed_version_is_skipped_and_named(tmp_path: Path) -> None:
    db = db_of(tmp_path, record("PYSEC-1", entry("PyPI", "x", {"introduced": "0"})))
    result = db.match_detailed(
        [Package("PyPI", "x", "not/a version"), Package("PyPI", "x", "2")], BOOKWORM
    )
    assert [f.package.version for f in result.findings] == ["2"]
    assert len(result.skipped) == 1
    assert "not/a version" in result.skipped[0]


def ranges(*events: dict[str, str]) -> dict[str, Any]:
    return {"ranges": [{"type": "ECOSYSTEM", "events": list(events)}]}


def test_several_introduced_with_fixed_and_last_affected() -> None:
    spec = ranges(
        {"introduced": "1.0"},
        {"fixed": "1.5"},
        {"introduced": "2.0"},
        {"last_affected": "2.3"},
        {"introduced": "3.0"},
    )
    answers = {
        v: affects("PyPI", v, spec)
        for v in ["0.9", "1.0", "1.4", "1.5", "1.9", "2.0", "2.3", "2.4", "3.0", "9.0"]
    }
    assert answers == {
        "0.9": None,
        "1.0": "1.5",
        "1.4": "1.5",
        "1.5": None,
        "1.9": None,
        "2.0": "",
        "2.3": "",
        "2.4": None,
        "3.0": "",
        "9.0": "",
    }


def test_limit_bounds_the_range() -> None:
    spec = ranges({"introduced": "0"}, {"limit": "2.0"})
    assert affects("PyPI", "1.9", spec) == ""
    assert affects("PyPI", "2.0", spec) is None
    assert affects("PyPI", "1.0", ranges({"introduced": "0"}, {"limit": "*"})) == ""


def test_git_ranges_are_ignored() -> None:
    spec = {"ranges": [{"type": "GIT", "repo": "https://x", "events": [{"introduced": "0"}]}]}
    assert affects("PyPI", "1.0", spec) is None


def test_first_matching_range_gives_the_fixed_version() -> None:
    spec = {
        "ranges": [
            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "bad version!!"}]},
            {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.2"}]},
        ]
    }
    assert affects("PyPI", "1.1", spec) == "1.2"
