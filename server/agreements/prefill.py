"""What the mediator's agreement editor proposes before anything is typed.

The parties come from the room's invites, not from who happens to be connected: the
mediator opens the editor before the parties arrive, and a party's side (申请人 /
被申请人) was given once, on the invite. Each party line is assigned to the invite it
comes from (a participant's id is its invite's id), so it is signed by that person
whenever they come in. The experts are those present: an expert invite that has been
admitted into the room at least once (到场专家), not one merely sent.
"""

from __future__ import annotations

from typing import Any

from tiaojie.server.model import Invite, Participant, Room
from tiaojie.server.roles import Role
from tiaojie.signing.model import MAX_EXPERTS, MAX_PARTIES, PARTY_ROLES


def _live(room: Room, role: Role) -> list[Invite]:
    return [i for i in room.invites.values() if i.role is role and not i.revoked]


def party_lines(room: Room) -> list[dict[str, Any]]:
    """One line per party invite: applicants, then respondents, then parties invited
    without a side (the first of them applicant when there is none, else respondent)."""
    parties = _live(room, Role.PARTY)
    order = {side: n for n, side in enumerate(PARTY_ROLES)}
    sided = sorted((i for i in parties if i.side in order), key=lambda i: order[str(i.side)])
    lines = [{"name": i.name, "role": i.side, "participant_id": i.invite_id} for i in sided]
    for invite in (i for i in parties if i.side not in order):
        side = "respondent" if any(x["role"] == "applicant" for x in lines) else "applicant"
        lines.append({"name": invite.name, "role": side, "participant_id": invite.invite_id})
    return lines[:MAX_PARTIES]


def experts_present(room: Room) -> list[str]:
    """The experts who came into the room (now or earlier), in the order invited."""
    inside = {p.id for p in room.joined()}
    names = [i.name for i in _live(room, Role.EXPERT) if i.admitted or i.invite_id in inside]
    return list(dict.fromkeys(names))[:MAX_EXPERTS]


def prefill(room: Room, mediator: Participant) -> dict[str, Any]:
    """The editor's proposal: parties with their sides and signers, mediator, experts."""
    return {
        "parties": party_lines(room),
        "mediator": mediator.name,
        "experts": experts_present(room),
    }
