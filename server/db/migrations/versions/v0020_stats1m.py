"""The statistics' summary `case_counts` (server/cases/counts.py): the number of cases
per combination of report quarter hour, type, region, source, state, outcome, holder,
coordinator, mediator and whole hours to close, filled here from the cases and then kept
by every case change (docs/PERFORMANCE.md "Statistics at scale").

Revision ID: v0020
Revises: v0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0020"
down_revision = "v0019"
branch_labels = None
depends_on = None

ID = sa.String(64)
KEY = [
    "quarter", "dispute_type", "region_code", "source", "state", "outcome",
    "holder_organisation_id", "coordinator_organisation_id", "mediator_id", "close_hours",
]  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "case_counts",
        sa.Column("quarter", sa.BigInteger(), nullable=False),
        sa.Column("dispute_type", sa.String(32), nullable=False),
        sa.Column("region_code", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("holder_organisation_id", ID, nullable=False),
        sa.Column("coordinator_organisation_id", ID, nullable=False),
        sa.Column("mediator_id", ID, nullable=False),
        sa.Column("close_hours", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_case_counts"),
        sqlite_with_rowid=False,
    )
    # as server/cases/counts.py REBUILD (copied: a migration stays as it was written)
    op.execute(
        f"INSERT INTO case_counts ({', '.join(KEY)}, n) "
        "SELECT created_at - created_at % 900, dispute_type, region_code, source, state, "
        "COALESCE(outcome, ''), holder_organisation_id, coordinator_organisation_id, "
        "COALESCE(mediator_id, ''), "
        f"CASE WHEN closed_at IS NULL THEN {-(2**40)} ELSE (closed_at - created_at) / 3600 END, "
        "COUNT(*) FROM cases GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    )


def downgrade() -> None:
    op.drop_table("case_counts")
