"""The in-memory store's scan reports (a part of ``MemoryStore``): the same rules as SQLite,
from store/scans.py."""

from __future__ import annotations

import json
import threading

from garrison.scan.report import ScanReport
from garrison.store.base import KEEP_SCANS, Doc
from garrison.store.scans import (
    ScanRow,
    beyond_kept,
    dumped,
    named,
    newest_each,
    scan_kind,
)


class MemoryScans:
    """Needs the store's ``_lock``; ids of its own, like SQLite's table."""

    _lock: threading.Lock

    def __init__(self) -> None:
        # id → (kind, row, summary, document), JSON text as SQLite keeps them
        self._scans: dict[int, tuple[str, ScanRow, str, str]] = {}
        self._next_scan = 1

    def save_scan(self, report: ScanReport, keep: int = KEEP_SCANS) -> None:
        summary, doc = dumped(report)
        with self._lock:
            row = ScanRow(self._next_scan, report.subject, report.name, report.time)
            self._next_scan += 1
            self._scans[row.id] = (report.kind, row, summary, doc)
            mine = [r for r in self._rows(report.kind) if r.subject == report.subject]
            for old in beyond_kept(mine, keep):
                del self._scans[old]

    def latest_scans(self, kind: str = "image") -> list[Doc]:
        checked = scan_kind(kind)
        with self._lock:
            newest = sorted(newest_each(self._rows(checked)).values(), key=ScanRow.order)
            return [json.loads(self._scans[row.id][2]) for row in reversed(newest)]

    def latest_scan(self, ref: str, kind: str = "image") -> Doc:
        checked = scan_kind(kind)
        with self._lock:
            chosen = named(self._rows(checked), ref, checked)
            loaded: Doc = json.loads(self._scans[chosen.id][3])
        return loaded

    def _rows(self, kind: str) -> list[ScanRow]:
        return [row for k, row, _, _ in self._scans.values() if k == kind]
