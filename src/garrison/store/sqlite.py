"""``SQLiteStore``: the store in one SQLite file of the data directory.

WAL lets the CLI read while a defender writes; ``busy_timeout`` makes a writer in another
process wait rather than fail. ``synchronous=NORMAL`` in WAL mode loses nothing when a process
crashes (only a power loss may drop the last transactions:
https://www.sqlite.org/pragma.html#pragma_synchronous).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from garrison.errors import StoreError
from garrison.store import migrate, schema
from garrison.store.datadir import create_private_file, open_private, secure_data_dir
from garrison.store.sql import SQLStore

DB_NAME = "garrison.db"
BUSY_TIMEOUT_MS = 10_000


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


class SQLiteStore(SQLStore):
    """Open (and create, or migrate) the store at ``path``; raises StoreError when it cannot."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        secure_data_dir(self.path.parent)
        create_private_file(self.path)  # before SQLite: its -wal and -shm take this mode
        engine = sa.create_engine(f"sqlite+pysqlite:///{self.path}")
        sa.event.listen(engine, "connect", _on_connect)
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
        # Two processes opening a new store at once (a defender starting, a CLI command) would
        # both find tables missing, and pysqlite runs DDL outside a transaction: the slower
        # one's CREATE fails. A lock file beside the store takes them one after the other.
        with _file_lock(self.path.with_name(self.path.name + ".lock")), self._write() as conn:
            version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
            if version > schema.SCHEMA_VERSION:
                raise StoreError(f"store {self.path} was made by a newer Garrison")
            migrate.upgrade(conn, str(self.path))
            if version != schema.SCHEMA_VERSION:  # a store that exists is opened without a
                # write, so that reading it works on a full disk (`garrison status` then)
                conn.exec_driver_sql(f"PRAGMA user_version={schema.SCHEMA_VERSION}")


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
