"""The chat's signalling: `chat_send` (checked, rate-limited, routed, stored, delivered,
main-room chat noted in the recording's chain) and `chat_history` for whoever enters.

A message reaches the connections of its route's recipients one by one (`chat`), never a
socket.io room: who gets it is decided here (server/chat/routing.py), and the recorder
is never among them. What the recording's chain gets of room chat is the message id,
the sender and the sha256 of the text, not the text (docs/ARCHIVE.md).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from tiaojie.server.chat.log import ChatLog, ChatMessage
from tiaojie.server.chat.routing import CaucusOf, Route, main_room, route
from tiaojie.server.model import Participant, Room, new_id
from tiaojie.server.ratelimit import RateLimit
from tiaojie.server.recordings import Recordings, RoomEvent
from tiaojie.server.roles import Role
from tiaojie.server.signalling import Request, Signalling

#: Messages one person may send: a burst of CHAT_BURST, then CHAT_RATE a second.
CHAT_RATE = 1.0
CHAT_BURST = 5


def text_sha256(text: str) -> str:
    """The chained digest of a message: sha256 of its text (normal form) as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Chat:
    """Installs `chat_send` and the history on entering."""

    def __init__(
        self,
        signalling: Signalling,
        log: ChatLog,
        recordings: Recordings,
        caucus_of: CaucusOf = main_room,
        limit: RateLimit | None = None,
    ) -> None:
        self.signalling = signalling
        self.log = log
        self.recordings = recordings
        self.caucus_of = caucus_of
        self.limit = limit or RateLimit("chat messages", CHAT_RATE, CHAT_BURST)

    def install(self) -> None:
        self.signalling.add_handler("chat_send", self._send)
        self.signalling.on_enter(self._entered)

    async def _send(self, request: Request) -> dict[str, Any]:
        self.limit.take((request.room_id, request.participant_id))
        to = request.payload.get("to")

        def where(room: Room, sender: Participant) -> tuple[Participant, Route]:
            return sender, route(room, sender, to, self.caucus_of)

        sender, way = await self.signalling.dry_run(request, where)
        message = ChatMessage(
            id=new_id("m_"),
            room_id=request.room_id,
            sender_id=sender.id,
            sender_name=sender.name,
            recipient_id=way.to,
            caucus_id=way.caucus_id,
            text=request.payload["text"],
            at_ms=int(time.time() * 1000),
            audience=tuple(p.id for p in way.recipients),
        )
        await self.log.add(message)
        data = message.public()
        for person in way.recipients:
            await self.signalling.send(person.sid, "chat", data)
        if way.recorded:
            await self.recordings.note_about(
                request.room_id,
                RoomEvent.CHAT,
                sender,
                role=str(sender.role),
                chat_id=message.id,
                sha256=text_sha256(message.text),
            )
        return {"message": data}

    async def _entered(self, room_id: str, participant: Participant) -> None:
        """The chat delivered to this person so far (nothing from before they were first
        admitted, nor from while they were out of the room)."""
        if participant.role is Role.RECORDER:
            return
        history = await self.log.history(room_id, participant.id)
        await self.signalling.send(
            participant.sid, "chat_history", {"messages": [m.public() for m in history]}
        )
