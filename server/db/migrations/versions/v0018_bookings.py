"""Bookings: availability and the bookings made in it (server/bookings/tables.py).

Revision ID: v0018
Revises: v0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0018"
down_revision = "v0017"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "availability",
        sa.Column("id", ID, nullable=False),
        sa.Column("provider_kind", sa.String(16), nullable=False),
        sa.Column("provider_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("date", sa.String(10), nullable=True),
        sa.Column("start_min", sa.Integer(), nullable=False),
        sa.Column("end_min", sa.Integer(), nullable=False),
        sa.Column("slot_min", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_availability"),
    )
    op.create_index("ix_availability_provider", "availability", ["provider_kind", "provider_id"])
    op.create_table(
        "bookings",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("party_position", sa.Integer(), nullable=False),
        sa.Column("provider_kind", sa.String(16), nullable=False),
        sa.Column("provider_id", ID, nullable=False),
        sa.Column("provider_name", sa.String(200), nullable=False),
        sa.Column("specialty", sa.String(64), nullable=True),
        sa.Column("mediator_id", ID, nullable=True),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("active_key", sa.String(200), nullable=True),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("invites", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("replaced_by", ID, nullable=True),
        sa.Column("created_by", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
        sa.UniqueConstraint("active_key", name="uq_bookings_active_key"),
    )
    op.create_index("ix_bookings_case_id", "bookings", ["case_id"])
    op.create_index("ix_bookings_mediator_id", "bookings", ["mediator_id"])
    op.create_index(
        "ix_bookings_provider_time", "bookings", ["provider_kind", "provider_id", "starts_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_bookings_provider_time", table_name="bookings")
    op.drop_index("ix_bookings_mediator_id", table_name="bookings")
    op.drop_index("ix_bookings_case_id", table_name="bookings")
    op.drop_table("bookings")
    op.drop_index("ix_availability_provider", table_name="availability")
    op.drop_table("availability")
