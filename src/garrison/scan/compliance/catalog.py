"""The compliance checks Garrison knows: stable IDs mapped to the CIS Docker Benchmark (v1.6).

An ID never changes meaning once released: rules and users' scripts refer to it. A check is
its metadata plus a pure function that returns a detail text when the subject fails it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from garrison.scan.types import ComplianceIssue, Severity

T = TypeVar("T")
Target = Literal["container", "image"]


@dataclass(frozen=True, slots=True)
class CheckInfo:
    """What a check is, independent of any subject."""

    check_id: str
    cis: str
    title: str
    severity: Severity
    fix: str
    target: Target

    def issue(self, detail: str = "") -> ComplianceIssue:
        return ComplianceIssue(
            check_id=self.check_id,
            cis=self.cis,
            title=self.title,
            severity=self.severity,
            fix=self.fix,
            target=self.target,
            detail=detail,
        )


@dataclass(frozen=True, slots=True)
class Check(Generic[T]):
    """A check over one kind of subject: ``test`` returns why it fails, or None."""

    info: CheckInfo
    test: Callable[[T], str | None]


def run_checks(checks: Iterable[Check[T]], subject: T) -> list[ComplianceIssue]:
    """Every failed check, in catalogue order."""
    issues = []
    for check in checks:
        detail = check.test(subject)
        if detail is not None:
            issues.append(check.info.issue(detail))
    return issues


def info(cis: str, title: str, severity: Severity, fix: str, target: Target) -> CheckInfo:
    """A check's metadata; its ID is ``GCIS-<CIS item number>``."""
    return CheckInfo(f"GCIS-{cis}", cis, title, severity, fix, target)
