"""The SQLite file behind :class:`~garrison.scan.vulndb.VulnDB`.

One row per advisory (its raw JSON kept) and one per affected package, indexed by
(ecosystem, name) with the ranges compiled at import, so matching reads only small rows.
WAL lets the gate read while ``vulndb update`` writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from garrison.errors import StoreError
from garrison.store.datadir import create_private_file, secure_data_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS advisories (
    id TEXT PRIMARY KEY,
    modified TEXT NOT NULL,
    published TEXT NOT NULL,
    summary TEXT NOT NULL,
    aliases TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS affected (
    advisory_id TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    release TEXT NOT NULL,
    name TEXT NOT NULL,
    severity INTEGER NOT NULL,
    score REAL,
    ranges TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS affected_by_package ON affected (ecosystem, name);
CREATE INDEX IF NOT EXISTS affected_by_advisory ON affected (advisory_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

AdvisoryRow = tuple[str, str, str, str, str, str]
AffectedRow = tuple[str, str, str, str, int, float | None, str]


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in a transaction (committed on success); SQLite errors → StoreError."""
    secure_data_dir(path.parent)
    create_private_file(path)  # before SQLite: its -wal and -shm take this mode
    try:
        conn = sqlite3.connect(path, timeout=30)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"vulnerability database {path}: {exc}") from exc
    try:
        with closing(conn), conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            yield conn
    except sqlite3.Error as exc:
        raise StoreError(f"vulnerability database {path}: {exc}") from exc


def modified_by_id(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT id, modified FROM advisories"))


def delete(conn: sqlite3.Connection, ids: list[str]) -> None:
    params = [(i,) for i in ids]
    conn.executemany("DELETE FROM affected WHERE advisory_id = ?", params)
    conn.executemany("DELETE FROM advisories WHERE id = ?", params)


def insert(
    conn: sqlite3.Connection, advisories: list[AdvisoryRow], affected: list[AffectedRow]
) -> None:
    conn.executemany("INSERT OR REPLACE INTO advisories VALUES (?, ?, ?, ?, ?, ?)", advisories)
    conn.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?, ?, ?)", affected)


def candidates(
    conn: sqlite3.Connection, ecosystem: str, name: str
) -> list[tuple[str, str, int, float | None, str, str, str, str, str]]:
    """Affected rows for one package, with what a finding needs from the advisory."""
    return conn.execute(
        "SELECT f.advisory_id, f.release, f.severity, f.score, f.ranges,"
        " a.summary, a.aliases, a.published, a.modified"
        " FROM affected f JOIN advisories a ON a.id = f.advisory_id"
        " WHERE f.ecosystem = ? AND f.name = ?",
        (ecosystem, name),
    ).fetchall()


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta"))


def counts(conn: sqlite3.Connection) -> tuple[int, dict[str, int]]:
    """Advisories in all, and per ecosystem (an advisory may count in several)."""
    total = conn.execute("SELECT COUNT(*) FROM advisories").fetchone()[0]
    rows = conn.execute(
        "SELECT ecosystem, COUNT(DISTINCT advisory_id) FROM affected GROUP BY ecosystem"
    )
    return int(total), {str(eco): int(n) for eco, n in rows}
