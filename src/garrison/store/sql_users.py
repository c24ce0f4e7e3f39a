"""The SQL stores' console users, API tokens and page sessions: statements on a connection
the store holds (its write lock, its transaction), and ``SQLUsers``, the part of ``SQLStore``
that runs them.

Each guarded change writes first and checks after, in one transaction: the write holds the
store's write lock (SQLite's own; on PostgreSQL, the advisory lock every write of the store
takes), so what the check reads is the newest state and nobody changes it before the commit
(a read first would run outside the transaction in pysqlite, and race). Raising after the
write rolls it back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from garrison.errors import InvalidInput, NotFound
from garrison.store import schema
from garrison.store.base import (
    SessionRecord,
    TokenRecord,
    UserRecord,
    last_admin,
    user_exists,
)
from garrison.store.dialect import insert


def add_user(conn: Connection, record: UserRecord) -> None:
    values = {
        "name": record.name,
        "role": record.role,
        "password_hash": record.password_hash,
        "created": record.created,
        "disabled": record.disabled,
    }
    table = schema.users
    stmt = insert(conn, table).values(values).on_conflict_do_nothing(index_elements=["name"])
    # The primary key decides: no check-then-insert race. RETURNING says whether it went in
    # (psycopg gives no row count for an INSERT … ON CONFLICT).
    if conn.execute(stmt.returning(table.c.name)).first() is None:
        raise user_exists(record.name)


def get_user(conn: Connection, name: str) -> UserRecord | None:
    table = schema.users
    row = conn.execute(sa.select(table).where(table.c.name == name)).first()
    return None if row is None else _user(row)


def list_users(conn: Connection) -> list[UserRecord]:
    table = schema.users
    return [_user(r) for r in conn.execute(sa.select(table).order_by(table.c.name))]


def update_user(conn: Connection, name: str, values: dict[str, Any]) -> bool:
    table = schema.users
    if not values:
        return get_user(conn, name) is not None
    done = conn.execute(table.update().where(table.c.name == name).values(values)).rowcount
    if done and _demotes(values) and enabled_admins(conn) == 0:
        raise last_admin(name)
    return bool(done)


def delete_user(conn: Connection, name: str) -> bool:
    for table in (schema.api_tokens, schema.sessions):
        conn.execute(table.delete().where(table.c.user == name))
    users = schema.users
    stmt = users.delete().where(users.c.name == name).returning(users.c.role, users.c.disabled)
    gone = conn.execute(stmt).first()
    if gone is None:
        return False
    if gone.role == "admin" and not gone.disabled and enabled_admins(conn) == 0:
        raise last_admin(name)
    return True


def enabled_admins(conn: Connection) -> int:
    table = schema.users
    stmt = sa.select(sa.func.count()).where(table.c.role == "admin", table.c.disabled.is_(False))
    return int(conn.execute(stmt).scalar_one())


def add_token(conn: Connection, record: TokenRecord) -> None:
    values = {
        "id": record.id,
        "user": record.user,
        "name": record.name,
        "secret_hash": record.secret_hash,
        "created": record.created,
        "expires": record.expires,
        "last_used": record.last_used,
    }
    table = schema.api_tokens
    stmt = insert(conn, table).values(values).on_conflict_do_nothing(index_elements=["id"])
    with _naming_user(conn, record.user):
        inserted = conn.execute(stmt.returning(table.c.id)).first()
    if inserted is None:
        raise InvalidInput(f"token id {record.id[:16]!r} exists")


def get_token(conn: Connection, token_id: str) -> TokenRecord | None:
    table = schema.api_tokens
    row = conn.execute(sa.select(table).where(table.c.id == token_id)).first()
    return None if row is None else _token(row)


def list_tokens(conn: Connection, user: str | None) -> list[TokenRecord]:
    table = schema.api_tokens
    stmt = sa.select(table).order_by(table.c.created, table.c.id)
    if user is not None:
        stmt = stmt.where(table.c.user == user)
    return [_token(r) for r in conn.execute(stmt)]


def delete_token(conn: Connection, token_id: str) -> bool:
    table = schema.api_tokens
    return bool(conn.execute(table.delete().where(table.c.id == token_id)).rowcount)


def touch_token(conn: Connection, token_id: str, when: float) -> None:
    table = schema.api_tokens
    conn.execute(table.update().where(table.c.id == token_id).values(last_used=when))


def add_session(conn: Connection, record: SessionRecord) -> None:
    values = {
        "key_hash": record.key_hash,
        "user": record.user,
        "csrf": record.csrf,
        "created": record.created,
        "expires": record.expires,
    }
    with _naming_user(conn, record.user):
        conn.execute(schema.sessions.insert().values(values))


def get_session(conn: Connection, key_hash: str) -> SessionRecord | None:
    table = schema.sessions
    row = conn.execute(sa.select(table).where(table.c.key_hash == key_hash)).first()
    if row is None:
        return None
    return SessionRecord(row.key_hash, row.user, row.csrf, row.created, row.expires)


def delete_session(conn: Connection, key_hash: str) -> bool:
    table = schema.sessions
    return bool(conn.execute(table.delete().where(table.c.key_hash == key_hash)).rowcount)


def delete_sessions_of(conn: Connection, user: str) -> int:
    table = schema.sessions
    return int(conn.execute(table.delete().where(table.c.user == user)).rowcount)


def prune_sessions(conn: Connection, now: float) -> int:
    table = schema.sessions
    return int(conn.execute(table.delete().where(table.c.expires <= now)).rowcount)


def _demotes(values: dict[str, Any]) -> bool:
    """Whether the change may leave one admin fewer: a role other than admin, or disabled."""
    return values.get("role", "admin") != "admin" or values.get("disabled") is True


FOREIGN_KEY_VIOLATION = "23503"  # PostgreSQL's SQLSTATE


@contextlib.contextmanager
def _naming_user(conn: Connection, name: str) -> Iterator[None]:
    """Around an insert naming the user ``name``: NotFound (rolling it back) when there is no
    such user, so that a user removed meanwhile leaves no orphan. PostgreSQL's foreign key
    refuses the insert; SQLite enforces none, so the user is looked for after the insert, in
    its transaction."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == FOREIGN_KEY_VIOLATION:
            raise _no_user(name) from exc
        raise
    if get_user(conn, name) is None:
        raise _no_user(name)


def _no_user(name: str) -> NotFound:
    return NotFound(f"user {name[:64]!r}: no such user")


def _user(row: Any) -> UserRecord:
    return UserRecord(row.name, row.role, row.password_hash, row.created, bool(row.disabled))


def _token(row: Any) -> TokenRecord:
    return TokenRecord(
        row.id, row.user, row.name, row.secret_hash, row.created, row.expires, row.last_used
    )


class SQLUsers:
    """Users, tokens and sessions: a part of ``SQLStore`` (whose ``_read`` and ``_write``
    it uses), kept here so that the store's module stays one screenful per concern."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Connection]: ...
        def _write(self) -> AbstractContextManager[Connection]: ...

    def add_user(self, record: UserRecord) -> None:
        with self._write() as conn:
            add_user(conn, record)

    def get_user(self, name: str) -> UserRecord | None:
        with self._read() as conn:
            return get_user(conn, name)

    def list_users(self) -> list[UserRecord]:
        with self._read() as conn:
            return list_users(conn)

    def update_user(
        self,
        name: str,
        *,
        role: str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
    ) -> bool:
        given = {"role": role, "password_hash": password_hash, "disabled": disabled}
        with self._write() as conn:
            return update_user(conn, name, {k: v for k, v in given.items() if v is not None})

    def delete_user(self, name: str) -> bool:
        with self._write() as conn:
            return delete_user(conn, name)

    def add_token(self, record: TokenRecord) -> None:
        with self._write() as conn:
            add_token(conn, record)

    def get_token(self, token_id: str) -> TokenRecord | None:
        with self._read() as conn:
            return get_token(conn, token_id)

    def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        with self._read() as conn:
            return list_tokens(conn, user)

    def delete_token(self, token_id: str) -> bool:
        with self._write() as conn:
            return delete_token(conn, token_id)

    def touch_token(self, token_id: str, when: float) -> None:
        with self._write() as conn:
            touch_token(conn, token_id, when)

    def add_session(self, record: SessionRecord) -> None:
        with self._write() as conn:
            add_session(conn, record)

    def get_session(self, key_hash: str) -> SessionRecord | None:
        with self._read() as conn:
            return get_session(conn, key_hash)

    def delete_session(self, key_hash: str) -> bool:
        with self._write() as conn:
            return delete_session(conn, key_hash)

    def delete_sessions_of(self, user: str) -> int:
        with self._write() as conn:
            return delete_sessions_of(conn, user)

    def prune_sessions(self, now: float) -> int:
        with self._write() as conn:
            return prune_sessions(conn, now)
