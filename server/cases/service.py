"""`Cases`: what the application builds for cases, given its collaborators (the database,
who the callers are, the signing key of the log, the data directory).

It turns validated requests into changes of the store (server/cases/store.py): a new case
gets its id and code here and its files kept before the transaction that records them
(removed again if it fails); the public progress and the dossier (with its printable
summary, times in the installation's --timezone) are assembled here.
With `--database memory:` cases are kept as long as the process, in the in-memory SQLite
that accounts and the archive index use too.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import tzinfo
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web

from tiaojie.archive.caselog import events
from tiaojie.archive.localtime import zone
from tiaojie.server.agreements.case import AgreementCase
from tiaojie.server.agreements.storage import PDF_FILE
from tiaojie.server.agreements.storage import folder as agreement_folder
from tiaojie.server.cases import permissions, staff
from tiaojie.server.cases.actor import CaseActor, CaseActors
from tiaojie.server.cases.attachments import MAX_PER_CASE, AttachmentFiles, Upload
from tiaojie.server.cases.dossier import dossier_zip
from tiaojie.server.cases.evidence import evidence_files
from tiaojie.server.cases.experts import ExpertPool
from tiaojie.server.cases.intake import Intake, IntakeLimits
from tiaojie.server.cases.model import PARTY_LABELS, Case
from tiaojie.server.cases.party import PartyKeys
from tiaojie.server.cases.progress import progress
from tiaojie.server.cases.sessions import CaseSessions, Session, next_session, session_by_room
from tiaojie.server.cases.states import SOURCES, Action
from tiaojie.server.cases.store import CaseStore, NewCase, guarded, new_attachment
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import new_id
from tiaojie.server.store import RoomStore
from tiaojie.server.tokens import TokenSigner


def new_code() -> str:
    """The case's public code: 128 random bits, 22 URL-safe characters."""
    return secrets.token_urlsafe(16)


class Cases:
    """The cases of one application: its store, expert pool, files, intake and limits,
    sessions (rooms in `rooms`, invite links signed by `signer`) and the parties' own
    links (derived from `secret`)."""

    def __init__(
        self,
        store: CaseStore,
        actors: CaseActors,
        data_dir: Path,
        base_url: str,
        *,
        rooms: RoomStore,
        signer: TokenSigner,
        secret: bytes,
        tz: tzinfo | None = None,
    ) -> None:
        self.store = store
        self.database = store.database
        self.key = store.key
        self.tz = tz or zone()  # --timezone: the times people read (the dossier's summary)
        self.actors = actors
        self.base_url = base_url
        self.files = AttachmentFiles(data_dir)
        self.data_dir = data_dir
        self.intake = Intake(self.files)
        self.limits = IntakeLimits.default()
        self.experts = ExpertPool(store.database)
        self.sessions = CaseSessions(store, self.experts, rooms, signer, base_url)
        self.party_keys = PartyKeys(secret)

    def progress_url(self, code: str) -> str:
        return f"{self.base_url}/c/{code}"

    def party_url(self, case: Case, position: int) -> str:
        """A party's own progress link (server/cases/party.py)."""
        return f"{self.progress_url(case.code)}?key={self.party_keys.key(case.id, position)}"

    async def agreement_case(self, room_id: str) -> AgreementCase | None:
        """The case of a session's room, as its agreement needs it (prefill, QR code)."""
        with guarded():
            async with self.database.read() as conn:
                session = await session_by_room(conn, room_id)
        if session is None:
            return None
        case = await self.store.get(session.case_id)
        if case is None:
            return None
        return AgreementCase(case.number, case.description, self.progress_url(case.code))

    def receipt(self, case: Case) -> dict[str, Any]:
        return {
            "case_id": case.id,
            "case_number": case.number,
            "code": case.code,
            "progress_url": self.progress_url(case.code),
        }

    async def open_case(self, new: NewCase, actor: CaseActor, uploads: list[Upload]) -> Case:
        """Register a case with its checked uploads (kept first, forgotten on failure)."""
        store = self.store
        case_id, now = new_id(), time.time()
        try:
            placed = self.files.keep(case_id, uploads)
        except BaseException:
            self.files.discard(uploads)
            raise
        attachments = [
            new_attachment(u.sha256, u.size, u.media_type, u.filename, int(now)) for u in uploads
        ]
        try:
            return await store.create(new, actor, case_id, new_code(), attachments, now)
        except BaseException:
            self.files.forget(placed)
            raise

    async def attach(self, case_id: str, actor: CaseActor, uploads: list[Upload]) -> Case:
        store, now = self.store, time.time()
        try:
            placed = self.files.keep(case_id, uploads)
        except BaseException:
            self.files.discard(uploads)
            raise
        attachments = [
            new_attachment(u.sha256, u.size, u.media_type, u.filename, int(now)) for u in uploads
        ]
        try:
            return await store.add_attachments(case_id, actor, attachments, now, MAX_PER_CASE)
        except BaseException:
            self.files.forget(placed)
            raise

    async def readable(self, case_id: str, actor: CaseActor) -> Case:
        case = await self.store.get(case_id)
        if case is None:
            raise permissions.case_not_found()
        permissions.check_read(actor, case.rules)
        return case

    def actions_for(self, actor: CaseActor, case: Case) -> list[str]:
        """The actions `actor` may take on `case` now (for clients to offer)."""
        allowed = []
        for action in Action:
            if case.state not in SOURCES[action]:
                continue
            try:
                permissions.check_action(actor, action, case.rules, {})
            except TiaojieError:
                continue
            allowed.append(str(action))
        return allowed

    def staff_view(self, actor: CaseActor, case: Case) -> dict[str, Any]:
        return case.staff_view(
            int(time.time()), self.actions_for(actor, case), self.progress_url(case.code)
        )

    async def dossier(
        self, case: Case, entries: list[dict[str, Any]], out: BinaryIO, segments: bool = False
    ) -> None:
        """The case's dossier ZIP (server/cases/dossier.py) into `out`, built off the event
        loop; with the recordings' Segments if `segments`."""
        holder = await self.store.organisation(case.holder_organisation_id)

        def build() -> None:
            dossier_zip(
                case,
                entries,
                self.files,
                self.key,
                time.time(),
                progress_url=self.progress_url(case.code),
                organisation_name=holder.name,
                tz=self.tz,
                evidence=evidence_files(self.data_dir, entries, segments),
                out=out,
            )

        await asyncio.get_running_loop().run_in_executor(None, build)

    async def named(self, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Case views (summaries or staff views) with the names of their organisations
        and mediator (`holder_organisation_name`, `mediator_name`): what people read."""
        ids = {v["holder_organisation_id"] for v in views} | {
            v["mediator_id"] for v in views if v.get("mediator_id")
        }
        with guarded():
            async with self.database.read() as conn:
                found = await staff.names(conn, ids)
        for view in views:
            view["holder_organisation_name"] = found.get(view["holder_organisation_id"])
            view["mediator_name"] = found.get(view["mediator_id"] or "")
        return views

    async def directory(self) -> dict[str, Any]:
        """The organisations and mediators a case may be given to (`GET /api/case-staff`)."""
        with guarded():
            async with self.database.read() as conn:
                return await staff.staff_directory(conn)

    async def public_progress(
        self, code: str, lang: str, key: str | None = None
    ) -> dict[str, Any] | None:
        """The public progress of the case with this code; with a party's own `key`, also
        what that party sees (`party`: their sessions' links, their signed agreements)."""
        found = await self.store.by_code(code)
        if found is None:
            return None
        case, entries = found
        organisation = await self.store.organisation(case.holder_organisation_id)
        sessions = await self.sessions.of_case(case.id)
        now = int(time.time())
        agreements = await self.sessions.agreements(sessions)
        public = progress(
            case, entries, organisation, now, lang, next_session(sessions, now), agreements
        )
        position = self.party_keys.party_of(case, key)
        if position is not None:
            public["party"] = await self._party_view(case, entries, sessions, position, key)
        return public

    async def _party_view(
        self,
        case: Case,
        entries: list[dict[str, Any]],
        sessions: list[Session],
        position: int,
        key: str | None,
    ) -> dict[str, Any]:
        """A party's own view: their role, their sessions with their join links, the
        agreements sealed in those sessions (downloads with their key)."""
        party = case.parties[position]
        mine: list[dict[str, Any]] = []
        for session in sessions:
            invite = next((i for i in session.invites if i.party_position == position), None)
            if invite is None:
                continue
            link = (await self.sessions.links(session.room_id)).get(invite.invite_id)
            usable = link is not None and not link["ended"] and session.ended_at is None
            mine.append(
                {
                    "session_id": session.id,
                    "scheduled_at": session.scheduled_at,
                    "held_at": session.held_at,
                    "ended_at": session.ended_at,
                    "join_url": link["url"] if link and usable else None,
                }
            )
        in_mine = {s["session_id"] for s in mine}
        agreements = [
            {
                "code": e["agreement_code"],
                "sha256": e["sha256"],
                "sealed_at": int(e["time"]),
                "url": f"{self.progress_url(case.code)}/agreements/{e['agreement_code']}?key={key}",
            }
            for e in events(entries)
            if e.get("kind") == "agreement_sealed" and e.get("session_id") in in_mine
        ]
        return {
            "role": str(party.role),
            "role_label": PARTY_LABELS[party.role],
            "sessions": mine,
            "agreements": agreements,
        }

    async def party_agreement(self, code: str, agreement_code: str, key: str | None) -> Path:
        """The signed PDF of an agreement sealed in one of a party's sessions, for that
        party's own key; 404 otherwise (as if there were none)."""
        found = await self.public_progress(code, "zh-CN", key)
        party = (found or {}).get("party") or {}
        for agreement in party.get("agreements", []):
            if agreement["code"] == agreement_code:
                path = agreement_folder(self.data_dir, agreement_code) / PDF_FILE
                if path.is_file():
                    return path
        raise TiaojieError("agreement_not_found", "There is no such signed agreement.", 404)


#: Where the application keeps its Cases.
CASES = web.AppKey("tiaojie_cases", Cases)
