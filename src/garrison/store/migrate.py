"""Bringing a store's schema to this Garrison's: Alembic, with one migration history for SQLite
and PostgreSQL (``garrison.store.migrations``), run when a store is opened.

A store already at the newest revision is opened without importing Alembic (the defender opens
its store at every start, and its memory counts). A store whose revision this Garrison does
not know was made by a newer one: it is refused rather than misread. A SQLite store from
before the migrations (no revision yet) is taken up by the first, which makes only what is
missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from garrison.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

# The revisions of migrations/versions, oldest first (tests/store/test_migrations.py checks
# them against Alembic's own reading of the folder).
REVISIONS = ("0001", "0002", "0003", "0004")
HEAD = REVISIONS[-1]
VERSION_TABLE = "alembic_version"


def current(conn: Connection) -> str | None:
    """The store's revision; None before the first migration."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    table = sa.table(VERSION_TABLE, sa.column("version_num"))
    return conn.execute(sa.select(table.c.version_num)).scalar_one_or_none()


def upgrade(conn: Connection, where: str) -> None:
    """Migrate the store on ``conn`` (in its transaction) to ``HEAD``."""
    revision = current(conn)
    if revision == HEAD:
        return
    if revision is not None and revision not in REVISIONS:
        raise StoreError(f"store {where} was made by a newer Garrison (revision {revision})")
    from alembic import command  # noqa: PLC0415 (only when there is something to migrate)

    command.upgrade(config(conn), HEAD)


def config(conn: Connection | None = None) -> Config:
    """Alembic's configuration for the migrations folder, on ``conn`` when given."""
    from alembic.config import Config  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg
