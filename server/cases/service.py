"""`Cases`: what the application builds for cases, given its collaborators (the database,
who the callers are, the signing key of the log, the data directory).

It turns validated requests into changes of the store (server/cases/store.py): a new case
gets its id and code here and its files kept before the transaction that records them
(removed again if it fails); the public progress and the dossier are assembled here.
With `--database memory:` cases are kept as long as the process, in the in-memory SQLite
that accounts and the archive index use too.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tiaojie.server.cases import permissions, staff
from tiaojie.server.cases.actor import CaseActor, CaseActors
from tiaojie.server.cases.attachments import MAX_PER_CASE, AttachmentFiles, Upload
from tiaojie.server.cases.experts import ExpertPool
from tiaojie.server.cases.intake import Intake, IntakeLimits
from tiaojie.server.cases.model import Case
from tiaojie.server.cases.progress import progress
from tiaojie.server.cases.states import SOURCES, Action
from tiaojie.server.cases.store import CaseStore, NewCase, guarded, new_attachment
from tiaojie.server.db import Database
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import new_id


def new_code() -> str:
    """The case's public code: 128 random bits, 22 URL-safe characters."""
    return secrets.token_urlsafe(16)


class Cases:
    """The cases of one application: its store, expert pool, files, intake and limits."""

    def __init__(
        self,
        database: Database,
        actors: CaseActors,
        key: Ed25519PrivateKey,
        data_dir: Path,
        base_url: str,
    ) -> None:
        self.database = database
        self.actors = actors
        self.key = key
        self.base_url = base_url
        self.files = AttachmentFiles(data_dir)
        self.intake = Intake(self.files)
        self.limits = IntakeLimits.default()
        self.store = CaseStore(database, key)
        self.experts = ExpertPool(database)

    def progress_url(self, code: str) -> str:
        return f"{self.base_url}/c/{code}"

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

    async def public_progress(self, code: str, lang: str) -> dict[str, Any] | None:
        found = await self.store.by_code(code)
        if found is None:
            return None
        case, entries = found
        organisation = await self.store.organisation(case.holder_organisation_id)
        return progress(case, entries, organisation, int(time.time()), lang)


#: Where the application keeps its Cases.
CASES = web.AppKey("tiaojie_cases", Cases)
