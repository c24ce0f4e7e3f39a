"""How long audits are kept: by age (``audit_retention``) and by count (``audit_max_count``).

An audit's age is counted from the last time it was seen (a finding seen again moves its time),
so what still happens is never pruned by age. Whatever the rules, an audit not yet forwarded
to a channel, or the one a blocked container was stopped for, stays (``Store.prune_audits``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from garrison.errors import InvalidInput
from garrison.text import clip

DEFAULT_MAX_AGE = 90 * 86400.0
DEFAULT_MAX_COUNT = 1_000_000
MAX_COUNT = 10**12  # more is a typo, and overflows SQLite's integer sooner or later
PRUNE_INTERVAL = 3600.0  # how often ``garrison run`` applies it (and once at start)


@dataclass(frozen=True, slots=True)
class Retention:
    """Audits last seen more than ``max_age`` seconds ago are deleted, and all but the newest
    ``max_count`` (0: no cap), oldest first."""

    max_age: float = DEFAULT_MAX_AGE
    max_count: int = DEFAULT_MAX_COUNT

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_age) and self.max_age > 0):
            raise InvalidInput(f"an audit retention must be positive, not {self.max_age}")
        if not 0 <= self.max_count <= MAX_COUNT:
            given = clip(str(self.max_count), 30)
            raise InvalidInput(f"keep must be 0 (no cap) to {MAX_COUNT:,}, not {given}")

    def cutoff(self, now: float) -> float:
        """Audits last seen before this time are too old."""
        return now - self.max_age
