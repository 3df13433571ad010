"""The mediator's notice to everyone: `caucus_broadcast` (checked, rate-limited) reaches
every person in the room, in the main room and in every caucus alike, as
`mediator_notice`, and goes into the recording's chain like room chat (the notice's id,
the sender and the sha256 of its text, not the text: docs/decisions.md).

It is not chat: nobody answers it, it is not kept for who enters later, and it is shown
prominently (a banner), because it is how a mediator reaches people in private rooms
("还有五分钟，请准备回到主会场").
"""

from __future__ import annotations

import time
from typing import Any

from tiaojie.server.chat.service import text_sha256
from tiaojie.server.model import Participant, Room, new_id
from tiaojie.server.ratelimit import RateLimit
from tiaojie.server.recordings import Recordings, RoomEvent
from tiaojie.server.roles import Role
from tiaojie.server.signalling import Request, Signalling

#: Notices one mediator may send: a few at once, then one every 5 s.
NOTICE_BURST = 3
NOTICE_RATE = 0.2


class Notices:
    """Installs `caucus_broadcast`."""

    def __init__(
        self, signalling: Signalling, recordings: Recordings, limit: RateLimit | None = None
    ) -> None:
        self.signalling = signalling
        self.recordings = recordings
        self.limit = limit or RateLimit("mediator notices", NOTICE_RATE, NOTICE_BURST)

    def install(self) -> None:
        self.signalling.add_handler("caucus_broadcast", self._broadcast)

    async def _broadcast(self, request: Request) -> dict[str, Any]:
        self.limit.take((request.room_id, request.participant_id))

        def audience(room: Room, sender: Participant) -> tuple[Participant, list[Participant]]:
            people = [p for p in room.joined() if p.role is not Role.RECORDER]
            return sender, people

        sender, people = await self.signalling.dry_run(request, audience)
        text = request.payload["text"]
        notice = {
            "id": new_id("n_"),
            "from": sender.id,
            "name": sender.name,
            "text": text,
            "at": int(time.time() * 1000),
        }
        for person in people:
            await self.signalling.send(person.sid, "mediator_notice", notice)
        await self.recordings.note_about(
            request.room_id,
            RoomEvent.MEDIATOR_NOTICE,
            sender,
            notice_id=notice["id"],
            sha256=text_sha256(text),
            recipients=len(people),
        )
        return {"notice": notice}
