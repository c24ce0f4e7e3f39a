"""Scan results as JSON: what ``garrison scan --json`` prints, and the reports the console
stores (``ScanReport``): an image's whole scan, or a container's compliance check.

A stored image report is ``garrison scan image --json``'s document with every severity, and
with what makes it a record: ``kind``, ``digest``, ``scannedAt`` and totals by severity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from garrison.scan.types import ComplianceIssue, ContainerCheck, Finding, ScanResult, Severity

Doc = dict[str, Any]
ScanKind = Literal["image", "container"]
SCAN_KINDS: tuple[ScanKind, ...] = ("image", "container")


@dataclass(frozen=True, slots=True)
class ScanReport:
    """One report as the store keeps it: what names it, and the document itself."""

    kind: ScanKind
    subject: str  # the image id (an image scan), the container id (a container check)
    name: str  # the image reference scanned, or the container's name
    time: float  # when it was scanned (epoch seconds)
    doc: Doc

    def summary(self) -> Doc:
        """What a listing shows: the report without its lists (findings, issues, errors)."""
        return {k: v for k, v in self.doc.items() if not isinstance(v, list)}


def image_report(result: ScanResult, image_id: str, digest: str, time: float) -> ScanReport:
    inv = result.inventory
    doc = {
        "kind": "image",
        **result_json(result, result.findings),
        "imageId": image_id,
        "digest": digest,
        "scannedAt": time,
        "vulnerabilityTotals": totals([f.severity for f in result.findings]),
        "complianceTotals": totals([i.severity for i in result.compliance]),
    }
    return ScanReport("image", image_id, inv.image_name, time, doc)


def container_report(check: ContainerCheck, time: float) -> ScanReport:
    doc = {
        "kind": "container",
        "containerId": check.container_id,
        "containerName": check.container_name,
        "image": check.image_name,
        "imageId": check.image_id,
        "digest": check.digest,
        "scannedAt": time,
        "compliance": [issue_json(i) for i in check.issues],
        "complianceTotals": totals([i.severity for i in check.issues]),
    }
    return ScanReport("container", check.container_id, check.container_name, time, doc)


def totals(severities: Sequence[Severity]) -> dict[str, int]:
    """Counts by severity, the most severe first, and ``total``."""
    counts = {str(s): severities.count(s) for s in sorted(Severity, reverse=True)}
    return {**counts, "total": len(severities)}


def digest_of(inspect: Mapping[str, Any], name: str) -> str:
    """The repository digest of the image (``repo@sha256:…``): the one of the repository
    ``name`` names when the image has several, "" when it has none (built locally)."""
    digests = [str(d) for d in inspect.get("RepoDigests") or []]
    repository = _repository(name)
    same = [d for d in digests if d.split("@", 1)[0] == repository]
    return (same or digests or [""])[0]


def _repository(name: str) -> str:
    bare = name.split("@", 1)[0]
    head, _, last = bare.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def result_json(result: ScanResult, findings: Sequence[Finding]) -> Doc:
    """``garrison scan image --json``: ``findings`` are those of the severities asked for."""
    inv = result.inventory
    return {
        "image": inv.image_name,
        "imageId": inv.image_id,
        "os": {"family": inv.os.family, "version": inv.os.version},
        "packages": len(inv.packages),
        "vulnerabilities": [finding_json(f) for f in findings],
        "compliance": [issue_json(i) for i in result.compliance],
        "errors": list(result.errors),
    }


def finding_json(f: Finding) -> Doc:
    return {
        "id": f.id,
        "aliases": list(f.aliases),
        "package": f.package.name,
        "sourcePackage": f.package.match_name,
        "installedVersion": f.installed_version,
        "fixedVersion": f.fixed_version,
        "severity": str(f.severity),
        "cvss": f.cvss_score,
        "summary": f.summary,
    }


def issue_json(i: ComplianceIssue) -> Doc:
    return {"id": i.check_id, "cis": i.cis, "title": i.title, "severity": str(i.severity),
            "target": i.target, "detail": i.detail, "fix": i.fix}  # fmt: skip
