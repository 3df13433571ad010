"""Screening and caucuses of a room: two JSON columns of `rooms` (server/separation.py).

Revision ID: v0011
Revises: v0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0011"
down_revision = "v0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rooms", sa.Column("screens", sa.JSON(none_as_null=True), nullable=True))
    op.add_column("rooms", sa.Column("caucuses", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("caucuses")
        batch.drop_column("screens")
