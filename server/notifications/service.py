"""`Notifications`: the outbox of one application: what queues messages (the case store's
listener, the agreements' room projection), the templates admins change, the worker and
what it needs at sending time (links made again from the invites and the server's
secret, and whether a reminder still applies), and the reading of a case's messages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts import audit
from tiaojie.server.accounts.audit import Action as Audit
from tiaojie.server.cases.actor import CaseActor
from tiaojie.server.cases.court_tables import case_court
from tiaojie.server.cases.service import Cases
from tiaojie.server.cases.sessions import session_by_room
from tiaojie.server.cases.states import OPEN_STATES, State
from tiaojie.server.cases.store import guarded
from tiaojie.server.cases.tables import case_parties, cases
from tiaojie.server.db import Database
from tiaojie.server.notifications import outbox, templates
from tiaojie.server.notifications.channels import Channel
from tiaojie.server.notifications.config import NotifySettings
from tiaojie.server.notifications.events import CaseNotices, contact_address
from tiaojie.server.notifications.outbox import Message
from tiaojie.server.notifications.tables import notification_templates
from tiaojie.server.notifications.worker import Worker
from tiaojie.server.store.base import Document

#: How soon after queuing the worker looks (the queuing transaction has committed by then).
WAKE_AFTER = 0.05
_SESSION_KINDS = ("session_scheduled", "session_reminder_day", "session_reminder_hour")
#: A booking's messages with the booking room's link (server/bookings/service.py).
_BOOKING_LINK_KINDS = (
    "booking_confirmed",
    "booking_rescheduled",
    "booking_reminder_day",
    "booking_reminder_hour",
)


class Notifications:
    def __init__(
        self,
        database: Database,
        cases_: Cases,
        settings: NotifySettings,
        *,
        clock: Callable[[], float] = time.time,
        channels: dict[str, Channel] | None = None,
    ) -> None:
        self.database = database
        self.cases = cases_
        self.settings = settings
        self.notices = CaseNotices(settings.timing)
        self.worker = Worker(database, settings, self.resolve, self.texts, clock, channels)
        cases_.store.listeners.append(self._case_events)

    async def _case_events(
        self,
        conn: AsyncConnection,
        case: Any,
        events: list[dict[str, Any]],
        first_seq: int,
        now: float,
    ) -> None:
        """Queue in the case's transaction, and wake the worker soon after (it claims
        once the transaction has committed: its own write waits for it on SQLite; on
        PostgreSQL an early round finds nothing and the next poll does)."""
        if await self.notices.case_events(conn, case, events, first_seq, now):
            asyncio.get_running_loop().call_later(WAKE_AFTER, self.worker.wake)

    # -- templates -------------------------------------------------------------------------
    async def texts(self) -> dict[str, str]:
        with guarded():
            async with self.database.read() as conn:
                rows = (await conn.execute(select(notification_templates))).mappings().all()
        changed = {row["kind"]: row["text"] for row in rows if row["kind"] in templates.KINDS}
        return {name: changed.get(name, kind.text) for name, kind in templates.KINDS.items()}

    async def template_list(self) -> list[dict[str, Any]]:
        texts = await self.texts()
        return [
            {
                "kind": name,
                "label": kind.label,
                "variables": list(kind.variables),
                "text": texts[name],
                "default": kind.text,
            }
            for name, kind in templates.KINDS.items()
        ]

    async def put_templates(
        self, changes: dict[str, str], actor: CaseActor
    ) -> list[dict[str, Any]]:
        """Each kind's new text (checked first: nothing is changed if one is refused); an
        empty text restores the default."""
        for kind, text in changes.items():
            templates.check(kind, text)
        now = int(time.time())
        with guarded():
            async with self.database.write() as conn:
                if actor.audited:
                    detail = {"notification_templates": sorted(changes)}
                    await audit.record(conn, Audit.CASE_SETTINGS_CHANGED, None, detail)
                for kind, text in changes.items():
                    await conn.execute(
                        delete(notification_templates).where(notification_templates.c.kind == kind)
                    )
                    if text:
                        await conn.execute(
                            insert(notification_templates).values(
                                kind=kind, text=text, updated_at=now
                            )
                        )
        return await self.template_list()

    # -- reading ---------------------------------------------------------------------------
    async def of_case(self, case_id: str) -> list[dict[str, Any]]:
        with guarded():
            async with self.database.read() as conn:
                return [outbox.public(row) for row in await outbox.of_case(conn, case_id)]

    # -- at sending time -------------------------------------------------------------------
    async def resolve(self, row: dict[str, Any]) -> dict[str, str] | None:
        """The links of a message (made now, never stored), or None if it is moot."""
        case = await self.cases.store.get(row["case_id"])
        if case is None:
            return None
        kind, recipient = row["kind"], row["recipient"]
        extra: dict[str, str] = {}
        position = recipient.get("position")
        if recipient.get("role") == "party" and isinstance(position, int):
            extra["progress_url"] = self.cases.party_url(case, position)
        elif "progress_url" in templates.KINDS[kind].variables:
            extra["progress_url"] = self.cases.progress_url(case.code)
        if kind in _SESSION_KINDS:
            links = await self.cases.sessions.links(recipient.get("room_id") or "")
            link = links.get(recipient.get("invite_id") or "")
            if link is None or link.get("ended"):
                return None  # the session's room ended, the invite was revoked
            extra["join_url"] = link["url"]
        if kind in _BOOKING_LINK_KINDS:
            if recipient.get("role") == "mediator":  # the room is theirs: the staff page
                extra["join_url"] = f"{self.cases.base_url}/staff"
            else:
                links = await self.cases.sessions.links(recipient.get("room_id") or "")
                link = links.get(recipient.get("invite_id") or "")
                if link is None or link.get("ended"):
                    return None  # the booking was cancelled or moved since
                extra["join_url"] = link["url"]
        if kind == "deadline_approaching" and (
            case.state not in OPEN_STATES or case.mediator_id != recipient.get("account_id")
        ):
            return None
        if kind == "follow_up_due" and case.state not in (State.SUCCEEDED, State.FAILED):
            return None
        if kind == "court_deadline" and await self._court_answered(case.id):
            return None  # the court has the application: the deadline is moot
        return extra

    async def _court_answered(self, case_id: str) -> bool:
        with guarded():
            async with self.database.read() as conn:
                answers = (
                    await conn.execute(
                        select(case_court.c.answers).where(case_court.c.case_id == case_id)
                    )
                ).scalar_one_or_none()
        return bool(answers)

    # -- agreements ------------------------------------------------------------------------
    async def room_written(
        self, conn: AsyncConnection | None, before: Document | None, after: Document
    ) -> None:
        """A room projection: a session room's agreement finalised for signing queues
        `agreement_ready` to the case's parties, in the room's transaction."""
        new = after.get("agreement") or {}
        old = (before or {}).get("agreement") or {}
        if new.get("status") != "signing" or old.get("status") == "signing":
            return
        if conn is None:
            with guarded():
                async with self.database.write() as own:
                    await self.room_written(own, before, after)
            return
        session = await session_by_room(conn, after["id"])
        if session is None:
            return
        case = (
            (await conn.execute(select(cases).where(cases.c.id == session.case_id)))
            .mappings()
            .first()
        )
        if case is None:
            return
        query = select(case_parties).where(case_parties.c.case_id == session.case_id)
        ref = f"{new.get('code')}:{new.get('fingerprint') or ''}"
        messages = [
            Message(
                key=f"agreement_ready:{ref}:party{party['position']}",
                case_id=session.case_id,
                kind="agreement_ready",
                recipient={"role": "party", "position": party["position"], "side": party["role"]},
                address=contact_address(party["phone"]),
                variables={
                    "case_number": case["number"],
                    "dispute_type": case["dispute_type_name"],
                    "name": party["name"],
                },
                not_before=int(time.time()),
            )
            for party in (await conn.execute(query.order_by(case_parties.c.position))).mappings()
        ]
        if messages:
            await outbox.queue(conn, messages, int(time.time()))


class RoomNotices:
    """The room projection standing for `Notifications`, which is made after the room
    store (it needs the cases): until `target` is set it does nothing."""

    def __init__(self) -> None:
        self.target: Notifications | None = None

    async def room_written(
        self, conn: AsyncConnection | None, before: Document | None, after: Document
    ) -> None:
        if self.target is not None:
            await self.target.room_written(conn, before, after)


NOTIFICATIONS = web.AppKey("tiaojie_notifications", Notifications)
