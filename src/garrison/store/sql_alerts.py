"""The SQL stores' alert channels and outbox: statements on a connection the store holds
(its write lock, its transaction), so that an audit and its deliveries are stored together."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from garrison.errors import InvalidInput
from garrison.store import schema
from garrison.store.base import ChannelRecord, Delivery, DeliveryState, audit_from_doc
from garrison.store.dialect import insert

_DELIVERY_COLUMNS = (
    schema.alert_outbox.c.id,
    schema.alert_outbox.c.channel,
    schema.alert_outbox.c.state,
    schema.alert_outbox.c.attempts,
    schema.alert_outbox.c.next_try,
    schema.alert_outbox.c.created,
    schema.alert_outbox.c.sent,
    schema.alert_outbox.c.error,
    schema.alert_outbox.c.folded,
    schema.audits.c.id.label("audit_id"),
    schema.audits.c.count,
    schema.audits.c.time,
    schema.audits.c.doc,
)


def enqueue(
    conn: Connection, stored: Sequence[tuple[int, int]], rows: Sequence[dict[str, Any]]
) -> None:
    """One pending delivery per channel for each audit stored new, given (id, count) as
    stored for each row (a count still the one the row came with: a new audit, where a
    finding seen again adds to an audit already forwarded)."""
    fresh = [i for (i, count), row in zip(stored, rows, strict=True) if count == row["count"]]
    if not fresh:
        return
    channels = conn.execute(sa.select(schema.alert_channels.c.name)).scalars().all()
    now = time.time()
    values = [
        {"channel": c, "audit_id": audit_id, "state": "pending", "attempts": 0,
         "next_try": now, "created": now, "error": "", "folded": 0}
        for audit_id in fresh for c in channels
    ]  # fmt: skip
    if values:
        conn.execute(schema.alert_outbox.insert(), values)


def add_channel(conn: Connection, record: ChannelRecord) -> None:
    table = schema.alert_channels
    if conn.execute(sa.select(table.c.name).where(table.c.name == record.name)).first():
        raise InvalidInput(f"channel name {record.name!r}: a channel of that name exists")
    conn.execute(table.insert().values(name=record.name, url=record.url, created=record.created))


def remove_channel(conn: Connection, name: str) -> bool:
    outbox = schema.alert_outbox
    conn.execute(schema.alert_marks.delete().where(schema.alert_marks.c.channel == name))
    conn.execute(outbox.delete().where(outbox.c.channel == name, outbox.c.state == "pending"))
    table = schema.alert_channels
    return bool(conn.execute(table.delete().where(table.c.name == name)).rowcount)


def list_channels(conn: Connection) -> list[ChannelRecord]:
    table = schema.alert_channels
    rows = conn.execute(sa.select(table).order_by(table.c.name)).all()
    return [ChannelRecord(r.name, r.url, r.created) for r in rows]


def due(conn: Connection, channel: str, now: float, limit: int) -> list[Delivery]:
    outbox = schema.alert_outbox
    stmt = _deliveries().where(
        outbox.c.channel == channel, outbox.c.state == "pending", outbox.c.next_try <= now
    )
    stmt = stmt.order_by(outbox.c.next_try, outbox.c.id).limit(limit)
    return [_delivery(r) for r in conn.execute(stmt).all()]


def delivered(conn: Connection, delivery_id: int, when: float, period: float) -> None:
    outbox = schema.alert_outbox
    conn.execute(
        outbox.update()
        .where(outbox.c.id == delivery_id)
        .values(state="sent", sent=when, attempts=outbox.c.attempts + 1, error="")
    )
    row = conn.execute(
        sa.select(outbox.c.channel, outbox.c.audit_id, outbox.c.folded).where(
            outbox.c.id == delivery_id
        )
    ).first()
    if row is not None and row.folded == 0:
        marks = schema.alert_marks
        mark = {"counted": 1, "period": period, "next_summary": when + period}
        stmt = insert(conn, marks).values(channel=row.channel, audit_id=row.audit_id, **mark)
        conn.execute(stmt.on_conflict_do_nothing())


def skip(conn: Connection, delivery_id: int, reason: str) -> None:
    outbox = schema.alert_outbox
    conn.execute(
        outbox.update()
        .where(outbox.c.id == delivery_id, outbox.c.state == "pending")
        .values(state="skipped", error=reason[:500])
    )


def make_summaries(conn: Connection, channel: str, now: float) -> int:
    marks, audits = schema.alert_marks, schema.audits
    grown = conn.execute(
        sa.select(marks.c.audit_id, marks.c.counted, marks.c.period, audits.c.count)
        .join(audits, audits.c.id == marks.c.audit_id)
        .where(
            marks.c.channel == channel,
            marks.c.next_summary <= now,
            audits.c.count > marks.c.counted,
        )
    ).all()
    for row in grown:
        conn.execute(schema.alert_outbox.insert().values(
            channel=channel, audit_id=row.audit_id, state="pending", attempts=0, next_try=now,
            created=now, error="", folded=row.count - row.counted,
        ))  # fmt: skip
        conn.execute(
            marks.update()
            .where(marks.c.channel == channel, marks.c.audit_id == row.audit_id)
            .values(counted=row.count, next_summary=now + row.period)
        )
    return len(grown)


def retry_later(conn: Connection, delivery_id: int, next_try: float, error: str) -> None:
    outbox = schema.alert_outbox
    conn.execute(
        outbox.update()
        .where(outbox.c.id == delivery_id, outbox.c.state == "pending")
        .values(next_try=next_try, attempts=outbox.c.attempts + 1, error=error[:500])
    )


def listed(conn: Connection, state: str, limit: int) -> list[Delivery]:
    outbox = schema.alert_outbox
    stmt = _deliveries().order_by(outbox.c.id.desc())
    if state:
        stmt = stmt.where(outbox.c.state == state)
    if limit:
        stmt = stmt.limit(limit)
    return [_delivery(r) for r in conn.execute(stmt).all()]


def totals(conn: Connection) -> dict[tuple[str, str], int]:
    outbox = schema.alert_outbox
    stmt = sa.select(outbox.c.channel, outbox.c.state, sa.func.count())
    rows = conn.execute(stmt.group_by(outbox.c.channel, outbox.c.state)).all()
    return {(c, s): int(n) for c, s, n in rows}


def _deliveries() -> sa.Select[Any]:
    outbox, audits = schema.alert_outbox, schema.audits
    return sa.select(*_DELIVERY_COLUMNS).join(audits, audits.c.id == outbox.c.audit_id)


def _delivery(row: Any) -> Delivery:
    audit = audit_from_doc(
        json.loads(row.doc), id=int(row.audit_id), count=int(row.count), time=float(row.time)
    )
    return Delivery(
        id=int(row.id), channel=row.channel, audit=audit,
        state=_state(row.state), attempts=int(row.attempts), folded=int(row.folded),
        next_try=float(row.next_try), created=float(row.created),
        sent=None if row.sent is None else float(row.sent), error=row.error,
    )  # fmt: skip


def _state(text: str) -> DeliveryState:
    return "sent" if text == "sent" else "skipped" if text == "skipped" else "pending"
