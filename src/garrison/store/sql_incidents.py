"""The SQL stores' incidents: statements on a connection the store holds (its write lock,
its transaction), so that an incident, its audits and the correlation mark move together."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from garrison.audit.record import Audit
from garrison.incidents.record import Incident, IncidentFilter, IncidentState
from garrison.store import schema, sql_audits
from garrison.store.base import dump_doc
from garrison.store.dialect import insert, json_text

MARK = "incidents"  # the row of spool_marks: the last audit id correlated
_DOC_FIELDS = ("kind", "anchor", "containerId", "containerName", "imageName", "hostname",
               "firstTime", "lastTime")  # fmt: skip


def audits_after(conn: Connection, audit_id: int, limit: int) -> list[Audit]:
    table = schema.audits
    stmt = sql_audits.rows().where(table.c.id > audit_id).order_by(table.c.id).limit(limit)
    return [sql_audits.audit_of(r) for r in conn.execute(stmt).all()]


def get_audits(conn: Connection, audit_ids: Sequence[int]) -> list[Audit]:
    found: list[Audit] = []
    for start in range(0, len(audit_ids), 500):  # SQLite's bound on parameters
        chunk = list(audit_ids[start : start + 500])
        stmt = sql_audits.rows().where(schema.audits.c.id.in_(chunk))
        found += [sql_audits.audit_of(r) for r in conn.execute(stmt).all()]
    return found


def mark(conn: Connection) -> int:
    table = schema.spool_marks
    seq = conn.execute(sa.select(table.c.seq).where(table.c.name == MARK)).scalar_one_or_none()
    return int(seq or 0)


def set_mark(conn: Connection, value: int) -> None:
    table = schema.spool_marks
    stmt = insert(conn, table).values(name=MARK, seq=value)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"seq": value}))


def save(conn: Connection, incident: Incident, joined: Sequence[tuple[int, float]]) -> Incident:
    """Insert (no id) or update an incident and add the audits that joined it."""
    table = schema.incidents
    values = {
        "container_id": incident.containerId,
        "anchor": incident.anchor,
        "state": incident.state,
        "last": incident.lastTime,
        "doc": dump_doc({f: getattr(incident, f) for f in _DOC_FIELDS}, "incident"),
    }
    if incident.id is None:
        inserted = conn.execute(table.insert().values(values)).inserted_primary_key
        assert inserted is not None
        incident_id = int(inserted[0])
    else:
        incident_id = incident.id
        conn.execute(table.update().where(table.c.id == incident_id).values(values))
    links = [{"incident_id": incident_id, "audit_id": a, "time": t} for a, t in joined]
    if links:
        conn.execute(insert(conn, schema.incident_audits).on_conflict_do_nothing(), links)
    found = get(conn, incident_id)
    assert found is not None  # written in this transaction
    return found


def open_incident(conn: Connection, container_id: str, anchor: str) -> Incident | None:
    table = schema.incidents
    stmt = sa.select(table).where(
        table.c.container_id == container_id, table.c.anchor == anchor, table.c.state == "open"
    )
    row = conn.execute(stmt.order_by(table.c.id.desc()).limit(1)).first()
    return None if row is None else _incident(conn, row)


def get(conn: Connection, incident_id: int) -> Incident | None:
    table = schema.incidents
    row = conn.execute(sa.select(table).where(table.c.id == incident_id)).first()
    return None if row is None else _incident(conn, row)


def listed(conn: Connection, query: IncidentFilter) -> list[Incident]:
    table = schema.incidents
    stmt = sa.select(table).order_by(table.c.last.desc(), table.c.id.desc())
    if query.state:
        stmt = stmt.where(table.c.state == query.state)
    if query.container:
        prefix = table.c.container_id.startswith(query.container, autoescape=True)
        name = json_text(table.c.doc, "containerName")
        stmt = stmt.where(sa.or_(prefix, name == query.container.removeprefix("/")))
    if query.kind:
        stmt = stmt.where(json_text(table.c.doc, "kind") == query.kind)
    if query.limit:
        stmt = stmt.limit(query.limit)
    return _incidents(conn, conn.execute(stmt).all())


def set_state(conn: Connection, incident_id: int, state: IncidentState) -> bool:
    table = schema.incidents
    done = conn.execute(table.update().where(table.c.id == incident_id).values(state=state))
    return bool(done.rowcount)


def _incident(conn: Connection, row: Any) -> Incident:
    return _incidents(conn, [row])[0]


def _incidents(conn: Connection, rows: Sequence[Any]) -> list[Incident]:
    """The incidents of ``rows``, each with its audits in story order (one query for all)."""
    links = schema.incident_audits
    stmt = sa.select(links.c.incident_id, links.c.audit_id)
    stmt = stmt.where(links.c.incident_id.in_([row.id for row in rows]))
    ids: dict[int, list[int]] = {row.id: [] for row in rows}
    for incident_id, audit_id in conn.execute(stmt.order_by(links.c.time, links.c.audit_id)):
        ids[incident_id].append(int(audit_id))
    return [_of_row(row, ids[row.id]) for row in rows]


def _of_row(row: Any, audit_ids: list[int]) -> Incident:
    doc = json.loads(row.doc)
    fields = {f: doc[f] for f in _DOC_FIELDS}
    return Incident(**fields, state=row.state, auditIds=tuple(audit_ids), id=row.id)
