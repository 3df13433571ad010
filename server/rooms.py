"""Room rules: invites, joining, the lobby and moderation, as pure changes of a Room.

Every function here mutates the Room it is given or raises TiaojieError before changing
anything, so a refused action leaves the stored state untouched (the stores only write
back when the change returns). Input has already been validated against server.schemas
(the text rules); a display name is also checked against the reserved labels here,
where its role is known (server.names).
"""

from __future__ import annotations

from dataclasses import dataclass

from tiaojie.server.errors import TiaojieError, bad_request, forbidden, not_found
from tiaojie.server.model import Invite, Participant, ParticipantStatus, Room, new_id, now
from tiaojie.server.names import check_name
from tiaojie.server.roles import LOBBY_ROLES, Role
from tiaojie.server.tokens import InviteClaims

LOBBY_FACTOR = 4  # at most LOBBY_FACTOR x max_participants people wait in the lobby


def room_ended() -> TiaojieError:
    return TiaojieError("room_ended", "This mediation session has ended.", 410)


def _open(room: Room) -> None:
    if room.ended:
        raise room_ended()


def _participant(room: Room, participant_id: str) -> Participant:
    participant = room.participants.get(participant_id)
    if participant is None:
        raise not_found("not_found", "No such participant in this room.")
    return participant


# -- invites ---------------------------------------------------------------------------
def create_invite(
    room: Room, role: Role, name: str, expires_in: int, side: str | None = None
) -> Invite:
    """A new invite; `side` (applicant / respondent) is for a party only."""
    _open(room)
    check_name(name, role)
    if side is not None and role is not Role.PARTY:
        raise bad_request("Only a party has a side (applicant or respondent).")
    created = now()
    invite = Invite(
        invite_id=new_id(),
        room_id=room.id,
        role=role,
        name=name,
        expires_at=created + expires_in,
        created_at=created,
        side=side,
    )
    room.invites[invite.invite_id] = invite
    return invite


def check_invite(room: Room, claims: InviteClaims) -> Invite:
    """The live invite behind genuine token claims (revocation and room end checked)."""
    _open(room)
    return live_invite(room, claims)


def live_invite(room: Room, claims: InviteClaims) -> Invite:
    """The invite behind genuine token claims unless it was withdrawn; the room may have
    ended (what it leaves behind, recordings and the agreement, stays readable)."""
    invite = room.invites.get(claims.invite_id)
    if invite is None or invite.role != claims.role:
        raise TiaojieError("token_invalid", "This link is not valid.", 401)
    if invite.revoked:
        raise TiaojieError("token_revoked", "This link has been withdrawn.", 403)
    return invite


def revoke_invite(room: Room, invite_id: str) -> tuple[Invite, Participant | None]:
    invite = room.invites.get(invite_id)
    if invite is None:
        raise not_found("invite_not_found", "No such invite in this room.")
    invite.revoked = True
    return invite, room.participants.pop(invite_id, None)


# -- joining and leaving ---------------------------------------------------------------
@dataclass
class JoinResult:
    participant: Participant
    replaced_sid: str | None


def join(room: Room, claims: InviteClaims, sid: str, name: str | None) -> JoinResult:
    invite = check_invite(room, claims)
    if name is not None:
        check_name(name, invite.role)
    previous = room.participants.get(invite.invite_id)
    # back within the reconnect grace: the same seat, nobody else to close
    reseated = previous is not None and previous.away_since is not None
    returning = invite.admitted or previous is not None
    if room.locked and not returning and invite.role not in (Role.MEDIATOR, Role.RECORDER):
        raise TiaojieError("room_locked", "The room is locked: no new participants.", 403)
    waits = room.lobby and invite.role in LOBBY_ROLES and not invite.admitted
    if previous is not None and previous.status is ParticipantStatus.JOINED:
        waits = False  # a seat in the room is never traded for the lobby
    if waits:
        lobby = [p for p in room.waiting() if p.id != invite.invite_id]
        if len(lobby) >= LOBBY_FACTOR * room.max_participants:
            raise TiaojieError("lobby_full", "Too many people are waiting; try later.", 503)
    elif invite.role is not Role.RECORDER:  # the recorder takes nobody's place
        _check_capacity(room, exclude=invite.invite_id)
    participant = Participant(
        id=invite.invite_id,
        name=name or invite.name,
        role=invite.role,
        status=ParticipantStatus.LOBBY if waits else ParticipantStatus.JOINED,
        sid=sid,
        joined_at=now(),
        side=invite.side,
    )
    if previous is not None:  # a reconnect keeps what the mediator decided
        participant.muted_audio = previous.muted_audio
        participant.muted_video = previous.muted_video
        participant.muted_by_mediator = previous.muted_by_mediator
        participant.unmute_requested = previous.unmute_requested
    if reseated and previous is not None:  # ... and, within the grace, all of the seat
        participant.hand_raised = previous.hand_raised
        participant.joined_at = previous.joined_at
        participant.name = name or previous.name
        # caucus membership, screening and the like live outside Participant (keyed by
        # its id), so they stay as they are; a field added to Participant is kept here.
    if not waits:
        invite.admitted = True
    room.participants[invite.invite_id] = participant
    replaced = previous.sid if previous is not None and not reseated else None
    return JoinResult(participant, replaced)


def _check_capacity(room: Room, exclude: str) -> None:
    inside = [p for p in room.joined() if p.id != exclude and p.role is not Role.RECORDER]
    if len(inside) >= room.max_participants:
        raise TiaojieError("room_full", "The room is full.", 409)


def disconnect(
    room: Room, participant_id: str, sid: str, keep_seat: bool = False
) -> Participant | None:
    """A participant whose connection `sid` closed (None if a newer one replaced it).

    With `keep_seat`, someone in the room keeps their seat, marked away (`away_since`,
    presence `reconnecting`) until they join again or `expire` takes it; otherwise (and
    always for the lobby) they are forgotten at once. The caller tells the two apart by
    `away_since`."""
    participant = room.participants.get(participant_id)
    if participant is None or participant.sid != sid:
        return None
    if keep_seat and participant.status is ParticipantStatus.JOINED:
        if participant.away_since is None:
            participant.away_since = now()
        return participant
    return room.participants.pop(participant_id)


def expire(room: Room, participant_id: str, sid: str) -> Participant | None:
    """End the seat of a participant still away on connection `sid` (the grace is over)."""
    participant = room.participants.get(participant_id)
    if participant is None or participant.sid != sid or participant.away_since is None:
        return None
    return room.participants.pop(participant_id)


def actor(room: Room, participant_id: str, sid: str) -> Participant:
    """The participant sending a request on connection `sid`."""
    _open(room)
    participant = room.participants.get(participant_id)
    if participant is None or participant.sid != sid:
        raise TiaojieError("not_connected", "You are no longer in this room.", 403)
    return participant


# -- lobby -------------------------------------------------------------------------------
def _in_lobby(room: Room, participant_id: str) -> Participant:
    participant = _participant(room, participant_id)
    if participant.status is not ParticipantStatus.LOBBY:
        raise TiaojieError("not_in_lobby", "That participant is not waiting in the lobby.", 409)
    return participant


def admit(room: Room, participant_id: str) -> Participant:
    participant = _in_lobby(room, participant_id)
    _check_capacity(room, exclude=participant_id)
    participant.status = ParticipantStatus.JOINED
    room.invites[participant_id].admitted = True
    return participant


def admit_all(room: Room) -> list[Participant]:
    """Admit everyone waiting, first come first in, as long as the room has places; who
    does not fit stays in the lobby. Nobody fitting at all is `room_full`."""
    admitted: list[Participant] = []
    for participant in sorted(room.waiting(), key=lambda p: p.joined_at):
        try:
            admitted.append(admit(room, participant.id))
        except TiaojieError:
            if not admitted:
                raise
            break
    return admitted


def deny(room: Room, participant_id: str) -> Participant:
    _in_lobby(room, participant_id)
    room.invites[participant_id].revoked = True
    return room.participants.pop(participant_id)


# -- moderation --------------------------------------------------------------------------
def mute(room: Room, participant_id: str, track: str) -> Participant:
    participant = _participant(room, participant_id)
    setattr(participant, f"muted_{track}", True)
    participant.muted_by_mediator = True
    participant.unmute_requested = False
    return participant


def request_unmute(room: Room, participant_id: str, track: str) -> Participant:
    participant = _participant(room, participant_id)
    if not getattr(participant, f"muted_{track}"):
        raise TiaojieError("not_muted", f"That participant's {track} is not muted.", 409)
    participant.unmute_requested = True
    return participant


def remove(room: Room, participant_id: str, by: str) -> Participant:
    """`by` (a participant id) removes someone else: their link dies with it."""
    if participant_id == by:
        raise TiaojieError("cannot_remove_self", "Use leave to leave the room.", 409)
    _participant(room, participant_id)
    room.invites[participant_id].revoked = True
    return room.participants.pop(participant_id)


def send_to_lobby(room: Room, participant_id: str, by: str) -> Participant:
    """`by` (a mediator) sends a party or expert back to the lobby without removing them:
    the same participant (id, name, role, side) waits again until admitted, and their
    answer to the recording stays on the recording. A raised hand is lowered."""
    if participant_id == by:
        raise TiaojieError("cannot_send_self", "You cannot send yourself to the lobby.", 409)
    participant = _participant(room, participant_id)
    if participant.status is not ParticipantStatus.JOINED:
        raise TiaojieError("not_in_room", "That participant is not in the room.", 409)
    if participant.role not in LOBBY_ROLES:
        raise TiaojieError(
            "cannot_send_to_lobby", "Only parties and experts can wait in the lobby.", 409
        )
    participant.status = ParticipantStatus.LOBBY
    participant.hand_raised = False
    room.invites[participant_id].admitted = False
    return participant


def set_locked(room: Room, locked: bool) -> None:
    room.locked = locked


def end(room: Room) -> list[Participant]:
    """End the room: every link dies; returns who was connected."""
    _open(room)
    room.status = room.status.ENDED
    room.ended_at = now()
    room.locked = True
    gone = list(room.participants.values())
    room.participants.clear()
    return gone


# -- self --------------------------------------------------------------------------------
def raise_hand(participant: Participant, raised: bool) -> None:
    participant.hand_raised = raised


def set_muted(participant: Participant, track: str, muted: bool) -> None:
    if not muted and participant.muted_by_mediator and not participant.unmute_requested:
        raise TiaojieError(
            "muted_by_mediator",
            "The mediator muted you; wait until they ask you to unmute.",
            403,
        )
    setattr(participant, f"muted_{track}", muted)
    if not muted:  # the mediator's hold ends once the participant takes up the request
        participant.muted_by_mediator = False
        participant.unmute_requested = False


def require_role(participant: Participant, allowed: frozenset[Role], what: str) -> None:
    if participant.role not in allowed:
        raise forbidden(f"A {participant.role} may not {what}.")
