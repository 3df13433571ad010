"""Sessions from a case and the case's outbox (server/cases/tables.py: `case_sessions`,
`case_outbox`).

Revision ID: v0014
Revises: v0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0014"
down_revision = "v0013"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "case_sessions",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("scheduled_at", sa.BigInteger(), nullable=False),
        sa.Column("mediator_id", ID, nullable=True),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("invites", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("held_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("room_id", name="uq_case_sessions_room_id"),
    )
    op.create_index("ix_case_sessions_case_id", "case_sessions", ["case_id"])
    op.create_table(
        "case_outbox",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("session_id", ID, nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipient", sa.JSON(), nullable=False),
        sa.Column("invite_id", ID, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_outbox_case_id", "case_outbox", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_outbox_case_id", table_name="case_outbox")
    op.drop_table("case_outbox")
    op.drop_index("ix_case_sessions_case_id", table_name="case_sessions")
    op.drop_table("case_sessions")
