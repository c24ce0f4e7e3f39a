"""A record's severity: from its CVSS vectors, else from the severity words databases use.

Bands are NVD's (https://nvd.nist.gov/vuln-metrics/cvss): v3.x and v4.0 low 0.1-3.9,
medium 4.0-6.9, high 7.0-8.9, critical 9.0-10.0; v2 has no critical band (high 7.0-10.0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4, CVSSError

from garrison.scan.types import Severity
from garrison.scan.vulndb._schema import OsvAffected, OsvRecord, OsvSeverity

# The order vectors are preferred in when a record carries several (v3 is what NVD and
# most scanners still rank by).
_PREFERENCE = ("CVSS_V3", "CVSS_V4", "CVSS_V2")

# Words found in database_specific / ecosystem_specific "severity" (GHSA, Ubuntu, Debian
# urgency, Red Hat) → our levels.
_WORDS = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "important": Severity.HIGH,
    "moderate": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "negligible": Severity.LOW,
    "unimportant": Severity.LOW,
}


def band(score: float, version: str) -> Severity:
    """NVD's band for a base score."""
    if score <= 0:
        return Severity.UNKNOWN
    if score >= 9.0 and version != "CVSS_V2":
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    return Severity.MEDIUM if score >= 4.0 else Severity.LOW


@lru_cache(maxsize=4096)
def score_vector(kind: str, vector: str) -> float | None:
    """The base score of a CVSS vector; ``None`` when it does not parse."""
    try:
        if kind == "CVSS_V3":
            return float(CVSS3(vector).base_score)
        if kind == "CVSS_V4":
            return float(CVSS4(vector).base_score)
        if kind == "CVSS_V2":
            return float(CVSS2(vector).base_score)
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def from_vectors(severities: Iterable[OsvSeverity]) -> tuple[Severity, float | None]:
    by_kind = {s.type: s.score for s in severities}
    for kind in _PREFERENCE:
        if kind in by_kind:
            score = score_vector(kind, by_kind[kind])
            if score is not None:
                return band(score, kind), score
    return Severity.UNKNOWN, None


def from_words(*blobs: Mapping[str, Any] | None) -> Severity:
    for blob in blobs:
        word = (blob or {}).get("severity")
        if isinstance(word, str) and word.strip().lower() in _WORDS:
            return _WORDS[word.strip().lower()]
    return Severity.UNKNOWN


def record_severity(
    record: OsvRecord, affected: OsvAffected | None = None
) -> tuple[Severity, float | None]:
    """Severity and CVSS score for one affected entry of a record (or the record alone)."""
    vectors = [*(affected.severity if affected else ()), *record.severity]
    severity, score = from_vectors(vectors)
    if severity is not Severity.UNKNOWN:
        return severity, score
    blobs = (affected.ecosystem_specific, affected.database_specific) if affected else ()
    return from_words(*blobs, record.database_specific), score
