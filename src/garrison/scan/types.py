"""The values a scan produces: the contract between inventory, vulnerability matching,
compliance checks, rules and the gate."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

Ecosystem = Literal["Debian", "Alpine", "PyPI", "npm"]


class Severity(enum.IntEnum):
    """Ordered so that ``>=`` compares thresholds."""

    UNKNOWN = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError as exc:
            raise ValueError(f"unknown severity {text!r}") from exc

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class OSInfo:
    family: str  # "debian", "alpine", "unknown"
    version: str  # "12.7", "3.19.1", ""
    pretty_name: str = ""


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package. Debian/Alpine packages carry their source package too."""

    ecosystem: Ecosystem
    name: str
    version: str
    source_name: str = ""  # dpkg Source / apk origin; "" when it equals name
    source_version: str = ""  # dpkg source version; "" when it equals version
    path: str = ""  # where it was found in the image (a dpkg status file, a METADATA)
    licenses: tuple[str, ...] = ()
    arch: str = ""  # "amd64", "x86_64"; "" when the package database gives none

    @property
    def match_name(self) -> str:
        """OSV Debian and Alpine advisories name source packages."""
        return self.source_name or self.name

    @property
    def match_version(self) -> str:
        return self.source_version or self.version


@dataclass(frozen=True, slots=True)
class Inventory:
    image_id: str
    image_name: str
    os: OSInfo
    packages: tuple[Package, ...]
    skipped: tuple[str, ...] = ()  # records that could not be read, with why


@dataclass(frozen=True, slots=True)
class Finding:
    """A vulnerability that applies to an installed package."""

    id: str  # "DSA-5678-1", "CVE-2024-1234", "GHSA-…"
    aliases: tuple[str, ...]
    package: Package
    installed_version: str
    fixed_version: str  # "" when no fix is known
    severity: Severity
    cvss_score: float | None
    summary: str = ""
    fix_date: str = ""  # ISO date the fix was published, when known (for grace periods)


@dataclass(frozen=True, slots=True)
class ComplianceIssue:
    check_id: str  # stable, e.g. "GCIS-5.4" mapped to CIS Docker Benchmark 5.4
    cis: str  # "5.4"
    title: str
    severity: Severity
    fix: str
    target: Literal["container", "image"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ScanResult:
    inventory: Inventory
    findings: tuple[Finding, ...] = ()
    compliance: tuple[ComplianceIssue, ...] = ()
    errors: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ContainerCheck:
    """A container's compliance: the issues of its configuration, then its image's."""

    container_id: str
    container_name: str  # without Docker's leading "/"
    image_name: str  # as the container was created with it
    image_id: str
    digest: str  # the image's repository digest; "" when it has none
    issues: tuple[ComplianceIssue, ...]
