"""The statistics' indexes (server/statistics/, docs/PERFORMANCE.md "Statistics at scale"):
each holds every column its dashboard queries filter, group or count by, led by what
they group by (the type, the mediator, the holder, the region) or by the report time a
period filters: a query reads one index alone (index-only on PostgreSQL, covering on
SQLite), in the order it groups, never the cases' rows with their descriptions.

Revision ID: v0015
Revises: v0014
"""

from __future__ import annotations

from alembic import op

revision = "v0015"
down_revision = "v0014"
branch_labels = None
depends_on = None

#: name -> columns, as server/cases/tables.py STATISTICS_INDEXES (copied: a migration
#: stays as it was written when the schema moves on).
INDEXES = {
    "ix_cases_statistics": [
        "created_at", "dispute_type", "region_code", "holder_organisation_id",
        "coordinator_organisation_id", "state", "outcome", "source", "mediator_id",
        "deadline_at", "closed_at",
    ],
    "ix_cases_statistics_type": [
        "dispute_type", "source", "state", "outcome", "created_at", "region_code",
        "holder_organisation_id", "coordinator_organisation_id", "deadline_at",
    ],
    "ix_cases_statistics_mediator": [
        "mediator_id", "state", "outcome", "deadline_at", "created_at", "dispute_type",
        "region_code", "holder_organisation_id", "coordinator_organisation_id",
    ],
    "ix_cases_statistics_holder": [
        "holder_organisation_id", "state", "outcome", "deadline_at", "created_at",
        "dispute_type", "region_code", "coordinator_organisation_id", "source",
        "mediator_id", "closed_at",
    ],
    "ix_cases_statistics_region": [
        "region_code", "created_at", "dispute_type", "holder_organisation_id",
        "coordinator_organisation_id",
    ],
    "ix_cases_statistics_id": [
        "id", "created_at", "dispute_type", "region_code", "holder_organisation_id",
        "coordinator_organisation_id",
    ],
}  # fmt: skip


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "cases", columns)


def downgrade() -> None:
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="cases")
