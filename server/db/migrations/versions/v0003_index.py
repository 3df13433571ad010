"""The archive index: recordings, agreements, their signatures and log.

Revision ID: v0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0003"
down_revision = "v0002"
branch_labels = None
depends_on = None

ID = sa.String(64)
HASH = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("recording_id", ID, nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("room_title", sa.Text(), nullable=False),
        sa.Column("node", sa.String(200), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("seal_reason", sa.String(64), nullable=True),
        sa.Column("seal_hash", HASH, nullable=True),
        sa.Column("seal_seq", sa.Integer(), nullable=True),
        sa.Column("sealed_at", sa.Double(), nullable=True),
        sa.Column("chain_sha256", HASH, nullable=True),
        sa.Column("addenda", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("timestamp", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("search", sa.Text(), nullable=False),
        sa.Column("indexed_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("recording_id", name="pk_recordings"),
    )
    op.create_index("ix_recordings_room_id", "recordings", ["room_id"])
    op.create_table(
        "agreements",
        sa.Column("code", ID, nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("room_title", sa.Text(), nullable=False),
        sa.Column("recording_id", ID, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", HASH, nullable=False),
        sa.Column("case_number", sa.Text(), nullable=False),
        sa.Column("signers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=True),
        sa.Column("sealed_at", sa.Double(), nullable=True),
        sa.Column("seal_error", sa.Text(), nullable=True),
        sa.Column("pdf_path", sa.Text(), nullable=True),
        sa.Column("pdf_sha256", HASH, nullable=True),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("search", sa.Text(), nullable=False),
        sa.Column("indexed_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_agreements"),
    )
    op.create_index("ix_agreements_room_id", "agreements", ["room_id"])
    op.create_index("ix_agreements_recording_id", "agreements", ["recording_id"])
    op.create_table(
        "agreement_signatures",
        sa.Column("code", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("party_index", sa.Integer(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("typed_name", sa.Text(), nullable=False),
        sa.Column("participant_id", ID, nullable=False),
        sa.Column("fingerprint", HASH, nullable=False),
        sa.Column("signed_at", sa.Double(), nullable=False),
        sa.Column("mark_sha256", HASH, nullable=False),
        sa.ForeignKeyConstraint(
            ["code"],
            ["agreements.code"],
            name="fk_agreement_signatures_code_agreements",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code", "seq", name="pk_agreement_signatures"),
    )
    op.create_table(
        "agreement_events",
        sa.Column("code", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.Double(), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["code"],
            ["agreements.code"],
            name="fk_agreement_events_code_agreements",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code", "seq", name="pk_agreement_events"),
    )


def downgrade() -> None:
    op.drop_table("agreement_events")
    op.drop_table("agreement_signatures")
    op.drop_table("agreements")
    op.drop_table("recordings")
