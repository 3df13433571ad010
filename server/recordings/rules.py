"""The recording's rules, as pure changes of a Room (like server/rooms.py): start, stop
and consent. Each raises TiaojieError before changing anything."""

from __future__ import annotations

from typing import Any

from tiaojie.server import rooms
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import Invite, Participant, Room, now
from tiaojie.server.roles import Role

RECORDER_NAME = "录制 Recorder"
RECORDER_LINK_SECONDS = 7 * 86400


def start(
    room: Room,
    recording_id: str,
    started_by: str,
    node: str = "",
    follows: dict[str, Any] | None = None,
    consents: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Invite]:
    """The recording put on the room, and the recorder's invite (only the server knows it).
    `node` runs the recorder process (server/node.py). A recording that continues one
    whose node was lost or drained names it (`follows`: its id, node, reason and the
    chain hash seen last) and keeps its `consents`, as a restarted recorder does."""
    if room.ended:
        raise rooms.room_ended()
    if room.recording is not None:
        raise TiaojieError("already_recording", "This room is already being recorded.", 409)
    invite = rooms.create_invite(room, Role.RECORDER, RECORDER_NAME, RECORDER_LINK_SECONDS)
    room.recording = {
        "id": recording_id,
        "started_at": now(),
        "started_by": started_by,
        "invite_id": invite.invite_id,
        "node": node,
        "consents": dict(consents or {}),
    }
    if follows is not None:
        room.recording["follows"] = follows
    return room.recording, invite


def stop(room: Room) -> dict[str, Any]:
    """The recording taken off the room; its recorder's link dies now (the recorder itself
    leaves after the seal, and its departure is announced like anyone's)."""
    if room.recording is None:
        raise TiaojieError("not_recording", "This room is not being recorded.", 409)
    recording, room.recording = room.recording, None
    invite = room.invites.get(recording["invite_id"])
    if invite is not None:
        invite.revoked = True
    return recording


def interrupted(room: Room, recording_id: str) -> dict[str, Any] | None:
    """`stop` of a recording whose recorder died with its node, if it is still on; the
    seat its recorder kept (server.rooms.disconnect) goes too: nobody will take it back."""
    if room.recording is None or room.recording["id"] != recording_id:
        return None
    recording = stop(room)
    room.participants.pop(recording["invite_id"], None)
    return recording


def consent(
    room: Room, participant: Participant, recording_id: str, accepted: bool
) -> dict[str, Any]:
    """A participant's acknowledgement (or refusal) of the running recording."""
    if room.recording is None or room.recording["id"] != recording_id:
        raise TiaojieError("not_recording", "That recording is not running (any more).", 409)
    room.recording["consents"][participant.id] = {
        "accepted": accepted,
        "at": now(),
        "name": participant.name,
        "role": str(participant.role),
    }
    return room.recording
