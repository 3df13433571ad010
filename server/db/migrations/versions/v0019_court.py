"""The court hand-off (司法确认) and the follow-ups (回访): `case_court`,
`case_follow_ups` (server/cases/court_tables.py) and `cases.follow_up_due_at` with its
index. A case already closed with an outcome gets its follow-up due 30 days after its
last change (the log has the exact time; the default of TIAOJIE_NOTIFY_FOLLOW_UP_DAYS).

Revision ID: v0019
Revises: v0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0019"
down_revision = "v0018"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.add_column("cases", sa.Column("follow_up_due_at", sa.BigInteger(), nullable=True))
    op.create_index("ix_cases_follow_up", "cases", ["state", "follow_up_due_at"])
    op.execute(
        "UPDATE cases SET follow_up_due_at = updated_at + 2592000 "
        "WHERE state IN ('succeeded', 'failed')"
    )
    op.create_table(
        "case_court",
        sa.Column("case_id", ID, nullable=False),
        sa.Column("court", sa.Text(), nullable=True),
        sa.Column("agreement_code", ID, nullable=True),
        sa.Column("effective_at", sa.BigInteger(), nullable=True),
        sa.Column("deadline_at", sa.BigInteger(), nullable=True),
        sa.Column("application", sa.JSON(), nullable=False),
        sa.Column("prepared_at", sa.BigInteger(), nullable=True),
        sa.Column("manifest_sha256", sa.String(64), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_case_court"),
    )
    op.create_table(
        "case_follow_ups",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("date", sa.String(10), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("performance", sa.String(16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("actor", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_follow_ups"),
    )
    op.create_index("ix_case_follow_ups_case_id", "case_follow_ups", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_follow_ups_case_id", table_name="case_follow_ups")
    op.drop_table("case_follow_ups")
    op.drop_table("case_court")
    op.drop_index("ix_cases_follow_up", table_name="cases")
    op.drop_column("cases", "follow_up_due_at")
