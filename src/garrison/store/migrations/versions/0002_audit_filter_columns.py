"""Audits get a column for each field a filter reads: the host (views filter by host once many
hosts report to one console), the rule, the attack type, and msg and command lower case as
UTF-8 bytes for search. Until now SQLite read them from the JSON document with a function of
Garrison's own, which PostgreSQL cannot call. Existing audits are filled from their document.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BATCH = 1000

audits = sa.table(
    "audits",
    sa.column("id", sa.Integer),
    sa.column("doc", sa.Text),
    sa.column("host", sa.Text),
    sa.column("rule", sa.Text),
    sa.column("attack_type", sa.Text),
    sa.column("folded_msg", sa.LargeBinary),
    sa.column("folded_command", sa.LargeBinary),
)


def upgrade() -> None:
    for name in ("host", "rule", "attack_type"):
        op.add_column("audits", sa.Column(name, sa.Text, nullable=False, server_default=""))
    for name in ("folded_msg", "folded_command"):
        op.add_column("audits", sa.Column(name, sa.LargeBinary, nullable=True))
    op.create_index("audits_host", "audits", ["host", "time"])
    _fill(op.get_bind())


def _fill(conn: sa.Connection) -> None:
    last = -1
    while True:
        query = sa.select(audits.c.id, audits.c.doc).where(audits.c.id > last)
        rows = conn.execute(query.order_by(audits.c.id).limit(BATCH)).all()
        if not rows:
            return
        values = [{"_id": audit_id, **_columns(json.loads(doc))} for audit_id, doc in rows]
        stmt = audits.update().where(audits.c.id == sa.bindparam("_id"))
        conn.execute(
            stmt.values({name: sa.bindparam(name) for name in values[0] if name != "_id"}), values
        )
        last = rows[-1][0]


def _columns(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "host": str(doc.get("hostname") or ""),
        "rule": str(doc.get("ruleName") or ""),
        "attack_type": str(doc.get("attackType") or ""),
        "folded_msg": _folded(doc.get("msg")),
        "folded_command": _folded(doc.get("command")),
    }


def _folded(text: Any) -> bytes:
    return str(text or "").lower().encode("utf-8", "surrogatepass")


def downgrade() -> None:
    raise NotImplementedError("a store is never migrated back")
