"""The stored scan report of a pod's image, read back as the findings and issues the rules
judge.

The webhook never scans: the image is on no disk it can read, a pull needs the cluster's
registry credentials, and a scan takes longer than the API server waits (``timeoutSeconds``
is 30 at most). It reads the newest report ``garrison scan image`` (or the gate) stored:

- ``name@sha256:…`` pins a manifest: the report is the one whose image has that repository
  digest, whatever name it was scanned under; a report of another digest is not it.
- any other reference is a name: the newest report made under it (``nginx``,
  ``nginx:latest`` and ``docker.io/library/nginx:latest`` are one name), as the console's
  image report finds it (``Console.image_report``). A tag moved since that scan is not seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from garrison.errors import InvalidInput, NotFound
from garrison.policy.collections import image_names
from garrison.scan.compliance import CATALOG
from garrison.scan.types import ComplianceIssue, Finding, Package, Severity

Doc = dict[str, Any]


class ScanStore(Protocol):
    """The part of ``garrison.store.Store`` that keeps scan reports."""

    def latest_scan(self, ref: str, kind: str = "image") -> Doc: ...

    def latest_scans(self, kind: str = "image") -> list[Doc]: ...


class ImageReports(Protocol):
    """``report(image)``: the newest stored report of the image a pod names, None when it was
    never scanned."""

    def report(self, image: str) -> Doc | None: ...


class StoredReports:
    """Reports from the console's store."""

    def __init__(self, store: ScanStore) -> None:
        self.store = store

    def report(self, image: str) -> Doc | None:
        digest = pinned_digest(image)
        if digest:
            return self._by_digest(digest)
        try:
            doc = self.store.latest_scan(image, "image")
        except (NotFound, InvalidInput):
            return None
        # The store also finds reports by image id and id prefix: a pod's image is a name.
        return doc if same_name(image, str(doc.get("image", ""))) else None

    def _by_digest(self, digest: str) -> Doc | None:
        for summary in self.store.latest_scans("image"):
            if str(summary.get("digest", "")).endswith(f"@{digest}"):
                return self.store.latest_scan(str(summary["imageId"]), "image")
        return None


def pinned_digest(image: str) -> str:
    """``sha256:…`` of ``name@sha256:…`` (``name:tag@sha256:…`` too); "" for a name."""
    _, at, digest = image.rpartition("@")
    return digest if at and digest.startswith("sha256:") else ""


def same_name(a: str, b: str) -> bool:
    return bool(set(image_names(a)) & set(image_names(b)))


def findings_of(doc: Mapping[str, Any]) -> tuple[Finding, ...]:
    """The report's vulnerabilities as findings. A report keeps no fix date: the rules'
    ``grace_days`` count from it, so no finding is in its grace period here."""
    return tuple(_finding(v) for v in _dicts(doc.get("vulnerabilities")))


def _finding(v: Mapping[str, Any]) -> Finding:
    # A report keeps no ecosystem either; no rule reads it.
    name = str(v.get("package", ""))
    source = str(v.get("sourcePackage", ""))
    installed = str(v.get("installedVersion", ""))
    package = Package("Debian", name, installed, "" if source == name else source)
    cvss = v.get("cvss")
    return Finding(
        id=str(v.get("id", "")),
        aliases=tuple(str(a) for a in _list(v.get("aliases"))),
        package=package,
        installed_version=installed,
        fixed_version=str(v.get("fixedVersion") or ""),
        severity=_severity(v.get("severity")),
        cvss_score=float(cvss) if isinstance(cvss, int | float) else None,
        summary=str(v.get("summary", "")),
    )


def _severity(text: Any) -> Severity:
    try:
        return Severity.parse(str(text))
    except ValueError:
        return Severity.UNKNOWN


def image_issues_of(doc: Mapping[str, Any]) -> list[ComplianceIssue]:
    """The report's image compliance issues, as the catalogue describes each check today."""
    issues = []
    for item in _dicts(doc.get("compliance")):
        info = CATALOG.get(str(item.get("id", "")))
        if info is not None and info.target == "image":
            issues.append(info.issue(str(item.get("detail", ""))))
    return issues


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
