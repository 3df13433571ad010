"""What happens in a session's room, in its case's log: a projection of the room store.

`CaseProjection` (a RoomProjection, server/store/base.py) compares each change of a room
with what it was: a recording started or stopped, a signature given, the agreement
sealed (its PDF's sha256), the session held (the mediator and a party in the room
together for the first time), the room ended. Only when one of these happened does it
look for the room's Session; a room of no case is left alone. The events go to the
case's log in the room's own transaction on the SQL store (so a signature and its log
entry commit together; a case log that cannot be written refuses the room change), in
one of their own on the memory store. Recordings and agreements are named by their
hashes. A recording's seal is written by the recorder process after the room changed:
`recording_sealed` comes from `Recordings` once it has indexed the seal
(`CaseProjection.recording_sealed`).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts.actor import ActorKind, current
from tiaojie.server.cases.model import Case
from tiaojie.server.cases.sessions import Session, mark_session, session_by_room
from tiaojie.server.cases.store import CaseStore, guarded
from tiaojie.server.store.base import Document

SERVER = {"kind": "server", "id": "server", "organisation_id": None}


def _agreement(doc: Document) -> dict[str, Any]:
    agreement = doc.get("agreement") or {}
    return {
        "code": agreement.get("code"),
        "status": agreement.get("status"),
        "fingerprint": agreement.get("fingerprint"),
        "pdf_sha256": agreement.get("pdf_sha256"),
        "signatures": {
            (s.get("role"), s.get("party_index"), s.get("fingerprint")): s
            for s in agreement.get("signatures") or []
        },
    }


def _together(doc: Document) -> bool:
    """The mediator and at least one party are in the room."""
    people = (doc.get("participants") or {}).values()
    roles = {p.get("role") for p in people if p.get("status") == "joined"}
    return "mediator" in roles and "party" in roles


def room_events(before: Document, after: Document) -> list[dict[str, Any]]:
    """What a change of a room means for its case (no session named yet)."""
    found: list[dict[str, Any]] = []
    if _together(after) and not _together(before):
        found.append({"kind": "session_held"})
    was, now = before.get("recording"), after.get("recording")
    was_id, now_id = (was or {}).get("id"), (now or {}).get("id")
    if was_id != now_id:
        if was_id:
            found.append({"kind": "recording_stopped", "recording_id": was_id})
        if now_id:
            found.append({"kind": "recording_started", "recording_id": now_id})
    old, new = _agreement(before), _agreement(after)
    if new["code"]:
        for key, signature in new["signatures"].items():
            if key not in old["signatures"]:
                found.append(
                    {
                        "kind": "agreement_signed",
                        "agreement_code": new["code"],
                        "role": signature.get("role"),
                        "fingerprint": signature.get("fingerprint"),
                        "mark_sha256": signature.get("mark_sha256"),
                    }
                )
        if new["status"] == "signed" and new["pdf_sha256"] and old["status"] != "signed":
            found.append(
                {
                    "kind": "agreement_sealed",
                    "agreement_code": new["code"],
                    "sha256": new["pdf_sha256"],
                    "fingerprint": new["fingerprint"],
                }
            )
    if after.get("status") == "ended" and before.get("status") != "ended":
        found.append({"kind": "session_ended"})
    return found


class CaseProjection:
    """The case side of every room change (module docstring)."""

    def __init__(self, store: CaseStore) -> None:
        self.store = store

    async def room_written(
        self, conn: AsyncConnection | None, before: Document | None, after: Document
    ) -> None:
        if before is None:
            return  # a new room: a session's is logged by whoever scheduled it
        found = room_events(before, after)
        if found:
            await self._log(conn, after["id"], found)

    async def recording_sealed(
        self, room_id: str, recording_id: str, facts: dict[str, Any]
    ) -> None:
        """A recording of a session's room has its seal (its folder, as indexed)."""
        if facts.get("status") != "sealed" or not facts.get("seal_hash"):
            return
        event = {
            "kind": "recording_sealed",
            "recording_id": recording_id,
            "seal_hash": facts["seal_hash"],
            "seal_seq": facts.get("seal_seq"),
            "seal_reason": facts.get("seal_reason"),
        }
        await self._log(None, room_id, [event])

    async def _log(
        self, conn: AsyncConnection | None, room_id: str, found: list[dict[str, Any]]
    ) -> None:
        if conn is None:
            with guarded():
                async with self.store.database.write() as own:
                    await self._log(own, room_id, found)
            return
        session = await session_by_room(conn, room_id)
        if session is None:
            return
        now = time.time()

        async def write(conn: AsyncConnection, case: Case) -> list[dict[str, Any]]:
            return await _events(conn, session, found, int(now))

        await self.store.change(session.case_id, lambda case: None, write, now, conn)


async def _events(
    conn: AsyncConnection, session: Session, found: list[dict[str, Any]], now: int
) -> list[dict[str, Any]]:
    """The events of `found` with their session; a session is held and ended once."""
    events = []
    for event in found:
        if event["kind"] == "session_held":
            if session.held_at is not None:
                continue
            await mark_session(conn, session.id, held_at=now)
            session.held_at = now
        if event["kind"] == "session_ended":
            await mark_session(conn, session.id, ended_at=now)
        events.append({"kind": event["kind"], "actor": _who(), "session_id": session.id, **event})
    return events


def _who() -> dict[str, str | None]:
    """Who made the room change (the audit log's actor: the invite whose holder signed,
    the account or token that ended the room, the server), named by kind and id."""
    who = current()
    if who.kind is ActorKind.SERVER:
        return SERVER
    return {"kind": str(who.kind), "id": who.id, "organisation_id": None}
