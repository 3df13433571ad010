"""Stored chat messages: written before anyone hears of them, read back as a person's
history (what was delivered to them, oldest first).

In the shared database (server/db/), so a message acknowledged to its sender survives a
restart, and a node of a cluster gives a person who enters the history written on
another node (docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from tiaojie.server.chat.tables import chat_messages
from tiaojie.server.db import Database
from tiaojie.server.db.database import guarded

#: Messages a person gets on entering: the most recent ones delivered to them.
HISTORY_LIMIT = 200


@dataclass(frozen=True)
class ChatMessage:
    id: str
    room_id: str
    sender_id: str
    sender_name: str
    recipient_id: str | None
    caucus_id: str | None
    text: str
    at_ms: int
    audience: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        """The `chat` event (docs/PROTOCOL.md); `at` in Unix seconds."""
        return {
            "id": self.id,
            "from": self.sender_id,
            "name": self.sender_name,
            "to": self.recipient_id,
            "caucus_id": self.caucus_id,
            "text": self.text,
            "at": self.at_ms / 1000,
        }


class ChatLog:
    """The `chat_messages` table."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(self, message: ChatMessage) -> None:
        row = {
            "id": message.id,
            "room_id": message.room_id,
            "sender_id": message.sender_id,
            "sender_name": message.sender_name,
            "recipient_id": message.recipient_id,
            "caucus_id": message.caucus_id,
            "text": message.text,
            "at_ms": message.at_ms,
            "audience": list(message.audience),
        }
        with guarded():
            async with self.database.write() as conn:
                await conn.execute(insert(chat_messages).values(**row))

    async def history(
        self, room_id: str, participant_id: str, limit: int = HISTORY_LIMIT
    ) -> list[ChatMessage]:
        """What was delivered to `participant_id` in the room, the last `limit`, oldest
        first. Rooms are small and their chat short: the audience is checked here."""
        query = (
            select(chat_messages)
            .where(chat_messages.c.room_id == room_id)
            .order_by(chat_messages.c.seq)
        )
        with guarded():
            async with self.database.read() as conn:
                rows = (await conn.execute(query)).mappings().all()
        mine = [
            ChatMessage(
                id=row["id"],
                room_id=row["room_id"],
                sender_id=row["sender_id"],
                sender_name=row["sender_name"],
                recipient_id=row["recipient_id"],
                caucus_id=row["caucus_id"],
                text=row["text"],
                at_ms=row["at_ms"],
                audience=tuple(row["audience"]),
            )
            for row in rows
            if participant_id in row["audience"]
        ]
        return mine[-limit:]
