"""Sessions from a case: a room scheduled for a case, with invites for its parties and the
experts chosen from the pool, and the case's outbox of what should be sent to whom.

`CaseSessions.schedule` (`POST /api/cases/{id}/sessions`, the case's mediator or the
admin, while the case is in mediation) makes the room (owned by the case's mediator, in
the organisation holding the case), one party invite per party of the case with its side
(申请人 / 被申请人) and one expert invite per expert, then, in one case transaction, the
Session row, an outbox row per person and the log's `session_scheduled` event (with
the audit entry). A case change that refuses it after the room was made ends that room.

What happens in a session's room comes back to the case through the room store
(server/cases/projection.py). The outbox and the session rows hold no token: links are
signed again from the invites when they are read (`links`), and a party's own progress
link is derived from the server's secret (server/cases/party.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server import rooms
from tiaojie.server.accounts import audit
from tiaojie.server.accounts.audit import Action as Audit
from tiaojie.server.agreements.state import AgreementState, get_state
from tiaojie.server.cases import counts, permissions
from tiaojie.server.cases.actor import CaseActor
from tiaojie.server.cases.experts import Expert, ExpertPool
from tiaojie.server.cases.model import PARTY_LABELS, Case, PartyRole
from tiaojie.server.cases.store import CaseStore, guarded
from tiaojie.server.cases.tables import case_outbox, case_sessions
from tiaojie.server.errors import TiaojieError, bad_request
from tiaojie.server.model import Invite, Room, new_id
from tiaojie.server.roles import Role
from tiaojie.server.store import RoomStore
from tiaojie.server.tokens import InviteClaims, TokenSigner

DAY = 86400
#: A session's links stay valid this long after its time (a session that runs late,
#: one held again the next day).
LINK_GRACE = 7 * DAY
#: How far ahead a session may be scheduled, and how long ago (registering one held now).
MAX_AHEAD = 365 * DAY
MAX_BEHIND = 3600


@dataclass(frozen=True)
class SessionInvite:
    """An invite made for a session: a party of the case (by position) or an expert."""

    invite_id: str
    kind: str  # "party" | "expert"
    name: str
    side: str | None = None
    party_position: int | None = None
    expert_id: str | None = None


@dataclass
class Session:
    id: str
    case_id: str
    room_id: str
    scheduled_at: int
    mediator_id: str | None
    organisation_id: str
    invites: list[SessionInvite]
    created_by: dict[str, Any]
    created_at: int
    held_at: int | None = None
    ended_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.id,
            "case_id": self.case_id,
            "room_id": self.room_id,
            "scheduled_at": self.scheduled_at,
            "mediator_id": self.mediator_id,
            "organisation_id": self.organisation_id,
            "held_at": self.held_at,
            "ended_at": self.ended_at,
            "created_at": self.created_at,
            "invites": [
                {
                    "invite_id": i.invite_id,
                    "kind": i.kind,
                    "name": i.name,
                    "side": i.side,
                    "expert_id": i.expert_id,
                }
                for i in self.invites
            ],
        }


@dataclass(frozen=True)
class OutboxItem:
    """What should be sent to whom: a person's session link (the sending is later work)."""

    id: str
    case_id: str
    session_id: str | None
    kind: str
    recipient: dict[str, Any]
    invite_id: str | None
    status: str
    created_at: int
    sent_at: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def session_of(row: Any) -> Session:
    return Session(
        id=row["id"],
        case_id=row["case_id"],
        room_id=row["room_id"],
        scheduled_at=int(row["scheduled_at"]),
        mediator_id=row["mediator_id"],
        organisation_id=row["organisation_id"],
        invites=[SessionInvite(**i) for i in row["invites"]],
        created_by=row["created_by"],
        created_at=int(row["created_at"]),
        held_at=row["held_at"],
        ended_at=row["ended_at"],
    )


async def sessions_of(conn: AsyncConnection, case_id: str) -> list[Session]:
    query = select(case_sessions).where(case_sessions.c.case_id == case_id)
    rows = (await conn.execute(query.order_by(case_sessions.c.scheduled_at))).mappings()
    return [session_of(row) for row in rows]


async def session_by_room(conn: AsyncConnection, room_id: str) -> Session | None:
    query = select(case_sessions).where(case_sessions.c.room_id == room_id)
    row = (await conn.execute(query)).mappings().first()
    return session_of(row) if row else None


async def mark_session(conn: AsyncConnection, session_id: str, **values: int) -> None:
    """`held_at` / `ended_at` of a session."""
    await conn.execute(
        update(case_sessions).where(case_sessions.c.id == session_id).values(**values)
    )


#: A session counts as "next" until this long after its time (it may run late).
NEXT_GRACE = 3 * 3600


def next_session(sessions: list[Session], now: int) -> Session | None:
    """The soonest session not ended and not long past (the progress page shows it)."""
    coming = [s for s in sessions if s.ended_at is None and s.scheduled_at + NEXT_GRACE >= now]
    return min(coming, key=lambda s: s.scheduled_at) if coming else None


def not_in_mediation(case: Case) -> TiaojieError:
    return TiaojieError(
        "case_not_in_mediation",
        f"Sessions are scheduled for a case in mediation (调解中); this one is {case.state}. "
        "Nothing was changed.",
        409,
    )


class CaseSessions:
    """Scheduling sessions, reading them and the outbox; their links."""

    def __init__(
        self,
        cases: CaseStore,
        experts: ExpertPool,
        rooms_store: RoomStore,
        signer: TokenSigner,
        base_url: str,
    ) -> None:
        self.cases = cases
        self.experts = experts
        self.rooms = rooms_store
        self.signer = signer
        self.base_url = base_url

    # -- scheduling ------------------------------------------------------------------------
    async def schedule(
        self, case: Case, actor: CaseActor, body: dict[str, Any], now: float
    ) -> tuple[Session, Room, dict[str, dict[str, Any]]]:
        """A session for `case` (read by `actor` already); the Session, its room and each
        invite's link (by invite id: url, token, expires_at)."""
        permissions.check_schedule(actor, case.rules)
        if case.mediator_id is None or str(case.state) != "mediating":
            raise not_in_mediation(case)
        at = int(body["scheduled_at"])
        if not int(now) - MAX_BEHIND <= at <= int(now) + MAX_AHEAD:
            raise bad_request("scheduled_at must be from an hour ago to a year ahead.")
        experts = await self._experts(body.get("expert_ids", []))
        room = Room(
            id=new_id(),
            title=f"{case.number} {case.dispute_type_name}调解"[:200],
            lobby=body.get("lobby", True),
            max_participants=12,
            created_at=int(now),
            owner_id=case.mediator_id,
            organisation_id=case.holder_organisation_id,
        )
        lifetime = max(at - int(now), 0) + LINK_GRACE

        def invite_everyone(room: Room) -> list[tuple[SessionInvite, Invite]]:
            made = []
            for position, party in enumerate(case.parties):
                invite = rooms.create_invite(
                    room, Role.PARTY, party.name, lifetime, side=str(party.role)
                )
                made.append(
                    (
                        SessionInvite(
                            invite.invite_id,
                            "party",
                            party.name,
                            side=str(party.role),
                            party_position=position,
                        ),
                        invite,
                    )
                )
            for expert in experts:
                invite = rooms.create_invite(room, Role.EXPERT, expert.name, lifetime)
                made.append(
                    (
                        SessionInvite(invite.invite_id, "expert", expert.name, expert_id=expert.id),
                        invite,
                    )
                )
            return made

        await self.rooms.create(room)
        made = await self.rooms.update(room.id, invite_everyone)
        session = Session(
            id=new_id(),
            case_id=case.id,
            room_id=room.id,
            scheduled_at=at,
            mediator_id=case.mediator_id,
            organisation_id=case.holder_organisation_id,
            invites=[item for item, _ in made],
            created_by=actor.logged(),
            created_at=int(now),
        )
        phones = {p: case.parties[p].phone for p in range(len(case.parties))}
        phones_of_experts = {e.id: e.phone for e in experts}
        try:
            await self._record(session, actor, phones, phones_of_experts, now)
        except BaseException:
            await self.rooms.update(room.id, rooms.end)  # nobody is in it yet
            raise
        return session, room, {invite.invite_id: self._link(room, invite) for _, invite in made}

    def _link(self, room: Room, invite: Invite) -> dict[str, Any]:
        token = self.signer.sign(
            InviteClaims(room.id, invite.role, invite.invite_id, invite.expires_at)
        )
        return {
            "url": f"{self.base_url}/join#token={token}",
            "token": token,
            "expires_at": invite.expires_at,
            "ended": room.ended,
        }

    async def _experts(self, ids: list[str]) -> list[Expert]:
        if len(set(ids)) != len(ids):
            raise bad_request("expert_ids names an expert twice.")
        found = {e.id: e for e in await self.experts.by_ids(ids)}
        for expert_id in ids:
            expert = found.get(expert_id)
            if expert is None:
                raise bad_request(f"expert_ids: {expert_id!r} is not in the expert pool.")
            if not expert.available:
                raise TiaojieError(
                    "expert_unavailable", f"{expert.name} is not available now.", 409
                )
        return [found[i] for i in ids]

    async def _record(
        self,
        session: Session,
        actor: CaseActor,
        phones: dict[int, str | None],
        expert_phones: dict[str, str | None],
        now: float,
    ) -> None:
        """The session, its outbox and its log event, in one case transaction that
        checks again that the case is in mediation with this mediator."""

        def check(case: Case) -> None:
            permissions.check_schedule(actor, case.rules)
            if str(case.state) != "mediating" or case.mediator_id != session.mediator_id:
                raise not_in_mediation(case)

        async def write(conn: AsyncConnection, case: Case) -> list[dict[str, Any]]:
            await conn.execute(
                insert(case_sessions).values(
                    id=session.id,
                    case_id=session.case_id,
                    room_id=session.room_id,
                    scheduled_at=session.scheduled_at,
                    mediator_id=session.mediator_id,
                    organisation_id=session.organisation_id,
                    invites=[asdict(i) for i in session.invites],
                    created_by=session.created_by,
                    created_at=session.created_at,
                    created_ns=time.time_ns(),
                )
            )
            # the experts most used (statistics) read this, not the JSON above
            await counts.add_session_experts(
                conn, session.id, [asdict(i) for i in session.invites], case
            )
            rows = []
            for n, item in enumerate(session.invites):
                phone = (
                    phones.get(item.party_position)
                    if item.party_position is not None
                    else expert_phones.get(item.expert_id or "")
                )
                rows.append(
                    {
                        "id": new_id(),
                        "case_id": session.case_id,
                        "session_id": session.id,
                        "kind": "session_invite",
                        "recipient": {
                            "role": item.kind,
                            "side": item.side,
                            "name": item.name,
                            "phone": phone,
                            "party_position": item.party_position,
                            "expert_id": item.expert_id,
                        },
                        "invite_id": item.invite_id,
                        "status": "pending",
                        "created_at": int(now),
                        "created_ns": time.time_ns() + n,
                    }
                )
            if rows:
                await conn.execute(insert(case_outbox), rows)
            if actor.audited:
                detail = {"session_id": session.id, "room_id": session.room_id}
                await audit.record(conn, Audit.CASE_SESSION_SCHEDULED, case.id, detail)
            return [
                {
                    "kind": "session_scheduled",
                    "actor": actor.logged(),
                    "session_id": session.id,
                    "room_id": session.room_id,
                    "scheduled_at": session.scheduled_at,
                    "parties": sum(1 for i in session.invites if i.kind == "party"),
                    "experts": [i.expert_id for i in session.invites if i.kind == "expert"],
                }
            ]

        await self.cases.change(session.case_id, check, write, now)

    # -- reading ---------------------------------------------------------------------------
    async def of_case(self, case_id: str) -> list[Session]:
        with guarded():
            async with self.cases.database.read() as conn:
                return await sessions_of(conn, case_id)

    async def outbox(self, case_id: str) -> list[OutboxItem]:
        query = (
            select(case_outbox)
            .where(case_outbox.c.case_id == case_id)
            .order_by(case_outbox.c.created_ns)
        )
        with guarded():
            async with self.cases.database.read() as conn:
                rows = (await conn.execute(query)).mappings().all()
        return [
            OutboxItem(
                id=row["id"],
                case_id=row["case_id"],
                session_id=row["session_id"],
                kind=row["kind"],
                recipient=row["recipient"],
                invite_id=row["invite_id"],
                status=row["status"],
                created_at=int(row["created_at"]),
                sent_at=row["sent_at"],
            )
            for row in rows
        ]

    async def agreements(self, sessions: list[Session]) -> list[AgreementState]:
        """The agreement drafted in each of `sessions`' rooms (in their order), as it
        stands in the room (server/agreements/state.py): drafted, signing, sealed."""
        found = []
        for session in sessions:
            room = await self.rooms.get(session.room_id)
            state = get_state(room) if room is not None else None
            if state is not None:
                found.append(state)
        return found

    # -- links -----------------------------------------------------------------------------
    async def links(self, room_id: str) -> dict[str, dict[str, Any]]:
        """The join link of every live invite of a session's room, by invite id (signed
        again from the invite: the same token as when it was made)."""
        room = await self.rooms.get(room_id)
        if room is None:
            return {}
        return {
            invite.invite_id: self._link(room, invite)
            for invite in room.invites.values()
            if invite.role in (Role.PARTY, Role.EXPERT) and not invite.revoked
        }


def side_label(side: str | None) -> str:
    return PARTY_LABELS[PartyRole(side)] if side in ("applicant", "respondent") else ""
