"""The cases' routes (docs/CASES.md, docs/PROTOCOL.md, /api/openapi.json).

Public: `POST /api/cases` without a token (a resident's report), `GET /api/case-options`
(the types and regions the report form offers), `GET /api/progress/{code}` (+ `/qr.svg`),
the pages `/report` and `/c/{code}`. Staff (through `Actors`, today the admin token):
`POST /api/cases` with a token, `GET /api/cases[/{id}]`, transitions, the log, attachments,
the dossier, the expert pool and the case configuration.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from typing import IO, Any
from urllib.parse import quote

from aiohttp import web

from tiaojie.archive.caselog import verify_case_log
from tiaojie.archive.chain import case_chain_name
from tiaojie.server import json_input
from tiaojie.server.agreement_page import html_response
from tiaojie.server.agreements.state import CODE_PATTERN as AGREEMENT_CODE
from tiaojie.server.cases import outbox, permissions, progress, regions, schemas, taxonomy
from tiaojie.server.cases.actor import CaseActor, resident
from tiaojie.server.cases.intake import phone_key
from tiaojie.server.cases.model import Case, Party, PartyRole, Risk, Source
from tiaojie.server.cases.numbering import check_format
from tiaojie.server.cases.service import Cases
from tiaojie.server.cases.states import Action, State
from tiaojie.server.cases.store import CaseConfig, Filters, NewCase
from tiaojie.server.errors import TiaojieError, bad_request, forbidden
from tiaojie.server.http_auth import json_response
from tiaojie.server.model import new_id
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.validation import Schema, validate
from tiaojie.server.web import NO_STORE, page_response

CASE = "/api/cases/{case_id:" + ID_PATTERN + "}"
MAX_JSON = 256 * 1024
#: A QR code or attachment is served with no active content whatsoever.
INERT = {"Content-Security-Policy": "default-src 'none'", **NO_STORE}


async def _json(request: web.Request, schema: Schema) -> dict[str, Any]:
    """A JSON body up to MAX_JSON, validated (the path may take bigger bodies: intake)."""
    if request.content_type != "application/json":
        raise TiaojieError("unsupported_media_type", "Send a JSON body (application/json).", 415)
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_JSON:
            raise TiaojieError("payload_too_large", "The request body is too large.", 413)
    body = json_input.loads(bytes(data))
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    return validate(schema, body, "body")


def _flag(request: web.Request, name: str) -> bool | None:
    value = request.query.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise bad_request(f"{name} must be true or false.")
    return value == "true"


def _param(request: web.Request, name: str, pattern: str) -> str | None:
    value = request.query.get(name)
    if value is not None and not re.fullmatch(pattern, value):
        raise bad_request(f"{name} has an invalid format.")
    return value


def _int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    value = request.query.get(name)
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]{1,19}", value) or not low <= int(value) <= high:
        raise bad_request(f"{name} must be a whole number from {low} to {high}.")
    return int(value)


class CaseRoutes:
    def __init__(self, cases: Cases) -> None:
        self.cases = cases
        self.actors = cases.actors

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/api/cases", self.create)
        r.add_get("/api/cases", self.list)
        r.add_get(CASE, self.get)
        r.add_post(CASE + "/transitions", self.transition)
        r.add_get(CASE + "/log", self.log)
        r.add_post(CASE + "/attachments", self.attach)
        r.add_get(CASE + "/attachments/{attachment_id:" + ID_PATTERN + "}", self.attachment)
        r.add_get(CASE + "/dossier", self.dossier)
        r.add_post(CASE + "/sessions", self.schedule)
        r.add_get(CASE + "/sessions", self.list_sessions)
        r.add_get(CASE + "/outbox", self.outbox)
        r.add_get("/api/case-options", self.options)
        r.add_get("/api/case-config", self.get_config)
        r.add_put("/api/case-config", self.put_config)
        org = "/api/case-config/organisations/{organisation_id:" + ID_PATTERN + "}"
        r.add_get(org, self.get_organisation)
        r.add_put(org, self.put_organisation)
        r.add_get("/api/case-staff", self.staff_directory)
        r.add_get("/api/experts", self.list_experts)
        r.add_post("/api/experts", self.add_expert)
        r.add_get("/api/progress/{code}", self.progress_json)
        r.add_get("/api/progress/{code}/qr.svg", self.qr)
        r.add_get("/c/{code}", self.progress_page)
        r.add_get("/c/{code}/agreements/{agreement_code}", self.party_agreement)
        r.add_get("/report", self.report_page)

    def _staff(self, request: web.Request) -> CaseActor:
        return self.actors.staff(request)

    # -- intake ----------------------------------------------------------------------------
    async def create(self, request: web.Request) -> web.Response:
        cases = self.cases
        store = cases.store
        if self.actors.has_credentials(request):
            actor = self._staff(request)
            permissions.check_intake(actor)
            config = await store.config()
            body, uploads = await cases.intake.read(
                request, schemas.CASE, before_files=lambda c: _check_case(c, config)
            )
            organisation = permissions.intake_organisation(
                actor, body.get("organisation_id"), config.intake_organisation_id
            )
            new = NewCase(
                source=Source(body["source"]),
                dispute_type=body["dispute_type"],
                region_code=body["region"],
                description=body["description"],
                parties=[
                    Party(PartyRole(p["role"]), p["name"], p.get("phone"), p.get("id_number"))
                    for p in body["parties"]
                ],
                risk_level=Risk(body["risk_level"]),
                organisation_id=organisation,
            )
        else:
            limits = cases.limits
            limits.per_address.take(request.remote or "")
            limits.overall.take("all")
            config = await store.config()

            def before_files(report: dict[str, Any]) -> None:
                _check_report(report, config)
                limits.per_phone.take(phone_key(report["phone"]))

            async with limits.readers:
                body, uploads = await cases.intake.read(
                    request, schemas.REPORT, before_files=before_files
                )
            parties = [Party(PartyRole.APPLICANT, body["name"], body["phone"])]
            if body.get("respondent_name"):
                parties.append(Party(PartyRole.RESPONDENT, body["respondent_name"]))
            actor = resident(new_id("r-"))
            new = NewCase(
                source=Source.RESIDENT,
                dispute_type=body["dispute_type"],
                region_code=body["community"],
                description=body["description"],
                parties=parties,
            )
        case = await cases.open_case(new, actor, uploads)
        return json_response(cases.receipt(case), 201)

    # -- staff -----------------------------------------------------------------------------
    async def list(self, request: web.Request) -> web.Response:
        actor = self._staff(request)
        states = []
        if "state" in request.query:
            for raw in request.query["state"].split(","):
                if raw not in State.__members__.values():
                    raise bad_request(f"state must be among {', '.join(State)}, comma-separated.")
                states.append(State(raw))
        filters = Filters(
            states=tuple(states),
            dispute_type=_param(request, "dispute_type", taxonomy.CODE_PATTERN),
            region=_param(request, "region", regions.CODE_PATTERN),
            overdue=_flag(request, "overdue"),
            organisation_id=_param(request, "organisation_id", ID_PATTERN),
            mediator_id=_param(request, "mediator_id", ID_PATTERN),
            follow_up=_param(request, "follow_up", "overdue"),
        )
        limit = _int(request, "limit", 50, 1, 200)
        before = _int(request, "before", None, 0, 2**63 - 1)
        assert limit is not None
        now = int(time.time())
        found, cursor = await self.cases.store.list(
            permissions.read_scope(actor), filters, now, limit, before
        )
        return json_response(
            {
                "cases": await self.cases.named(
                    [{**c.summary(now), "actions": self.cases.actions_for(actor, c)} for c in found]
                ),
                "next": None if cursor is None else str(cursor),
            }
        )

    async def get(self, request: web.Request) -> web.Response:
        actor = self._staff(request)
        case = await self.cases.readable(request.match_info["case_id"], actor)
        return json_response(await self._view(actor, case))

    async def _view(self, actor: CaseActor, case: Case) -> dict[str, Any]:
        (view,) = await self.cases.named([self.cases.staff_view(actor, case)])
        return view

    async def staff_directory(self, request: web.Request) -> web.Response:
        permissions.check_experts_read(self._staff(request))
        return json_response(await self.cases.directory())

    async def transition(self, request: web.Request) -> web.Response:
        actor = self._staff(request)
        body = await _json(request, schemas.TRANSITION)
        action = Action(body.pop("action"))
        case = await self.cases.store.transition(
            request.match_info["case_id"], actor, action, body, time.time()
        )
        return json_response(await self._view(actor, case))

    async def log(self, request: web.Request) -> web.Response:
        actor = self._staff(request)
        found = await self.cases.store.log_entries(request.match_info["case_id"])
        if found is None:
            raise permissions.case_not_found()
        case, entries = found
        permissions.check_read(actor, case.rules)
        problems = verify_case_log(entries, case.id, [self.cases.key.public_key()])
        return json_response(
            {
                "case_id": case.id,
                "chain": case_chain_name(case.id),
                "entries": entries,
                "verification": {
                    "authentic": not problems,
                    "problems": [p.to_dict() for p in problems],
                },
            }
        )

    async def attach(self, request: web.Request) -> web.Response:
        actor = self._staff(request)
        case = await self.cases.readable(request.match_info["case_id"], actor)
        _, uploads = await self.cases.intake.read(request, _ATTACH)
        if not uploads:
            raise bad_request("Send at least one attachment.")
        case = await self.cases.attach(case.id, actor, uploads)
        return json_response(await self._view(actor, case), 201)

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        actor = self._staff(request)
        case = await self.cases.readable(request.match_info["case_id"], actor)
        wanted = request.match_info["attachment_id"]
        item = next((a for a in case.attachments if a.id == wanted), None)
        if item is None:
            raise TiaojieError("attachment_not_found", "There is no such attachment.", 404)
        path = self.cases.files.path(case.id, item.sha256)
        if not path.is_file():
            raise TiaojieError(
                "attachment_missing", "The attachment's file is missing on this node.", 410
            )
        return web.FileResponse(
            path,
            headers={
                **INERT,
                "Content-Type": item.media_type,
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(item.filename)}",
            },
        )

    async def dossier(self, request: web.Request) -> web.StreamResponse:
        """The dossier ZIP (`?segments=true`: with the recordings' Segments), written to
        a temporary file first (no half-written ZIP is ever sent), then streamed."""
        actor = self._staff(request)
        segments = _flag(request, "segments") or False
        found = await self.cases.store.log_entries(request.match_info["case_id"])
        if found is None:
            raise permissions.case_not_found()
        case, entries = found
        permissions.check_read(actor, case.rules)
        with tempfile.TemporaryFile() as out:
            await self.cases.dossier(case, entries, out, segments)
            return await send_zip(request, out, f"dossier-{case.id}.zip")

    # -- sessions --------------------------------------------------------------------------
    async def schedule(self, request: web.Request) -> web.Response:
        """A session of the case: the room and its invites (their links, once)."""
        actor = self._staff(request)
        case = await self.cases.readable(request.match_info["case_id"], actor)
        body = await _json(request, schemas.SESSION)
        session, room, links = await self.cases.sessions.schedule(case, actor, body, time.time())
        invites = [
            {**item, **{k: v for k, v in links[item["invite_id"]].items() if k != "ended"}}
            for item in session.to_dict()["invites"]
        ]
        return json_response(
            {"session": session.to_dict(), "room": room.summary(), "invites": invites},
            201,
            headers={"Cache-Control": "no-store"},
        )

    async def list_sessions(self, request: web.Request) -> web.Response:
        """The case's sessions; their join links to those who may send them."""
        actor = self._staff(request)
        case = await self.cases.readable(request.match_info["case_id"], actor)
        with_links = permissions.may_see_links(actor, case.rules)
        found = []
        for session in await self.cases.sessions.of_case(case.id):
            view = session.to_dict()
            if with_links:
                links = await self.cases.sessions.links(session.room_id)
                for invite in view["invites"]:
                    link = links.get(invite["invite_id"])
                    invite["url"] = link["url"] if link else None
            found.append(view)
        return json_response({"sessions": found}, headers={"Cache-Control": "no-store"})

    async def outbox(self, request: web.Request) -> web.Response:
        """What should be sent to whom (the sending is later work)."""
        actor = self._staff(request)
        case = await self.cases.readable(request.match_info["case_id"], actor)
        if not permissions.may_see_links(actor, case.rules):
            raise forbidden("Only the case's mediator, its coordinators and the admin.")
        sessions = {s.id: s for s in await self.cases.sessions.of_case(case.id)}
        links: dict[str, dict[str, Any]] = {}
        for session in sessions.values():
            links.update(await self.cases.sessions.links(session.room_id))
        messages = []
        for item in await self.cases.sessions.outbox(case.id):
            position = item.recipient.get("party_position")
            progress_url = (
                self.cases.party_url(case, position)
                if isinstance(position, int)
                else self.cases.progress_url(case.code)
            )
            messages.append(
                outbox.message(
                    item,
                    case,
                    sessions.get(item.session_id or ""),
                    links.get(item.invite_id or ""),
                    progress_url,
                )
            )
        return json_response({"messages": messages}, headers={"Cache-Control": "no-store"})

    async def party_agreement(self, request: web.Request) -> web.StreamResponse:
        """A party's signed agreement, with their own key (server/cases/party.py)."""
        code, agreement_code = request.match_info["code"], request.match_info["agreement_code"]
        if not (
            re.fullmatch(progress.CODE_PATTERN, code)
            and re.fullmatch(AGREEMENT_CODE, agreement_code)
        ):
            raise permissions.case_not_found()
        path = await self.cases.party_agreement(code, agreement_code, request.query.get("key"))
        return web.FileResponse(
            path,
            headers={
                **INERT,
                "Content-Type": "application/pdf",
                "Content-Disposition": f'attachment; filename="agreement-{agreement_code[:8]}.pdf"',
            },
        )

    # -- configuration ---------------------------------------------------------------------
    async def options(self, request: web.Request) -> web.Response:
        config = await self.cases.store.config()
        return json_response(
            {
                "dispute_types": config.dispute_types,
                "regions": config.regions,
                "sources": [str(s) for s in Source],
                "risk_levels": [str(r) for r in Risk],
                "party_roles": [str(r) for r in PartyRole],
            }
        )

    async def get_config(self, request: web.Request) -> web.Response:
        permissions.check_configure(self._staff(request))
        return json_response((await self.cases.store.config()).to_dict())

    async def put_config(self, request: web.Request) -> web.Response:
        actor = self._staff(request)
        permissions.check_configure(actor)
        body = await _json(request, schemas.CONFIG)
        if "dispute_types" in body:
            taxonomy.check_types(body["dispute_types"])
        if "regions" in body:
            regions.check_regions(body["regions"])
        config: CaseConfig = await self.cases.store.put_config(body, actor)
        return json_response(config.to_dict())

    async def get_organisation(self, request: web.Request) -> web.Response:
        permissions.check_configure(self._staff(request))
        found = await self.cases.store.organisation(request.match_info["organisation_id"])
        return json_response(found.to_dict())

    async def put_organisation(self, request: web.Request) -> web.Response:
        actor = self._staff(request)
        permissions.check_configure(actor)
        body = await _json(request, schemas.ORGANISATION_SETTINGS)
        if "number_format" in body:
            check_format(body["number_format"])
        found = await self.cases.store.put_organisation(
            request.match_info["organisation_id"], body, actor
        )
        return json_response(found.to_dict())

    # -- experts ---------------------------------------------------------------------------
    async def list_experts(self, request: web.Request) -> web.Response:
        permissions.check_experts_read(self._staff(request))
        specialty = request.query.get("specialty")
        if specialty is not None:
            specialty = validate(schemas.SPECIALTY, specialty, "specialty")
        found = await self.cases.experts.search(specialty, _flag(request, "available"))
        return json_response({"experts": [e.to_dict() for e in found]})

    async def add_expert(self, request: web.Request) -> web.Response:
        actor = self._staff(request)
        permissions.check_experts_write(actor)
        body = await _json(request, schemas.EXPERT)
        expert = await self.cases.experts.add(body, actor)
        return json_response(expert.to_dict(), 201)

    # -- public progress -------------------------------------------------------------------
    async def progress_json(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        lang = progress.lang_of(request.query.get("lang"))
        found = None
        if re.fullmatch(progress.CODE_PATTERN, code):
            found = await self.cases.public_progress(code, lang, request.query.get("key"))
        if found is None:
            raise permissions.case_not_found()
        return json_response(found, headers={"Cache-Control": "no-store"})

    async def qr(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        if not re.fullmatch(progress.CODE_PATTERN, code):
            raise permissions.case_not_found()
        if await self.cases.store.by_code(code) is None:
            raise permissions.case_not_found()
        return web.Response(
            body=progress.qr_svg(self.cases.progress_url(code)),
            content_type="image/svg+xml",
            headers=INERT,
        )

    async def progress_page(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        lang = progress.lang_of(request.query.get("lang"))
        found = None
        if re.fullmatch(progress.CODE_PATTERN, code):
            found = await self.cases.public_progress(code, lang, request.query.get("key"))
        if found is None:
            return html_response(progress.not_found_page(lang, code), 404)
        return html_response(progress.page(found, request.query.get("key")))

    async def report_page(self, request: web.Request) -> web.StreamResponse:
        return page_response("report.html")


#: POST /api/cases/{id}/attachments: a form of `case` ({}) and `attachment` parts, or JSON.
_ATTACH: Schema = {
    "type": "object",
    "properties": {"attachments": schemas.ATTACHMENTS},
    "required": [],
    "additionalProperties": False,
}


def _check_case(body: dict[str, Any], config: CaseConfig) -> None:
    """What a staff case names exists (checked again when it is recorded)."""
    if not body.get("parties"):
        raise bad_request("parties must hold at least one party.")
    taxonomy.find(config.dispute_types, body["dispute_type"])
    regions.path_to(config.regions, body["region"])


def _check_report(body: dict[str, Any], config: CaseConfig) -> None:
    taxonomy.find(config.dispute_types, body["dispute_type"])
    if not regions.is_community(config.regions, body["community"]):
        raise bad_request("community must be a community of the configured regions.")


async def send_zip(request: web.Request, out: IO[bytes], filename: str) -> web.StreamResponse:
    """The ZIP written to `out` (a temporary file), streamed in 1 MiB reads off the loop."""
    loop = asyncio.get_running_loop()
    size = out.tell()
    out.seek(0)
    response = web.StreamResponse(
        headers={
            **NO_STORE,
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
    )
    response.content_length = size
    await response.prepare(request)
    while chunk := await loop.run_in_executor(None, out.read, 1 << 20):
        await response.write(chunk)
    await response.write_eof()
    return response
