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
import functools
import secrets
import time
from datetime import tzinfo
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tiaojie.archive.localtime import zone
from tiaojie.server.cases import permissions
from tiaojie.server.cases.actor import Actor, Actors
from tiaojie.server.cases.attachments import MAX_PER_CASE, AttachmentFiles, Upload
from tiaojie.server.cases.dossier import dossier_zip
from tiaojie.server.cases.experts import ExpertPool
from tiaojie.server.cases.intake import Intake, IntakeLimits
from tiaojie.server.cases.model import Case
from tiaojie.server.cases.progress import progress
from tiaojie.server.cases.states import SOURCES, Action
from tiaojie.server.cases.store import CaseStore, NewCase, new_attachment
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
        actors: Actors,
        key: Ed25519PrivateKey,
        data_dir: Path,
        base_url: str,
        tz: tzinfo | None = None,
    ) -> None:
        self.database = database
        self.tz = tz or zone()  # --timezone: the times people read (the dossier's summary)
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

    async def open_case(self, new: NewCase, actor: Actor, uploads: list[Upload]) -> Case:
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

    async def attach(self, case_id: str, actor: Actor, uploads: list[Upload]) -> Case:
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

    async def readable(self, case_id: str, actor: Actor) -> Case:
        case = await self.store.get(case_id)
        if case is None:
            raise permissions.case_not_found()
        permissions.check_read(actor, case.rules)
        return case

    def actions_for(self, actor: Actor, case: Case) -> list[str]:
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

    def staff_view(self, actor: Actor, case: Case) -> dict[str, Any]:
        return case.staff_view(
            int(time.time()), self.actions_for(actor, case), self.progress_url(case.code)
        )

    async def dossier(self, case: Case, entries: list[dict[str, Any]]) -> bytes:
        """The case's dossier ZIP (server/cases/dossier.py), built off the event loop."""
        holder = await self.store.organisation(case.holder_organisation_id)
        build = functools.partial(
            dossier_zip,
            case,
            entries,
            self.files,
            self.key,
            time.time(),
            progress_url=self.progress_url(case.code),
            organisation_name=holder.name,
            tz=self.tz,
        )
        return await asyncio.get_running_loop().run_in_executor(None, build)

    async def public_progress(self, code: str, lang: str) -> dict[str, Any] | None:
        found = await self.store.by_code(code)
        if found is None:
            return None
        case, entries = found
        organisation = await self.store.organisation(case.holder_organisation_id)
        return progress(case, entries, organisation, int(time.time()), lang)


#: Where the application keeps its Cases.
CASES = web.AppKey("tiaojie_cases", Cases)
