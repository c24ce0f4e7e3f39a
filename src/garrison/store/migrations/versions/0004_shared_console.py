"""A console shared by replicas, and models per host: the console's CA and the serials it
revoked move into the store (replicas on one PostgreSQL sign and check alike), enrolment
tokens may be used more than once (a DaemonSet's nodes share one), and each model records the
hosts that saved it.

New tables and columns with defaults: nothing existing is rewritten. A console made before
this revision keeps its CA in its data folder until it is first opened (``garrison.fleet``
moves it in then).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_ca",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("cert_pem", sa.Text, nullable=False),
        sa.Column("key_pem", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "revoked_serials",
        sa.Column("serial", sa.Text, primary_key=True),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("revoked", sa.Float, nullable=False),
    )
    op.add_column(
        "enrol_tokens", sa.Column("max_uses", sa.Integer, nullable=False, server_default="1")
    )
    op.add_column("enrol_tokens", sa.Column("uses", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "model_hosts",
        sa.Column("profile_id", sa.Text, primary_key=True),
        sa.Column("host", sa.Text, primary_key=True),
        sa.Column("first_saved", sa.Float, nullable=False),
        sa.Column("last_saved", sa.Float, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("a store is never migrated back")
