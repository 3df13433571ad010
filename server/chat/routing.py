"""Who may write to whom, and who gets a message (a pure function of the room, like
server/rooms.py).

- Room chat (no `to`): every person in the main room (not the lobby, never the
  recorder), and it goes into the recording's chain.
- A private message (`to`): the sender and the recipient only, never recorded. Whom `to`
  may name depends on the sender's role (`PRIVATE_TO`): the mediator anyone; parties,
  experts and observers the mediator only (a private word between parties or with an
  expert is a caucus, which the mediator opens).
- Chat inside a caucus: its members only, never recorded. `caucus_of` says which caucus
  a participant is in; it answers None (the main room) until caucuses exist, and the
  caucus feature replaces it (`route(..., caucus_of=...)`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tiaojie.server.errors import TiaojieError, forbidden, not_found
from tiaojie.server.model import Participant, ParticipantStatus, Room
from tiaojie.server.roles import PEOPLE, Role

#: Whom a private message of each role may be addressed to.
PRIVATE_TO: dict[Role, frozenset[Role]] = {
    Role.MEDIATOR: PEOPLE,
    Role.PARTY: frozenset({Role.MEDIATOR}),
    Role.EXPERT: frozenset({Role.MEDIATOR}),
    Role.OBSERVER: frozenset({Role.MEDIATOR}),
}

#: (room, participant id) -> the caucus that participant is in, None for the main room.
CaucusOf = Callable[[Room, str], str | None]


def main_room(room: Room, participant_id: str) -> str | None:
    """Everyone is in the main room (until the caucus feature says otherwise)."""
    return None


@dataclass(frozen=True)
class Route:
    """Where one message goes: `recipients` get it now (the sender among them)."""

    recipients: tuple[Participant, ...]
    to: str | None
    caucus_id: str | None
    #: Chained into the room's recording (main-room chat only).
    recorded: bool


def _people_inside(room: Room) -> list[Participant]:
    return [p for p in room.joined() if p.role is not Role.RECORDER]


def route(
    room: Room, sender: Participant, to: str | None, caucus_of: CaucusOf = main_room
) -> Route:
    """Where a message of `sender` (addressed `to` someone, or not) goes; refused with
    `forbidden` (the role may not write to that person) or `not_found` (nobody of that id
    is in the room)."""
    if to is not None:
        target = room.participants.get(to)
        if (
            target is None
            or target.status is not ParticipantStatus.JOINED
            or target.role is Role.RECORDER
        ):
            raise not_found("participant_not_found", "Nobody of that id is in the room.")
        if target.id == sender.id:
            raise TiaojieError("cannot_write_self", "Write to someone else.", 409)
        if target.role not in PRIVATE_TO.get(sender.role, frozenset()):
            raise forbidden(f"A {sender.role} may write privately only to the mediator.")
        return Route((sender, target), to, None, recorded=False)
    caucus_id = caucus_of(room, sender.id)
    members = tuple(p for p in _people_inside(room) if caucus_of(room, p.id) == caucus_id)
    return Route(members, None, caucus_id, recorded=caucus_id is None)
