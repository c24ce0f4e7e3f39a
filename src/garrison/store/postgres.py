"""``PostgresStore``: the store on PostgreSQL, for a console that serves many hosts (or runs as
several replicas: it keeps no state outside the database).

Connections are checked before use (``pool_pre_ping``), so a console outlives a PostgreSQL
restart: the statement that finds its connection gone fails with StoreError, the next one
connects again. Every write transaction first takes one advisory lock of the store, so that
writes follow one another as they do on SQLite, whose statements (check after write, the
last admin, the outbox) these are; reads never wait for it.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from garrison.errors import InvalidInput
from garrison.store import migrate
from garrison.store.sql import SQLStore

# pg_advisory_xact_lock's key for the store's writes ("garrison" in ASCII, as a bigint).
WRITE_LOCK = 0x67617272_69736F6E
CONNECT_TIMEOUT_S = 10


def engine_url(url: str) -> sa.URL:
    """``postgresql://…`` (as users write it, or ``postgresql+psycopg://…``) for psycopg 3."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InvalidInput(f"store URL {redact(url)!r} is not a database URL") from exc
    if parsed.get_backend_name() != "postgresql":
        raise InvalidInput(f"store URL {redact(url)!r} is not a postgresql:// URL")
    return parsed.set(drivername="postgresql+psycopg")


def redact(url: str) -> str:
    """``url`` with its password hidden, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


class PostgresStore(SQLStore):
    """Open the store in the PostgreSQL database at ``url`` and migrate it to this Garrison's
    schema; raises StoreError when it cannot (the database unreachable, made by a newer
    Garrison), InvalidInput when ``url`` is not a PostgreSQL URL."""

    def __init__(self, url: str) -> None:
        engine = sa.create_engine(
            engine_url(url),
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )
        super().__init__(engine, redact(url))
        try:
            with self._write() as conn:  # the write lock: replicas starting together migrate once
                migrate.upgrade(conn, self._where)
        except BaseException:
            self.close()
            raise

    def _lock_writes(self, conn: Connection) -> None:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(WRITE_LOCK)))
