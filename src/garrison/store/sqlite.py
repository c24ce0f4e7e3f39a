"""``SQLiteStore``: the store in one SQLite file of the data directory.

WAL lets the CLI read while a defender writes; ``busy_timeout`` makes a writer in another
process wait rather than fail. Transactions are Garrison's, not pysqlite's (which begins one
only at the first INSERT or UPDATE, so that what a write read before it was read outside):
a read runs in a ``BEGIN``, a write in a ``BEGIN IMMEDIATE``, which takes the database's write
lock at once — a read-then-write (a model merged, a token spent) of one process cannot
interleave with another's, as PostgreSQL's advisory lock does for the same code
(https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl).
``synchronous=NORMAL`` in WAL mode loses nothing when a process
crashes (only a power loss may drop the last transactions:
https://www.sqlite.org/pragma.html#pragma_synchronous).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa

from garrison.errors import StoreError
from garrison.store import migrate, schema
from garrison.store.datadir import create_private_file, open_private, secure_data_dir
from garrison.store.sql import SQLStore

DB_NAME = "garrison.db"
BUSY_TIMEOUT_MS = 10_000


IMMEDIATE = "garrison_sqlite_immediate"


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # pysqlite begins nothing: _on_begin does
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _on_begin(conn: sa.Connection) -> None:
    immediate = conn.get_execution_options().get(IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SQLiteStore(SQLStore):
    """Open (and create, or migrate) the store at ``path``; raises StoreError when it cannot."""

    WRITE_OPTIONS: ClassVar[Mapping[str, bool]] = {IMMEDIATE: True}

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        secure_data_dir(self.path.parent)
        create_private_file(self.path)  # before SQLite: its -wal and -shm take this mode
        engine = sa.create_engine(f"sqlite+pysqlite:///{self.path}")
        sa.event.listen(engine, "connect", _on_connect)
        sa.event.listen(engine, "begin", _on_begin)
        super().__init__(engine, str(self.path))
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    @classmethod
    def in_dir(cls, data_dir: Path | str) -> SQLiteStore:
        return cls(Path(data_dir) / DB_NAME)

    def _migrate(self) -> None:
        """A store already current is opened with reads alone: reading it then works on a
        full disk or a read-only data directory (`garrison status`). Two processes opening
        a new store at once (a defender starting, a CLI command) would both find tables
        missing: a lock file beside the store takes them one after the other."""
        with self._read() as conn:
            current = self._version(conn) == schema.SCHEMA_VERSION
            if current and migrate.current(conn) == migrate.HEAD:
                return
        with _file_lock(self.path.with_name(self.path.name + ".lock")), self._write() as conn:
            self._version(conn)
            migrate.upgrade(conn, str(self.path))
            conn.exec_driver_sql(f"PRAGMA user_version={schema.SCHEMA_VERSION}")

    def _version(self, conn: sa.Connection) -> int:
        version = int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
        if version > schema.SCHEMA_VERSION:
            raise StoreError(f"store {self.path} was made by a newer Garrison")
        return version


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock(2) on ``path`` (made if missing); none when it cannot be opened
    (a read-only data directory: nobody creates a schema there)."""
    try:
        fd = open_private(path, os.O_RDWR)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
