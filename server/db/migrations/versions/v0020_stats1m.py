"""The statistics' summaries (server/cases/counts.py): `case_counts` (cases per region
code's first six characters, type, source, state, outcome, holder, coordinator,
mediator), `case_region_counts` (per
region, type, holder, coordinator), `case_close_counts` (closed cases per whole hours
to close, type, holder, coordinator), `case_hour_counts` (cases reported per hour),
filled here from the cases and then kept by every case change (docs/PERFORMANCE.md
"Statistics at scale"); and `case_session_experts`, each expert invited to a session
with its case's filters, filled here from the sessions' JSON invites, then written with
each session. The region's statistics index (v0015) then holds every column the
statistics read (the questions of a region the summaries cannot answer read it alone),
and the queue's state index also the source, outcome and report time (the overdue
cases, counted from it alone).

Revision ID: v0020
Revises: v0019
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "v0020"
down_revision = "v0019"
branch_labels = None
depends_on = None

ID = sa.String(64)
TYPES: dict[str, Any] = {"close_hours": sa.BigInteger, "hour": sa.BigInteger}
TYPES |= {"dispute_type": sa.String(32), "region_code": sa.String(32)}
TYPES |= {"source": sa.String(16), "state": sa.String(16), "outcome": sa.String(16)}
TYPES |= {"region_prefix": sa.String(32)}
#: name -> (key columns, their SQL over the cases, which cases), as server/cases/counts.py
#: (copied: a migration stays as it was written when the schema moves on)
SUMMARIES = {
    "case_counts": (
        ["region_prefix", "dispute_type", "source", "state", "outcome",
         "holder_organisation_id", "coordinator_organisation_id", "mediator_id"],
        {"region_prefix": "SUBSTR(region_code, 1, 6)", "outcome": "COALESCE(outcome, '')",
         "mediator_id": "COALESCE(mediator_id, '')"},
        "1 = 1",
    ),
    "case_region_counts": (
        ["region_code", "dispute_type", "holder_organisation_id",
         "coordinator_organisation_id"],
        {},
        "1 = 1",
    ),
    "case_close_counts": (
        ["close_hours", "dispute_type", "holder_organisation_id",
         "coordinator_organisation_id"],
        {"close_hours": "(closed_at - created_at) / 3600"},
        "closed_at IS NOT NULL",
    ),
    "case_hour_counts": (["hour"], {"hour": "created_at - created_at % 3600"}, "1 = 1"),
}  # fmt: skip


#: The region's statistics index, then covering every column (as server/cases/tables.py)
REGION_INDEX = "ix_cases_statistics_region"
REGION_BEFORE = [
    "region_code",
    "created_at",
    "dispute_type",
    "holder_organisation_id",
    "coordinator_organisation_id",
]
REGION_AFTER = [
    *REGION_BEFORE, "source", "state", "outcome", "mediator_id", "deadline_at", "closed_at",
]  # fmt: skip


#: The queue's state index (v0013), then also holding what the overdue statistics read
STATE_INDEX = "ix_cases_queue_state"
STATE_BEFORE = [
    "state",
    "deadline_at",
    "dispute_type",
    "region_code",
    "holder_organisation_id",
    "coordinator_organisation_id",
    "mediator_id",
    "created_ns",
    "id",
]
STATE_AFTER = [*STATE_BEFORE, "source", "outcome", "created_at"]  # fmt: skip


def upgrade() -> None:
    op.drop_index(STATE_INDEX, table_name="cases")
    op.create_index(STATE_INDEX, "cases", STATE_AFTER)
    op.drop_index(REGION_INDEX, table_name="cases")
    # PostgreSQL: a region's prefix is a byte-wise range whatever the collation
    op.create_index(
        REGION_INDEX, "cases", REGION_AFTER, postgresql_ops={"region_code": "text_pattern_ops"}
    )
    for name, (key, expressions, where) in SUMMARIES.items():
        op.create_table(
            name,
            *(sa.Column(c, TYPES.get(c, ID), nullable=False) for c in key),
            sa.Column("n", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint(*key, name=f"pk_{name}"),
            sqlite_with_rowid=False,
        )
        columns = ", ".join(expressions.get(c, c) for c in key)
        groups = ", ".join(str(n) for n in range(1, len(key) + 1))
        op.execute(
            f"INSERT INTO {name} ({', '.join(key)}, n) SELECT {columns}, COUNT(*) "
            f"FROM cases WHERE {where} GROUP BY {groups}"
        )
    op.create_table(
        "case_session_experts",
        sa.Column("session_id", ID, nullable=False),
        sa.Column("invite_id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("expert_id", ID, nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("dispute_type", sa.String(32), nullable=False),
        sa.Column("region_code", sa.String(32), nullable=False),
        sa.Column("holder_organisation_id", ID, nullable=False),
        sa.Column("coordinator_organisation_id", ID, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "invite_id", name="pk_case_session_experts"),
    )
    op.create_index("ix_case_session_experts_case_id", "case_session_experts", ["case_id"])
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT s.id AS session_id, s.invites, c.id, c.created_at, c.dispute_type, "
            "c.region_code, c.holder_organisation_id, c.coordinator_organisation_id "
            "FROM case_sessions s JOIN cases c ON c.id = s.case_id"
        )
    ).mappings()
    made = []
    for row in rows:
        invites = row["invites"]
        if isinstance(invites, str):
            invites = json.loads(invites)
        made += [
            {
                "session_id": row["session_id"],
                "invite_id": invite["invite_id"],
                "case_id": row["id"],
                "expert_id": invite.get("expert_id"),
                "created_at": row["created_at"],
                "dispute_type": row["dispute_type"],
                "region_code": row["region_code"],
                "holder_organisation_id": row["holder_organisation_id"],
                "coordinator_organisation_id": row["coordinator_organisation_id"],
            }
            for invite in invites or []
            if invite.get("kind") == "expert"
        ]
    if made:
        table = sa.table("case_session_experts", *(sa.column(name) for name in made[0]))
        op.bulk_insert(table, made)


def downgrade() -> None:
    op.drop_index("ix_case_session_experts_case_id", table_name="case_session_experts")
    op.drop_table("case_session_experts")
    for name in reversed(SUMMARIES):
        op.drop_table(name)
    op.drop_index(REGION_INDEX, table_name="cases")
    op.create_index(REGION_INDEX, "cases", REGION_BEFORE)
    op.drop_index(STATE_INDEX, table_name="cases")
    op.create_index(STATE_INDEX, "cases", STATE_BEFORE)
