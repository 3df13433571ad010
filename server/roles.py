"""Roles and the permission matrix (docs/PROTOCOL.md), enforced on the server."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    MEDIATOR = "mediator"
    PARTY = "party"
    EXPERT = "expert"
    OBSERVER = "observer"


#: Roles that wait in the lobby when the room's lobby is on.
LOBBY_ROLES = frozenset({Role.PARTY, Role.EXPERT})

MODERATION_EVENTS = frozenset(
    {"admit", "deny", "mute", "request_unmute", "remove", "lock", "end_room"}
)

#: Which roles may send each signalling event once joined. People in the lobby may only leave.
PERMISSIONS: dict[str, frozenset[Role]] = {
    **{event: frozenset({Role.MEDIATOR}) for event in MODERATION_EVENTS},
    "raise_hand": frozenset({Role.MEDIATOR, Role.PARTY, Role.EXPERT}),
    "set_muted": frozenset({Role.MEDIATOR, Role.PARTY, Role.EXPERT}),
    "leave": frozenset(Role),
    "publish": frozenset({Role.MEDIATOR, Role.PARTY, Role.EXPERT}),
    "subscriber_answer": frozenset(Role),
}
LOBBY_EVENTS = frozenset({"leave"})

#: Roles a mediator may invite; mediator invites need the admin token.
MEDIATOR_MAY_INVITE = frozenset({Role.PARTY, Role.EXPERT, Role.OBSERVER})


def may_send(role: Role, event: str, in_lobby: bool) -> bool:
    if in_lobby:
        return event in LOBBY_EVENTS
    return role in PERMISSIONS.get(event, frozenset())
