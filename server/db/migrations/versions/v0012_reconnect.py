"""When a participant's connection dropped: they keep their seat for the reconnect grace
(presence `reconnecting`) and come back to it by joining with the same link.

Revision ID: v0012
Revises: v0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0012"
down_revision = "v0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("participants", sa.Column("away_since", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("away_since")
