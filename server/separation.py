"""Who is kept apart in a room: screening (特殊保护) and caucuses (背靠背调解), as rules on
the stored Room, and the ForwardingRules the SFU enforces from them.

A screen says one participant must not see ("video") or neither see nor hear ("all")
another; the mediator is never screened. A caucus is a private sub-room: its members
receive only each other, the main room does not receive them, and the recorder (always
in the main room) never does. A participant is in at most one caucus; membership is
kept by participant (invite) id, so a reconnect comes back to the same place. A caucus
may have a timer (`ends_at`, `timer_state`): it warns, it never closes anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from tiaojie.server import caucus_recording, caucus_timer
from tiaojie.server.errors import TiaojieError, bad_request, not_found
from tiaojie.server.media.rules import ForwardingRules
from tiaojie.server.model import Participant, ParticipantStatus, Room, new_id, now
from tiaojie.server.roles import Role

MAX_CAUCUSES = 10
#: Roles that may be screened or put into a caucus (the recorder stays in the main room).
SEPARABLE = frozenset({Role.PARTY, Role.EXPERT, Role.OBSERVER, Role.MEDIATOR})


def forwarding_rules(room: Room) -> ForwardingRules:
    """What the SFU may forward in `room` now."""
    places = {pid: cid for cid, caucus in room.caucuses.items() for pid in caucus["members"]}
    screens = {(s["participant_id"], s["from"]): s["mode"] for s in room.screens}
    recorders = frozenset({room.recording["invite_id"]}) if room.recording else frozenset()
    recorded = frozenset(
        cid for cid, caucus in room.caucuses.items() if caucus_recording.recorded(room, caucus)
    )
    return ForwardingRules(MappingProxyType(places), MappingProxyType(screens), recorders, recorded)


def place_of(room: Room, participant_id: str) -> str | None:
    """The caucus `participant_id` is in, or None for the main room."""
    for caucus_id, caucus in room.caucuses.items():
        if participant_id in caucus["members"]:
            return caucus_id
    return None


def _present(room: Room, participant_id: str) -> Participant:
    participant = room.participants.get(participant_id)
    if participant is None or participant.status is not ParticipantStatus.JOINED:
        raise not_found("not_found", "No such participant in the room.")
    return participant


# -- screening -------------------------------------------------------------------------
@dataclass(frozen=True)
class ScreenChange:
    participant: Participant
    source: Participant
    mode: str  # "none" | "video" | "all"
    before: str  # the mode it replaces


def screen(room: Room, participant_id: str, source_id: str, mode: str) -> ScreenChange:
    """Set what `participant_id` may receive of `source_id` ("none" lifts the screen)."""
    if participant_id == source_id:
        raise bad_request("A participant cannot be screened from themselves.")
    participant, source = _present(room, participant_id), _present(room, source_id)
    for person in (participant, source):
        if person.role not in SEPARABLE - {Role.MEDIATOR}:
            raise TiaojieError(
                "cannot_screen", "The mediator and the recorder always see and hear everyone."
            )
    before = "none"
    kept = []
    for entry in room.screens:
        if entry["participant_id"] == participant_id and entry["from"] == source_id:
            before = entry["mode"]
        else:
            kept.append(entry)
    if mode != "none":
        kept.append({"participant_id": participant_id, "from": source_id, "mode": mode})
    room.screens = kept
    return ScreenChange(participant, source, mode, before)


# -- caucuses --------------------------------------------------------------------------
@dataclass(frozen=True)
class Moves:
    """Who came into and who left which caucus, by one change."""

    joined: list[tuple[str, str]]  # (caucus_id, participant_id)
    left: list[tuple[str, str, int]]  # (caucus_id, participant_id, seconds inside)


def public(room: Room, caucus: dict[str, Any], mediator: bool = False) -> dict[str, Any]:
    """A caucus as everyone in the room sees it: who is in it, never what is said; with
    a timer, its end (`ends_at`, epoch seconds of the server's clock), the seconds left
    when this was sent (`remaining_s`, for clients whose clock differs) and its state;
    whether it is recorded (`recording`: server/caucus_recording.py `view`)."""
    shown = {k: caucus[k] for k in ("id", "title", "members", "opened_at")}
    shown["recording"] = caucus_recording.view(room, caucus, mediator)
    ends_at = caucus.get("ends_at")
    shown["ends_at"] = ends_at
    if ends_at is not None:
        shown["minutes"] = caucus.get("minutes")
        shown["remaining_s"] = max(0, round(ends_at - time.time()))
        shown["timer_state"] = caucus.get("timer_state", caucus_timer.RUNNING)
    return shown


def caucus_list(room: Room, mediator: bool = False) -> list[dict[str, Any]]:
    """The open caucuses as shown (`mediator`: with the members' recording answers)."""
    return [public(room, c, mediator) for c in room.caucuses.values()]


def _leave(room: Room, participant_id: str, at: int, moves: Moves) -> None:
    for caucus_id, caucus in room.caucuses.items():
        if participant_id in caucus["members"]:
            caucus["members"].remove(participant_id)
            since = caucus["joined"].pop(participant_id, at)
            moves.left.append((caucus_id, participant_id, at - since))


def _join(room: Room, caucus_id: str, participant_id: str, at: int, moves: Moves) -> None:
    _leave(room, participant_id, at, moves)
    caucus = room.caucuses[caucus_id]
    caucus["members"].append(participant_id)
    caucus["joined"][participant_id] = at
    moves.joined.append((caucus_id, participant_id))


def _separable(room: Room, participant_id: str) -> Participant:
    participant = _present(room, participant_id)
    if participant.role not in SEPARABLE:
        raise TiaojieError("cannot_move", "The recorder stays in the main room.")
    return participant


def remove_member(room: Room, participant_id: str) -> Moves:
    """Take a participant who left the room for good out of their caucus."""
    moves = Moves([], [])
    _leave(room, participant_id, now(), moves)
    return moves


def open_caucus(
    room: Room, members: list[str], title: str | None, by: str, minutes: int | None = None
) -> tuple[dict[str, Any], Moves]:
    """A new caucus with `members` (taken out of wherever they were)."""
    if len(room.caucuses) >= MAX_CAUCUSES:
        raise TiaojieError("too_many_caucuses", f"At most {MAX_CAUCUSES} caucuses at once.", 409)
    if len(set(members)) != len(members):
        raise bad_request("A member is named twice.")
    for member in members:
        _separable(room, member)
    at = now()
    caucus_id = new_id("c")
    room.caucuses[caucus_id] = {
        "id": caucus_id,
        "title": title or "",
        "members": [],
        "opened_at": at,
        "opened_by": by,
        "joined": {},
    }
    set_timer(room, caucus_id, minutes)
    moves = Moves([], [])
    for member in members:
        _join(room, caucus_id, member, at, moves)
    return room.caucuses[caucus_id], moves


def find_caucus(room: Room, caucus_id: str) -> dict[str, Any]:
    """The open caucus `caucus_id` (`no_caucus` if none)."""
    caucus = room.caucuses.get(caucus_id)
    if caucus is None:
        raise not_found("no_caucus", "No such caucus is open.")
    return caucus


def set_timer(room: Room, caucus_id: str, minutes: int | None) -> dict[str, Any]:
    """Time the caucus `minutes` from now (None: no timer); the caucus."""
    caucus = find_caucus(room, caucus_id)
    if minutes is None:
        caucus.update(ends_at=None, minutes=None, timer_state=None)
    else:
        ends_at = round(time.time() + minutes * caucus_timer.SECONDS_PER_MINUTE, 3)
        caucus.update(ends_at=ends_at, minutes=minutes, timer_state=caucus_timer.RUNNING)
    return caucus


def timer_due(room: Room, caucus_id: str, ends_at: float, state: str) -> dict[str, Any] | None:
    """The timer of `caucus_id` that ends at `ends_at` reached `state` (warning, ended):
    the caucus if this is news (the first to say so announces it), else None."""
    caucus = room.caucuses.get(caucus_id)
    if caucus is None or caucus.get("ends_at") != ends_at:
        return None  # closed, or its timer changed or was cleared meanwhile
    order = (caucus_timer.RUNNING, caucus_timer.WARNING, caucus_timer.ENDED)
    if order.index(caucus.get("timer_state") or caucus_timer.RUNNING) >= order.index(state):
        return None
    caucus["timer_state"] = state
    return caucus


def move(room: Room, participant_id: str, caucus_id: str | None) -> Moves:
    """Into caucus `caucus_id`, or back to the main room (None)."""
    _separable(room, participant_id)
    if caucus_id is not None:
        find_caucus(room, caucus_id)
    moves = Moves([], [])
    if place_of(room, participant_id) == caucus_id:
        return moves
    if caucus_id is None:
        _leave(room, participant_id, now(), moves)
    else:
        _join(room, caucus_id, participant_id, now(), moves)
    return moves


def close(room: Room, caucus_id: str) -> tuple[dict[str, Any], Moves]:
    """Close a caucus: its members return to the main room."""
    caucus = find_caucus(room, caucus_id)
    moves = Moves([], [])
    at = now()
    for member in list(caucus["members"]):
        _leave(room, member, at, moves)
    del room.caucuses[caucus_id]
    return caucus, moves


def close_all(room: Room) -> tuple[list[dict[str, Any]], Moves]:
    """Return everyone to the main room: every caucus closes."""
    closed, moves = [], Moves([], [])
    for caucus_id in list(room.caucuses):
        caucus, some = close(room, caucus_id)
        closed.append(caucus)
        moves.left.extend(some.left)
    return closed, moves


def request_target(room: Room, sender: Participant, with_: str) -> Participant | None:
    """Whom a party asks to talk with privately: None for the mediator, else that person."""
    if with_ == "mediator":
        return None
    if with_ == sender.id:
        raise bad_request("Ask for a private talk with someone else.")
    target = _present(room, with_)
    if target.role not in (Role.EXPERT, Role.MEDIATOR):
        raise bad_request("A private talk can be asked for with the mediator or an expert.")
    return target
