"""Screening and caucuses in signalling: `screen`, `caucus_open`, `caucus_move`,
`caucus_close`, `caucus_close_all`, `caucus_timer`, `caucus_record`,
`caucus_recording_consent`, `caucus_request`, `caucus_decline`, and the caucus timers'
`caucus_time` notices (server/caucus_timer.py).

Each change is a rule of server/separation.py (or server/caucus_recording.py) applied to
the stored room (signalling checks the sender first); then the SFU gets the room's new
ForwardingRules (no renegotiation), the room or its mediators hear the new state, and
the recording's chain gets an event (who, when, never what was said: caucus media
reaches the recorder only while every member consents to recording that caucus).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tiaojie.server import caucus_recording, caucus_timer, separation
from tiaojie.server.caucus_timer import CaucusTimers
from tiaojie.server.errors import TiaojieError
from tiaojie.server.media.sfu import MediaPlane
from tiaojie.server.model import Participant, Room, now
from tiaojie.server.ratelimit import RateLimit
from tiaojie.server.recordings import Recordings, RoomEvent
from tiaojie.server.roles import Role
from tiaojie.server.signalling import CloseReason, Request, Signalling

#: Private-talk requests one party may send: a few, then one every 10 s.
REQUEST_BURST = 3
REQUEST_RATE = 0.1

T = TypeVar("T")
#: (caucus id, recorded now) for each caucus whose recording began or stopped.
Flips = list[tuple[str, bool]]


class Caucuses:
    """Installs screening and caucus events, their room state and their presence hooks."""

    def __init__(self, signalling: Signalling, media: MediaPlane, recordings: Recordings) -> None:
        self.signalling = signalling
        self.media = media
        self.recordings = recordings
        self._request_limit = RateLimit("caucus requests", REQUEST_RATE, REQUEST_BURST)
        self.timers = CaucusTimers(self._due)

    def install(self) -> None:
        sig = self.signalling
        handlers = {
            "screen": self._screen,
            "caucus_open": self._open,
            "caucus_move": self._move,
            "caucus_close": self._close,
            "caucus_close_all": self._close_all,
            "caucus_timer": self._timer,
            "caucus_record": self._record,
            "caucus_recording_consent": self._recording_consent,
            "caucus_request": self._request,
            "caucus_decline": self._decline,
        }
        for event, handler in handlers.items():
            sig.add_handler(event, handler)
        sig.add_room_state(
            "caucuses", lambda room, p: separation.caucus_list(room, p.role is Role.MEDIATOR)
        )
        sig.add_room_state("screens", _screens_for)
        sig.add_room_state("screened", lambda room, p: _screened(room, p.id))
        sig.on_leave(self._left)
        sig.on_enter(self._entered)
        sig.on_room_ended(self._room_ended)

    # -- screening -------------------------------------------------------------------------
    async def _screen(self, request: Request) -> dict[str, Any]:
        p = request.payload

        def change(room: Room, _: Participant) -> tuple[separation.ScreenChange, Room]:
            return separation.screen(room, p["participant_id"], p["from"], p["mode"]), room

        done, room = await self.signalling.apply(request, change)
        self.media.set_rules(request.room_id, separation.forwarding_rules(room))
        await self.signalling.broadcast_mediators(
            request.room_id, "screening_updated", {"screens": room.screens}
        )
        if done.mode != done.before:
            # the screened person's page shows no frozen picture of what it no longer gets
            screened = {"screened": _screened(room, done.participant.id)}
            await self.signalling.send(done.participant.sid, "screened_updated", screened)
            await self.recordings.note_about(
                request.room_id,
                RoomEvent.SCREEN,
                done.participant,
                source_id=done.source.id,
                source_name=done.source.name,
                mode=done.mode,
                before=done.before,
                by=request.participant_id,
            )
        return {"screens": room.screens}

    # -- caucuses --------------------------------------------------------------------------
    async def _apply(
        self, request: Request, change: Callable[[Room, Participant], T]
    ) -> tuple[T, Room, Flips]:
        """`signalling.apply`, then whether each caucus may be recorded now (stored)."""

        def run(room: Room, sender: Participant) -> tuple[T, Room, Flips]:
            result = change(room, sender)
            return result, room, caucus_recording.refresh(room)

        return await self.signalling.apply(request, run)

    async def _changed(self, room: Room, moves: separation.Moves, flips: Flips) -> None:
        """After a caucus change: forward accordingly, tell the room (the mediators with
        the members' answers to a caucus recording), chain the moves and what the
        recorder now receives."""
        self.media.set_rules(room.id, separation.forwarding_rules(room))
        await self.signalling.broadcast(
            room.id, "caucus_updated", {"caucuses": separation.caucus_list(room)}
        )
        await self.signalling.broadcast_mediators(
            room.id, "caucus_updated", {"caucuses": separation.caucus_list(room, True)}
        )
        for caucus_id, pid, seconds in moves.left:
            await self._note(room, RoomEvent.CAUCUS_LEFT, pid, caucus_id=caucus_id, seconds=seconds)
        for caucus_id, pid in moves.joined:
            await self._note(room, RoomEvent.CAUCUS_JOINED, pid, caucus_id=caucus_id)
        for caucus_id, on in flips:
            caucus = room.caucuses.get(caucus_id)
            await self.recordings.note(
                room.id,
                RoomEvent.CAUCUS_RECORDING_STARTED if on else RoomEvent.CAUCUS_RECORDING_STOPPED,
                caucus_id=caucus_id,
                members=list(caucus["members"]) if caucus else [],
            )

    async def _note(self, room: Room, kind: RoomEvent, pid: str, **fields: Any) -> None:
        person = room.participants.get(pid)
        name = person.name if person else (room.invites[pid].name if pid in room.invites else "")
        await self.recordings.note(room.id, kind, participant_id=pid, name=name, **fields)

    async def _open(self, request: Request) -> dict[str, Any]:
        members, title = request.payload["members"], request.payload.get("title")
        minutes = request.payload.get("minutes")

        def change(room: Room, sender: Participant) -> tuple[dict[str, Any], separation.Moves]:
            caucus, moves = separation.open_caucus(room, members, title, sender.id, minutes)
            return dict(caucus), moves

        (caucus, moves), room, flips = await self._apply(request, change)
        await self.recordings.note(
            room.id,
            RoomEvent.CAUCUS_OPENED,
            caucus_id=caucus["id"],
            title=caucus["title"],
            members=list(members),
            minutes=minutes,
            by=request.participant_id,
        )
        await self._changed(room, moves, flips)
        self._arm(room.id, caucus)  # after caucus_updated: a warning due at once follows it
        return {"caucus_id": caucus["id"], "caucus": separation.public(room, caucus, True)}

    async def _move(self, request: Request) -> dict[str, Any]:
        target, caucus_id = request.payload["participant_id"], request.payload.get("caucus_id")

        def change(room: Room, _: Participant) -> separation.Moves:
            return separation.move(room, target, caucus_id)

        moves, room, flips = await self._apply(request, change)
        await self._changed(room, moves, flips)
        return {"caucuses": separation.caucus_list(room, True)}

    async def _closed(self, room: Room, closed: list[dict[str, Any]], by: str) -> None:
        at = now()
        for caucus in closed:
            self.timers.disarm(room.id, caucus["id"])
            await self.recordings.note(
                room.id,
                RoomEvent.CAUCUS_CLOSED,
                caucus_id=caucus["id"],
                duration_s=at - caucus["opened_at"],
                by=by,
            )

    async def _close(self, request: Request) -> dict[str, Any]:
        caucus_id = request.payload["caucus_id"]

        def change(room: Room, _: Participant) -> tuple[dict[str, Any], separation.Moves]:
            return separation.close(room, caucus_id)

        (caucus, moves), room, flips = await self._apply(request, change)
        await self._changed(room, moves, flips)
        await self._closed(room, [caucus], request.participant_id)
        return {"caucuses": separation.caucus_list(room, True)}

    async def _close_all(self, request: Request) -> dict[str, Any]:
        def change(room: Room, _: Participant) -> tuple[list[dict[str, Any]], separation.Moves]:
            return separation.close_all(room)

        (closed, moves), room, flips = await self._apply(request, change)
        await self._changed(room, moves, flips)
        await self._closed(room, closed, request.participant_id)
        return {"closed": [c["id"] for c in closed]}

    # -- timers ----------------------------------------------------------------------------
    def _arm(self, room_id: str, caucus: dict[str, Any]) -> None:
        """Wait for the caucus's timer on this node (or stop waiting: no timer)."""
        ends_at = caucus.get("ends_at")
        if ends_at is None:
            self.timers.disarm(room_id, caucus["id"])
        elif caucus.get("timer_state") != caucus_timer.ENDED:
            self.timers.arm(room_id, caucus["id"], ends_at)

    async def _timer(self, request: Request) -> dict[str, Any]:
        caucus_id, minutes = request.payload["caucus_id"], request.payload.get("minutes")

        def change(room: Room, _: Participant) -> tuple[dict[str, Any], Room]:
            return dict(separation.set_timer(room, caucus_id, minutes)), room

        caucus, room = await self.signalling.apply(request, change)
        await self.recordings.note(
            room.id,
            RoomEvent.CAUCUS_TIMER,
            caucus_id=caucus_id,
            minutes=minutes,
            ends_at=caucus["ends_at"],
            by=request.participant_id,
        )
        await self._changed(room, separation.Moves([], []), [])
        self._arm(room.id, caucus)
        return {"caucus": separation.public(room, caucus, True)}

    async def _due(self, room_id: str, caucus_id: str, ends_at: float, state: str) -> None:
        """A moment of a caucus timer came: its members and the mediators hear it once;
        the end goes into the chain. Nothing is closed: the mediator decides."""

        def change(room: Room) -> tuple[dict[str, Any] | None, Room]:
            caucus = separation.timer_due(room, caucus_id, ends_at, state)
            return (dict(caucus) if caucus else None), room

        try:
            caucus, room = await self.signalling.store.update(room_id, change)
        except TiaojieError:  # the room is gone
            return
        if caucus is None:
            return
        await self._tell_time(room, caucus)
        if state == caucus_timer.ENDED:
            await self.recordings.note(
                room_id, RoomEvent.CAUCUS_TIME_UP, caucus_id=caucus_id, minutes=caucus["minutes"]
            )

    async def _tell_time(self, room: Room, caucus: dict[str, Any], only: str | None = None) -> None:
        """`caucus_time` to the caucus's members and the room's mediators (or to `only`)."""
        data = {"caucus_id": caucus["id"], "state": caucus["timer_state"]}
        data.update({k: v for k, v in separation.public(room, caucus).items() if k != "id"})
        if only is not None:
            await self.signalling.send(only, "caucus_time", data)
            return
        await self.signalling.broadcast_mediators(room.id, "caucus_time", data)
        for pid in caucus["members"]:
            person = room.participants.get(pid)
            if person is not None and person.role is not Role.MEDIATOR:
                await self.signalling.send(person.sid, "caucus_time", data)

    async def _entered(self, room_id: str, participant: Participant) -> None:
        """Whoever enters (or comes back) hears a timer that has warned or ended, if it is
        theirs to hear; a timer this node does not wait for (it restarted) is armed."""
        room = await self.signalling.store.require(room_id)
        for caucus in room.caucuses.values():
            ends_at = caucus.get("ends_at")
            if ends_at is None:
                continue
            if self.timers.armed(room_id, caucus["id"]) != ends_at:
                self._arm(room_id, caucus)
            told = participant.role is Role.MEDIATOR or participant.id in caucus["members"]
            if told and caucus.get("timer_state") in (caucus_timer.WARNING, caucus_timer.ENDED):
                await self._tell_time(room, caucus, only=participant.sid)

    async def _room_ended(self, room_id: str) -> None:
        self.timers.disarm_room(room_id)

    # -- recording a caucus (every member consents: server/caucus_recording.py) -----------
    async def _record(self, request: Request) -> dict[str, Any]:
        caucus_id, record = request.payload["caucus_id"], request.payload["record"]

        def change(room: Room, sender: Participant) -> dict[str, Any]:
            caucus = separation.find_caucus(room, caucus_id)
            if record:
                caucus_recording.ask(room, caucus, sender.id)
            else:
                caucus_recording.withdraw(caucus)
            return caucus

        caucus, room, flips = await self._apply(request, change)
        await self.recordings.note(
            room.id,
            RoomEvent.CAUCUS_RECORDING_ASKED if record else RoomEvent.CAUCUS_RECORDING_WITHDRAWN,
            caucus_id=caucus_id,
            members=list(caucus["members"]),
            by=request.participant_id,
        )
        await self._changed(room, separation.Moves([], []), flips)
        return {"caucus": separation.public(room, room.caucuses[caucus_id], True)}

    async def _recording_consent(self, request: Request) -> dict[str, Any]:
        caucus_id, accepted = request.payload["caucus_id"], request.payload["accepted"]

        def change(room: Room, sender: Participant) -> Participant:
            caucus_recording.answer(room, separation.find_caucus(room, caucus_id), sender, accepted)
            return sender

        sender, room, flips = await self._apply(request, change)
        await self.recordings.note_about(
            room.id,
            RoomEvent.CAUCUS_RECORDING_CONSENT if accepted else RoomEvent.CAUCUS_RECORDING_REFUSAL,
            sender,
            role=str(sender.role),
            caucus_id=caucus_id,
        )
        await self._changed(room, separation.Moves([], []), flips)
        mediator = sender.role is Role.MEDIATOR
        return {"caucus": separation.public(room, room.caucuses[caucus_id], mediator)}

    # -- requests --------------------------------------------------------------------------
    async def _request(self, request: Request) -> dict[str, Any]:
        self._request_limit.take((request.room_id, request.participant_id))

        def look(room: Room, sender: Participant) -> tuple[Participant, Participant | None]:
            return sender, separation.request_target(room, sender, request.payload["with"])

        sender, target = await self.signalling.dry_run(request, look)
        await self.signalling.broadcast_mediators(
            request.room_id,
            "caucus_requested",
            {
                "participant_id": sender.id,
                "name": sender.name,
                "side": sender.side,
                "with": target.id if target else "mediator",
                "with_name": target.name if target else None,
                "at": now(),
            },
        )
        return {}

    async def _decline(self, request: Request) -> dict[str, Any]:
        target_id = request.payload["participant_id"]

        def look(room: Room, _: Participant) -> Participant | None:
            return room.participants.get(target_id)

        target = await self.signalling.dry_run(request, look)
        if target is not None:
            await self.signalling.send(target.sid, "caucus_request_declined", {})
        await self.signalling.broadcast_mediators(
            request.room_id, "caucus_request_answered", {"participant_id": target_id}
        )
        return {}

    # -- presence --------------------------------------------------------------------------
    async def _left(self, room_id: str, participant: Participant, reason: CloseReason) -> None:
        """Someone who left for good leaves their caucus. A dropped connection is not
        `left` until its reconnect grace is over (Signalling keeps the seat, and with it
        the caucus, meanwhile), so `disconnected` here means gone; `replaced` is the same
        person on a new connection."""
        if reason is CloseReason.REPLACED:
            return

        def change(room: Room) -> tuple[separation.Moves, Room, Flips]:
            moves = separation.Moves([], [])
            if separation.place_of(room, participant.id) is not None:
                moves = separation.remove_member(room, participant.id)
            return moves, room, caucus_recording.refresh(room)

        moves, room, flips = await self.signalling.store.update(room_id, change)
        if moves.left or flips:
            await self._changed(room, moves, flips)


def _screens_for(room: Room, participant: Participant) -> list[dict[str, str]]:
    """Screening is shown to the mediator only."""
    return room.screens if participant.role is Role.MEDIATOR else []


def _screened(room: Room, participant_id: str) -> list[dict[str, str]]:
    """What `participant_id` does not receive, and of whom (`from`, `mode`): their own
    screens only, so their page hides a picture that would otherwise freeze."""
    return [
        {"from": s["from"], "mode": s["mode"]}
        for s in room.screens
        if s["participant_id"] == participant_id
    ]
