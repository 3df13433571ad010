"""socket.io signalling: connect with an invite token, presence, lobby and moderation.

One catch-all handler validates every incoming event (known name, one object payload,
size, schema, the sender's role and lobby status) before any state changes. Rooms in
socket.io terms: `room:{id}` holds everyone inside a room, `mediators:{id}` its
mediators; people in the lobby are in neither, so they learn nothing about the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from tiaojie.server import rooms
from tiaojie.server.errors import TiaojieError, bad_request
from tiaojie.server.media.ice import IceSettings
from tiaojie.server.media.sfu import MediaPlane
from tiaojie.server.model import Participant, ParticipantStatus, Room, now
from tiaojie.server.recording import Recordings
from tiaojie.server.recording import public as public_recording
from tiaojie.server.roles import Role, may_send
from tiaojie.server.schemas import CONNECT_AUTH, EVENTS, LARGE_EVENTS
from tiaojie.server.store import RoomStore
from tiaojie.server.tokens import TokenSigner
from tiaojie.server.validation import validate

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 16 * 1024
MAX_MESSAGE_BYTES = 1_000_000  # Engine.IO: larger messages close the connection
CLOSE_MESSAGES = {
    "removed": "The mediator removed you from the room.",
    "denied": "The mediator did not admit you.",
    "revoked": "Your invite link was withdrawn.",
    "room_ended": "The mediation session has ended.",
    "replaced": "You joined from another window or device.",
    "left": "You left the room.",
}

Handler = Callable[[str, str, str, dict[str, Any]], Awaitable[dict[str, Any]]]


def _room_channel(room_id: str) -> str:
    return f"room:{room_id}"


def _mediator_channel(room_id: str) -> str:
    return f"mediators:{room_id}"


class Signalling:
    def __init__(
        self,
        store: RoomStore,
        signer: TokenSigner,
        redis_url: str | None,
        ice: IceSettings | None = None,
        transcode: bool = False,
    ) -> None:
        self.store = store
        self.signer = signer
        self.ice = ice or IceSettings()
        self.media = MediaPlane(self.ice, self._send, self._broadcast, transcode)
        manager = socketio.AsyncRedisManager(redis_url) if redis_url else None
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=manager,
            max_http_buffer_size=MAX_MESSAGE_BYTES,
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", self._on_event)
        self._handlers: dict[str, Handler] = {
            "admit": self._admit,
            "deny": self._deny,
            "mute": self._mute,
            "request_unmute": self._request_unmute,
            "remove": self._remove,
            "lock": self._lock,
            "end_room": self._end_room,
            "raise_hand": self._raise_hand,
            "set_muted": self._set_muted,
            "leave": self._leave,
            "publish": self._publish,
            "subscriber_answer": self._subscriber_answer,
            "start_recording": self._start_recording,
            "stop_recording": self._stop_recording,
            "recording_consent": self._recording_consent,
        }
        #: Set by the app: recording start/stop and the chain's room events.
        self.recordings: Recordings | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Called after a participant entered the room (server.agreements sends its state).
        self.on_enter: list[Callable[[str, Participant], Awaitable[None]]] = []

    def add_handler(self, event: str, handler: Handler) -> None:
        """Route a client event (schema in server.schemas.EVENTS, roles in
        server.roles.PERMISSIONS) to `handler`, behind the same checks as every event."""
        self._handlers[event] = handler

    # -- connection ----------------------------------------------------------------------
    def _spoofed(self, sid: str) -> bool:
        """True when a client emitted an event named `connect` or `disconnect` itself.

        python-socketio routes such events to the connect/disconnect handlers. Genuine calls
        happen while the connection is still pending or already closing, never while it is
        fully connected, which is when client events arrive.
        """
        return bool(self.sio.manager.is_connected(sid, "/"))

    async def _on_connect(
        self, sid: str, environ: object, auth: object = None
    ) -> dict[str, Any] | None:
        if self._spoofed(sid):
            return await self._refuse_event(sid, "connect")
        try:
            if auth is None:
                raise TiaojieError("token_missing", "No invite token was given.", 401)
            auth = validate(CONNECT_AUTH, auth, "auth")
            claims = self.signer.verify(auth["token"], now())
            if auth.get("room_id", claims.room_id) != claims.room_id:
                raise TiaojieError("token_wrong_room", "This link is for another room.", 403)
            name = auth.get("name")
            result = await self.store.update(
                claims.room_id, lambda room: rooms.join(room, claims, sid, name)
            )
        except TiaojieError as error:
            raise socketio.exceptions.ConnectionRefusedError(error.code, error.to_dict()) from None
        await self.sio.save_session(
            sid, {"room_id": claims.room_id, "participant_id": result.participant.id}
        )
        self._spawn(
            self._after_connect(sid, claims.room_id, result.participant.id, result.replaced_sid)
        )
        return None

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_connect(
        self, sid: str, room_id: str, participant_id: str, replaced_sid: str | None
    ) -> None:
        # Events sent before the CONNECT packet confuse clients: wait until it is out.
        for _ in range(500):
            if self.sio.manager.is_connected(sid, "/"):
                break
            await asyncio.sleep(0.01)
        else:
            return
        if replaced_sid:
            await self._close(replaced_sid, "replaced")
        room = await self.store.get(room_id)
        participant = room.participants.get(participant_id) if room else None
        if room is None or participant is None or participant.sid != sid:
            return
        await self.sio.emit(
            "welcome", {"participant": participant.public(), "room": room.summary()}, to=sid
        )
        if participant.status is ParticipantStatus.JOINED:
            await self._enter(room_id, participant)
        else:
            await self._send_lobby(room)

    async def _enter(self, room_id: str, participant: Participant) -> None:
        """Put a joined participant into the room's channels and tell everyone."""
        await self.sio.enter_room(participant.sid, _room_channel(room_id))
        if participant.role is Role.MEDIATOR:
            await self.sio.enter_room(participant.sid, _mediator_channel(room_id))
        room = await self.store.require(room_id)
        is_mediator = participant.role is Role.MEDIATOR
        await self.sio.emit(
            "room_state",
            {
                "room": room.summary(),
                "self": participant.public(),
                "participants": [p.public() for p in room.joined()],
                "lobby": [p.public() for p in room.waiting()] if is_mediator else [],
                "ice_servers": self.ice.servers,
                "publications": self.media.publications(room_id),
                "recording": self._recording_view(room.recording, is_mediator),
            },
            to=participant.sid,
        )
        await self.media.add_peer(
            room_id,
            participant.id,
            participant.sid,
            {"audio": participant.muted_audio, "video": participant.muted_video},
        )
        await self.sio.emit(
            "participant_joined",
            {"participant": participant.public()},
            room=_room_channel(room_id),
            skip_sid=participant.sid,
        )
        for hook in self.on_enter:
            await hook(room_id, participant)
        if participant.role is Role.RECORDER:
            if self.recordings is not None:
                self.recordings.recorder_joined(room_id, participant.sid)
        else:
            await self._record(
                room_id,
                "joined",
                participant_id=participant.id,
                name=participant.name,
                role=str(participant.role),
            )

    async def _on_disconnect(self, sid: str, reason: object = None) -> dict[str, Any] | None:
        if self._spoofed(sid):
            return await self._refuse_event(sid, "disconnect")
        session = await self._session(sid)
        if session is None:
            return None
        room_id, participant_id = session
        try:
            gone = await self.store.update(
                room_id, lambda room: rooms.disconnect(room, participant_id, sid)
            )
        except TiaojieError:
            return None
        if gone is not None:
            await self._announce_gone(room_id, gone, "disconnected")
        return None

    async def _session(self, sid: str) -> tuple[str, str] | None:
        try:
            session = await self.sio.get_session(sid)
        except KeyError:
            return None
        if "room_id" not in session:
            return None
        return session["room_id"], session["participant_id"]

    async def _announce_gone(self, room_id: str, participant: Participant, reason: str) -> None:
        if participant.role is Role.RECORDER and self.recordings is not None:
            self.recordings.recorder_left(room_id, participant.sid)
        elif participant.status is ParticipantStatus.JOINED:
            await self._record(
                room_id,
                "left",
                participant_id=participant.id,
                name=participant.name,
                reason=reason,
            )
        if participant.status is ParticipantStatus.JOINED:
            await self.media.remove_peer(room_id, participant.id)
            await self.sio.emit(
                "participant_left",
                {"participant_id": participant.id, "reason": reason},
                room=_room_channel(room_id),
            )
        else:
            room = await self.store.get(room_id)
            if room is not None:
                await self._send_lobby(room)

    async def _send_lobby(self, room: Room) -> None:
        await self.sio.emit(
            "lobby_updated",
            {"lobby": [p.public() for p in room.waiting()]},
            room=_mediator_channel(room.id),
        )

    async def _close(self, sid: str, reason: str) -> None:
        """Tell a connection why it is being closed, then close it."""
        await self.sio.emit("closed", {"reason": reason, "message": CLOSE_MESSAGES[reason]}, to=sid)
        await self.sio.disconnect(sid)

    # -- requests ------------------------------------------------------------------------
    async def _refuse_event(self, sid: str, event: str) -> dict[str, Any]:
        error = TiaojieError("unknown_event", f"There is no event named {event[:64]!r}.")
        await self.sio.emit("request_error", {"event": event[:64], **error.to_dict()}, to=sid)
        return {"ok": False, **error.to_dict()}

    async def _on_event(self, event: object, sid: str, *args: object) -> dict[str, Any]:
        event = str(event)  # a raw packet may name its event with a number or a list
        try:
            handler = self._handlers.get(event)
            if handler is None:
                raise TiaojieError("unknown_event", f"There is no event named {event[:64]!r}.")
            if len(args) > 1:
                raise bad_request("Send one object as the payload.")
            data = args[0] if args else {}
            limit = LARGE_EVENTS.get(event, MAX_EVENT_BYTES)
            if len(json.dumps(data, default=str)) > limit:
                raise TiaojieError(
                    "payload_too_large", f"Payloads of {event} are limited to {limit} bytes.", 413
                )
            payload = validate(EVENTS[event], data)
            session = await self._session(sid)
            if session is None:
                raise TiaojieError("not_connected", "You are no longer in this room.", 403)
            room_id, participant_id = session
            result = await handler(event, room_id, participant_id, {**payload, "_sid": sid})
            return {"ok": True, **result}
        except TiaojieError as error:
            await self.sio.emit(
                "request_error", {"event": str(event)[:64], **error.to_dict()}, to=sid
            )
            return {"ok": False, **error.to_dict()}
        except Exception:
            log.exception("signalling event %r failed", str(event)[:64])
            error = TiaojieError("internal_error", "The server failed; nothing was changed.")
            return {"ok": False, **error.to_dict()}

    def _authorized(
        self, event: str, participant_id: str, sid: str, change: Callable[[Room, Participant], Any]
    ) -> Callable[[Room], Any]:
        """Wrap a change so it first checks the sender may send `event` right now."""

        def run(room: Room) -> Any:
            sender = rooms.actor(room, participant_id, sid)
            in_lobby = sender.status is ParticipantStatus.LOBBY
            if not may_send(sender.role, event, in_lobby):
                if in_lobby:
                    raise TiaojieError("not_joined", "Wait until the mediator admits you.", 403)
                raise TiaojieError("forbidden", f"A {sender.role} may not {event}.", 403)
            return change(room, sender)

        return run

    async def _check(self, event: str, room_id: str, participant_id: str, sid: str) -> None:
        """The permission check of `_apply`, for requests that change no room state."""
        room = await self.store.require(room_id)
        self._authorized(event, participant_id, sid, lambda room, sender: None)(room)

    async def _apply(
        self,
        event: str,
        room_id: str,
        participant_id: str,
        sid: str,
        change: Callable[[Room, Participant], Any],
    ) -> Any:
        return await self.store.update(
            room_id, self._authorized(event, participant_id, sid, change)
        )

    async def _admit(self, event: str, room_id: str, pid: str, p: dict[str, Any]) -> dict[str, Any]:
        target = await self._apply(
            event, room_id, pid, p["_sid"], lambda room, _: rooms.admit(room, p["participant_id"])
        )
        await self.sio.emit("admitted", {}, to=target.sid)
        await self._enter(room_id, target)
        await self._send_lobby(await self.store.require(room_id))
        return {"participant": target.public()}

    async def _deny(self, event: str, room_id: str, pid: str, p: dict[str, Any]) -> dict[str, Any]:
        target = await self._apply(
            event, room_id, pid, p["_sid"], lambda room, _: rooms.deny(room, p["participant_id"])
        )
        await self._close(target.sid, "denied")
        await self._send_lobby(await self.store.require(room_id))
        return {}

    async def _mute(self, event: str, room_id: str, pid: str, p: dict[str, Any]) -> dict[str, Any]:
        target = await self._apply(
            event,
            room_id,
            pid,
            p["_sid"],
            lambda room, _: rooms.mute(room, p["participant_id"], p["track"]),
        )
        await self.media.set_muted(room_id, target.id, p["track"], True)
        await self._updated(room_id, target)
        await self._record(
            room_id, "mute", participant_id=target.id, name=target.name, track=p["track"], by=pid
        )
        return {"participant": target.public()}

    async def _request_unmute(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        target = await self._apply(
            event,
            room_id,
            pid,
            p["_sid"],
            lambda room, _: rooms.request_unmute(room, p["participant_id"], p["track"]),
        )
        await self.sio.emit("unmute_requested", {"track": p["track"]}, to=target.sid)
        await self._updated(room_id, target)
        return {}

    async def _remove(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        target = await self._apply(
            event,
            room_id,
            pid,
            p["_sid"],
            lambda room, sender: rooms.remove(room, sender, p["participant_id"]),
        )
        await self._record(room_id, "remove", participant_id=target.id, name=target.name, by=pid)
        await self.close_participant(room_id, target, "removed")
        return {}

    async def _lock(self, event: str, room_id: str, pid: str, p: dict[str, Any]) -> dict[str, Any]:
        def change(room: Room, _: Participant) -> dict[str, Any]:
            rooms.set_locked(room, p["locked"])
            return room.summary()

        summary = await self._apply(event, room_id, pid, p["_sid"], change)
        await self.sio.emit("room_updated", {"room": summary}, room=_room_channel(room_id))
        return {"room": summary}

    async def _end_room(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        gone = await self._apply(event, room_id, pid, p["_sid"], lambda room, _: rooms.end(room))
        self._spawn(self._after_ack(self._close_all(room_id, gone, "room_ended")))
        return {}

    async def _raise_hand(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        def change(_: Room, sender: Participant) -> Participant:
            rooms.raise_hand(sender, p["raised"])
            return sender

        sender = await self._apply(event, room_id, pid, p["_sid"], change)
        await self._updated(room_id, sender)
        return {"participant": sender.public()}

    async def _set_muted(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        def change(_: Room, sender: Participant) -> Participant:
            rooms.set_muted(sender, p["track"], p["muted"])
            return sender

        sender = await self._apply(event, room_id, pid, p["_sid"], change)
        await self.media.set_muted(room_id, pid, p["track"], p["muted"])
        await self._updated(room_id, sender)
        await self._record(
            room_id,
            "self_mute" if p["muted"] else "self_unmute",
            participant_id=pid,
            name=sender.name,
            track=p["track"],
        )
        return {"participant": sender.public()}

    async def _publish(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        await self._check(event, room_id, pid, p["_sid"])
        answer = await self.media.peer(room_id, pid).publish(p["sdp"], p["tracks"])
        return {"sdp": answer, "type": "answer"}

    async def _subscriber_answer(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        await self._check(event, room_id, pid, p["_sid"])
        self.media.peer(room_id, pid).answer(p["sdp"])
        return {}

    async def _send(self, to: str, event: str, data: dict[str, Any]) -> None:
        await self.sio.emit(event, data, to=to)

    async def _broadcast(self, room_id: str, event: str, data: dict[str, Any]) -> None:
        await self.sio.emit(event, data, room=_room_channel(room_id))

    async def _leave(self, event: str, room_id: str, pid: str, p: dict[str, Any]) -> dict[str, Any]:
        sid = p["_sid"]
        gone = await self._apply(
            event, room_id, pid, sid, lambda room, _: rooms.disconnect(room, pid, sid)
        )
        self._spawn(self._after_ack(self.close_participant(room_id, gone, "left")))
        return {}

    async def _after_ack(self, work: Awaitable[None]) -> None:
        """Run `work` once the sender's acknowledgement is out (it closes the sender)."""
        await asyncio.sleep(0.05)
        await work

    async def _updated(self, room_id: str, participant: Participant) -> None:
        channel = _room_channel(room_id)
        if participant.status is ParticipantStatus.LOBBY:
            channel = _mediator_channel(room_id)
        await self.sio.emit(
            "participant_updated", {"participant": participant.public()}, room=channel
        )

    # -- recording ------------------------------------------------------------------------
    async def _record(self, room_id: str, kind: str, **fields: Any) -> None:
        """Put a room event into the recording's chain, if the room is being recorded."""
        if self.recordings is not None:
            await self.recordings.note(room_id, kind, **fields)

    @staticmethod
    def _recording_view(
        recording: dict[str, Any] | None, is_mediator: bool
    ) -> dict[str, Any] | None:
        """Everyone sees that recording is on; only mediators see who consented."""
        if recording is None:
            return None
        view = public_recording(recording)
        if not is_mediator:
            view.pop("consents", None)
        return view

    async def recording_changed(self, room_id: str, recording: dict[str, Any] | None) -> None:
        await self.sio.emit(
            "recording_state",
            {"recording": self._recording_view(recording, False)},
            room=_room_channel(room_id),
        )
        await self.sio.emit(
            "recording_state",
            {"recording": self._recording_view(recording, True)},
            room=_mediator_channel(room_id),
        )

    async def call_recorder(self, sid: str, event: str, data: dict[str, Any]) -> Any:
        return await self.sio.call(event, data, to=sid, timeout=5)

    def _recordings(self) -> Recordings:
        if self.recordings is None:
            raise TiaojieError("recording_unavailable", "Recording is not set up.", 503)
        return self.recordings

    async def _start_recording(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        await self._check(event, room_id, pid, p["_sid"])
        return {"recording": await self._recordings().start(room_id, pid)}

    async def _stop_recording(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        await self._check(event, room_id, pid, p["_sid"])
        return {"recording": await self._recordings().stop(room_id)}

    async def _recording_consent(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        sender = await self._apply(event, room_id, pid, p["_sid"], lambda _, sender: sender)
        recording = await self._recordings().consent(
            room_id, sender, p["recording_id"], p["accepted"]
        )
        return {"recording": self._recording_view(recording, sender.role is Role.MEDIATOR)}

    # -- used by the REST API too --------------------------------------------------------
    async def close_participant(self, room_id: str, participant: Participant, reason: str) -> None:
        await self._close(participant.sid, reason)
        await self._announce_gone(room_id, participant, reason)

    async def _close_all(self, room_id: str, participants: list[Participant], reason: str) -> None:
        if self.recordings is not None and room_id in self.recordings.processes:
            await self._record(room_id, "room_ended")
            with contextlib.suppress(TiaojieError):
                await self.recordings.stop(room_id)  # the seal, before everyone is gone
        await asyncio.gather(*(self._close(p.sid, reason) for p in participants))
        await self.media.close_room(room_id)

    async def end_room(self, room_id: str) -> Room:
        gone = await self.store.update(room_id, rooms.end)
        await self._close_all(room_id, gone, "room_ended")
        return await self.store.require(room_id)

    async def disconnect_all(self) -> None:
        """Close every connection of this node, so shutdown does not wait for websockets."""
        if self.sio.eio.sockets:
            # engineio can wait for ever on a socket whose websocket is already gone.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sio.eio.disconnect(), 5)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.media.close()
