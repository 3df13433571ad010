"""Cases: cases, their parties, attachments and log; numbering counters; case settings and
configuration; the expert pool (server/cases/tables.py).

Revision ID: v0004
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0004"
down_revision = "v0003"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", ID, nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("dispute_type", sa.String(32), nullable=False),
        sa.Column("dispute_type_name", sa.Text(), nullable=False),
        sa.Column("region_code", sa.String(32), nullable=False),
        sa.Column("region", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("risk_level", sa.String(16), nullable=False),
        sa.Column("holder_organisation_id", ID, nullable=False),
        sa.Column("coordinator_organisation_id", ID, nullable=False),
        sa.Column("mediator_id", ID, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reported_by", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("accepted_at", sa.BigInteger(), nullable=True),
        sa.Column("deadline_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("log_seq", sa.Integer(), nullable=False),
        sa.Column("log_head", sa.String(64), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("organisation_id", "year", "seq", name="uq_cases_number"),
        sa.UniqueConstraint("code", name="uq_cases_code"),
    )
    op.create_index("ix_cases_state_deadline", "cases", ["state", "deadline_at"])
    op.create_index("ix_cases_holder_state", "cases", ["holder_organisation_id", "state"])
    op.create_index("ix_cases_mediator_id", "cases", ["mediator_id"])
    op.create_index("ix_cases_created_ns", "cases", ["created_ns"])
    op.create_index("ix_cases_region_code", "cases", ["region_code"])
    op.create_index("ix_cases_dispute_type", "cases", ["dispute_type"])
    op.create_table(
        "case_parties",
        sa.Column("case_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("id_number", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_parties_case_id_cases", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", "position", name="pk_case_parties"),
    )
    op.create_table(
        "case_attachments",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("added_at", sa.BigInteger(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name="fk_case_attachments_case_id_cases",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_case_attachments"),
    )
    op.create_index("ix_case_attachments_case_id", "case_attachments", ["case_id"])
    op.create_table(
        "case_log",
        sa.Column("case_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_log_case_id_cases", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", "seq", name="pk_case_log"),
    )
    op.create_table(
        "case_counters",
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_id", "year", name="pk_case_counters"),
    )
    op.create_table(
        "case_settings",
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("organisation_id", name="pk_case_settings"),
    )
    op.create_table(
        "case_config",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_case_config"),
    )
    op.create_table(
        "experts",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("organisation", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experts"),
    )
    op.create_table(
        "expert_specialties",
        sa.Column("expert_id", ID, nullable=False),
        sa.Column("specialty", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name="fk_expert_specialties_expert_id_experts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("expert_id", "specialty", name="pk_expert_specialties"),
    )
    op.create_index("ix_expert_specialties_specialty", "expert_specialties", ["specialty"])


def downgrade() -> None:
    op.drop_table("expert_specialties")
    op.drop_table("experts")
    op.drop_table("case_config")
    op.drop_table("case_settings")
    op.drop_table("case_counters")
    op.drop_table("case_log")
    op.drop_table("case_attachments")
    op.drop_table("case_parties")
    op.drop_table("cases")
