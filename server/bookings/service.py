"""`Bookings`: availability, free slots, and a party's private consultations.

A booking is made by a party from their own case link (the code and their key,
server/cases/party.py: it books only for that party of that case) or by staff who may
act on the case. It takes one free slot of a provider: an expert of the pool, or the
case's own mediator. It makes a private room for that time, like a session's
(server/cases/sessions.py): lobby off, at most three places, an invite for the party and
one for the expert and none for the mediator (docs/decisions.md says why); then, in one
case transaction, the booking row (its `active_key` unique: the slot is taken once,
whatever the concurrency), the outbox's `booking_confirmed` messages with each one's
link, and the case log's `booking_made` event. Cancelling and moving take a reason,
end the room (a move makes a new one) and are logged and messaged the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.archive.localtime import label
from tiaojie.server import rooms
from tiaojie.server.accounts import directory
from tiaojie.server.bookings import availability as avail
from tiaojie.server.bookings.slots import Slot, free, slots
from tiaojie.server.bookings.tables import bookings
from tiaojie.server.cases import permissions
from tiaojie.server.cases.actor import CaseActor, StaffRole
from tiaojie.server.cases.model import Case
from tiaojie.server.cases.service import Cases
from tiaojie.server.cases.sessions import side_label
from tiaojie.server.cases.states import OPEN_STATES
from tiaojie.server.cases.store import guarded
from tiaojie.server.cases.tables import case_sessions, experts
from tiaojie.server.errors import TiaojieError, bad_request, forbidden
from tiaojie.server.model import Room, new_id
from tiaojie.server.notifications import outbox
from tiaojie.server.notifications.events import REMINDERS, contact_address
from tiaojie.server.notifications.outbox import Message
from tiaojie.server.roles import Role

ACTIVE, CANCELLED, MOVED = "active", "cancelled", "rescheduled"
#: A session's length when a provider's time is blocked by one (sessions have no end).
SESSION_LENGTH = 3600
#: How many days one request for slots may cover.
MAX_DAYS = 62
#: A booking's links last this long after its slot ends.
LINK_GRACE = 86400


def slot_taken() -> TiaojieError:
    return TiaojieError(
        "slot_taken", "This time has just been booked by someone else; choose another.", 409
    )


def not_free() -> TiaojieError:
    return TiaojieError("slot_not_free", "This time is not among the free slots.", 409)


def booking_not_found() -> TiaojieError:
    return TiaojieError("booking_not_found", "There is no such booking.", 404)


def dates(first: str | None, last: str | None, tz: tzinfo, now: float) -> tuple[date, date]:
    """A local date range (default: today and the 13 days after), at most MAX_DAYS."""
    today = datetime.fromtimestamp(now, tz).date()
    try:
        start = date.fromisoformat(first) if first else today
        end = date.fromisoformat(last) if last else start + timedelta(days=13)
    except ValueError:
        raise bad_request("from and to are dates, YYYY-MM-DD.") from None
    if not 2000 <= start.year <= 2099:
        raise bad_request("from must be a date from 2000 to 2099.")
    if end < start or (end - start).days >= MAX_DAYS:
        raise bad_request(f"to must be on or after from, at most {MAX_DAYS} days on.")
    return start, end


def bounds(start: date, end: date, tz: tzinfo) -> tuple[int, int]:
    begin = int(datetime.combine(start, datetime.min.time(), tz).timestamp())
    finish = int(datetime.combine(end + timedelta(days=1), datetime.min.time(), tz).timestamp())
    return begin, finish


def public(row: Any) -> dict[str, Any]:
    return {
        "booking_id": row["id"],
        "case_id": row["case_id"],
        "party_position": row["party_position"],
        "provider_kind": row["provider_kind"],
        "provider_id": row["provider_id"],
        "provider_name": row["provider_name"],
        "specialty": row["specialty"],
        "mediator_id": row["mediator_id"],
        "starts_at": row["starts_at"],
        "ends_at": row["ends_at"],
        "status": row["status"],
        "room_id": row["room_id"],
        "reason": row["reason"],
        "replaced_by": row["replaced_by"],
        "created_at": row["created_at"],
    }


class Party:
    """Who holds a party's own link: the case and the party's position in it."""

    def __init__(self, case: Case, position: int) -> None:
        self.case = case
        self.position = position

    def logged(self) -> dict[str, Any]:
        return {"kind": "party", "id": f"party{self.position}", "organisation_id": None}


Who = CaseActor | Party


class Bookings:
    def __init__(self, cases: Cases, tz: tzinfo, wake: Any = None) -> None:
        self.cases = cases
        self.database = cases.database
        self.tz = tz
        self.wake = wake  # the notification worker's wake, when there is one

    # -- who -------------------------------------------------------------------------------
    async def party(self, code: str | None, key: str | None) -> Party:
        """The party whose own link holds `code` and `key` (404 otherwise, as for a code)."""
        found = await self.cases.store.by_code(code) if code else None
        position = self.cases.party_keys.party_of(found[0], key) if found else None
        if found is None or position is None:
            raise TiaojieError("not_found", "No case has this link.", 404)
        return Party(found[0], position)

    def _check_staff(self, actor: CaseActor, case: Case, row: Any = None) -> None:
        """Staff act on a case's bookings when they may read it and are not only its
        archivists; the mediator a booking is with acts on that booking."""
        if (
            row is not None
            and row["provider_kind"] == "mediator"
            and row["provider_id"] == actor.id
        ):
            return
        permissions.check_read(actor, case.rules)
        if not (
            actor.has(StaffRole.ADMIN)
            or actor.has(StaffRole.COORDINATOR)
            or actor.has(StaffRole.MEDIATOR)
        ):
            raise forbidden("Archivists read bookings; they do not make or change them.")

    # -- availability ----------------------------------------------------------------------
    async def rules(self, provider_kind: str, provider_id: str) -> list[dict[str, Any]]:
        with guarded():
            async with self.database.read() as conn:
                await avail.provider_name(conn, provider_kind, provider_id)
                return [
                    avail.public(r) for r in await avail.rows_of(conn, provider_kind, provider_id)
                ]

    async def add_rule(self, actor: CaseActor, body: dict[str, Any]) -> dict[str, Any]:
        kind = body["provider_kind"]
        provider_id = body.get("provider_id") or actor.id
        avail.check_manage(actor, kind, provider_id)
        row = avail.new_row(body, kind, provider_id)
        with guarded():
            async with self.database.write() as conn:
                await avail.provider_name(conn, kind, provider_id)
                await avail.add(conn, row)
        return avail.public(row)

    async def remove_rule(self, actor: CaseActor, availability_id: str) -> None:
        with guarded():
            async with self.database.write() as conn:
                row = await avail.get(conn, availability_id)
                if row is None:
                    raise TiaojieError("not_found", "There is no such availability entry.", 404)
                avail.check_manage(actor, row["provider_kind"], row["provider_id"])
                await avail.remove(conn, availability_id)

    async def free_slots(
        self, provider_kind: str, provider_id: str, first: date, last: date, now: float
    ) -> list[Slot]:
        with guarded():
            async with self.database.read() as conn:
                return await self._free(conn, provider_kind, provider_id, first, last, now)

    async def _free(
        self,
        conn: AsyncConnection,
        provider_kind: str,
        provider_id: str,
        first: date,
        last: date,
        now: float,
    ) -> list[Slot]:
        rules = [avail.rule_of(r) for r in await avail.rows_of(conn, provider_kind, provider_id)]
        found = slots(rules, first, last, self.tz)
        if not found:
            return []
        begin, finish = found[0].starts_at, found[-1].ends_at
        busy = await self._busy(conn, provider_kind, provider_id, begin, finish)
        return free(found, busy, int(now))

    async def _busy(
        self, conn: AsyncConnection, provider_kind: str, provider_id: str, begin: int, end: int
    ) -> list[tuple[int, int]]:
        """The provider's active bookings and the case sessions they are in."""
        query = select(bookings.c.starts_at, bookings.c.ends_at).where(
            bookings.c.provider_kind == provider_kind,
            bookings.c.provider_id == provider_id,
            bookings.c.status == ACTIVE,
            bookings.c.starts_at < end,
            bookings.c.ends_at > begin,
        )
        busy = [(int(r.starts_at), int(r.ends_at)) for r in await conn.execute(query)]
        sessions = select(case_sessions).where(
            case_sessions.c.scheduled_at < end,
            case_sessions.c.scheduled_at > begin - SESSION_LENGTH,
            case_sessions.c.ended_at.is_(None),
        )
        if provider_kind == "mediator":
            sessions = sessions.where(case_sessions.c.mediator_id == provider_id)
        for row in (await conn.execute(sessions)).mappings():
            if provider_kind == "expert" and not any(
                i.get("expert_id") == provider_id for i in row["invites"]
            ):
                continue
            at = int(row["scheduled_at"])
            busy.append((at, at + SESSION_LENGTH))
        return busy

    async def offer(
        self, party: Party, specialty: str | None, first: date, last: date, now: float
    ) -> list[dict[str, Any]]:
        """The free slots a party may book: of the available experts with `specialty`, or
        of the case's mediator when no specialty is asked."""
        providers: list[tuple[str, str, str, str | None]] = []
        if specialty:
            for expert in await self.cases.experts.search(specialty=specialty, available=True):
                providers.append(("expert", expert.id, expert.name, specialty))
        elif party.case.mediator_id:
            with guarded():
                async with self.database.read() as conn:
                    account = await directory.account(conn, party.case.mediator_id)
            if account is not None:
                providers.append(("mediator", account.id, account.name, None))
        found = []
        with guarded():
            async with self.database.read() as conn:
                for kind, provider_id, name, tag in providers:
                    for s in await self._free(conn, kind, provider_id, first, last, now):
                        found.append(
                            {
                                "provider_kind": kind,
                                "provider_id": provider_id,
                                "provider_name": name,
                                "specialty": tag,
                                "starts_at": s.starts_at,
                                "ends_at": s.ends_at,
                            }
                        )
        return sorted(found, key=lambda s: (s["starts_at"], s["provider_name"]))

    async def kinds(self) -> list[str]:
        """The specialties of the available experts (what a party may choose)."""
        found: set[str] = set()
        for expert in await self.cases.experts.search(available=True, limit=1000):
            found.update(expert.specialties)
        return sorted(found)

    # -- reading ---------------------------------------------------------------------------
    async def of_party(self, party: Party) -> list[dict[str, Any]]:
        query = select(bookings).where(
            bookings.c.case_id == party.case.id, bookings.c.party_position == party.position
        )
        return await self._list(query)

    async def of_case(self, actor: CaseActor, case_id: str) -> list[dict[str, Any]]:
        await self.cases.readable(case_id, actor)
        return await self._list(select(bookings).where(bookings.c.case_id == case_id))

    async def _list(self, query: Any) -> list[dict[str, Any]]:
        with guarded():
            async with self.database.read() as conn:
                rows = (await conn.execute(query.order_by(bookings.c.starts_at))).mappings()
                return [public(r) for r in rows]

    async def calendar(
        self, actor: CaseActor, mediator_id: str, first: date, last: date
    ) -> dict[str, Any]:
        """A mediator's sessions and the bookings with them or on their cases, by time."""
        if mediator_id != actor.id and not (
            actor.has(StaffRole.ADMIN) or actor.has(StaffRole.COORDINATOR)
        ):
            raise forbidden("A mediator sees their own calendar (coordinators: anyone's).")
        begin, end = bounds(first, last, self.tz)
        with guarded():
            async with self.database.read() as conn:
                query = select(case_sessions).where(
                    case_sessions.c.mediator_id == mediator_id,
                    case_sessions.c.scheduled_at >= begin,
                    case_sessions.c.scheduled_at < end,
                )
                sessions = [
                    {
                        "session_id": r["id"],
                        "case_id": r["case_id"],
                        "room_id": r["room_id"],
                        "starts_at": r["scheduled_at"],
                        "ends_at": r["scheduled_at"] + SESSION_LENGTH,
                        "ended_at": r["ended_at"],
                    }
                    for r in (
                        await conn.execute(query.order_by(case_sessions.c.scheduled_at))
                    ).mappings()
                ]
                query = select(bookings).where(
                    or_(
                        and_(
                            bookings.c.provider_kind == "mediator",
                            bookings.c.provider_id == mediator_id,
                        ),
                        bookings.c.mediator_id == mediator_id,
                    ),
                    bookings.c.status == ACTIVE,
                    bookings.c.starts_at >= begin,
                    bookings.c.starts_at < end,
                )
                found = [
                    public(r)
                    for r in (await conn.execute(query.order_by(bookings.c.starts_at))).mappings()
                ]
        return {
            "mediator_id": mediator_id,
            "from": first.isoformat(),
            "to": last.isoformat(),
            "sessions": sessions,
            "bookings": found,
        }

    # -- booking ---------------------------------------------------------------------------
    async def book(
        self, who: Who, case: Case, position: int, body: dict[str, Any], now: float
    ) -> dict[str, Any]:
        if isinstance(who, CaseActor):
            self._check_staff(who, case)
        if not 0 <= position < len(case.parties):
            raise bad_request("party_position: no such party of this case.")
        row = await self._new(case, position, body, who, now)
        return row

    async def _provider(
        self, case: Case, kind: str, provider_id: str, specialty: str | None
    ) -> tuple[str, str | None]:
        """The provider's name and address; an expert available now, with `specialty` when
        one is named; a mediator only the case's own."""
        with guarded():
            async with self.database.read() as conn:
                name = await avail.provider_name(conn, kind, provider_id)
                if kind == "mediator":
                    if provider_id != case.mediator_id:
                        raise bad_request("A party books their own case's mediator only.")
                    account = await directory.account(conn, provider_id)
                    return name, contact_address(account.login if account else None)
        found = await self.cases.experts.by_ids([provider_id])
        if not found or not found[0].available:
            raise TiaojieError("expert_unavailable", f"{name} is not available now.", 409)
        if specialty is not None and specialty not in found[0].specialties:
            raise bad_request(f"{name} is not among the experts of {specialty}.")
        return name, contact_address(found[0].phone)

    async def _new(
        self,
        case: Case,
        position: int,
        body: dict[str, Any],
        who: Who,
        now: float,
        replacing: Any = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        if case.state not in OPEN_STATES:
            raise TiaojieError(
                "case_not_open",
                "Consultations are booked for a case being handled (已受理 … 调解中).",
                409,
            )
        kind, provider_id = body["provider_kind"], body["provider_id"]
        starts_at = int(body["starts_at"])
        specialty = body.get("specialty")
        name, address = await self._provider(case, kind, provider_id, specialty)
        local = datetime.fromtimestamp(starts_at, self.tz).date()
        offered = await self.free_slots(kind, provider_id, local, local, now)
        slot = next((s for s in offered if s.starts_at == starts_at), None)
        if slot is None:
            raise not_free()
        room, invites = await self._room(case, position, kind, provider_id, name, slot, now)
        booking_id = new_id()
        row = {
            "id": booking_id,
            "case_id": case.id,
            "party_position": position,
            "provider_kind": kind,
            "provider_id": provider_id,
            "provider_name": name,
            "specialty": specialty,
            "mediator_id": case.mediator_id,
            "starts_at": slot.starts_at,
            "ends_at": slot.ends_at,
            "status": ACTIVE,
            "active_key": f"{kind}:{provider_id}:{slot.starts_at}",
            "room_id": room.id,
            "invites": invites,
            "reason": None,
            "replaced_by": None,
            "created_by": who.logged(),
            "created_at": int(now),
            "updated_at": int(now),
        }
        message_kind = "booking_rescheduled" if replacing is not None else "booking_confirmed"

        def check(current: Case) -> None:
            if current.state not in OPEN_STATES:
                raise TiaojieError("case_not_open", "The case is no longer being handled.", 409)

        async def write(conn: AsyncConnection, current: Case) -> list[dict[str, Any]]:
            if replacing is not None:
                done = await conn.execute(
                    update(bookings)
                    .where(bookings.c.id == replacing["id"], bookings.c.status == ACTIVE)
                    .values(
                        status=MOVED,
                        active_key=None,
                        reason=reason,
                        replaced_by=booking_id,
                        updated_at=int(now),
                    )
                )
                if done.rowcount != 1:
                    raise booking_gone()
            try:
                await conn.execute(insert(bookings).values(**row))
            except IntegrityError:
                raise slot_taken() from None
            extra = {"by": "当事人" if isinstance(who, Party) else "调解中心"}
            if replacing is not None:
                extra.update(old_time=when(replacing["starts_at"], self.tz), reason=reason or "")
            await self._queue(conn, current, row, message_kind, address, now, extra)
            event: dict[str, Any] = {
                "kind": "booking_rescheduled" if replacing is not None else "booking_made",
                "actor": who.logged(),
                "booking_id": booking_id,
                "provider_kind": kind,
                "provider_id": provider_id,
                "starts_at": slot.starts_at,
                "room_id": room.id,
            }
            if replacing is not None:
                event.update(replaces=replacing["id"], reason=reason)
            return [event]

        try:
            await self.cases.store.change(case.id, check, write, now)
        except BaseException:
            await self._end(room.id)
            raise
        if replacing is not None:
            await self._end(replacing["room_id"])
        self._wake()
        return public(row)

    async def _room(
        self,
        case: Case,
        position: int,
        kind: str,
        provider_id: str,
        name: str,
        slot: Slot,
        now: float,
    ) -> tuple[Room, list[dict[str, Any]]]:
        """The consultation's private room and its invites (party; expert)."""
        party = case.parties[position]
        room = Room(
            id=new_id(),
            title=f"{case.number} 预约咨询"[:200],
            lobby=False,
            max_participants=3,
            created_at=int(now),
            owner_id=provider_id if kind == "mediator" else None,
            organisation_id=case.holder_organisation_id,
        )
        lifetime = max(slot.ends_at - int(now), 0) + LINK_GRACE

        def invite(room: Room) -> list[dict[str, Any]]:
            made = rooms.create_invite(room, Role.PARTY, party.name, lifetime, side=str(party.role))
            found = [{"invite_id": made.invite_id, "kind": "party", "name": party.name}]
            if kind == "expert":
                expert = rooms.create_invite(room, Role.EXPERT, name, lifetime)
                found.append({"invite_id": expert.invite_id, "kind": "expert", "name": name})
            return found

        store = self.cases.sessions.rooms
        await store.create(room)
        try:
            invites = await store.update(room.id, invite)
        except BaseException:
            await self._end(room.id)
            raise
        return room, invites

    async def _end(self, room_id: str) -> None:
        store = self.cases.sessions.rooms
        room = await store.get(room_id)
        if room is not None and not room.ended:
            await store.update(room_id, rooms.end)

    async def _queue(
        self,
        conn: AsyncConnection,
        case: Case,
        row: dict[str, Any],
        kind: str,
        provider_address: str | None,
        now: float,
        extra: dict[str, Any],
    ) -> None:
        """Each one's message, in the booking's transaction."""
        party = case.parties[row["party_position"]]
        common = {
            "case_number": case.number,
            "dispute_type": case.dispute_type_name,
            "time": when(row["starts_at"], self.tz),
            **extra,
        }
        messages = []
        for invite in row["invites"] or [{"kind": "mediator"}]:
            recipient: dict[str, Any] = {
                "role": invite["kind"],
                "invite_id": invite.get("invite_id"),
                "room_id": row["room_id"],
                "booking_id": row["id"],
            }
            if invite["kind"] == "party":
                recipient.update(position=row["party_position"], side=str(party.role))
                address = contact_address(party.phone)
                variables = {**common, "name": party.name, "with_whom": row["provider_name"]}
            else:
                recipient["expert_id"] = row["provider_id"]
                address = provider_address
                with_whom = f"{side_label(str(party.role)) or '当事人'}{party.name}"
                variables = {**common, "name": row["provider_name"], "with_whom": with_whom}
            messages.append(
                Message(
                    key=f"{kind}:{row['id']}:{invite.get('invite_id') or 'mediator'}",
                    case_id=case.id,
                    kind=kind,
                    recipient=recipient,
                    address=address,
                    variables=variables,
                    not_before=int(now),
                )
            )
        if row["provider_kind"] == "mediator":
            account = await directory.account(conn, row["provider_id"])
            messages.append(
                Message(
                    key=f"{kind}:{row['id']}:mediator",
                    case_id=case.id,
                    kind=kind,
                    recipient={
                        "role": "mediator",
                        "account_id": row["provider_id"],
                        "booking_id": row["id"],
                    },
                    address=contact_address(account.login if account else None),
                    variables={
                        **common,
                        "name": row["provider_name"],
                        "with_whom": f"{side_label(str(party.role)) or '当事人'}{party.name}",
                    },
                    not_before=int(now),
                )
            )
        if kind in ("booking_confirmed", "booking_rescheduled"):
            messages += reminders(messages, row["starts_at"], int(now))
        await outbox.queue(conn, messages, int(now))

    def _wake(self) -> None:
        if self.wake is not None:
            asyncio.get_running_loop().call_later(0.05, self.wake)

    # -- cancelling, moving ----------------------------------------------------------------
    async def _booking(self, booking_id: str) -> Any:
        with guarded():
            async with self.database.read() as conn:
                query = select(bookings).where(bookings.c.id == booking_id)
                return (await conn.execute(query)).mappings().first()

    async def _mine(self, who: Who, booking_id: str) -> tuple[Any, Case]:
        row = await self._booking(booking_id)
        if row is None:
            raise booking_not_found()
        if isinstance(who, Party):
            if row["case_id"] != who.case.id or row["party_position"] != who.position:
                raise booking_not_found()
            return row, who.case
        case = await self.cases.store.get(row["case_id"])
        if case is None:
            raise booking_not_found()
        self._check_staff(who, case, row)
        return row, case

    async def cancel(self, who: Who, booking_id: str, reason: str, now: float) -> dict[str, Any]:
        row, case = await self._mine(who, booking_id)
        if row["status"] != ACTIVE:
            raise booking_gone()

        def check(current: Case) -> None:
            return None

        async def write(conn: AsyncConnection, current: Case) -> list[dict[str, Any]]:
            done = await conn.execute(
                update(bookings)
                .where(bookings.c.id == booking_id, bookings.c.status == ACTIVE)
                .values(status=CANCELLED, active_key=None, reason=reason, updated_at=int(now))
            )
            if done.rowcount != 1:
                raise booking_gone()
            address = None
            if row["provider_kind"] == "expert":
                query = select(experts.c.phone).where(experts.c.id == row["provider_id"])
                address = contact_address((await conn.execute(query)).scalar_one_or_none())
            by = "当事人" if isinstance(who, Party) else "调解中心"
            await self._queue(
                conn,
                current,
                dict(row),
                "booking_cancelled",
                address,
                now,
                {"reason": reason, "by": by},
            )
            return [
                {
                    "kind": "booking_cancelled",
                    "actor": who.logged(),
                    "booking_id": booking_id,
                    "starts_at": row["starts_at"],
                    "reason": reason,
                }
            ]

        await self.cases.store.change(case.id, check, write, now)
        await self._end(row["room_id"])
        self._wake()
        done = await self._booking(booking_id)
        return public(done)

    async def reschedule(
        self, who: Who, booking_id: str, starts_at: int, reason: str, now: float
    ) -> dict[str, Any]:
        row, case = await self._mine(who, booking_id)
        if row["status"] != ACTIVE:
            raise booking_gone()
        body = {
            "provider_kind": row["provider_kind"],
            "provider_id": row["provider_id"],
            "specialty": row["specialty"],
            "starts_at": starts_at,
        }
        return await self._new(
            case, row["party_position"], body, who, now, replacing=row, reason=reason
        )


def booking_gone() -> TiaojieError:
    return TiaojieError("booking_not_active", "This booking was cancelled or moved already.", 409)


def when(ts: int | None, tz: tzinfo) -> str:
    """A time as the messages say it, in the installation's zone (北京时间 or its offset)."""
    if ts is None:
        return ""
    moment = datetime.fromtimestamp(ts, tz)
    return f"{moment:%Y-%m-%d %H:%M}（{label(moment, 'zh-CN')}）"


def reminders(sent: list[Message], starts_at: int, now: int) -> list[Message]:
    """A day and an hour before the talk, to everyone the booking told, when still ahead
    (as a session's reminders; moot once the booking is cancelled or moved: its room has
    ended, server/notifications/service.py)."""
    found = []
    for kind, lead in REMINDERS:
        if starts_at - lead <= now:
            continue
        for message in sent:
            reminder = kind.replace("session_", "booking_")
            found.append(
                dataclasses.replace(
                    message,
                    key=f"{reminder}:{message.key.split(':', 1)[1]}",
                    kind=reminder,
                    not_before=starts_at - lead,
                )
            )
    return found
