"""Room state: a Room with its Invites and Participants, stored as one document.

The whole state of a room is one document that every store changes atomically with a
read-modify-write: rooms are small (tens of people). The SQL store keeps it as rows of
`rooms`, `invites` and `participants` (server/store/sql.py), the memory store as JSON.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from tiaojie.server.roles import Role


class RoomStatus(StrEnum):
    OPEN = "open"
    ENDED = "ended"


class ParticipantStatus(StrEnum):
    LOBBY = "lobby"
    JOINED = "joined"


def new_id(prefix: str = "") -> str:
    """128 random bits, URL-safe."""
    return prefix + secrets.token_urlsafe(16)


@dataclass
class Invite:
    invite_id: str
    room_id: str
    role: Role
    name: str
    expires_at: int
    created_at: int
    revoked: bool = False
    #: Admitted into the room at least once: re-enters directly, even when locked.
    admitted: bool = False
    #: The staff account this invite was minted for (a mediator entering their own room
    #: from the staff page, server/accounts/entry.py); None for links sent to people.
    account_id: str | None = None

    #: A party's side of the dispute ("applicant" 申请人 / "respondent" 被申请人), or None:
    #: given once, on the invite, and shown wherever the person is (lobby, tiles, the
    #: agreement's party lines).
    side: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "invite_id": self.invite_id,
            "room_id": self.room_id,
            "role": str(self.role),
            "side": self.side,
            "name": self.name,
            "expires_at": self.expires_at,
            "revoked": self.revoked,
            "created_at": self.created_at,
        }


@dataclass
class Participant:
    """A connected invite; `id` is the invite id."""

    id: str
    name: str
    role: Role
    status: ParticipantStatus
    sid: str
    joined_at: int
    muted_audio: bool = False
    muted_video: bool = False
    muted_by_mediator: bool = False
    unmute_requested: bool = False
    hand_raised: bool = False
    #: The invite's side (a party's 申请人 / 被申请人), copied when they connect.
    side: str | None = None
    #: When their connection dropped (unix seconds); None while connected. Until the
    #: reconnect grace ends they keep their seat: presence `reconnecting`.
    away_since: int | None = None

    @property
    def presence(self) -> str:
        """`online`, or `reconnecting` while the connection is gone but the seat is kept."""
        return "online" if self.away_since is None else "reconnecting"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "presence": self.presence,
            "name": self.name,
            "role": str(self.role),
            "side": self.side,
            "status": str(self.status),
            "muted": {"audio": self.muted_audio, "video": self.muted_video},
            "muted_by_mediator": self.muted_by_mediator,
            "unmute_requested": self.unmute_requested,
            "hand_raised": self.hand_raised,
            "joined_at": self.joined_at,
        }


@dataclass
class Room:
    id: str
    title: str
    lobby: bool
    max_participants: int
    created_at: int
    locked: bool = False
    status: RoomStatus = RoomStatus.OPEN
    ended_at: int | None = None
    invites: dict[str, Invite] = field(default_factory=dict)
    participants: dict[str, Participant] = field(default_factory=dict)
    #: The running recording: id, started_at, started_by, the recorder's invite_id and
    #: the consents ({participant_id: {accepted, at, name, role}}); None when not recording.
    recording: dict[str, Any] | None = None
    #: The agreement being drafted/signed (server.agreements.AgreementState as JSON);
    #: None until the mediator drafts one. Documents from before it existed load as None.
    agreement: dict[str, Any] | None = None
    #: The staff account that owns the room (the mediator who made it, or the one the
    #: admin named) and its organisation; None for rooms made with the admin token alone.
    owner_id: str | None = None
    organisation_id: str | None = None
    #: Screening (特殊保护): [{participant_id, from, mode}], `participant_id` must not see
    #: ("video") or neither see nor hear ("all") `from` (server/separation.py).
    screens: list[dict[str, str]] = field(default_factory=list)
    #: Open caucuses by id: {id, title, members, opened_at, opened_by, joined}
    #: (server/separation.py); `joined` holds when each member last came in.
    caucuses: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.status is RoomStatus.ENDED

    def joined(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.status is ParticipantStatus.JOINED]

    def waiting(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.status is ParticipantStatus.LOBBY]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "lobby": self.lobby,
            "max_participants": self.max_participants,
            "locked": self.locked,
            "status": str(self.status),
            "created_at": self.created_at,
            "ended_at": self.ended_at,
            "participant_count": len(self.joined()),
            "lobby_count": len(self.waiting()),
            "recording": self.recording["id"] if self.recording else None,
        }

    def full(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "participants": [p.public() for p in self.participants.values()],
            "invites": [i.public() for i in self.invites.values()],
        }

    # -- serialisation (the stores keep rooms as JSON) --------------------------------
    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Room:
        invites = {k: Invite(**{**v, "role": Role(v["role"])}) for k, v in data["invites"].items()}
        participants = {
            k: Participant(
                **{**v, "role": Role(v["role"]), "status": ParticipantStatus(v["status"])}
            )
            for k, v in data["participants"].items()
        }
        return cls(
            **{
                **data,
                "status": RoomStatus(data["status"]),
                "invites": invites,
                "participants": participants,
                # rooms stored before screening and caucuses existed
                "screens": data.get("screens") or [],
                "caucuses": data.get("caucuses") or {},
            }
        )


def now() -> int:
    return int(time.time())
