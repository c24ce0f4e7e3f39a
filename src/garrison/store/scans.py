"""What both stores share about scan reports: the checks before a report is written, and
which report a reference names.

A reference names a subject (an image, a container) by its whole id, by name, or by a
prefix of its id of at least ``MIN_ID_PREFIX`` characters, in that order. A name is the
newest report made under it: ``nginx:latest`` moves from image to image as it is pulled
again, and means the one scanned last under that name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from garrison.errors import InvalidInput, NotFound
from garrison.policy.collections import image_names
from garrison.scan.report import SCAN_KINDS, ScanKind, ScanReport
from garrison.store.base import KEEP_SCANS, dump_doc

MIN_ID_PREFIX = 4
_HOW = {"image": "garrison scan image", "container": "garrison scan container"}


@dataclass(frozen=True, slots=True)
class ScanRow:
    """A stored report without its document: what picking one needs."""

    id: int
    subject: str
    name: str
    time: float

    def order(self) -> tuple[float, int]:
        """Newer is greater; the id breaks a tie of times (a clock's resolution)."""
        return (self.time, self.id)


def scan_kind(kind: str) -> ScanKind:
    for known in SCAN_KINDS:
        if kind == known:
            return known
    raise InvalidInput(f"scan kind must be image or container, not {str(kind)[:20]!r}")


def dumped(report: ScanReport) -> tuple[str, str]:
    """The report's summary and document as JSON text; InvalidInput (before any write)
    when it cannot be stored."""
    what = f"{scan_kind(report.kind)} scan report"
    if not isinstance(report.subject, str) or not report.subject:
        raise InvalidInput(f"{what}: no image or container id")
    if not math.isfinite(report.time):
        raise InvalidInput(f"{what} of {report.subject[:19]}: bad time")
    return dump_doc(report.summary(), what), dump_doc(report.doc, what)


def newest_each(rows: Iterable[ScanRow]) -> dict[str, ScanRow]:
    """The newest row of each subject."""
    newest: dict[str, ScanRow] = {}
    for row in rows:
        if row.subject not in newest or row.order() > newest[row.subject].order():
            newest[row.subject] = row
    return newest


def beyond_kept(rows: Iterable[ScanRow], keep: int = KEEP_SCANS) -> list[int]:
    """Ids of the rows past the newest ``keep`` of their subject."""
    by_subject: dict[str, list[ScanRow]] = {}
    for row in rows:
        by_subject.setdefault(row.subject, []).append(row)
    return [
        row.id
        for kept in by_subject.values()
        for row in sorted(kept, key=ScanRow.order, reverse=True)[keep:]
    ]


def named(rows: Sequence[ScanRow], ref: str, kind: ScanKind) -> ScanRow:
    """The newest report of the one subject ``ref`` names. InvalidInput when ``ref`` is
    empty or a prefix of several ids, NotFound when it names none."""
    if not ref.strip():
        raise InvalidInput(f"name the {kind}: a name, an id or a prefix of an id")
    newest = newest_each(rows)
    subject = _by_id(newest, ref) or _by_name(rows, ref, kind) or _by_prefix(newest, ref, kind)
    if subject is None:
        raise NotFound(f"no scan report for {ref[:80]!r} ({_HOW[kind]} stores one)")
    return newest[subject]


def _by_id(newest: dict[str, ScanRow], ref: str) -> str | None:
    return next((s for s in _ids(ref) if s in newest), None)


def _by_name(rows: Sequence[ScanRow], ref: str, kind: ScanKind) -> str | None:
    wanted = set(_names(ref, kind))
    under = [row for row in rows if wanted & set(_names(row.name, kind))]
    return max(under, key=ScanRow.order).subject if under else None


def _by_prefix(newest: dict[str, ScanRow], ref: str, kind: ScanKind) -> str | None:
    if len(ref.removeprefix("sha256:")) < MIN_ID_PREFIX:
        return None
    found = sorted(s for s in newest if any(s.startswith(i) for i in _ids(ref)))
    if len(found) > 1:
        shown = ", ".join(s.removeprefix("sha256:")[:12] for s in found[:5])
        raise InvalidInput(f"{ref[:80]!r} is the start of {len(found)} {kind} ids ({shown}): "
                           "give more of it")  # fmt: skip
    return found[0] if found else None


def _ids(ref: str) -> list[str]:
    bare = ref.removeprefix("sha256:")
    return [bare, f"sha256:{bare}"]


def _names(name: str, kind: ScanKind) -> list[str]:
    """The forms of a name: an image's with and without its default tag and registry."""
    return image_names(name) if kind == "image" else [name.removeprefix("/")]
