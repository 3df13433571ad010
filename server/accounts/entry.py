"""How a mediator account enters its own room without an invite link.

`POST /api/rooms/{id}/enter` (server/api.py) gives the room's owner (or an admin
account) a mediator invite token that lives `ENTRY_SECONDS`. Each account has one
mediator invite per room, marked with its id (`Invite.account_id`): entering again
reuses it, with a fresh token, so the account is one participant however often it
enters (a second window replaces the first, as with any link). What the mediator may do
once inside is bound to that invite and that room, as for every mediator.
"""

from __future__ import annotations

from tiaojie.server import rooms
from tiaojie.server.model import Invite, Room, now
from tiaojie.server.roles import Role

#: How long an entry token is good for: enough to enter and to come back after a
#: dropped connection; the staff page asks for a new one each time.
ENTRY_SECONDS = 4 * 3600


def entry_invite(room: Room, account_id: str, name: str) -> Invite:
    """The account's mediator invite in `room`, made if it has none that stands; it
    runs `ENTRY_SECONDS` from now (the token given out with it does too)."""
    if room.ended:
        raise rooms.room_ended()
    for invite in room.invites.values():
        if invite.account_id == account_id and invite.role is Role.MEDIATOR and not invite.revoked:
            invite.expires_at = now() + ENTRY_SECONDS
            return invite
    invite = rooms.create_invite(room, Role.MEDIATOR, name, ENTRY_SECONDS)
    invite.account_id = account_id
    return invite
