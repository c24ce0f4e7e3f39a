"""The SQL stores' record of which hosts saved each model (``model_hosts``, migration 0004):
one model per image across hosts, and the hosts that learned or ran it, with their first and
last save. ``SQLModelHosts`` is the part of ``SQLStore`` that runs these statements."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from garrison.store import schema
from garrison.store.base import ModelHost, check_kind
from garrison.store.dialect import greatest, insert


def record(conn: Connection, host: str, profile_ids: Sequence[str], when: float) -> None:
    """One statement that takes only the ids of stored models (INSERT … SELECT), so that a
    model deleted meanwhile leaves no host behind."""
    models, table = schema.models, schema.model_hosts
    saved = sa.select(
        models.c.profile_id,
        sa.literal(host, sa.Text),
        sa.literal(when, sa.Float),
        sa.literal(when, sa.Float),
    ).where(models.c.profile_id.in_(list(profile_ids)))
    columns = ["profile_id", "host", "first_saved", "last_saved"]
    stmt = insert(conn, table).from_select(columns, saved)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["profile_id", "host"],
        set_={"last_saved": greatest(table.c.last_saved, stmt.excluded.last_saved)},
    ))  # fmt: skip


def hosts_of(conn: Connection, profile_id: str) -> list[ModelHost]:
    table = schema.model_hosts
    stmt = sa.select(table.c.host, table.c.first_saved, table.c.last_saved)
    rows = conn.execute(stmt.where(table.c.profile_id == profile_id).order_by(table.c.host))
    return [ModelHost(host, first, last) for host, first, last in rows]


def counts(conn: Connection) -> dict[str, int]:
    table = schema.model_hosts
    stmt = sa.select(table.c.profile_id, sa.func.count()).group_by(table.c.profile_id)
    return {profile_id: int(n) for profile_id, n in conn.execute(stmt)}


def delete(conn: Connection, profile_ids: Sequence[str]) -> None:
    table = schema.model_hosts
    conn.execute(table.delete().where(table.c.profile_id.in_(list(profile_ids))))


class SQLModelHosts:
    """The hosts of each model: a part of ``SQLStore`` (whose ``_read`` and ``_write`` it
    uses; its ``delete_models`` calls ``delete`` in its transaction)."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Connection]: ...
        def _write(self) -> AbstractContextManager[Connection]: ...

    def record_model_hosts(self, host: str, profile_ids: Sequence[str], when: float) -> None:
        check_kind(host, "host name")
        if not profile_ids:
            return
        with self._write() as conn:
            record(conn, host, profile_ids, when)

    def model_hosts(self, profile_id: str) -> list[ModelHost]:
        with self._read() as conn:
            return hosts_of(conn, profile_id)

    def model_host_counts(self) -> dict[str, int]:
        with self._read() as conn:
            return counts(conn)
