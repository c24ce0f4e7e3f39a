"""How long a container waited on a permission event: from the read of the event to the
write of its answer, in fixed buckets (``garrison status``, ``garrison_verdict_latency_seconds``).

One histogram per permission group, written by the group's reader thread only, at each answer:
a clock read, a bisect and three integer additions, no lock. Readers (the status report, on
the defender's loop) copy the bucket list, which the GIL makes one step; the count is taken
from that copy, so buckets and count always agree (the sum may be one answer ahead).
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate
from typing import Any

# Upper bounds, inclusive as Prometheus's ``le``; one more bucket holds what is slower.
BOUNDS_SECONDS = (
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1.0,
)  # fmt: skip
_BOUNDS_NS = tuple(round(bound * 1e9) for bound in BOUNDS_SECONDS)


class LatencyHistogram:
    __slots__ = ("_counts", "_sum_ns")

    def __init__(self) -> None:
        self._counts = [0] * (len(_BOUNDS_NS) + 1)
        self._sum_ns = 0

    def observe(self, nanoseconds: int) -> None:
        self._counts[bisect_left(_BOUNDS_NS, nanoseconds)] += 1
        self._sum_ns += nanoseconds

    def snapshot(self) -> dict[str, Any]:
        """``le``: the bounds in seconds; ``buckets``: cumulative counts, one per bound;
        ``count``: every answer (the +Inf bucket); ``sum``: their seconds."""
        cumulative = list(accumulate(list(self._counts)))
        return {
            "le": list(BOUNDS_SECONDS),
            "buckets": cumulative[:-1],
            "count": cumulative[-1],
            "sum": self._sum_ns / 1e9,
        }


def upper_bound(snapshot: dict[str, Any], quantile: float) -> float | None:
    """The smallest bucket bound under which ``quantile`` of the answers fell (seconds);
    ``inf`` when they fell above the last bound; None when nothing was answered."""
    count = int(snapshot.get("count") or 0)
    if not count:
        return None
    wanted = quantile * count
    for bound, cumulative in zip(snapshot["le"], snapshot["buckets"], strict=True):
        if cumulative >= wanted:
            return float(bound)
    return float("inf")
