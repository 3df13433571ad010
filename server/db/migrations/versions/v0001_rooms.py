"""Rooms, their invites, and who is connected (the first versioned schema).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("lobby", sa.Boolean(), nullable=False),
        sa.Column("max_participants", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("recording", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("agreement", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rooms"),
    )
    op.create_table(
        "invites",
        sa.Column("invite_id", ID, nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("admitted", sa.Boolean(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_invites_room_id_rooms", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("invite_id", name="pk_invites"),
    )
    op.create_index("ix_invites_room_id", "invites", ["room_id"])
    op.create_table(
        "participants",
        sa.Column("id", ID, nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("node", sa.String(200), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sid", sa.String(64), nullable=False),
        sa.Column("joined_at", sa.BigInteger(), nullable=False),
        sa.Column("muted_audio", sa.Boolean(), nullable=False),
        sa.Column("muted_video", sa.Boolean(), nullable=False),
        sa.Column("muted_by_mediator", sa.Boolean(), nullable=False),
        sa.Column("unmute_requested", sa.Boolean(), nullable=False),
        sa.Column("hand_raised", sa.Boolean(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"], ["invites.invite_id"], name="fk_participants_id_invites", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_participants_room_id_rooms", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_participants"),
    )
    op.create_index("ix_participants_room_id", "participants", ["room_id"])
    op.create_index("ix_participants_node", "participants", ["node"])


def downgrade() -> None:
    op.drop_table("participants")
    op.drop_table("invites")
    op.drop_table("rooms")
