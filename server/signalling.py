"""socket.io signalling: the gateway between connections and the room's features.

`Signalling` holds the connections: connect with an invite token, presence (who is in the
room), the lobby, and one catch-all handler that validates every incoming event (known
name, one object payload, size, schema) before its feature's handler runs. Features
(moderation, media, recordings, agreements) install themselves through the public API:

- `add_handler(event, handler)`: a client event; the handler gets a `Request`;
- `check(request)` / `apply(request, change)` / `dry_run(request, change)`: the sender's
  role and lobby status checked (server.roles), then a change of the stored room;
- `send`, `broadcast`, `broadcast_mediators`, `call`: messages to clients;
- `on_enter`, `on_away`, `on_leave`, `on_room_ending`, `on_room_ended`, `add_room_state`:
  hooks into presence and the `room_state` a participant gets on entering;
- `enter`, `lobby_changed`, `close_participant`, `close_room`, `end_room`, `after_ack`;
- `recover`: on start, the connections this node held before are forgotten (their seats
  kept for the reconnect grace, as for any dropped connection).

Reconnection: a participant in the room whose connection drops keeps their seat for
`reconnect_grace` seconds (presence `reconnecting`, `participant_updated` to the others,
the `on_away` hooks: the media plane closes their peer connections). Joining again with
the same link within the grace takes the same seat (server.rooms.join) and enters the room
as usual (`room_state`, the `on_enter` hooks: new peer connections); after it they are
gone (`participant_left`, reason `disconnected`, the `on_leave` hooks).

Rooms in socket.io terms: `room:{id}` holds everyone inside a room, `mediators:{id}` its
mediators; people in the lobby are in neither, so they learn nothing about the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import socketio
from aiohttp import web

from tiaojie.server import rooms
from tiaojie.server.accounts.actor import Actor, ActorKind, acting
from tiaojie.server.errors import TiaojieError, bad_request
from tiaojie.server.input_log import InputErrorLog
from tiaojie.server.model import Participant, ParticipantStatus, Room, now
from tiaojie.server.roles import PERMISSIONS, Role, may_send
from tiaojie.server.schemas import CONNECT_AUTH, EVENTS, LARGE_EVENTS
from tiaojie.server.socketio_limits import (
    InProgress,
    LimitedPacket,
    close_connection,
    guard_packets,
)
from tiaojie.server.store import RoomStore
from tiaojie.server.tokens import TokenSigner
from tiaojie.server.validation import validate

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_EVENT_BYTES = 16 * 1024
MAX_MESSAGE_BYTES = 1_000_000  # Engine.IO: larger messages close the connection
#: Bytes of event payloads one connection may have in progress: a few of the largest
#: (an agreement draft, a mark); more closes the connection (server/socketio_limits.py).
MAX_IN_PROGRESS_BYTES = 2 * MAX_MESSAGE_BYTES
CALL_TIMEOUT_S = 5.0
#: Seconds a participant whose connection dropped keeps their seat (--reconnect-grace).
RECONNECT_GRACE_S = 30.0
#: How long the sender's acknowledgement gets before work that closes the sender runs.
ACK_GRACE_S = 0.05


#: How long a node that moved a room away waits for its people to come back there.
MOVE_WAIT_S = 15.0


class CloseReason(StrEnum):
    """Why a participant's connection ended: the `reason` of `closed` (sent just before
    the server closes a connection) and of `participant_left`."""

    REMOVED = "removed"
    DENIED = "denied"
    REVOKED = "revoked"
    ROOM_ENDED = "room_ended"
    REPLACED = "replaced"
    LEFT = "left"
    #: The mediator sent them back to the lobby (server/moderation.py): only in
    #: `participant_left`; their connection stays open.
    SENT_TO_LOBBY = "sent_to_lobby"
    #: The connection dropped: only in `participant_left` (there is nobody to tell).
    DISCONNECTED = "disconnected"


CLOSE_MESSAGES: dict[CloseReason, str] = {
    CloseReason.REMOVED: "The mediator removed you from the room.",
    CloseReason.DENIED: "The mediator did not admit you.",
    CloseReason.REVOKED: "Your invite link was withdrawn.",
    CloseReason.ROOM_ENDED: "The mediation session has ended.",
    CloseReason.REPLACED: "You joined from another window or device.",
    CloseReason.LEFT: "You left the room.",
}


class Redirect(TiaojieError):
    """The room's media is on another node: connect there (docs/PROTOCOL.md)."""

    def __init__(self, url: str) -> None:
        super().__init__("redirect", "This room is served by another node; connect there.", 307)
        self.url = url

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "url": self.url}


@dataclass(frozen=True)
class Request:
    """One client event that passed validation: who sent it, on which connection."""

    event: str
    room_id: str
    participant_id: str
    sid: str
    payload: dict[str, Any]


Handler = Callable[[Request], Awaitable[dict[str, Any]]]
#: (room_id, participant) after a participant entered the room.
EnterHook = Callable[[str, Participant], Awaitable[None]]
#: (room_id, participant, reason) after a participant who was in the room left it.
LeaveHook = Callable[[str, Participant, CloseReason], Awaitable[None]]
#: (room_id, participant) after a participant's connection dropped; they keep their seat
#: for the reconnect grace (then the leave hooks run, unless they came back).
AwayHook = Callable[[str, Participant], Awaitable[None]]
#: (room_id) of a room that has ended.
RoomHook = Callable[[str], Awaitable[None]]
#: (room, participant) -> a field of the `room_state` that participant gets.
RoomStateField = Callable[[Room, Participant], Any]


#: (room_id) -> the URL of the node that hosts the room's media, None when it is this
#: node (server/cluster/): a connection for a room hosted elsewhere is refused with
#: `redirect` and that URL, before it changes anything.
Placement = Callable[[str], Awaitable[str | None]]


class IceServersFor(Protocol):
    """The RTCIceServers handed to a participant (`relay` False: no TURN login)."""

    def __call__(self, participant_id: str, relay: bool = True) -> list[dict[str, Any]]: ...


def _room_channel(room_id: str) -> str:
    return f"room:{room_id}"


def _mediator_channel(room_id: str) -> str:
    return f"mediators:{room_id}"


class Signalling:
    """The gateway: connections, presence and the lobby; features plug in through the
    public methods (module docstring)."""

    def __init__(
        self,
        store: RoomStore,
        signer: TokenSigner,
        redis_url: str | None,
        ice_servers: IceServersFor | None = None,
        reconnect_grace: float = RECONNECT_GRACE_S,
    ) -> None:
        self.store = store
        #: 0: a dropped connection is gone at once (no seat kept).
        self.reconnect_grace = reconnect_grace
        self.signer = signer
        #: The RTCIceServers for a participant (their own TURN login among them).
        self.ice_servers: IceServersFor = ice_servers or (lambda _id, relay=True: [])
        manager = socketio.AsyncRedisManager(redis_url) if redis_url else None
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=manager,
            max_http_buffer_size=MAX_MESSAGE_BYTES,
            serializer=LimitedPacket,
            logger=False,
            # errors only, as with False; a malformed packet is one line, no traceback
            engineio_logger=InputErrorLog(logging.getLogger("engineio.server"), logging.ERROR),
        )
        guard_packets(self.sio)
        self._in_progress = InProgress(MAX_IN_PROGRESS_BYTES)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", self._on_event)
        self._handlers: dict[str, Handler] = {}
        self._room_state: dict[str, RoomStateField] = {}
        self._entering_hooks: list[EnterHook] = []
        self._enter_hooks: list[EnterHook] = []
        self._leave_hooks: list[LeaveHook] = []
        self._away_hooks: list[AwayHook] = []
        self._ending_hooks: list[RoomHook] = []
        self._ended_hooks: list[RoomHook] = []
        self._tasks: set[asyncio.Future[None]] = set()
        #: Set when this node shuts down: the connections it closes then change nothing
        #: stored (as with kill -9); the next start keeps their seats (`recover`).
        self._stopping = False
        self._placement: Placement | None = None
        #: The room of each connection this node holds (sid -> room id).
        self._here: dict[str, str] = {}

    def attach(self, app: web.Application) -> None:
        """Serve socket.io on `app` (at /socket.io/)."""
        self.sio.attach(app)

    # -- what features install -----------------------------------------------------------
    def add_handler(self, event: str, handler: Handler) -> None:
        """Route a client event to `handler`, behind the checks every event gets. The event
        needs a payload schema (server.schemas.EVENTS) and roles (server.roles.PERMISSIONS)."""
        if event not in EVENTS or event not in PERMISSIONS:
            raise ValueError(f"{event!r} has no payload schema or no roles")
        if event in self._handlers:
            raise ValueError(f"{event!r} already has a handler")
        self._handlers[event] = handler

    @property
    def events(self) -> frozenset[str]:
        """The client events that have a handler."""
        return frozenset(self._handlers)

    def add_room_state(self, key: str, field: RoomStateField) -> None:
        """Add `key` to the `room_state` a participant gets on entering the room."""
        self._room_state[key] = field

    def on_entering(self, hook: EnterHook) -> None:
        """Run `hook` as a participant enters, before they get their `room_state`: what
        they may use as soon as they have it (their media peer) exists by then."""
        self._entering_hooks.append(hook)

    def on_enter(self, hook: EnterHook) -> None:
        """Run `hook` after a participant entered (they have their `room_state`), before
        the others hear `participant_joined`; hooks run in the order they were added."""
        self._enter_hooks.append(hook)

    def on_leave(self, hook: LeaveHook) -> None:
        """Run `hook` after a participant who was in the room left, before the others
        hear `participant_left` (not for people leaving the lobby)."""
        self._leave_hooks.append(hook)

    def on_away(self, hook: AwayHook) -> None:
        """Run `hook` when the connection of a participant in the room dropped and they
        keep their seat (presence `reconnecting`), before the others hear of it. If they
        do not come back in time, the leave hooks run later (reason `disconnected`)."""
        self._away_hooks.append(hook)

    def on_room_ending(self, hook: RoomHook) -> None:
        """Run `hook` when a room has ended, while everyone is still connected."""
        self._ending_hooks.append(hook)

    def on_room_ended(self, hook: RoomHook) -> None:
        """Run `hook` when a room has ended, after every connection was closed."""
        self._ended_hooks.append(hook)

    def place_with(self, placement: Placement) -> None:
        """Send connections for rooms hosted on another node there (several nodes)."""
        self._placement = placement

    def rooms_here(self) -> set[str]:
        """The rooms this node holds connections of (the lobby's too)."""
        return set(self._here.values())

    # -- checks and changes, for handlers ------------------------------------------------
    def _authorized(
        self, request: Request, change: Callable[[Room, Participant], T]
    ) -> Callable[[Room], T]:
        """Wrap a change so it first checks the sender may send the event right now."""

        def run(room: Room) -> T:
            sender = rooms.actor(room, request.participant_id, request.sid)
            in_lobby = sender.status is ParticipantStatus.LOBBY
            if not may_send(sender.role, request.event, in_lobby):
                if in_lobby:
                    raise TiaojieError("not_joined", "Wait until the mediator admits you.", 403)
                raise TiaojieError("forbidden", f"A {sender.role} may not {request.event}.", 403)
            return change(room, sender)

        return run

    async def check(self, request: Request) -> Participant:
        """The sender, if they may send this event now (for requests that change no room)."""
        return await self.dry_run(request, lambda room, sender: sender)

    async def apply(self, request: Request, change: Callable[[Room, Participant], T]) -> T:
        """Check the sender, then apply `change(room, sender)` to the stored room."""
        return await self.store.update(request.room_id, self._authorized(request, change))

    async def dry_run(self, request: Request, change: Callable[[Room, Participant], T]) -> T:
        """`apply` on a copy of the room: its result (or its refusal), nothing stored."""
        room = await self.store.require(request.room_id)
        return self._authorized(request, change)(room)

    # -- messages ------------------------------------------------------------------------
    async def send(self, sid: str, event: str, data: dict[str, Any]) -> None:
        """To one connection (on any node)."""
        await self.sio.emit(event, data, to=sid)

    async def broadcast(
        self, room_id: str, event: str, data: dict[str, Any], skip_sid: str | None = None
    ) -> None:
        """To everyone in the room (not the lobby)."""
        await self.sio.emit(event, data, room=_room_channel(room_id), skip_sid=skip_sid)

    async def broadcast_mediators(self, room_id: str, event: str, data: dict[str, Any]) -> None:
        """To the room's mediators."""
        await self.sio.emit(event, data, room=_mediator_channel(room_id))

    async def call(self, sid: str, event: str, data: dict[str, Any]) -> Any:
        """To one connection of this node, and its acknowledgement (TimeoutError if none)."""
        return await self.sio.call(event, data, to=sid, timeout=CALL_TIMEOUT_S)

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
            fields: dict[str, Any] = validate(CONNECT_AUTH, auth, "auth")
            claims = self.signer.verify(fields["token"], now())
            if fields.get("room_id", claims.room_id) != claims.room_id:
                raise TiaojieError("token_wrong_room", "This link is for another room.", 403)
            name = fields.get("name")
            await self._check_placement(claims.room_id)
            result = await self.store.update(
                claims.room_id, lambda room: rooms.join(room, claims, sid, name)
            )
        except TiaojieError as error:
            raise socketio.exceptions.ConnectionRefusedError(error.code, error.to_dict()) from None
        await self.sio.save_session(
            sid, {"room_id": claims.room_id, "participant_id": result.participant.id}
        )
        self._here[sid] = claims.room_id
        self._spawn(
            self._after_connect(sid, claims.room_id, result.participant.id, result.replaced_sid)
        )
        return None

    async def _check_placement(self, room_id: str) -> None:
        """Refuse with `redirect` a connection whose room's media is on another node; a
        room that is unknown or over is left to `rooms.join` to refuse."""
        if self._placement is None:
            return
        room = await self.store.get(room_id)
        if room is None or room.ended:
            return
        url = await self._placement(room_id)
        if url is not None:
            raise Redirect(url)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def after_ack(self, work: Awaitable[None]) -> None:
        """Run `work` once the sender's acknowledgement is out (work that closes the sender)."""

        async def later() -> None:
            try:
                await asyncio.sleep(ACK_GRACE_S)
            except asyncio.CancelledError:  # shut down first: the work is dropped, not leaked
                if isinstance(work, Coroutine):
                    work.close()
                raise
            await work

        self._spawn(later())

    async def _after_connect(
        self, sid: str, room_id: str, participant_id: str, replaced_sid: str | None
    ) -> None:
        # Events sent before the CONNECT packet confuse clients: wait until it is out. It
        # usually is within a few turns of the loop (the connect handler's caller sends
        # it): look at once, then every 10 ms (5 s in all).
        for attempt in range(520):
            if self.sio.manager.is_connected(sid, "/"):
                break
            await asyncio.sleep(0 if attempt < 20 else 0.01)
        else:
            return
        if replaced_sid:
            await self._close(replaced_sid, CloseReason.REPLACED)
        room = await self.store.get(room_id)
        participant = room.participants.get(participant_id) if room else None
        if room is None or participant is None or participant.sid != sid:
            return
        await self.send(
            sid, "welcome", {"participant": participant.public(), "room": room.summary()}
        )
        if participant.status is ParticipantStatus.JOINED:
            await self.enter(room_id, participant)
        else:
            await self.lobby_changed(room_id)

    async def enter(self, room_id: str, participant: Participant) -> None:
        """Put a joined participant into the room's channels and tell everyone."""
        await self.sio.enter_room(participant.sid, _room_channel(room_id))
        is_mediator = participant.role is Role.MEDIATOR
        if is_mediator:
            await self.sio.enter_room(participant.sid, _mediator_channel(room_id))
        for hook in self._entering_hooks:
            await hook(room_id, participant)
        room = await self.store.require(room_id)
        state = {
            "room": room.summary(),
            "self": participant.public(),
            "participants": [p.public() for p in room.joined()],
            "lobby": [p.public() for p in room.waiting()] if is_mediator else [],
            "ice_servers": self.ice_servers(
                participant.id, relay=participant.role is not Role.RECORDER
            ),
        }
        for key, field in self._room_state.items():
            state[key] = field(room, participant)
        await self.send(participant.sid, "room_state", state)
        for hook in self._enter_hooks:
            await hook(room_id, participant)
        await self.broadcast(
            room_id,
            "participant_joined",
            {"participant": participant.public()},
            skip_sid=participant.sid,
        )

    async def _on_disconnect(self, sid: str, reason: object = None) -> dict[str, Any] | None:
        if self._spoofed(sid):
            return await self._refuse_event(sid, "disconnect")
        self._here.pop(sid, None)
        session = await self._session(sid)
        if session is None or self._stopping:
            return None
        room_id, participant_id = session
        # A client that says goodbye (socket.io DISCONNECT: `leave`, a closed tab) is gone;
        # a connection that broke (transport closed or failed, no pings) keeps its seat.
        said_goodbye = reason == self.sio.reason.CLIENT_DISCONNECT
        keep = self.reconnect_grace > 0 and not said_goodbye
        try:
            gone = await self.store.update(
                room_id, lambda room: rooms.disconnect(room, participant_id, sid, keep)
            )
        except TiaojieError:
            return None
        if gone is None:
            return None
        if gone.away_since is not None:
            await self._away(room_id, gone)
        else:
            await self._gone(room_id, gone, CloseReason.DISCONNECTED)
        return None

    async def _away(self, room_id: str, participant: Participant) -> None:
        """`participant`'s connection dropped; they keep their seat for the grace."""
        for hook in self._away_hooks:
            await hook(room_id, participant)
        await self.broadcast(room_id, "participant_updated", {"participant": participant.public()})
        self._spawn(self._expire_later(room_id, participant.id, participant.sid))

    async def _expire_later(self, room_id: str, participant_id: str, sid: str) -> None:
        """After the grace: gone, unless they joined again meanwhile (a new sid)."""
        await asyncio.sleep(self.reconnect_grace)  # a timer: the grace period itself
        try:
            gone = await self.store.update(
                room_id, lambda room: rooms.expire(room, participant_id, sid)
            )
        except TiaojieError:
            return
        if gone is not None:
            await self._gone(room_id, gone, CloseReason.DISCONNECTED)

    async def _session(self, sid: str) -> tuple[str, str] | None:
        try:
            session = await self.sio.get_session(sid)
        except KeyError:
            return None
        if "room_id" not in session:
            return None
        return session["room_id"], session["participant_id"]

    async def _gone(self, room_id: str, participant: Participant, reason: CloseReason) -> None:
        """Tell whoever needs to know that `participant` is no longer in the room state."""
        if participant.status is ParticipantStatus.JOINED:
            for hook in self._leave_hooks:
                await hook(room_id, participant, reason)
            await self.broadcast(
                room_id,
                "participant_left",
                {"participant_id": participant.id, "reason": str(reason)},
            )
        else:
            await self.lobby_changed(room_id)

    async def step_out(self, room_id: str, participant: Participant) -> None:
        """Take someone the room state already put back in the lobby out of the room's
        channels (their connection stays open): the leave hooks run (their media goes)
        and the room hears `participant_left` with reason `sent_to_lobby`."""
        await self.sio.leave_room(participant.sid, _room_channel(room_id))
        reason = CloseReason.SENT_TO_LOBBY
        for hook in self._leave_hooks:
            await hook(room_id, participant, reason)
        left = {"participant_id": participant.id, "reason": str(reason)}
        await self.broadcast(room_id, "participant_left", left)
        await self.lobby_changed(room_id)

    async def lobby_changed(self, room_id: str) -> None:
        """Send the room's mediators who is waiting in the lobby now."""
        room = await self.store.get(room_id)
        if room is not None:
            lobby = {"lobby": [p.public() for p in room.waiting()]}
            await self.broadcast_mediators(room_id, "lobby_updated", lobby)

    async def _close(self, sid: str, reason: CloseReason) -> None:
        """Tell a connection why it is being closed, then close it."""
        await self.send(sid, "closed", {"reason": str(reason), "message": CLOSE_MESSAGES[reason]})
        await self.sio.disconnect(sid)

    # -- requests ------------------------------------------------------------------------
    async def _refuse_event(self, sid: str, event: str) -> dict[str, Any]:
        error = TiaojieError("unknown_event", f"There is no event named {event[:64]!r}.")
        await self.send(sid, "request_error", {"event": event[:64], **error.to_dict()})
        return {"ok": False, **error.to_dict()}

    async def _on_event(self, event: object, sid: str, *args: object) -> dict[str, Any]:
        name = str(event)  # a raw packet may name its event with a number or a list
        size = len(json.dumps(args, default=str))
        if not self._in_progress.hold(sid, size):
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            if eio_sid is not None:
                why = f"more than {self._in_progress.limit} bytes of events in progress"
                await close_connection(self.sio, eio_sid, why)
            return {"ok": False, "error": "payload_too_large"}
        try:
            return await self._handle_event(name, sid, args, size)
        finally:
            self._in_progress.release(sid, size)

    async def _handle_event(
        self, name: str, sid: str, args: tuple[object, ...], size: int
    ) -> dict[str, Any]:
        try:
            handler = self._handlers.get(name)
            if handler is None:
                raise TiaojieError("unknown_event", f"There is no event named {name[:64]!r}.")
            if len(args) > 1:
                raise bad_request("Send one object as the payload.")
            data = args[0] if args else {}
            limit = LARGE_EVENTS.get(name, MAX_EVENT_BYTES)
            if size > limit + 2:  # the payload, in [ ]
                raise TiaojieError(
                    "payload_too_large", f"Payloads of {name} are limited to {limit} bytes.", 413
                )
            payload = validate(EVENTS[name], data)
            session = await self._session(sid)
            if session is None:
                raise TiaojieError("not_connected", "You are no longer in this room.", 403)
            room_id, participant_id = session
            # what the event changes is the participant's doing (the audit log's "who")
            with acting(Actor(ActorKind.INVITE, participant_id)):
                result = await handler(Request(name, room_id, participant_id, sid, payload))
            return {"ok": True, **result}
        except TiaojieError as error:
            await self.send(sid, "request_error", {"event": name[:64], **error.to_dict()})
            return {"ok": False, **error.to_dict()}
        except Exception:
            log.exception("signalling event %r failed", name[:64])
            failed = TiaojieError("internal_error", "The server failed; nothing was changed.")
            return {"ok": False, **failed.to_dict()}

    # -- closing -------------------------------------------------------------------------
    async def close_participant(
        self, room_id: str, participant: Participant, reason: CloseReason
    ) -> None:
        """Close the connection of someone already taken out of the room state."""
        await self._close(participant.sid, reason)
        await self._gone(room_id, participant, reason)

    async def close_room(self, room_id: str, participants: list[Participant]) -> None:
        """Close every connection of a room that has ended (`rooms.end` returned them)."""
        for hook in self._ending_hooks:
            await hook(room_id)
        await asyncio.gather(*(self._close(p.sid, CloseReason.ROOM_ENDED) for p in participants))
        for hook in self._ended_hooks:
            await hook(room_id)

    async def end_room(self, room_id: str) -> Room:
        """End the room and close every connection; the ended room."""
        gone = await self.store.update(room_id, rooms.end)
        await self.close_room(room_id, gone)
        return await self.store.require(room_id)

    async def recover(self) -> None:
        """On start: forget the connections this node held before (they died with the
        process; admissions and invites stay, so the same links join again), and tell the
        rooms' other nodes who left. Those in a room keep their seat for the reconnect
        grace, as after any dropped connection (their clients reconnect by themselves)."""
        gone = await self.store.release_connections(keep_seats=self.reconnect_grace > 0)
        await self._released(gone)
        if gone:
            log.info("forgot %d connections this node held before it started", len(gone))

    async def release_lost(self, room_id: str, live: set[str]) -> None:
        """The room was placed here: the connections to it that nodes no longer live held
        (killed: nobody cleared their rows) are dropped as `recover` drops a restarted
        node's, so presence is right and their people reconnect into their seats."""
        gone = await self.store.release_lost(room_id, live, keep_seats=self.reconnect_grace > 0)
        await self._released(gone)
        if gone:
            log.info("room %s: %d connections of a lost node are away now", room_id, len(gone))

    async def _released(self, gone: list[tuple[str, Participant]]) -> None:
        """Tell the rooms who of `gone` (connections nobody holds) is away or left."""
        for room_id, participant in gone:
            if participant.away_since is not None:
                await self._away(room_id, participant)
            elif participant.status is ParticipantStatus.JOINED:
                left = {"participant_id": participant.id, "reason": str(CloseReason.DISCONNECTED)}
                await self.broadcast(room_id, "participant_left", left)
        for room_id in {room_id for room_id, p in gone if p.status is ParticipantStatus.LOBBY}:
            await self.lobby_changed(room_id)

    async def move_out(self, room_id: str, url: str, wait: float = MOVE_WAIT_S) -> int:
        """Close this node's connections to the room (it moved to the node at `url`): their
        clients take them as broken, reconnect with the same link and are sent there,
        into the seats they keep meanwhile. Returns, with how many were closed, once
        each has taken its seat again elsewhere (or left), at most `wait` seconds later:
        a node that stops must still answer their reconnections with the redirect."""
        closed: dict[str, str] = {}
        for sid in [sid for sid, room in self._here.items() if room == room_id]:
            session = await self._session(sid)
            if session is not None:
                closed[session[1]] = sid
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            if eio_sid is not None:
                await close_connection(self.sio, eio_sid, f"room {room_id} moved to {url}")
        count, loop = len(closed), asyncio.get_running_loop()
        deadline = loop.time() + wait
        while closed and loop.time() < deadline:
            await asyncio.sleep(0.2)  # polling the shared store: they come back on another node
            room = await self.store.get(room_id)
            seats = room.participants if room is not None and not room.ended else {}
            closed = {
                pid: sid
                for pid, sid in closed.items()
                if (seat := seats.get(pid)) is not None
                and seat.sid == sid
                and seat.role is not Role.RECORDER
            }
        if closed:
            log.info("room %s: %d connections not back on its new node yet", room_id, len(closed))
        return count

    async def disconnect_all(self) -> None:
        """Close every connection of this node, so shutdown does not wait for websockets.
        What is stored stays as it is: whoever was in a room keeps their seat when this
        node (or another) starts again, and their clients reconnect."""
        self._stopping = True
        sockets = list(self.sio.eio.sockets.values())
        if sockets:
            log.info("closing %d connections: this node is stopping", len(sockets))
        for socket in sockets:
            # As close_connection does: eio.disconnect alone sends Engine.IO CLOSE and
            # leaves the websocket open, which a browser ignores (it goes on, sees no
            # disconnect, does not reconnect; aiohttp's shutdown then waits 60 s for the
            # handler). A None in the socket's queue ends its writer: CLOSE, and the
            # websocket closed, which every client takes as a broken connection.
            await socket.close(wait=False)
            await socket.queue.put(None)
        remaining = list(self.sio.eio.sockets)
        if remaining:
            # One by one: engineio's disconnect() of all raises ValueError when the last
            # socket leaves between this check and its asyncio.wait (seen in CI, a
            # traceback at stop); by sid, a socket gone meanwhile is skipped. And engineio
            # can wait for ever on a socket whose websocket is already gone: 5 s at most.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(self.sio.eio.disconnect(sid) for sid in remaining)), 5
                )

    async def shutdown(self) -> None:
        """Cancel the work in progress and wait (a few seconds at most) until it has
        stopped: a task cancelled inside a database call still closes its connection,
        which must happen before the store closes, or both wait for ever."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
