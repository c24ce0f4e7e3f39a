"""``SQLStore``: the store on a SQL database through SQLAlchemy, the same statements on SQLite
(``SQLiteStore``, store/sqlite.py) and PostgreSQL (``PostgresStore``, store/postgres.py).

Writes in this process go one at a time through a lock; each store adds what its database
needs for writes of other processes (SQLite's own lock; an advisory lock on PostgreSQL).
Statements that the databases spell differently are in store/dialect.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import StoreError
from garrison.incidents.record import Incident, IncidentFilter, IncidentState
from garrison.store import (
    schema,
    sql_alerts,
    sql_audits,
    sql_hosts,
    sql_incidents,
    sql_model_hosts,
)
from garrison.store.base import (
    AuditBatch,
    BlockedContainer,
    ChannelRecord,
    Delivery,
    Doc,
    MergeDocs,
    SyncMarks,
    check_audit,
    check_kind,
    dump_doc,
    profile_of,
)
from garrison.store.dialect import greatest, insert
from garrison.store.sql_hosts import SQLHosts
from garrison.store.sql_model_hosts import SQLModelHosts
from garrison.store.sql_scans import SQLScans
from garrison.store.sql_users import SQLUsers

PRUNE_BATCH = 1000  # audits deleted per transaction: a writer waits for one batch at most
EXPORT_BATCH = 500  # rows fetched at a time by iter_audits


def _insert_audits(
    conn: Connection, rows: list[dict[str, Any]]
) -> tuple[list[Audit], list[dict[str, Any]]]:
    """Insert checked audit rows, many to a statement; one seen before adds to its count.
    The rows of one key are folded into one first (PostgreSQL refuses a statement that
    updates a row twice): the stored audits, and the folded rows they came from, in order."""
    folded = _fold_rows(rows)
    returning = (
        schema.audits.c.id,
        schema.audits.c.count,
        schema.audits.c.time,
        schema.audits.c.doc,
    )
    stored = {r[0]: sql_audits.audit_of(r[1:]) for r in _upsert(conn, folded, returning)}
    return [stored[row["key"]] for row in folded], folded


def _insert_counted(conn: Connection, folded: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Insert rows folded by key (``_fold_rows``): (id, count) of each as stored."""
    returning = (schema.audits.c.id, schema.audits.c.count)
    stored = {r[0]: (int(r[1]), int(r[2])) for r in _upsert(conn, folded, returning)}
    return [stored[row["key"]] for row in folded]


def _upsert(
    conn: Connection, folded: list[dict[str, Any]], returning: tuple[sa.Column[Any], ...]
) -> list[Sequence[Any]]:
    """Insert or add to the audits of ``folded`` (one row per key): the key of each, then
    ``returning``, in no set order."""
    columns = (schema.audits.c.key, *returning)
    if conn.dialect.name == "postgresql":
        names = ", ".join(c.name for c in columns)
        sql = f"{_PG_AUDITS_UPSERT} RETURNING {names}"
        return list(conn.exec_driver_sql(sql, _columns_of(folded)))
    # SQLite: SQLAlchemy's "insertmanyvalues", multi-row INSERTs of one compiled form
    return list(conn.execute(_audits_upsert(conn).returning(*columns), folded))


# PostgreSQL takes the rows as one array per column: one short statement whatever their
# number, which psycopg parses once (a multi-row INSERT's long text it parses every time: half
# a console's CPU at a thousand hosts). The arrays go in binary (%b): psycopg escapes each
# element of a text array with a regular expression, in Python.
_PG_COLUMNS = (
    ("key", "text"), ("time", "float8"), ("container_id", "text"), ("container_name", "text"),
    ("image_name", "text"), ("image_id", "text"), ("type", "text"), ("effect", "text"),
    ("count", "int4"), ("doc", "text"), ("host", "text"), ("rule", "text"),
    ("attack_type", "text"), ("folded_msg", "bytea"), ("folded_command", "bytea"),
)  # fmt: skip
_PG_AUDITS_UPSERT = (
    f"INSERT INTO audits ({', '.join(name for name, _ in _PG_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'%({n})b::{t}[]' for n, t in _PG_COLUMNS)}) "
    "ON CONFLICT (key) DO UPDATE SET count = audits.count + excluded.count, "
    "time = greatest(audits.time, excluded.time)"
)


def _columns_of(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name, _ in _PG_COLUMNS}


def _audits_upsert(conn: Connection) -> sa.Insert:
    table = schema.audits
    new = insert(conn, table)
    return new.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "count": table.c.count + new.excluded.count,
            "time": greatest(table.c.time, new.excluded.time),
        },
    )


def _fold_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per key, in the order keys first came: the first row's fields, the counts
    summed and the latest time, as storing them one after another would leave them."""
    folded: dict[str, dict[str, Any]] = {}
    for row in rows:
        first = folded.get(row["key"])
        if first is None:
            folded[row["key"]] = dict(row)
        else:
            first["count"] += row["count"]
            first["time"] = max(first["time"], row["time"])
    return list(folded.values())


def _blocked_upsert(conn: Connection, record: BlockedContainer) -> sa.Insert:
    text = dump_doc(record.to_json(), f"blocked container {record.container_id}")
    table = schema.blocked
    stmt = insert(conn, table).values(
        container_id=record.container_id, doc=text, time=record.time, host=record.host
    )
    return stmt.on_conflict_do_update(
        index_elements=["container_id"],
        set_={"doc": stmt.excluded.doc, "time": stmt.excluded.time, "host": stmt.excluded.host},
    )


def _advance_mark(conn: Connection, spool: str, seq: int) -> bool:
    """Move the spool's mark to ``seq``; False (nothing written) when it is there already.
    One statement that checks and writes: the mark it reads is the newest."""
    table = schema.spool_marks
    stmt = insert(conn, table).values(name=spool, seq=seq)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"], set_={"seq": stmt.excluded.seq}, where=table.c.seq < seq
    )
    return conn.execute(stmt.returning(table.c.seq)).first() is not None


class SQLStore(SQLUsers, SQLScans, SQLHosts, SQLModelHosts):
    """The store on the database of ``engine`` (its schema made by the subclass); ``where``
    names it in errors. Users, API tokens and sessions: ``SQLUsers`` (store/sql_users.py);
    scan reports: ``SQLScans`` (store/sql_scans.py); hosts, enrolment tokens and model
    commands: ``SQLHosts`` (store/sql_hosts.py); the hosts that saved each model:
    ``SQLModelHosts`` (store/sql_model_hosts.py)."""

    def __init__(self, engine: sa.Engine, where: str) -> None:
        self._engine = engine
        self._where = where
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close the database connections. A call after this is a StoreError: SQLAlchemy
        would open a new pool, whose connections nothing would close (a thread still
        running when its store was closed left one open until the interpreter's end)."""
        self._closed = True
        self._engine.dispose()

    # Execution options of a write transaction's connection, seen by the database's own
    # ``begin`` (SQLite's begins such a transaction IMMEDIATE).
    WRITE_OPTIONS: ClassVar[Mapping[str, bool]] = {}

    def _open_engine(self) -> sa.Engine:
        if self._closed:
            raise StoreError(f"{self._where}: the store is closed")
        return self._engine

    def _lock_writes(self, conn: Connection) -> None:
        """Called first in each write transaction: what the database needs so that writes
        of other processes wait for this one (nothing: SQLite takes its own lock)."""

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._lock, self._mapped(), self._open_engine().connect() as conn:
            conn.execution_options(**self.WRITE_OPTIONS)
            with conn.begin():
                self._lock_writes(conn)
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._mapped(), self._open_engine().connect() as conn:
            yield conn

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"store {self._where}: {reason}") from exc

    # -- models ---------------------------------------------------------------------------

    def save_models(self, docs: Sequence[Mapping[str, Any]]) -> None:
        rows = _model_rows(docs)
        if rows:
            with self._write() as conn:
                _upsert_models(conn, rows)

    def merge_models(self, docs: Sequence[Mapping[str, Any]], merge: MergeDocs) -> list[Doc]:
        incoming = {profile_of(d): dict(d) for d in docs}  # InvalidInput before any write
        if not incoming:
            return []
        table = schema.models
        with self._write() as conn:  # other writers wait (the lock, or PostgreSQL's)
            query = sa.select(table.c.profile_id, table.c.doc)
            stored = dict(conn.execute(query.where(table.c.profile_id.in_(list(incoming)))).all())
            merged = [
                doc if key not in stored else merge(json.loads(stored[key]), doc)
                for key, doc in incoming.items()
            ]
            _upsert_models(conn, _model_rows(merged))
        return merged

    def delete_models(self, profile_ids: Sequence[str]) -> None:
        table = schema.models
        with self._write() as conn:
            conn.execute(table.delete().where(table.c.profile_id.in_(list(profile_ids))))
            sql_model_hosts.delete(conn, profile_ids)

    def load_models(self) -> list[Doc]:
        table = schema.models
        with self._read() as conn:
            rows = conn.execute(sa.select(table.c.doc).order_by(table.c.profile_id))
            return [json.loads(doc) for (doc,) in rows]

    def get_model(self, profile_id: str) -> Doc | None:
        table = schema.models
        with self._read() as conn:
            query = sa.select(table.c.doc).where(table.c.profile_id == profile_id)
            text = conn.execute(query).scalar_one_or_none()
        return None if text is None else json.loads(text)

    def sync_marks(self) -> SyncMarks:
        columns = (schema.policies.c.updated, schema.models.c.updated, schema.model_commands.c.id)
        newest = [sa.select(sa.func.max(column)).scalar_subquery() for column in columns]
        blocked = schema.blocked
        newest.append(sa.select(sa.func.count()).select_from(blocked).scalar_subquery())
        newest.append(sa.select(sa.func.max(blocked.c.time)).scalar_subquery())
        with self._read() as conn:
            policies, models, commands, count, at = conn.execute(sa.select(*newest)).one()
        return SyncMarks(
            float(policies or 0.0), float(models or 0.0), int(commands or 0),
            (int(count or 0), float(at or 0.0)),
        )  # fmt: skip

    def models_since(self, since: float) -> list[tuple[float, Doc]]:
        table = schema.models
        stmt = sa.select(table.c.updated, table.c.doc).where(table.c.updated > since)
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(table.c.updated, table.c.profile_id)).all()
        return [(updated, json.loads(doc)) for updated, doc in rows]

    # -- audits ---------------------------------------------------------------------------

    def add_audits(
        self, audits: Sequence[Audit], spool_mark: int | None = None, spool: str = "audits"
    ) -> list[Audit]:
        rows = [_audit_row(check_audit(a)) for a in audits]
        if not rows and spool_mark is None:
            return []
        with self._write() as conn:
            if spool_mark is not None and not _advance_mark(conn, spool, spool_mark):
                return []  # stored before: sent again after its answer was lost
            stored, folded = _insert_audits(conn, rows)
            sql_alerts.enqueue(conn, [(a.id or 0, a.count) for a in stored], folded)
        by_key = {row["key"]: audit for row, audit in zip(folded, stored, strict=True)}
        return [by_key[row["key"]] for row in rows]

    def add_audit_batches(self, batches: Sequence[AuditBatch]) -> None:
        rows = [[_audit_row(check_audit(a)) for a in b.audits] for b in batches]
        with self._write() as conn:
            fresh = [
                row
                for batch, batch_rows in zip(batches, rows, strict=True)
                if _advance_mark(conn, batch.spool, batch.mark)
                for row in batch_rows
            ]
            if fresh:
                folded = _fold_rows(fresh)
                sql_alerts.enqueue(conn, _insert_counted(conn, folded), folded)

    def spool_mark(self, spool: str = "audits") -> int:
        table = schema.spool_marks
        with self._read() as conn:
            seq = conn.execute(
                sa.select(table.c.seq).where(table.c.name == spool)
            ).scalar_one_or_none()
        return int(seq or 0)

    def list_audits(self, query: AuditFilter | None = None) -> list[Audit]:
        stmt = sql_audits.select(query or AuditFilter())
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [sql_audits.audit_of(r) for r in rows]

    def iter_audits(self, query: AuditFilter | None = None) -> Iterator[Audit]:
        # One statement, fetched in batches: it reads one snapshot of the WAL from its first
        # row to its last, so an audit that moves meanwhile is neither missed nor repeated.
        stmt = sql_audits.select(query or AuditFilter())
        with self._read() as conn:
            result = conn.execute(stmt)
            while rows := result.fetchmany(EXPORT_BATCH):
                yield from (sql_audits.audit_of(r) for r in rows)

    def prune_audits(self, before: float | None, keep: int) -> int:
        deleted = 0
        while True:  # a transaction per batch, so that audits being stored wait little
            with self._write() as conn:
                done = sql_audits.prune_batch(conn, before, keep, PRUNE_BATCH)
            deleted += done
            if done < PRUNE_BATCH:
                return deleted

    def audit_totals(self) -> dict[tuple[str, str], int]:
        with self._read() as conn:
            return sql_audits.totals(conn)

    # -- incidents (store/sql_incidents.py) ---------------------------------------------

    def audits_after(self, audit_id: int, limit: int) -> list[Audit]:
        with self._read() as conn:
            return sql_incidents.audits_after(conn, audit_id, limit)

    def get_audits(self, audit_ids: Sequence[int]) -> list[Audit]:
        with self._read() as conn:
            return sql_incidents.get_audits(conn, audit_ids)

    def incident_mark(self) -> int:
        with self._read() as conn:
            return sql_incidents.mark(conn)

    def save_incident(
        self, incident: Incident, joined: Sequence[tuple[int, float]], mark: int | None = None
    ) -> Incident:
        with self._write() as conn:
            saved = sql_incidents.save(conn, incident, joined)
            if mark is not None:
                sql_incidents.set_mark(conn, mark)
        return saved

    def set_incident_mark(self, audit_id: int) -> None:
        with self._write() as conn:
            sql_incidents.set_mark(conn, audit_id)

    def open_incident(self, container_id: str, anchor: str) -> Incident | None:
        with self._read() as conn:
            return sql_incidents.open_incident(conn, container_id, anchor)

    def get_incident(self, incident_id: int) -> Incident | None:
        with self._read() as conn:
            return sql_incidents.get(conn, incident_id)

    def list_incidents(self, query: IncidentFilter) -> list[Incident]:
        with self._read() as conn:
            return sql_incidents.listed(conn, query)

    def set_incident_state(self, incident_id: int, state: IncidentState) -> bool:
        with self._write() as conn:
            return sql_incidents.set_state(conn, incident_id, state)

    # -- policies, status -------------------------------------------------------------------

    def get_policy(self, kind: str) -> Doc | None:
        return self._get_doc(schema.policies, schema.policies.c.kind, kind)

    def set_policy(self, kind: str, doc: Mapping[str, Any]) -> None:
        text = dump_doc(doc, f"policy {check_kind(kind)}")
        self._put_doc(schema.policies, "kind", kind, text)

    def set_status(self, doc: Mapping[str, Any], source: str = "defender") -> None:
        text = dump_doc(doc, f"status {check_kind(source, 'status source')}")
        self._put_doc(schema.status, "source", source, text)

    def save_host_reports(self, statuses: Mapping[str, Doc], seen: Mapping[str, float]) -> None:
        now = time.time()
        rows = [
            {
                "source": check_kind(k, "status source"),
                "doc": dump_doc(d, f"status {k}"),
                "updated": now,
            }
            for k, d in statuses.items()
        ]
        with self._write() as conn:
            if rows:
                stmt = insert(conn, schema.status)
                conn.execute(stmt.on_conflict_do_update(
                    index_elements=["source"],
                    set_={"doc": stmt.excluded.doc, "updated": stmt.excluded.updated},
                ), rows)  # fmt: skip
            for name, when in seen.items():
                sql_hosts.host_seen(conn, name, when)

    def get_status(self, source: str = "defender") -> Doc | None:
        return self._get_doc(schema.status, schema.status.c.source, source)

    def list_status(self, prefix: str) -> list[tuple[str, Doc]]:
        table = schema.status
        stmt = sa.select(table.c.source, table.c.doc).order_by(table.c.source)
        with self._read() as conn:
            rows = conn.execute(stmt.where(table.c.source.startswith(prefix, autoescape=True)))
            return [(source, json.loads(doc)) for source, doc in rows]

    def _get_doc(self, table: sa.Table, column: sa.Column[Any], name: str) -> Doc | None:
        with self._read() as conn:
            text = conn.execute(sa.select(table.c.doc).where(column == name)).scalar_one_or_none()
        return None if text is None else json.loads(text)

    def _put_doc(self, table: sa.Table, key: str, name: str, text: str) -> None:
        with self._write() as conn:
            stmt = insert(conn, table).values({key: name, "doc": text, "updated": time.time()})
            stmt = stmt.on_conflict_do_update(
                index_elements=[key],
                set_={"doc": stmt.excluded.doc, "updated": stmt.excluded.updated},
            )
            conn.execute(stmt)

    # -- blocked containers ---------------------------------------------------------------

    def add_blocked(self, record: BlockedContainer) -> None:
        with self._write() as conn:
            conn.execute(_blocked_upsert(conn, record))

    def begin_block(self, record: BlockedContainer, audit: Audit) -> BlockedContainer:
        row = _audit_row(check_audit(audit))
        with self._write() as conn:
            (stored,), folded = _insert_audits(conn, [row])
            sql_alerts.enqueue(conn, [(stored.id or 0, stored.count)], folded)
            record = dataclasses.replace(record, audit_id=stored.id)
            conn.execute(_blocked_upsert(conn, record))
        return record

    def update_blocked(self, record: BlockedContainer) -> bool:
        text = dump_doc(record.to_json(), f"blocked container {record.container_id}")
        table = schema.blocked
        mine = (table.c.container_id == record.container_id) & (table.c.host == record.host)
        with self._write() as conn:
            result = conn.execute(table.update().where(mine).values(doc=text, time=record.time))
            return bool(result.rowcount)

    def remove_blocked(self, container_id: str) -> bool:
        table = schema.blocked
        with self._write() as conn:
            result = conn.execute(table.delete().where(table.c.container_id == container_id))
            return bool(result.rowcount)

    def list_blocked(self, host: str | None = None) -> list[BlockedContainer]:
        table = schema.blocked
        stmt = sa.select(table.c.doc, table.c.host).order_by(table.c.time)
        if host is not None:
            stmt = stmt.where(table.c.host == host)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        # The column says the host: a block stored before migration 0003 has none in its doc.
        return [BlockedContainer.from_json(json.loads(doc) | {"host": h}) for doc, h in rows]

    # -- alert channels and the outbox (sql_alerts) -------------------------------------

    def add_channel(self, record: ChannelRecord) -> None:
        with self._write() as conn:
            sql_alerts.add_channel(conn, record)

    def remove_channel(self, name: str) -> bool:
        with self._write() as conn:
            return sql_alerts.remove_channel(conn, name)

    def list_channels(self) -> list[ChannelRecord]:
        with self._read() as conn:
            return sql_alerts.list_channels(conn)

    def due_deliveries(self, channel: str, now: float, limit: int) -> list[Delivery]:
        with self._read() as conn:
            return sql_alerts.due(conn, channel, now, limit)

    def delivered(self, delivery_id: int, when: float, period: float = 60.0) -> None:
        with self._write() as conn:
            sql_alerts.delivered(conn, delivery_id, when, period)

    def skip(self, delivery_id: int, reason: str) -> None:
        with self._write() as conn:
            sql_alerts.skip(conn, delivery_id, reason)

    def make_summaries(self, channel: str, now: float) -> int:
        with self._write() as conn:
            return sql_alerts.make_summaries(conn, channel, now)

    def retry_later(self, delivery_id: int, next_try: float, error: str) -> None:
        with self._write() as conn:
            sql_alerts.retry_later(conn, delivery_id, next_try, error)

    def outbox_totals(self) -> dict[tuple[str, str], int]:
        with self._read() as conn:
            return sql_alerts.totals(conn)

    def list_deliveries(self, state: str = "", limit: int = 100) -> list[Delivery]:
        with self._read() as conn:
            return sql_alerts.listed(conn, state, limit)


def _audit_row(audit: Audit) -> dict[str, Any]:
    doc = audit.to_json()
    doc["time"] = audit.time
    return {
        "key": json.dumps(list(audit.key())),
        "time": audit.time,
        "container_id": audit.containerId,
        "container_name": audit.containerName.removeprefix("/"),
        "image_name": audit.imageName,
        "image_id": audit.imageId,
        "type": audit.type,
        "effect": audit.effect,
        "count": audit.count,
        "doc": dump_doc(doc, f"audit {audit.attackType}"),
        **sql_audits.columns(audit),
    }


def _model_rows(docs: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"profile_id": profile_of(d), "doc": dump_doc(d, f"model {profile_of(d)}")}
            for d in docs]  # fmt: skip


def _upsert_models(conn: Connection, rows: list[dict[str, str]]) -> None:
    # The time taken under the write lock: saves commit in the order of their times, so a
    # reader of models_since(t) misses none saved after what it last saw.
    stmt = insert(conn, schema.models).values(updated=time.time())
    stmt = stmt.on_conflict_do_update(
        index_elements=["profile_id"],
        set_={"doc": stmt.excluded.doc, "updated": stmt.excluded.updated},
    )
    conn.execute(stmt, rows)
