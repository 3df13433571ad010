"""The statistics' index (server/statistics/, docs/PERFORMANCE.md "Statistics at scale"):
every column a dashboard query filters, groups or counts by, led by the report time the
period filters: each query reads this index alone (an index-only scan on PostgreSQL, a
covering index on SQLite), never the cases' rows with their descriptions.

Revision ID: v0015
Revises: v0014
"""

from __future__ import annotations

from alembic import op

revision = "v0015"
down_revision = "v0014"
branch_labels = None
depends_on = None

COLUMNS = [
    "created_at",
    "dispute_type",
    "region_code",
    "holder_organisation_id",
    "coordinator_organisation_id",
    "state",
    "outcome",
    "source",
    "mediator_id",
    "deadline_at",
    "closed_at",
]


def upgrade() -> None:
    op.create_index("ix_cases_statistics", "cases", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_cases_statistics", table_name="cases")
