"""Matching installed packages against the stored advisories, per the OSV evaluation rules.

Debian and Alpine advisories name *source* packages, so those are looked up by
``Package.match_name`` / ``match_version`` (as Trivy and OSV-Scanner do). An advisory for
``Debian:12`` or ``Alpine:v3.19`` applies only on that release; one without a release suffix
applies to all. When the image's release is unknown only the latter are used: a fix version
from another release would mostly give false positives.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from univers.versions import Version

from garrison.scan.types import Finding, OSInfo, Package, Severity
from garrison.scan.vulndb import _store
from garrison.scan.vulndb._ranges import CompiledRange, compile_affected, encode, evaluate_range
from garrison.scan.vulndb._schema import OsvAffected
from garrison.scan.vulndb._versions import (
    VersionError,
    compare,
    normalize_name,
    parse,
    version_class,
)

Row = tuple[str, str, int, float | None, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class MatchResult:
    findings: tuple[Finding, ...]
    skipped: tuple[str, ...] = ()  # packages not matched, with why (an unparsable version)


def os_release(ecosystem: str, os: OSInfo) -> str | None:
    """The OSV release suffix for the image's OS ("12", "v3.19"); ``None`` when unknown."""
    parts = os.version.split(".")
    if ecosystem == "Debian" and os.family == "debian" and parts[0].isdigit():
        return parts[0]
    if ecosystem == "Alpine" and os.family == "alpine" and len(parts) >= 2:
        return f"v{parts[0]}.{parts[1]}"
    return None


def _release_fits(record_release: str, release: str | None) -> bool:
    return not record_release or record_release == release


def match(conn: sqlite3.Connection, packages: Iterable[Package], os: OSInfo) -> MatchResult:
    groups: dict[tuple[str, str], list[Package]] = defaultdict(list)
    for package in packages:
        groups[package.ecosystem, normalize_name(package.ecosystem, package.match_name)].append(
            package
        )
    findings: list[Finding] = []
    skipped: list[str] = []
    for (ecosystem, name), members in groups.items():
        rows = _store.candidates(conn, ecosystem, name)
        if not rows:
            continue
        release = os_release(ecosystem, os)
        rows = [row for row in rows if _release_fits(row[1], release)]
        for package in members:
            try:
                findings.extend(_match_package(package, rows))
            except VersionError as exc:
                skipped.append(f"{package.name} {package.version}: {exc}")
    findings.sort(key=lambda f: (-f.severity, f.id, f.package.name))
    return MatchResult(tuple(findings), tuple(skipped))


def _match_package(package: Package, rows: list[Row]) -> list[Finding]:
    cls = version_class(package.ecosystem)
    if cls is None:
        return []
    installed = parse(cls, package.match_version)
    found: dict[str, Finding] = {}
    for row in rows:
        if row[0] in found:
            continue
        hit = _affects(installed, package.match_version, json.loads(row[4]))
        if hit is not None:
            found[row[0]] = _finding(package, row, hit)
    return list(found.values())


def _affects(installed: Version, text: str, compiled: dict[str, Any]) -> str | None:
    """The fixed version ("" when none) if the installed version is affected, else None."""
    for range_type, events in compiled["r"]:
        rng = CompiledRange(range_type, tuple((k, v) for k, v in events))
        version = _as_class(installed, text, range_type)
        if version is None:
            continue
        vulnerable, fixed = evaluate_range(version, rng)
        if vulnerable:
            return fixed
    return "" if _listed(installed, compiled["v"]) else None


def affects(ecosystem: str, version: str, affected: Mapping[str, Any]) -> str | None:
    """For one OSV ``affected`` entry (as JSON): the fixed version ("" when none) if
    ``version`` is affected, else ``None``. Ranges whose versions do not parse are ignored;
    :class:`VersionError` when ``version`` itself does not parse."""
    cls = version_class(ecosystem)
    if cls is None:
        raise VersionError(f"no version ordering for ecosystem {ecosystem!r}")
    compiled = compile_affected(ecosystem, OsvAffected.model_validate(affected))
    return _affects(parse(cls, version), version, json.loads(encode(compiled)))


def _as_class(installed: Version, text: str, range_type: str) -> Version | None:
    """The installed version in the range's ordering (SEMVER ranges use SemVer)."""
    cls = version_class("", range_type) if range_type == "SEMVER" else type(installed)
    if cls is None or cls is type(installed):
        return installed
    try:
        return parse(cls, text)
    except VersionError:
        return None  # not comparable to this range: the range cannot apply


def _listed(installed: Version, versions: list[str]) -> bool:
    for text in versions:
        if text == installed.string:
            return True
        try:
            if compare(installed, parse(type(installed), text)) == 0:
                return True
        except VersionError:
            continue
    return False


def _finding(package: Package, row: Row, fixed: str) -> Finding:
    advisory_id, _release, severity, score, _ranges, summary, aliases, published, _mod = row
    return Finding(
        id=advisory_id,
        aliases=tuple(a for a in json.loads(aliases) if a != advisory_id),
        package=package,
        installed_version=package.version,  # the binary's, as Trivy shows it
        fixed_version=fixed,
        severity=Severity(severity),
        cvss_score=score,
        summary=summary,
        # OSV has no fix date: ``published`` is the best stand-in (a DSA/DLA is published
        # with its fix); see VulnDB.match.
        fix_date=published[:10] if fixed else "",
    )
