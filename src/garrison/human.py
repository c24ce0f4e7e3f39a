"""Times, durations and ids as people read them: what the CLI's tables and the console's
pages show (``4m 12s``, ``12s ago``, ``2026-12-04 10:14:34``, ``3f2a9c1b7d04``)."""

from __future__ import annotations

import datetime as dt
import time

SHORT_ID = 12  # as docker shows ids
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration(seconds: float | None) -> str:
    """``30s``, ``4m 12s``, ``1h 5m``, ``3d 4h``: the two largest units, rounded down."""
    if seconds is None:
        return "-"
    left, parts = max(0, int(seconds)), []
    for unit, size in _UNITS:
        value, left = divmod(left, size)
        parts.append((value, unit))
    first = next((i for i, (value, _) in enumerate(parts) if value), len(parts) - 1)
    return " ".join(f"{v}{u}" for v, u in parts[first : first + 2] if v) or "0s"


def ago(epoch: float | None, now: float | None = None) -> str:
    """``12s ago``, or ``in 30s`` for a time to come; ``-`` for none."""
    if not epoch:
        return "-"
    delta = (time.time() if now is None else now) - float(epoch)
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(-delta)}"


def local_time(epoch: float | None) -> str:
    """``2026-12-04 10:14:34`` in this machine's time zone; ``-`` for none."""
    if not epoch:
        return "-"
    return dt.datetime.fromtimestamp(float(epoch)).strftime("%Y-%m-%d %H:%M:%S")


def short_id(value: object) -> str:
    """The 12 first characters of an id, without ``sha256:``, as docker shows them."""
    return str(value or "").removeprefix("sha256:")[:SHORT_ID] or "-"


def plural(count: int, word: str, words: str = "") -> str:
    """``1 container``, ``2 containers``."""
    return f"{count} {word if count == 1 else words or word + 's'}"
