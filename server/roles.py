"""Roles and the permission matrix (docs/PROTOCOL.md), enforced on the server."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    MEDIATOR = "mediator"
    PARTY = "party"
    EXPERT = "expert"
    OBSERVER = "observer"
    #: The recorder process: visible to everyone, receives media only. Only the server
    #: mints recorder links (never the invite API).
    RECORDER = "recorder"


#: Roles that wait in the lobby when the room's lobby is on.
LOBBY_ROLES = frozenset({Role.PARTY, Role.EXPERT})

MODERATION_EVENTS = frozenset(
    {
        "admit",
        "admit_all",
        "deny",
        "mute",
        "request_unmute",
        "remove",
        "send_to_lobby",
        "lock",
        "end_room",
        "start_recording",
        "stop_recording",
        "screen",
        "caucus_open",
        "caucus_move",
        "caucus_close",
        "caucus_close_all",
        "caucus_timer",
        "caucus_record",
        "caucus_broadcast",
        "caucus_decline",
    }
)
#: People (every role but the recorder).
PEOPLE = frozenset(set(Role) - {Role.RECORDER})

#: Which roles may send each signalling event once joined. People in the lobby may only leave.
PERMISSIONS: dict[str, frozenset[Role]] = {
    **{event: frozenset({Role.MEDIATOR}) for event in MODERATION_EVENTS},
    "raise_hand": frozenset({Role.MEDIATOR, Role.PARTY, Role.EXPERT}),
    "set_muted": frozenset({Role.MEDIATOR, Role.PARTY, Role.EXPERT}),
    "leave": frozenset(Role),
    "publish": frozenset({Role.MEDIATOR, Role.PARTY, Role.EXPERT}),
    "recording_consent": PEOPLE,
    "subscriber_answer": frozenset(Role),
    "ice_candidate": frozenset(Role),
    # chat (server/chat.py): every person admitted; whom `to` may name is chat.PRIVATE_TO
    "chat_send": PEOPLE,
    # the agreement (server/agreements/): the mediator drafts; parties, then a mediator, sign
    "agreement_draft": frozenset({Role.MEDIATOR}),
    "agreement_request_signatures": frozenset({Role.MEDIATOR}),
    "agreement_sign": frozenset({Role.MEDIATOR, Role.PARTY}),
    "agreement_finalize": frozenset({Role.MEDIATOR}),
    # what the editor proposes before anything is typed: the invites' parties, who came
    "agreement_prefill": frozenset({Role.MEDIATOR}),
    # a party asks the mediator for a private talk (with the mediator or an expert)
    "caucus_request": frozenset({Role.PARTY}),
    # a caucus member answers the request to record their caucus (server/caucus_recording.py)
    "caucus_recording_consent": PEOPLE,
}
LOBBY_EVENTS = frozenset({"leave"})

#: Roles an invite can be made for through the API (recorder links are the server's own).
INVITABLE = frozenset(PEOPLE)
#: Roles a mediator may invite; mediator invites need the admin token.
MEDIATOR_MAY_INVITE = frozenset({Role.PARTY, Role.EXPERT, Role.OBSERVER})


def may_send(role: Role, event: str, in_lobby: bool) -> bool:
    if in_lobby:
        return event in LOBBY_EVENTS
    return role in PERMISSIONS.get(event, frozenset())
