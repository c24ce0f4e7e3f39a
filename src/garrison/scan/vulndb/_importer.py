"""OSV records into the store (their sources are read by ``_archive``). A record that breaks
the schema is skipped and counted; the rest goes on."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from garrison.scan.vulndb import _store
from garrison.scan.vulndb._ranges import CompiledAffected, compile_affected, encode
from garrison.scan.vulndb._schema import OsvAffected, OsvRecord
from garrison.scan.vulndb._severity import record_severity
from garrison.scan.vulndb._versions import SUPPORTED_ECOSYSTEMS, normalize_name, split_ecosystem

_BATCH = 5000
_BATCH_BYTES = 64 << 20  # raw record text held before a flush (records reach 16 MiB each)
MAX_PROBLEMS = 200  # reasons kept in a report; the counts stay exact


@dataclass
class ImportReport:
    """What an import did. ``problems`` holds the first reasons for invalid records and
    dropped ranges, each prefixed by the file or record it came from."""

    source: str
    imported: int = 0  # new records
    replaced: int = 0  # records already there with an older ``modified``
    unchanged: int = 0  # records already there, as new or newer
    withdrawn: int = 0  # withdrawn records (ignored; an older copy is deleted)
    invalid: int = 0  # schema violations, skipped
    bad_ranges: int = 0  # ranges dropped for a version their ecosystem cannot parse
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def merge(self, other: ImportReport) -> None:
        for name in ("imported", "replaced", "unchanged", "withdrawn", "invalid", "bad_ranges"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for problem in other.problems:
            self.note(problem)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


class Importer:
    """One import into an open connection: validate, compile, batch, count."""

    def __init__(self, conn: sqlite3.Connection, source: str) -> None:
        self.conn = conn
        self.report = ImportReport(source=source)
        self.known = _store.modified_by_id(conn)
        self.advisories: list[_store.AdvisoryRow] = []
        self.affected: list[_store.AffectedRow] = []
        self.stale: list[str] = []
        self.pending: set[str] = set()  # ids in the unflushed batch
        self.pending_bytes = 0

    def add(self, name: str, document: bytes | Exception) -> None:
        if isinstance(document, Exception):
            self._invalid(name, f"unreadable: {document}")
            return
        try:
            record = OsvRecord.model_validate_json(document)
        except ValidationError as exc:
            self._invalid(name, _reason(exc))
            return
        self._add_record(record, document.decode("utf-8", "replace"))

    def _invalid(self, name: str, reason: str) -> None:
        self.report.invalid += 1
        self.report.note(f"{name}: {reason}")

    def _add_record(self, record: OsvRecord, raw: str) -> None:
        if record.id in self.pending:  # the same id twice in one source: write the first
            self.flush()
        modified = _utc(record.modified)
        previous = self.known.get(record.id)
        if record.withdrawn is not None:
            self.report.withdrawn += 1
            if previous is not None:
                self.stale.append(record.id)
                del self.known[record.id]
            return
        if previous is not None and previous >= modified:
            self.report.unchanged += 1
            return
        if previous is not None:
            self.report.replaced += 1
            self.stale.append(record.id)
        else:
            self.report.imported += 1
        self.known[record.id] = modified
        self._rows(record, raw)
        self.pending_bytes += len(raw)
        if len(self.advisories) >= _BATCH or self.pending_bytes >= _BATCH_BYTES:
            self.flush()

    def _rows(self, record: OsvRecord, raw: str) -> None:
        # DSA/DLA records list the CVEs they fix under ``related``, not ``aliases``; users
        # name those CVEs in exceptions, so a finding carries both.
        aliases = list(dict.fromkeys([*record.aliases, *record.related]))
        published = _utc(record.published or record.modified)
        row = (record.id, _utc(record.modified), published, record.summary)
        self.pending.add(record.id)
        self.advisories.append((*row, json.dumps(aliases), raw))
        for affected in record.affected:
            if affected.package is not None:
                self.affected.append(self._affected_row(record, affected))

    def _affected_row(self, record: OsvRecord, affected: OsvAffected) -> _store.AffectedRow:
        assert affected.package is not None
        base, release = split_ecosystem(affected.package.ecosystem)
        compiled = CompiledAffected((), tuple(affected.versions))
        if base in SUPPORTED_ECOSYSTEMS:
            compiled = compile_affected(base, affected)
        for reason in compiled.bad_ranges:
            self.report.bad_ranges += 1
            self.report.note(f"{record.id} {affected.package.name}: range dropped, {reason}")
        severity, score = record_severity(record, affected)
        name = normalize_name(base, affected.package.name)
        return (record.id, base, release, name, int(severity), score, encode(compiled))

    def flush(self) -> None:
        _store.delete(self.conn, self.stale)
        _store.insert(self.conn, self.advisories, self.affected)
        self.stale, self.advisories, self.affected = [], [], []
        self.pending, self.pending_bytes = set(), 0


def _utc(moment: datetime) -> str:
    """One spelling per instant, so that stored timestamps compare as strings."""
    if moment.tzinfo is None:  # ``published`` may lack an offset; OSV times are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
