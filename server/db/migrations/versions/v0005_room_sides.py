"""A party's side of the dispute (applicant 申请人 / respondent 被申请人) on invites, and on
the participants who came in by them.

Revision ID: v0005
Revises: v0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0005"
down_revision = "v0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invites", sa.Column("side", sa.String(16), nullable=True))
    op.add_column("participants", sa.Column("side", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("side")
    with op.batch_alter_table("invites") as batch:
        batch.drop_column("side")
