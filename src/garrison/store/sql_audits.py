"""The SQL stores' audit queries and deletions: statements on a connection the store holds,
the same on SQLite and PostgreSQL.

Each field a filter reads has a column of its own (``columns``), filled when the audit is
stored; search compares lower-case bytes (``folded``), so that both databases find what the
in-memory store finds, Unicode and non-UTF-8 bytes included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.store import schema
from garrison.store.base import audit_from_doc
from garrison.store.dialect import contains_bytes, insert, json_text


def columns(audit: Audit) -> dict[str, Any]:
    """The filter columns of an audit's row (``schema.audits``), beside its doc."""
    return {
        "host": audit.hostname,
        "rule": audit.ruleName,
        "attack_type": audit.attackType,
        "folded_msg": folded(audit.msg),
        "folded_command": folded(audit.command),
    }


def folded(text: str) -> bytes:
    """``text`` as search compares it (``folded_contains``), as UTF-8: a lone surrogate (a
    command line's non-UTF-8 byte) is encoded as itself, so that it is found as itself. UTF-8
    is self-synchronising: bytes occur in bytes exactly where the text occurs in the text."""
    return text.lower().encode("utf-8", "surrogatepass")


def rows() -> sa.Select[Any]:
    """(id, count, time, doc) of audits: what ``audit_of`` reads."""
    table = schema.audits
    return sa.select(table.c.id, table.c.count, table.c.time, table.c.doc)


def audit_of(row: Sequence[Any]) -> Audit:
    """A stored audit from a row of (id, count, time, doc)."""
    audit_id, count, when, doc = row
    return audit_from_doc(json.loads(doc), id=int(audit_id), count=int(count), time=float(when))


def select(query: AuditFilter) -> sa.Select[Any]:
    """(id, count, time, doc) of the audits ``query`` asks for, newest first, paged."""
    table = schema.audits
    stmt = rows().where(*where(query)).order_by(table.c.time.desc(), table.c.id.desc())
    if query.limit:
        stmt = stmt.limit(query.limit)
    if query.offset:
        stmt = stmt.offset(query.offset)
    return stmt


def where(query: AuditFilter) -> list[sa.ColumnElement[bool]]:
    return _where_columns(query) + _where_doc(query)


def _where_columns(query: AuditFilter) -> list[sa.ColumnElement[bool]]:
    table = schema.audits
    where: list[sa.ColumnElement[bool]] = []
    if query.container:
        prefix = table.c.container_id.startswith(query.container, autoescape=True)
        where.append(sa.or_(table.c.container_name == query.container_name(), prefix))
    if query.image:
        ids = [table.c.image_id.startswith(p, autoescape=True) for p in query.image_id_prefixes()]
        where.append(sa.or_(table.c.image_name.in_(query.image_name_values()), *ids))
    if query.type:
        where.append(table.c.type == query.type)
    if query.effect:
        where.append(table.c.effect == query.effect)
    if query.since is not None:
        where.append(table.c.time >= query.since)
    if query.until is not None:
        where.append(table.c.time < query.until)
    return where


def _where_doc(query: AuditFilter) -> list[sa.ColumnElement[bool]]:
    table = schema.audits
    exact = {"rule": query.rule, "host": query.host, "attack_type": query.attack_type}
    where = [table.c[name] == value for name, value in exact.items() if value]
    if query.search:
        needle = sa.literal(folded(query.search), sa.LargeBinary)
        found = [contains_bytes(table.c[name], needle) for name in ("folded_msg", "folded_command")]
        where.append(sa.or_(*found))
    return where


# -- retention ------------------------------------------------------------------------------


def prune_batch(conn: Connection, before: float | None, keep: int, batch: int) -> int:
    """Delete up to ``batch`` of the oldest audits last seen before ``before`` or beyond the
    newest ``keep`` (0: no cap), except those ``_spared``; how many were deleted."""
    reasons = _prune_reasons(conn, before, keep)
    if not reasons:
        return 0
    table = schema.audits
    stmt = sa.select(table.c.id).where(sa.or_(*reasons), sa.not_(_spared()))
    ids = conn.execute(stmt.order_by(table.c.time, table.c.id).limit(batch)).scalars().all()
    delete_audits(conn, ids)
    return len(ids)


def _prune_reasons(
    conn: Connection, before: float | None, keep: int
) -> list[sa.ColumnElement[bool]]:
    table = schema.audits
    reasons: list[sa.ColumnElement[bool]] = []
    if before is not None:
        reasons.append(table.c.time < before)
    if keep:
        newest_first = sa.select(table.c.time, table.c.id).order_by(
            table.c.time.desc(), table.c.id.desc()
        )
        edge = conn.execute(newest_first.offset(keep).limit(1)).first()  # the newest too many
        if edge is not None:
            older = sa.and_(table.c.time == edge.time, table.c.id <= edge.id)
            reasons.append(sa.or_(table.c.time < edge.time, older))
    return reasons


def _spared() -> sa.ColumnElement[bool]:
    """Audits retention never deletes: one a channel has not been sent yet (pending in the
    outbox); the one a blocked container was stopped for (``garrison containers blocked``
    shows it); and the highest id, which SQLite would give again to the next audit (a rowid
    table without AUTOINCREMENT takes the highest + 1), when receivers tell audits by id."""
    audits, outbox, blocked = schema.audits, schema.alert_outbox, schema.blocked
    pending = sa.exists().where(outbox.c.audit_id == audits.c.id, outbox.c.state == "pending")
    blocking = sa.cast(json_text(blocked.c.doc, "auditId"), sa.Integer)
    named = sa.select(blocking).where(blocking.is_not(None))  # NOT IN with a NULL: nothing
    newest = sa.select(sa.func.max(audits.c.id)).scalar_subquery()
    return sa.or_(pending, audits.c.id.in_(named), audits.c.id == newest)


# The tables whose rows name an audit by ``audit_id``: deleted with it. A new table with an
# ``audit_id`` column belongs here (tests/store/test_store_sql_audits.py fails until it is).
DEPENDENTS = (schema.alert_outbox, schema.alert_marks, schema.incident_audits)


def delete_audits(conn: Connection, ids: Sequence[int]) -> None:
    """Delete these audits and, first, every row that names them (``DEPENDENTS``); their
    occurrences go on counting in ``totals``."""
    if not ids:
        return
    _tally(conn, ids)
    for table in DEPENDENTS:
        conn.execute(table.delete().where(table.c.audit_id.in_(ids)))
    conn.execute(schema.audits.delete().where(schema.audits.c.id.in_(ids)))


def _tally(conn: Connection, ids: Sequence[int]) -> None:
    audits, pruned = schema.audits, schema.audit_pruned_totals
    gone = sa.select(audits.c.type, audits.c.effect, sa.func.sum(audits.c.count))
    gone = gone.where(audits.c.id.in_(ids)).group_by(audits.c.type, audits.c.effect)
    for kind, effect, count in conn.execute(gone).all():
        stmt = insert(conn, pruned).values(type=kind, effect=effect, count=count)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["type", "effect"], set_={"count": pruned.c.count + count}
        ))  # fmt: skip


def totals(conn: Connection) -> dict[tuple[str, str], int]:
    """Occurrences by (type, effect): the audits stored and those retention deleted."""
    audits, pruned = schema.audits, schema.audit_pruned_totals
    live = sa.select(audits.c.type, audits.c.effect, sa.func.sum(audits.c.count))
    found: dict[tuple[str, str], int] = {}
    for kind, effect, count in [
        *conn.execute(live.group_by(audits.c.type, audits.c.effect)).all(),
        *conn.execute(sa.select(pruned.c.type, pruned.c.effect, pruned.c.count)).all(),
    ]:
        found[kind, effect] = found.get((kind, effect), 0) + int(count)
    return found
