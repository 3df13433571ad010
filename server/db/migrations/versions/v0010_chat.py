"""Chat: the messages of a room, with whom each was delivered to (server/chat/tables.py).

Revision ID: v0010
Revises: v0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0010"
down_revision = "v0005"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "chat_messages",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("sender_id", ID, nullable=False),
        sa.Column("sender_name", sa.Text(), nullable=False),
        sa.Column("recipient_id", ID, nullable=True),
        sa.Column("caucus_id", ID, nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_chat_messages"),
        sa.UniqueConstraint("id", name="uq_chat_messages_id"),
    )
    op.create_index("ix_chat_messages_room_id", "chat_messages", ["room_id"])


def downgrade() -> None:
    op.drop_index("ix_chat_messages_room_id", table_name="chat_messages")
    op.drop_table("chat_messages")
