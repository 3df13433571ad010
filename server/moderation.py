"""The room's own events: the lobby (admit, admit_all, deny, send_to_lobby), moderation
(mute, request_unmute, remove, lock, end_room), and what people do themselves (raise_hand,
set_muted, leave).

Each handler applies a rule of server/rooms.py through signalling (which checks the
sender first), then tells the room, stops or resumes forwarding the media of a muted
track, and notes what belongs in the evidence in the recording's chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiaojie.server import rooms
from tiaojie.server.media.sfu import MediaPlane
from tiaojie.server.model import Participant, ParticipantStatus, Room
from tiaojie.server.recordings import Recordings, RoomEvent
from tiaojie.server.signalling import CloseReason, Request, Signalling

#: What a participant sent back to the lobby reads (the web client shows its own text).
LOBBY_MESSAGE = "调解员请您在等候区稍候。The mediator asked you to wait in the lobby."


class Moderation:
    """Installs the room's lobby, moderation and self-service events on signalling."""

    def __init__(self, signalling: Signalling, media: MediaPlane, recordings: Recordings) -> None:
        self.signalling = signalling
        self.media = media
        self.recordings = recordings

    def install(self) -> None:
        handlers = {
            "admit": self._admit,
            "admit_all": self._admit_all,
            "deny": self._deny,
            "send_to_lobby": self._send_to_lobby,
            "mute": self._mute,
            "request_unmute": self._request_unmute,
            "remove": self._remove,
            "lock": self._lock,
            "end_room": self._end_room,
            "raise_hand": self._raise_hand,
            "set_muted": self._set_muted,
            "leave": self._leave,
        }
        for event, handler in handlers.items():
            self.signalling.add_handler(event, handler)

    # -- helpers -------------------------------------------------------------------------
    async def _on_target(
        self, request: Request, rule: Callable[..., Participant], *args: Any
    ) -> Participant:
        """Apply `rule(room, participant_id, *args)` to the participant the payload names."""
        target = request.payload["participant_id"]
        return await self.signalling.apply(request, lambda room, _: rule(room, target, *args))

    async def _on_sender(
        self, request: Request, rule: Callable[..., None], *args: Any
    ) -> Participant:
        """Apply `rule(sender, *args)` to the sender; the sender as changed."""

        def change(_: Room, sender: Participant) -> Participant:
            rule(sender, *args)
            return sender

        return await self.signalling.apply(request, change)

    async def _updated(self, room_id: str, participant: Participant) -> None:
        """`participant_updated`: to the room, or to its mediators for someone waiting."""
        data = {"participant": participant.public()}
        if participant.status is ParticipantStatus.LOBBY:
            await self.signalling.broadcast_mediators(room_id, "participant_updated", data)
        else:
            await self.signalling.broadcast(room_id, "participant_updated", data)

    # -- the lobby -----------------------------------------------------------------------
    async def _admit(self, request: Request) -> dict[str, Any]:
        target = await self._on_target(request, rooms.admit)
        await self.signalling.send(target.sid, "admitted", {})
        await self.signalling.enter(request.room_id, target)
        await self.signalling.lobby_changed(request.room_id)
        return {"participant": target.public()}

    async def _admit_all(self, request: Request) -> dict[str, Any]:
        """Everyone waiting (as far as the room has places), with one lobby update."""

        def change(room: Room, _: Participant) -> tuple[list[Participant], int]:
            admitted = rooms.admit_all(room)
            return admitted, len(room.waiting())

        admitted, waiting = await self.signalling.apply(request, change)
        for target in admitted:
            await self.signalling.send(target.sid, "admitted", {})
            await self.signalling.enter(request.room_id, target)
        if admitted:
            await self.signalling.lobby_changed(request.room_id)
        return {"admitted": [p.public() for p in admitted], "waiting": waiting}

    async def _deny(self, request: Request) -> dict[str, Any]:
        target = await self._on_target(request, rooms.deny)
        await self.signalling.close_participant(request.room_id, target, CloseReason.DENIED)
        return {}

    async def _send_to_lobby(self, request: Request) -> dict[str, Any]:
        """Step out without kicking: the participant waits in the lobby again, connected,
        and `admit` brings the same participant back (consent kept on the recording)."""
        target = await self._on_target(request, rooms.send_to_lobby, request.participant_id)
        await self.recordings.note_about(
            request.room_id, RoomEvent.SEND_TO_LOBBY, target, by=request.participant_id
        )
        await self.signalling.send(
            target.sid, "sent_to_lobby", {"by": request.participant_id, "message": LOBBY_MESSAGE}
        )
        await self.signalling.step_out(request.room_id, target)
        return {"participant": target.public()}

    # -- moderation ----------------------------------------------------------------------
    async def _mute(self, request: Request) -> dict[str, Any]:
        track = request.payload["track"]
        target = await self._on_target(request, rooms.mute, track)
        await self.media.set_muted(request.room_id, target.id, track, True)
        await self._updated(request.room_id, target)
        await self.recordings.note_about(
            request.room_id, RoomEvent.MUTE, target, track=track, by=request.participant_id
        )
        return {"participant": target.public()}

    async def _request_unmute(self, request: Request) -> dict[str, Any]:
        track = request.payload["track"]
        target = await self._on_target(request, rooms.request_unmute, track)
        await self.signalling.send(target.sid, "unmute_requested", {"track": track})
        await self._updated(request.room_id, target)
        return {}

    async def _remove(self, request: Request) -> dict[str, Any]:
        target = await self._on_target(request, rooms.remove, request.participant_id)
        await self.recordings.note_about(
            request.room_id, RoomEvent.REMOVE, target, by=request.participant_id
        )
        await self.signalling.close_participant(request.room_id, target, CloseReason.REMOVED)
        return {}

    async def _lock(self, request: Request) -> dict[str, Any]:
        def change(room: Room, _: Participant) -> dict[str, Any]:
            rooms.set_locked(room, request.payload["locked"])
            return room.summary()

        summary = await self.signalling.apply(request, change)
        await self.signalling.broadcast(request.room_id, "room_updated", {"room": summary})
        return {"room": summary}

    async def _end_room(self, request: Request) -> dict[str, Any]:
        gone = await self.signalling.apply(request, lambda room, _: rooms.end(room))
        self.signalling.after_ack(self.signalling.close_room(request.room_id, gone))
        return {}

    # -- what people do themselves -------------------------------------------------------
    async def _raise_hand(self, request: Request) -> dict[str, Any]:
        sender = await self._on_sender(request, rooms.raise_hand, request.payload["raised"])
        await self._updated(request.room_id, sender)
        return {"participant": sender.public()}

    async def _set_muted(self, request: Request) -> dict[str, Any]:
        track, muted = request.payload["track"], request.payload["muted"]
        sender = await self._on_sender(request, rooms.set_muted, track, muted)
        await self.media.set_muted(request.room_id, sender.id, track, muted)
        await self._updated(request.room_id, sender)
        kind = RoomEvent.SELF_MUTE if muted else RoomEvent.SELF_UNMUTE
        await self.recordings.note_about(request.room_id, kind, sender, track=track)
        return {"participant": sender.public()}

    async def _leave(self, request: Request) -> dict[str, Any]:
        def change(room: Room, sender: Participant) -> Participant | None:
            return rooms.disconnect(room, sender.id, request.sid)

        gone = await self.signalling.apply(request, change)
        if gone is not None:
            self.signalling.after_ack(
                self.signalling.close_participant(request.room_id, gone, CloseReason.LEFT)
            )
        return {}
