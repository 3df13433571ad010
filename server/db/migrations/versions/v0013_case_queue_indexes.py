"""The cases' queue indexes (server/cases/tables.py, docs/PERFORMANCE.md "Cases"): with
100,000 cases the queue read every matching row to filter and sort it; these indexes hold
every column a filter names, then created_ns and id, so a page's ids come from one index.
They replace the single-purpose ones of v0004.

Revision ID: v0013
Revises: v0012
"""

from __future__ import annotations

from alembic import op

revision = "v0013"
down_revision = "v0012"
branch_labels = None
depends_on = None

QUEUE_COLUMNS = [
    "holder_organisation_id",
    "coordinator_organisation_id",
    "mediator_id",
    "created_ns",
    "id",
]
OLD = {
    "ix_cases_state_deadline": ["state", "deadline_at"],
    "ix_cases_holder_state": ["holder_organisation_id", "state"],
    "ix_cases_mediator_id": ["mediator_id"],
    "ix_cases_region_code": ["region_code"],
    "ix_cases_dispute_type": ["dispute_type"],
}


def upgrade() -> None:
    for name in OLD:
        op.drop_index(name, table_name="cases")
    op.create_index(
        "ix_cases_queue_state",
        "cases",
        ["state", "deadline_at", "dispute_type", "region_code", *QUEUE_COLUMNS],
    )
    op.create_index(
        "ix_cases_queue_type",
        "cases",
        ["dispute_type", "region_code", "state", "deadline_at", *QUEUE_COLUMNS],
        postgresql_ops={"region_code": "text_pattern_ops"},
    )
    op.create_index(
        "ix_cases_queue_mediator",
        "cases",
        ["mediator_id", "state", "holder_organisation_id", "created_ns", "id"],
    )
    op.create_index(
        "ix_cases_queue_holder", "cases", ["holder_organisation_id", "state", "created_ns", "id"]
    )


def downgrade() -> None:
    for name in (
        "ix_cases_queue_holder",
        "ix_cases_queue_mediator",
        "ix_cases_queue_type",
        "ix_cases_queue_state",
    ):
        op.drop_index(name, table_name="cases")
    for name, columns in OLD.items():
        op.create_index(name, "cases", columns)
