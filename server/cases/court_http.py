"""What follows a successful mediation, over REST (docs/COURT.md):

- `GET /api/cases/{id}/court`: the hand-off to the court as tracked on the case (the
  court, the agreement, when it took effect, the 30-day deadline, the application's
  details, the checklist, the court's answers);
- `POST /api/cases/{id}/court-bundle`: the application filled in (court, addresses,
  agents, the attachments that prove identity, property and agency) → the bundle ZIP
  (server/cases/court.py; tiaojie.archive.court_bundle), logged `court_bundle_prepared`
  with its manifest's sha256;
- `POST /api/cases/{id}/court-answer`: the court's answer (accepted, confirmed, refused,
  its document number and date), logged `court_answered`;
- `GET/POST /api/cases/{id}/follow-ups`: the follow-ups (回访), each the case's
  `follow_up` action (logged `followed_up` with the day, method, performance and notes).

The court's part is for the case's mediator, its coordinators and the admin (those who
may send its links: not an archivist); follow-ups for those who may `follow_up`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.archive.layout import CHAIN_FILE
from tiaojie.archive.verify.recording import verify_recording
from tiaojie.server.accounts import audit
from tiaojie.server.accounts.audit import Action as Audit
from tiaojie.server.agreements.storage import PDF_FILE
from tiaojie.server.agreements.storage import folder as agreement_folder
from tiaojie.server.archive_index.schema import agreements as agreement_rows
from tiaojie.server.cases import court, permissions
from tiaojie.server.cases.actor import CaseActor
from tiaojie.server.cases.court_tables import case_court, case_follow_ups
from tiaojie.server.cases.http import CASE, _json, send_zip
from tiaojie.server.cases.model import Case
from tiaojie.server.cases.schemas import _object, _text
from tiaojie.server.cases.service import Cases
from tiaojie.server.cases.states import FOLLOW_UP_METHODS, PERFORMANCE, Action
from tiaojie.server.cases.store import guarded
from tiaojie.server.errors import bad_request, forbidden
from tiaojie.server.http_auth import json_response
from tiaojie.server.model import new_id
from tiaojie.server.schemas import ID_PATTERN

DATE: dict[str, Any] = {"type": "string", "pattern": r"20[0-9]{2}-[01][0-9]-[0-3][0-9]"}
ATTACHMENT_ID: dict[str, Any] = {"type": "string", "pattern": ID_PATTERN}
APPLICATION = _object(
    {
        "court": _text(100),
        "agreement_code": {"type": "string", "pattern": r"[A-Za-z0-9_-]{8,64}"},
        "request": _text(2000, multiline=True),
        "property_relevant": {"type": "boolean"},
        "property_proofs": {"type": "array", "maxItems": 20, "items": ATTACHMENT_ID},
        "parties": {
            "type": "array",
            "maxItems": 20,
            "items": _object(
                {
                    "position": {"type": "integer", "minimum": 0, "maximum": 19},
                    "address": _text(200, 0),
                    "id_document": ATTACHMENT_ID,
                    "agent": _object(
                        {"name": _text(32), "power_of_attorney": ATTACHMENT_ID}, ["name"]
                    ),
                },
                ["position"],
            ),
        },
    },
    ["court"],
)
ANSWER = _object(
    {
        "status": {"type": "string", "enum": list(court.ANSWERS)},
        "document_number": _text(64),
        "date": DATE,
    },
    ["status", "document_number", "date"],
)
FOLLOW_UP = _object(
    {
        "date": DATE,
        "method": {"type": "string", "enum": list(FOLLOW_UP_METHODS)},
        "performance": {"type": "string", "enum": list(PERFORMANCE)},
        "notes": _text(2000, 0, multiline=True),
    },
    ["date", "method", "performance"],
)


def check_court(actor: CaseActor, case: Case) -> None:
    if not permissions.may_see_links(actor, case.rules):
        raise forbidden("Only the case's mediator, its coordinators and the admin.")


def _valid_date(text: str) -> str:
    try:
        time.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise bad_request("date must be a day, YYYY-MM-DD.") from None
    return text


async def _court_row(conn: AsyncConnection, case_id: str) -> dict[str, Any] | None:
    row = (
        (await conn.execute(select(case_court).where(case_court.c.case_id == case_id)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def _save(conn: AsyncConnection, case_id: str, values: dict[str, Any]) -> None:
    done = await conn.execute(
        update(case_court).where(case_court.c.case_id == case_id).values(**values)
    )
    if not done.rowcount:
        await conn.execute(
            insert(case_court).values(
                case_id=case_id,
                **{"application": {}, "answers": [], **values},
            )
        )


class CourtRoutes:
    def __init__(self, cases: Cases) -> None:
        self.cases = cases

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_get(CASE + "/court", self.get)
        r.add_post(CASE + "/court-bundle", self.bundle)
        r.add_post(CASE + "/court-answer", self.answer)
        r.add_get(CASE + "/follow-ups", self.follow_ups)
        r.add_post(CASE + "/follow-ups", self.follow_up)

    async def _case(self, request: web.Request) -> tuple[CaseActor, Case, list[dict[str, Any]]]:
        actor = self.cases.actors.staff(request)
        found = await self.cases.store.log_entries(request.match_info["case_id"])
        if found is None:
            raise permissions.case_not_found()
        case, entries = found
        permissions.check_read(actor, case.rules)
        return actor, case, entries

    async def _view(self, case: Case, entries: list[dict[str, Any]]) -> dict[str, Any]:
        with guarded():
            async with self.cases.database.read() as conn:
                row = await _court_row(conn, case.id)
        row = row or {"application": {}, "answers": []}
        eligible = case.outcome == "success"
        found = None
        if eligible:
            code = row.get("agreement_code")
            found = court.terms(case, entries, code if isinstance(code, str) else None)
        application = row.get("application") or {}
        items = court.checklist(case, application, bool(found and found.agreement_code))
        now = int(time.time())
        deadline = row.get("deadline_at") or (found.deadline_at if found else None)
        answered = bool(row.get("answers"))
        return {
            "case_id": case.id,
            "eligible": eligible,
            "court": row.get("court"),
            "agreement_code": row.get("agreement_code") or (found and found.agreement_code),
            "effective_at": row.get("effective_at") or (found.effective_at if found else None),
            "deadline_at": deadline,
            "days_left": None if deadline is None else (deadline - now) // 86400,
            "deadline_passed": bool(deadline and deadline < now and not answered),
            "application": application,
            "checklist": items,
            "missing": court.missing(items),
            "prepared_at": row.get("prepared_at"),
            "manifest_sha256": row.get("manifest_sha256"),
            "answers": row.get("answers") or [],
        }

    async def get(self, request: web.Request) -> web.Response:
        _, case, entries = await self._case(request)
        return json_response(await self._view(case, entries))

    # -- the bundle ------------------------------------------------------------------------
    async def bundle(self, request: web.Request) -> web.StreamResponse:
        actor, case, entries = await self._case(request)
        check_court(actor, case)
        body = await _json(request, APPLICATION)
        found = court.terms(case, entries, body.get("agreement_code"))
        attached = {a.id: a for a in case.attachments}
        chosen = list(body.get("property_proofs") or [])
        for party in body.get("parties") or []:
            if party["position"] >= len(case.parties):
                raise bad_request("parties: a position this case has no party at.")
            chosen += [
                party.get("id_document"),
                (party.get("agent") or {}).get("power_of_attorney"),
            ]
        chosen = [c for c in chosen if c]
        unknown = [c for c in chosen if c not in attached]
        if unknown:
            raise bad_request("An attachment named is not one of this case's.")
        agreement_recording = None
        if found.agreement_code:
            with guarded():
                async with self.cases.database.read() as conn:
                    agreement_recording = (
                        await conn.execute(
                            select(agreement_rows.c.recording_id).where(
                                agreement_rows.c.code == found.agreement_code
                            )
                        )
                    ).scalar_one_or_none()
        holder = await self.cases.store.organisation(case.holder_organisation_id)
        data_dir = self.cases.data_dir
        recordings = court.recordings_of(entries, found.session_id)
        key = self.cases.key
        now = time.time()

        def build(out: Any) -> tuple[str, list[str]]:
            files: dict[str, bytes | Path] = {}
            if found.agreement_code:
                pdf = agreement_folder(data_dir, found.agreement_code) / PDF_FILE
                if pdf.is_file():
                    files[court.agreement_name(found.agreement_code)] = pdf
            for recording_id in recordings:
                folder = data_dir / "recordings" / recording_id
                if (folder / CHAIN_FILE).is_file():
                    files[court.recording_name(recording_id)] = (folder / CHAIN_FILE).read_bytes()
                    checked = verify_recording(folder, key.public_key())
                    files[court.report_name(recording_id)] = (
                        checked.to_json().encode("utf-8") + b"\n"
                    )
            for attachment_id in dict.fromkeys(chosen):
                item = attached[attachment_id]
                path = self.cases.files.path(case.id, item.sha256)
                if path.is_file():
                    files[court.attachment_name(item.sha256)] = path
            present = court.agreement_name(found.agreement_code or "-") in files
            items = court.checklist(case, body, present)
            lacking = court.missing(items)
            pdf_bytes = court.application_pdf(
                case, body, found, items, holder.name, now, self.cases.tz
            )
            summary = {
                "court": body["court"],
                "agreement_code": found.agreement_code if present else None,
                "agreement_recording_id": agreement_recording,
                "recording_ids": [r for r in recordings if court.recording_name(r) in files],
                "attachments": sorted(court.attachment_name(attached[c].sha256) for c in chosen),
                "effective_at": found.effective_at,
                "deadline_at": found.deadline_at,
                "missing": lacking,
            }
            digest = court.bundle_zip(
                case,
                entries,
                key,
                now,
                application_pdf_bytes=pdf_bytes,
                summary=summary,
                files=files,
                out=out,
            )
            return digest, lacking

        loop = asyncio.get_running_loop()
        with tempfile.TemporaryFile() as out:
            digest, lacking = await loop.run_in_executor(None, build, out)

            async def write(conn: AsyncConnection, held: Case) -> list[dict[str, Any]]:
                await _save(
                    conn,
                    held.id,
                    {
                        "court": body["court"],
                        "agreement_code": found.agreement_code,
                        "effective_at": found.effective_at,
                        "deadline_at": found.deadline_at,
                        "application": body,
                        "prepared_at": int(now),
                        "manifest_sha256": digest,
                        "updated_at": int(now),
                    },
                )
                event = {
                    "kind": "court_bundle_prepared",
                    "actor": actor.logged(),
                    "court": body["court"],
                    "agreement_code": found.agreement_code,
                    "effective_at": found.effective_at,
                    "deadline_at": found.deadline_at,
                    "manifest_sha256": digest,
                    "missing": len(lacking),
                }
                if actor.audited:
                    detail = {"kind": event["kind"], "court": body["court"]}
                    await audit.record(conn, Audit.CASE_CHANGED, held.id, detail)
                return [event]

            await self.cases.store.change(case.id, court.require_success, write, now)
            return await send_zip(request, out, f"court-{case.id}.zip")

    # -- the court's answer ----------------------------------------------------------------
    async def answer(self, request: web.Request) -> web.Response:
        actor, case, entries = await self._case(request)
        check_court(actor, case)
        body = await _json(request, ANSWER)
        _valid_date(body["date"])
        now = time.time()

        async def write(conn: AsyncConnection, held: Case) -> list[dict[str, Any]]:
            found = court.terms(held, entries)
            row = await _court_row(conn, held.id) or {}
            answer = {
                "status": body["status"],
                "label": court.ANSWERS[body["status"]],
                "document_number": body["document_number"],
                "date": body["date"],
                "recorded_at": int(now),
                "actor": actor.logged(),
            }
            values: dict[str, Any] = {
                "answers": [*(row.get("answers") or []), answer],
                "updated_at": int(now),
            }
            if not row:
                values |= {
                    "agreement_code": found.agreement_code,
                    "effective_at": found.effective_at,
                    "deadline_at": found.deadline_at,
                }
            await _save(conn, held.id, values)
            if actor.audited:
                detail = {"kind": "court_answered", "status": body["status"]}
                await audit.record(conn, Audit.CASE_CHANGED, held.id, detail)
            return [
                {
                    "kind": "court_answered",
                    "actor": actor.logged(),
                    "court": row.get("court"),
                    "status": body["status"],
                    "document_number": body["document_number"],
                    "date": body["date"],
                }
            ]

        await self.cases.store.change(case.id, court.require_success, write, now)
        found = await self.cases.store.log_entries(case.id)
        assert found is not None
        return json_response(await self._view(*found), 201)

    # -- follow-ups (回访) -----------------------------------------------------------------
    async def follow_ups(self, request: web.Request) -> web.Response:
        _, case, _ = await self._case(request)
        query = (
            select(case_follow_ups)
            .where(case_follow_ups.c.case_id == case.id)
            .order_by(case_follow_ups.c.created_ns)
        )
        with guarded():
            async with self.cases.database.read() as conn:
                rows = [_follow_up(r) for r in (await conn.execute(query)).mappings()]
        return json_response(
            {
                "case_id": case.id,
                "follow_up_due_at": case.follow_up_due_at,
                "follow_up_overdue": case.follow_up_overdue(int(time.time())),
                "follow_ups": rows,
            }
        )

    async def follow_up(self, request: web.Request) -> web.Response:
        actor = self.cases.actors.staff(request)
        body = await _json(request, FOLLOW_UP)
        _valid_date(body["date"])
        now = time.time()
        made = {
            "id": new_id(),
            "date": body["date"],
            "method": body["method"],
            "performance": body["performance"],
            "notes": body.get("notes") or "",
            "actor": actor.logged(),
            "created_at": int(now),
        }

        async def also(conn: AsyncConnection, held: Case) -> None:
            await conn.execute(
                insert(case_follow_ups).values(**made, case_id=held.id, created_ns=time.time_ns())
            )

        params = {
            "date": body["date"],
            "method": body["method"],
            "performance": body["performance"],
            "note": body.get("notes") or None,
        }
        case = await self.cases.store.transition(
            request.match_info["case_id"], actor, Action.FOLLOW_UP, params, now, also
        )
        return json_response(
            {"follow_up": {**made, "case_id": case.id}, "case": self.cases.staff_view(actor, case)},
            201,
        )


def _follow_up(row: Any) -> dict[str, Any]:
    return {
        k: row[k]
        for k in ("id", "case_id", "date", "method", "performance", "notes", "actor", "created_at")
    }


__all__ = ["CourtRoutes"]
