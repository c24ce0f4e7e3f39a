"""The SQL stores' hosts (garrison.fleet), enrolment tokens, console CA and model command queue:
statements on a connection the store holds, and ``SQLHosts``, the part of ``SQLStore`` that
runs them.

A model command is done once on one host, and once per host on many: each host that applies
it leaves an acknowledgement (``model_command_acks``), and a host is sent what it has not
acknowledged since it was enrolled.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from garrison.errors import InvalidInput
from garrison.model.commands import ModelCommand, check_op
from garrison.store import schema
from garrison.store.base import CARecord, HostRecord, RevokedSerial, check_command, check_kind
from garrison.store.dialect import insert

if TYPE_CHECKING:
    from garrison.fleet.enroll import TokenRecord as EnrolToken


# -- hosts ------------------------------------------------------------------------------------


def enrol_host(conn: Connection, record: HostRecord) -> None:
    stmt = insert(conn, schema.hosts).values(_host_row(record))
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"serial": stmt.excluded.serial, "enrolled": stmt.excluded.enrolled, "revoked": None},
    ))  # fmt: skip


def add_new_host(conn: Connection, record: HostRecord) -> bool:
    table = schema.hosts
    stmt = insert(conn, table).values(_host_row(record))
    stmt = stmt.on_conflict_do_nothing(index_elements=["name"])
    return conn.execute(stmt.returning(table.c.name)).first() is not None


def _host_row(record: HostRecord) -> dict[str, Any]:
    """A host's row as enrolment writes it: not revoked."""
    return {
        "name": check_kind(record.name, "host name"),
        "serial": record.serial,
        "enrolled": record.enrolled,
        "revoked": None,
        "last_seen": record.last_seen,
    }


def get_host(conn: Connection, name: str) -> HostRecord | None:
    table = schema.hosts
    row = conn.execute(sa.select(table).where(table.c.name == name)).first()
    return None if row is None else _host(row)


def list_hosts(conn: Connection) -> list[HostRecord]:
    table = schema.hosts
    return [_host(r) for r in conn.execute(sa.select(table).order_by(table.c.name))]


def revoke_host(conn: Connection, name: str, when: float) -> bool:
    table = schema.hosts
    stmt = table.update().where(table.c.name == name)
    return bool(conn.execute(stmt.values(revoked=sa.func.coalesce(table.c.revoked, when))).rowcount)


def host_seen(conn: Connection, name: str, when: float) -> None:
    table = schema.hosts
    later = sa.or_(table.c.last_seen.is_(None), table.c.last_seen < when)
    conn.execute(table.update().where(table.c.name == name, later).values(last_seen=when))


def delete_host(conn: Connection, name: str) -> bool:
    acks, table = schema.model_command_acks, schema.hosts
    conn.execute(acks.delete().where(acks.c.host == name))
    return bool(conn.execute(table.delete().where(table.c.name == name)).rowcount)


def _host(row: Any) -> HostRecord:
    return HostRecord(row.name, row.serial, row.enrolled, row.revoked, row.last_seen)


# -- enrolment tokens -------------------------------------------------------------------------


def add_enrol_token(conn: Connection, record: EnrolToken) -> None:
    table = schema.enrol_tokens
    values = {
        "id": record.id,
        "secret_hash": record.secret_hash,
        "created": record.created,
        "expires": record.expires,
        "used": record.used,
        "max_uses": record.max_uses,
        "uses": record.uses,
    }
    stmt = insert(conn, table).values(values).on_conflict_do_nothing(index_elements=["id"])
    # RETURNING says whether it went in (psycopg gives no row count for ON CONFLICT).
    if conn.execute(stmt.returning(table.c.id)).first() is None:
        raise InvalidInput(f"enrolment token {record.id[:16]} exists already")


def get_enrol_token(conn: Connection, token_id: str) -> EnrolToken | None:
    table = schema.enrol_tokens
    row = conn.execute(sa.select(table).where(table.c.id == token_id)).first()
    return None if row is None else _enrol_token(row)


def mark_enrol_token_used(conn: Connection, token_id: str, when: float) -> bool:
    """One statement that checks and spends a use: of callers at once, those beyond the
    token's ``max_uses`` find it spent (the row's lock orders them)."""
    table = schema.enrol_tokens
    uses = _uses(table)
    stmt = table.update().where(table.c.id == token_id, uses < table.c.max_uses)
    stmt = stmt.values(used=when, uses=uses + 1)
    return conn.execute(stmt.returning(table.c.id)).first() is not None


def _uses(table: sa.Table) -> sa.ColumnElement[int]:
    """The uses spent. A token used before migration 0004 counted none (``uses`` 0 with
    ``used`` set): it counts one, so a spent one-use token stays spent."""
    spent_before = sa.and_(table.c.used.is_not(None), table.c.uses == 0)
    return sa.case((spent_before, 1), else_=table.c.uses)


def list_enrol_tokens(conn: Connection) -> list[EnrolToken]:
    table = schema.enrol_tokens
    stmt = sa.select(table).order_by(table.c.created.desc(), table.c.id.desc())
    return [_enrol_token(r) for r in conn.execute(stmt)]


def delete_enrol_token(conn: Connection, token_id: str) -> bool:
    table = schema.enrol_tokens
    return bool(conn.execute(table.delete().where(table.c.id == token_id)).rowcount)


def _enrol_token(row: Any) -> EnrolToken:
    # Imported here: garrison.fleet loads cryptography, which opening a store does not need.
    from garrison.fleet.enroll import TokenRecord  # noqa: PLC0415

    uses = 1 if row.used is not None and row.uses == 0 else row.uses  # see _uses
    return TokenRecord(
        row.id, row.secret_hash, row.created, row.expires, row.used, row.max_uses, uses
    )


# -- the console's CA and the serials it revoked ----------------------------------------------


def get_console_ca(conn: Connection) -> CARecord | None:
    table = schema.console_ca
    row = conn.execute(sa.select(table).where(table.c.id == 1)).first()
    return None if row is None else CARecord(row.cert_pem, row.key_pem, row.created)


def add_console_ca(conn: Connection, record: CARecord) -> CARecord:
    """Insert unless there is one, then read back: under concurrent inserts the loser's
    ON CONFLICT waits for the winner's commit, and then reads the winner's row."""
    table = schema.console_ca
    values = {"id": 1, "cert_pem": record.cert_pem, "key_pem": record.key_pem,
              "created": record.created}  # fmt: skip
    conn.execute(insert(conn, table).values(values).on_conflict_do_nothing(index_elements=["id"]))
    stored = get_console_ca(conn)
    assert stored is not None  # inserted, or there already
    return stored


def add_revoked_serial(conn: Connection, record: RevokedSerial) -> bool:
    table = schema.revoked_serials
    values = {"serial": record.serial, "host": record.host, "revoked": record.revoked}
    stmt = insert(conn, table).values(values).on_conflict_do_nothing(index_elements=["serial"])
    return conn.execute(stmt.returning(table.c.serial)).first() is not None


def is_serial_revoked(conn: Connection, serial: str) -> bool:
    table = schema.revoked_serials
    stmt = sa.select(table.c.serial).where(table.c.serial == serial)
    return conn.execute(stmt).first() is not None


def list_revoked_serials(conn: Connection) -> list[RevokedSerial]:
    table = schema.revoked_serials
    rows = conn.execute(sa.select(table).order_by(table.c.revoked, table.c.serial))
    return [RevokedSerial(r.serial, r.host, r.revoked) for r in rows]


# -- model commands ---------------------------------------------------------------------------


def add_model_command(conn: Connection, command: ModelCommand) -> ModelCommand:
    table = schema.model_commands
    values = {
        "op": command.op,
        "profile_id": command.profile_id,
        "seconds": command.seconds,
        "time": command.time,
    }
    new_id = conn.execute(table.insert().values(values).returning(table.c.id)).scalar_one()
    return ModelCommand(command.op, command.profile_id, command.seconds, command.time, new_id)


def pending_model_commands(conn: Connection, host: str | None) -> list[ModelCommand]:
    table = schema.model_commands
    stmt = sa.select(table).order_by(table.c.id)
    if host is None:
        stmt = stmt.where(table.c.done.is_(None))
    else:
        acks, hosts = schema.model_command_acks, schema.hosts
        applied = sa.exists().where(acks.c.command_id == table.c.id, acks.c.host == host)
        stmt = stmt.join(hosts, hosts.c.name == host)  # none for a host not enrolled
        stmt = stmt.where(table.c.time >= hosts.c.enrolled, sa.not_(applied))
    rows = conn.execute(stmt).all()
    return [ModelCommand(check_op(r.op), r.profile_id, r.seconds, r.time, r.id) for r in rows]


def finish_model_commands(conn: Connection, ids: Sequence[int], host: str | None) -> None:
    table = schema.model_commands
    if not ids:
        return
    if host is not None:
        acks = schema.model_command_acks
        known = sa.select(table.c.id, sa.literal(host, sa.Text)).where(table.c.id.in_(ids))
        acked = insert(conn, acks).from_select(["command_id", "host"], known)
        conn.execute(acked.on_conflict_do_nothing(index_elements=["command_id", "host"]))
    first = table.update().where(table.c.id.in_(ids), table.c.done.is_(None))
    conn.execute(first.values(done=time.time()))


class SQLHosts:
    """Hosts, enrolment tokens and model commands: a part of ``SQLStore`` (whose ``_read``
    and ``_write`` it uses)."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Connection]: ...
        def _write(self) -> AbstractContextManager[Connection]: ...

    def enrol_host(self, record: HostRecord) -> None:
        with self._write() as conn:
            enrol_host(conn, record)

    def add_new_host(self, record: HostRecord) -> bool:
        with self._write() as conn:
            return add_new_host(conn, record)

    def get_host(self, name: str) -> HostRecord | None:
        with self._read() as conn:
            return get_host(conn, name)

    def list_hosts(self) -> list[HostRecord]:
        with self._read() as conn:
            return list_hosts(conn)

    def revoke_host(self, name: str, when: float) -> bool:
        with self._write() as conn:
            return revoke_host(conn, name, when)

    def host_seen(self, name: str, when: float) -> None:
        with self._write() as conn:
            host_seen(conn, name, when)

    def delete_host(self, name: str) -> bool:
        with self._write() as conn:
            return delete_host(conn, name)

    def add_enrol_token(self, record: EnrolToken) -> None:
        with self._write() as conn:
            add_enrol_token(conn, record)

    def get_enrol_token(self, token_id: str) -> EnrolToken | None:
        with self._read() as conn:
            return get_enrol_token(conn, token_id)

    def mark_enrol_token_used(self, token_id: str, when: float) -> bool:
        with self._write() as conn:
            return mark_enrol_token_used(conn, token_id, when)

    def list_enrol_tokens(self) -> list[EnrolToken]:
        with self._read() as conn:
            return list_enrol_tokens(conn)

    def delete_enrol_token(self, token_id: str) -> bool:
        with self._write() as conn:
            return delete_enrol_token(conn, token_id)

    def get_console_ca(self) -> CARecord | None:
        with self._read() as conn:
            return get_console_ca(conn)

    def add_console_ca(self, record: CARecord) -> CARecord:
        with self._write() as conn:
            return add_console_ca(conn, record)

    def add_revoked_serial(self, record: RevokedSerial) -> bool:
        with self._write() as conn:
            return add_revoked_serial(conn, record)

    def is_serial_revoked(self, serial: str) -> bool:
        with self._read() as conn:
            return is_serial_revoked(conn, serial)

    def list_revoked_serials(self) -> list[RevokedSerial]:
        with self._read() as conn:
            return list_revoked_serials(conn)

    def add_model_command(self, command: ModelCommand) -> ModelCommand:
        check_command(command)
        with self._write() as conn:
            return add_model_command(conn, command)

    def pending_model_commands(self, host: str | None = None) -> list[ModelCommand]:
        with self._read() as conn:
            return pending_model_commands(conn, host)

    def finish_model_commands(self, ids: Sequence[int], host: str | None = None) -> None:
        with self._write() as conn:
            finish_model_commands(conn, list(ids), host)
