"""Many hosts report to one console: the hosts it enrolled (their certificate's serial), the
one-time enrolment tokens, which host applied which model command, and the host of each
blocked container (existing blocks get '': the console's own host, before there were many).

New tables and a column with a default: nothing existing is rewritten. A Garrison older than
this revision refuses the store (a revision it does not know).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("serial", sa.Text, nullable=False),
        sa.Column("enrolled", sa.Float, nullable=False),
        sa.Column("revoked", sa.Float, nullable=True),
        sa.Column("last_seen", sa.Float, nullable=True),
    )
    op.create_table(
        "enrol_tokens",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("used", sa.Float, nullable=True),
    )
    op.create_table(
        "model_command_acks",
        sa.Column("command_id", sa.Integer, sa.ForeignKey("model_commands.id"), primary_key=True),
        sa.Column("host", sa.Text, primary_key=True),
    )
    op.add_column(
        "blocked_containers", sa.Column("host", sa.Text, nullable=False, server_default="")
    )


def downgrade() -> None:
    raise NotImplementedError("a store is never migrated back")
