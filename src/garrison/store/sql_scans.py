"""The SQL stores' scan reports: statements on a connection the store holds, and
``SQLScans``, the part of ``SQLStore`` that runs them. Which report a reference names
is decided in store/scans.py, the same for both stores."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from garrison.scan.report import ScanReport
from garrison.store import schema
from garrison.store.base import KEEP_SCANS, Doc
from garrison.store.scans import ScanRow, beyond_kept, dumped, named, scan_kind


def save(conn: Connection, report: ScanReport, keep: int) -> None:
    summary, doc = dumped(report)
    values = {"kind": report.kind, "subject": report.subject, "name": report.name,
              "time": report.time, "summary": summary, "doc": doc}  # fmt: skip
    table = schema.scan_reports
    conn.execute(table.insert().values(values))
    old = beyond_kept(_rows(conn, report.kind, report.subject), keep)
    if old:
        conn.execute(table.delete().where(table.c.id.in_(old)))


def latest(conn: Connection, kind: str) -> list[Doc]:
    table = schema.scan_reports
    newest = sa.func.row_number().over(
        partition_by=table.c.subject, order_by=(table.c.time.desc(), table.c.id.desc())
    )
    ranked = sa.select(table.c.summary, table.c.time, table.c.id, newest.label("rank"))
    inner = ranked.where(table.c.kind == scan_kind(kind)).subquery()
    stmt = sa.select(inner.c.summary).where(inner.c.rank == 1)
    stmt = stmt.order_by(inner.c.time.desc(), inner.c.id.desc())
    return [json.loads(text) for text in conn.execute(stmt).scalars()]


def find(conn: Connection, ref: str, kind: str) -> Doc:
    checked = scan_kind(kind)
    chosen = named(_rows(conn, checked), ref, checked)
    table = schema.scan_reports
    text = conn.execute(sa.select(table.c.doc).where(table.c.id == chosen.id)).scalar_one()
    loaded: Doc = json.loads(text)
    return loaded


def _rows(conn: Connection, kind: str, subject: str | None = None) -> list[ScanRow]:
    table = schema.scan_reports
    stmt = sa.select(table.c.id, table.c.subject, table.c.name, table.c.time)
    stmt = stmt.where(table.c.kind == kind)
    if subject is not None:
        stmt = stmt.where(table.c.subject == subject)
    return [ScanRow(r.id, r.subject, r.name, r.time) for r in conn.execute(stmt)]


class SQLScans:
    """Scan reports: a part of ``SQLStore`` (whose ``_read`` and ``_write`` it uses)."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Connection]: ...
        def _write(self) -> AbstractContextManager[Connection]: ...

    def save_scan(self, report: ScanReport, keep: int = KEEP_SCANS) -> None:
        with self._write() as conn:
            save(conn, report, keep)

    def latest_scans(self, kind: str = "image") -> list[Doc]:
        with self._read() as conn:
            return latest(conn, kind)

    def latest_scan(self, ref: str, kind: str = "image") -> Doc:
        with self._read() as conn:
            return find(conn, ref, kind)
