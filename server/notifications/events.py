"""What each case event queues, in the transaction that records the event.

`CaseNotices.case_events` is a listener of the case store (server/cases/store.py calls
it with the events it is about to append to a case's log, and the connection of that
transaction): a message per recipient, keyed by the event (the case, the log's sequence
number or the session / agreement it names) and the recipient, so that the same event
never makes two messages.

- `reported` → `case_received` to each party (their own progress link is made at
  sending time).
- `dispatched`, `transferred` → `case_dispatched` to the mediator, or to the
  organisation when no mediator is named.
- `dispatched` / `transferred` / `taken` with a mediator and a deadline →
  `deadline_approaching` to the mediator, `deadline_warning` before the deadline.
- `session_scheduled` → `session_scheduled` to each invited person, and the two
  reminders (`not_before` a day and an hour before the session, when still ahead).
- `agreement_sealed` → to each party. `agreement_ready` (the agreement's text
  finalised for signing) is no case event: `AgreementNotices`, a room projection,
  queues it when a session room's agreement enters `signing`.
- `closed` as 调解成功 and `court_bundle_prepared` → `court_deadline` to the mediator,
  `court_warning` before the 30 days to apply for judicial confirmation run out (from
  the agreement's sealing, server/cases/court.py); cancelled once the court answered.
- `closed` with an outcome (调解成功 / 不成功) → `follow_up_due` (回访) to the mediator
  `follow_up_after` later. The case model has the 回访 state and action but no due
  date, so this is the reminder; it is cancelled when the case was followed up by then.

Staff have no phone or e-mail field: a mediator's address is their login when it is a
phone number or an e-mail address; an organisation's is its case settings' `contact`
when it is one. Parties have phones (no e-mail); experts have phones.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts import directory
from tiaojie.server.cases.court import COURT_DAYS
from tiaojie.server.cases.model import Case
from tiaojie.server.cases.numbering import CST
from tiaojie.server.cases.sessions import Session, sessions_of, side_label
from tiaojie.server.cases.tables import case_log, case_settings, experts
from tiaojie.server.notifications import outbox
from tiaojie.server.notifications.config import DAY, HOUR, Timing
from tiaojie.server.notifications.outbox import Message

_PHONE = re.compile(r"\+?\d[\d -]{5,18}\d")
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,200}\.[A-Za-z]{2,}")
#: The reminders before a session: kind, lead time.
REMINDERS = (("session_reminder_day", DAY), ("session_reminder_hour", HOUR))


def contact_address(text: str | None) -> str | None:
    """A phone number or e-mail address, if `text` is one."""
    text = (text or "").strip()
    if _EMAIL.fullmatch(text):
        return text
    if _PHONE.fullmatch(text):
        return re.sub(r"[ -]", "", text)
    return None


def when(ts: int) -> str:
    return f"{datetime.fromtimestamp(ts, UTC).astimezone(CST):%Y-%m-%d %H:%M}（北京时间）"


def day(ts: int | None) -> str:
    return f"{datetime.fromtimestamp(ts, UTC).astimezone(CST):%Y-%m-%d}" if ts else ""


def _case_vars(case: Case) -> dict[str, Any]:
    return {"case_number": case.number, "dispute_type": case.dispute_type_name}


class CaseNotices:
    def __init__(self, timing: Timing) -> None:
        self.timing = timing

    async def case_events(
        self,
        conn: AsyncConnection,
        case: Case,
        events: list[dict[str, Any]],
        first_seq: int,
        now: float,
    ) -> int:
        """Queue the messages of `events`; how many were new."""
        messages: list[Message] = []
        at = int(now)
        for n, event in enumerate(events):
            kind, seq = event.get("kind"), first_seq + n
            if kind == "reported":
                messages += self._to_parties(case, "case_received", f"{case.id}", at)
            elif kind in ("dispatched", "transferred", "taken"):
                messages += await self._to_holder(conn, case, event, seq, at)
            elif kind == "session_scheduled":
                messages += await self._session(conn, case, event["session_id"], at)
            elif kind == "agreement_sealed":
                ref = str(event.get("agreement_code") or seq)
                messages += self._to_parties(case, "agreement_sealed", ref, at)
            elif kind == "closed" and event.get("to") in ("succeeded", "failed"):
                messages += await self._follow_up(conn, case, seq, at)
                if event.get("to") == "succeeded":
                    # from the time the closing's log entry carries (archive/chain.py rounds
                    # it to the millisecond), as server/cases/court.py `terms` reads it: the
                    # court bundle's event then names the same deadline (a reminder is keyed
                    # by it; `int(now)`, a second earlier once in 2,000, queued a second)
                    closed_at = int(round(now, 3))
                    deadline = await _court_deadline(conn, case, closed_at)
                    messages += await self._court(conn, case, deadline, at)
            elif kind == "court_bundle_prepared" and isinstance(event.get("deadline_at"), int):
                messages += await self._court(conn, case, event["deadline_at"], at)
        return await outbox.queue(conn, messages, at) if messages else 0

    def _to_parties(self, case: Case, kind: str, ref: str, at: int) -> list[Message]:
        extra = {"code": case.code} if kind == "case_received" else {}
        return [
            Message(
                key=f"{kind}:{ref}:party{position}",
                case_id=case.id,
                kind=kind,
                recipient={"role": "party", "position": position, "side": str(party.role)},
                address=contact_address(party.phone),
                variables={**_case_vars(case), "name": party.name, **extra},
                not_before=at,
            )
            for position, party in enumerate(case.parties)
        ]

    async def _mediator(self, conn: AsyncConnection, mediator_id: str) -> str | None:
        account = await directory.account(conn, mediator_id)
        return contact_address(account.login) if account else None

    async def _to_holder(
        self, conn: AsyncConnection, case: Case, event: dict[str, Any], seq: int, at: int
    ) -> list[Message]:
        found = []
        mediator = case.mediator_id
        variables = {
            **_case_vars(case),
            "region": "".join(str(r.get("name", "")) for r in case.region[-2:])
            if isinstance(case.region, list)
            else "",
            "deadline": day(case.deadline_at),
        }
        if event["kind"] != "taken":
            if mediator:
                recipient = {"role": "mediator", "account_id": mediator}
                address = await self._mediator(conn, mediator)
            else:
                organisation = case.holder_organisation_id
                recipient = {"role": "organisation", "organisation_id": organisation}
                query = select(case_settings.c.settings).where(
                    case_settings.c.organisation_id == organisation
                )
                stored = (await conn.execute(query)).scalar_one_or_none() or {}
                address = contact_address(stored.get("contact"))
            found.append(
                Message(
                    key=f"case_dispatched:{case.id}:{seq}",
                    case_id=case.id,
                    kind="case_dispatched",
                    recipient=recipient,
                    address=address,
                    variables=variables,
                    not_before=at,
                )
            )
        if mediator and case.deadline_at:
            found.append(
                Message(
                    key=f"deadline_approaching:{case.id}:{mediator}:{case.deadline_at}",
                    case_id=case.id,
                    kind="deadline_approaching",
                    recipient={"role": "mediator", "account_id": mediator},
                    address=await self._mediator(conn, mediator),
                    variables=variables,
                    not_before=max(at, case.deadline_at - self.timing.deadline_warning),
                )
            )
        return found

    async def _session(
        self, conn: AsyncConnection, case: Case, session_id: str, at: int
    ) -> list[Message]:
        session = next((s for s in await sessions_of(conn, case.id) if s.id == session_id), None)
        if session is None:
            return []
        phones = await _expert_phones(conn, session)
        found = []
        for invite in session.invites:
            if invite.party_position is not None and invite.party_position < len(case.parties):
                phone = case.parties[invite.party_position].phone
                role = side_label(invite.side) or "当事人"
            else:
                phone = phones.get(invite.expert_id or "")
                role = "专家"
            recipient = {
                "role": invite.kind,
                "side": invite.side,
                "position": invite.party_position,
                "expert_id": invite.expert_id,
                "invite_id": invite.invite_id,
                "room_id": session.room_id,
                "session_id": session.id,
            }
            variables = {
                **_case_vars(case),
                "name": invite.name,
                "time": when(session.scheduled_at),
                "role": role,
            }
            plan = [("session_scheduled", at)] + [
                (kind, session.scheduled_at - lead)
                for kind, lead in REMINDERS
                if session.scheduled_at - lead > at
            ]
            for kind, not_before in plan:
                found.append(
                    Message(
                        key=f"{kind}:{session.id}:{invite.invite_id}",
                        case_id=case.id,
                        kind=kind,
                        recipient=recipient,
                        address=contact_address(phone),
                        variables=variables,
                        not_before=not_before,
                    )
                )
        return found

    async def _follow_up(
        self, conn: AsyncConnection, case: Case, seq: int, at: int
    ) -> list[Message]:
        if not case.mediator_id:
            return []
        return [
            Message(
                key=f"follow_up_due:{case.id}:{seq}",
                case_id=case.id,
                kind="follow_up_due",
                recipient={"role": "mediator", "account_id": case.mediator_id},
                address=await self._mediator(conn, case.mediator_id),
                variables={**_case_vars(case), "closed": day(at)},
                not_before=at + self.timing.follow_up_after,
            )
        ]

    async def _court(
        self, conn: AsyncConnection, case: Case, deadline: int, at: int
    ) -> list[Message]:
        if not case.mediator_id:
            return []
        return [
            Message(
                key=f"court_deadline:{case.id}:{deadline}",
                case_id=case.id,
                kind="court_deadline",
                recipient={"role": "mediator", "account_id": case.mediator_id},
                address=await self._mediator(conn, case.mediator_id),
                variables={**_case_vars(case), "deadline": day(deadline)},
                not_before=max(at, deadline - self.timing.court_warning),
            )
        ]


async def _court_deadline(conn: AsyncConnection, case: Case, at: int) -> int:
    """30 days from the last agreement the case's log seals (or from `at`, with none)."""
    query = (
        select(case_log.c.entry)
        .where(case_log.c.case_id == case.id, case_log.c.type == "event")
        .order_by(case_log.c.seq.desc())
    )
    for (line,) in await conn.execute(query):
        entry = json.loads(line)
        if (entry.get("event") or {}).get("kind") == "agreement_sealed":
            return int(entry["time"]) + COURT_DAYS * DAY
    return at + COURT_DAYS * DAY


async def _expert_phones(conn: AsyncConnection, session: Session) -> dict[str, str | None]:
    ids = [i.expert_id for i in session.invites if i.expert_id]
    if not ids:
        return {}
    query = select(experts.c.id, experts.c.phone).where(experts.c.id.in_(ids))
    return {row.id: row.phone for row in await conn.execute(query)}
