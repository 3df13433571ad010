"""The OpenAPI description of the cases' routes (merged into /api/openapi.json, which adds
the text rules' patterns to the text fields)."""

from __future__ import annotations

from typing import Any

from tiaojie.server.agreement_page import CODE_PATTERN as AGREEMENT_CODE_PATTERN
from tiaojie.server.cases import schemas
from tiaojie.server.cases.progress import CODE_PATTERN
from tiaojie.server.cases.states import State
from tiaojie.server.openapi_parts import operation, path_param
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.validation import Schema

_ERROR = {"$ref": "#/components/schemas/Error"}
STAFF = "staff: an account (session or API key) or the admin token"


def _path(name: str, pattern: str, description: str = "") -> dict[str, Any]:
    return path_param(name, pattern, description)


def _query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def _op(
    summary: str,
    ok: int,
    *errors: int,
    schema: Schema | None = None,
    content: str = "application/json",
    body: Schema | None = None,
    public: bool = False,
    optional_auth: bool = False,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return operation(
        summary,
        ok,
        schema,
        *errors,
        content=content,
        always_content=True,
        body=body,
        public=public,
        optional_auth=optional_auth,
        parameters=parameters,
    )


RECEIPT: Schema = {
    "type": "object",
    "properties": {
        "case_id": {"type": "string"},
        "case_number": {"type": "string"},
        "code": {"type": "string", "pattern": f"^{CODE_PATTERN}$"},
        "progress_url": {"type": "string"},
    },
    "required": ["case_id", "case_number", "code", "progress_url"],
}
PROGRESS: Schema = {
    "type": "object",
    "description": "No names, phone numbers, ID numbers, descriptions, reasons or notes.",
    "properties": {
        "code": {"type": "string"},
        "case_number": {"type": "string"},
        "state": {"type": "string", "enum": [str(s) for s in State]},
        "state_label": {"type": "string"},
        "dispute_type": {"type": "string"},
        "timeline": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "stage": {"type": "string"},
                    "label": {"type": "string"},
                    "done": {"type": "boolean"},
                    "current": {"type": "boolean"},
                    "at": {"type": ["integer", "null"]},
                },
            },
        },
        "next_step": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "text": {"type": "string"}},
        },
        "next_session": {
            "type": ["object", "null"],
            "properties": {"scheduled_at": {"type": "integer"}},
        },
        "agreements": {
            "type": "array",
            "description": "The agreement of each of the case's sessions that has one, in "
            "the sessions' order: its status and how many of its signer lines are signed "
            "(no name, no agreement code); `at`: when it reached that status (sealed: the "
            "seal's time)",
            "items": {
                "type": "object",
                "properties": {
                    "status": {
                        "type": "string",
                        "enum": ["drafted", "signing", "sealing", "sealed"],
                    },
                    "label": {"type": "string"},
                    "signatures": {
                        "type": "object",
                        "properties": {
                            "signed": {"type": "integer", "minimum": 0},
                            "total": {"type": "integer", "minimum": 1},
                        },
                        "required": ["signed", "total"],
                    },
                    "at": {"type": ["integer", "null"]},
                },
                "required": ["status", "label", "signatures", "at"],
            },
        },
        "party": {
            "type": "object",
            "description": "Only with a party's own ?key=: their role, sessions (join_url) "
            "and signed agreements (url of the PDF with the key)",
        },
        "deadline_at": {"type": ["integer", "null"]},
        "overdue": {"type": "boolean"},
        "organisation": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "contact": {"type": "string"}},
        },
        "reported_at": {"type": "integer"},
        "updated_at": {"type": "integer"},
        "lang": {"type": "string"},
    },
    "required": [
        "code",
        "case_number",
        "state",
        "timeline",
        "next_step",
        "deadline_at",
        "agreements",
    ],
}
CASE_VIEW: Schema = {
    "type": "object",
    "properties": {
        "case_id": {"type": "string"},
        "case_number": {"type": "string"},
        "state": {"type": "string", "enum": [str(s) for s in State]},
        "holder_organisation_id": {"type": "string"},
        "holder_organisation_name": {"type": ["string", "null"]},
        "mediator_id": {"type": ["string", "null"]},
        "mediator_name": {"type": ["string", "null"]},
        "actions": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["case_id", "case_number", "state"],
}
SESSION_INVITE: Schema = {
    "type": "object",
    "properties": {
        "invite_id": {"type": "string"},
        "kind": {"type": "string", "enum": ["party", "expert"]},
        "name": {"type": "string"},
        "side": {"type": ["string", "null"], "enum": ["applicant", "respondent", None]},
        "expert_id": {"type": ["string", "null"]},
        "url": {"type": ["string", "null"]},
    },
    "required": ["invite_id", "kind", "name"],
}
SESSION: Schema = {
    "type": "object",
    "properties": {
        "session_id": {"type": "string"},
        "case_id": {"type": "string"},
        "room_id": {"type": "string"},
        "scheduled_at": {"type": "integer"},
        "mediator_id": {"type": ["string", "null"]},
        "organisation_id": {"type": "string"},
        "held_at": {"type": ["integer", "null"]},
        "ended_at": {"type": ["integer", "null"]},
        "created_at": {"type": "integer"},
        "invites": {"type": "array", "items": SESSION_INVITE},
    },
    "required": ["session_id", "case_id", "room_id", "scheduled_at", "invites"],
}
OUTBOX: Schema = {
    "type": "object",
    "properties": {
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "kind": {"type": "string"},
                    "session_id": {"type": ["string", "null"]},
                    "status": {"type": "string"},
                    "to": {"type": "object"},
                    "scheduled_at": {"type": ["integer", "null"]},
                    "links": {"type": "object"},
                    "text": {"type": "string"},
                },
            },
        }
    },
    "required": ["messages"],
}
STAFF_DIRECTORY: Schema = {
    "type": "object",
    "properties": {
        "organisations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "short_name": {"type": "string"},
                },
            },
        },
        "mediators": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "organisation_id": {"type": "string"},
                },
            },
        },
    },
    "required": ["organisations", "mediators"],
}
INTAKE: Schema = {
    "description": "Without a token: a resident's report (CaseReport). With a staff token: "
    "a case registered by staff (NewCase). Also as multipart/form-data: a part `case` with "
    "this JSON without `attachments`, then a part `attachment` per file (photo or PDF).",
    "oneOf": [
        {"$ref": "#/components/schemas/CaseReport"},
        {"$ref": "#/components/schemas/NewCase"},
    ],
}


def components() -> dict[str, Schema]:
    return {
        "CaseReport": schemas.REPORT,
        "NewCase": schemas.CASE,
        "CaseTransition": schemas.TRANSITION,
        "CaseReceipt": RECEIPT,
        "CaseProgress": PROGRESS,
        "Case": CASE_VIEW,
        "NewExpert": schemas.EXPERT,
        "CaseConfig": schemas.CONFIG,
        "CaseOrganisationSettings": schemas.ORGANISATION_SETTINGS,
        "NewCaseSession": schemas.SESSION,
        "CaseSession": SESSION,
    }


def paths() -> dict[str, Any]:
    case_id = _path("case_id", ID_PATTERN)
    code = _path("code", CODE_PATTERN, "the case's public code (its QR code, /c/{code})")
    obj: Schema = {"type": "object"}
    ref = {"$ref": "#/components/schemas/Case"}
    filters = [
        _query(
            "state",
            {"type": "string", "pattern": f"^({'|'.join(State)})(,({'|'.join(State)}))*$"},
            "states, comma-separated",
        ),
        _query("dispute_type", {"type": "string", "pattern": r"^[a-z0-9_]{1,32}$"}, "type code"),
        _query(
            "region", {"type": "string", "pattern": r"^[0-9A-Za-z]{1,32}$"}, "a region and below"
        ),
        _query("overdue", {"type": "string", "enum": ["true", "false"]}, "late or not"),
        _query(
            "follow_up",
            {"type": "string", "enum": ["overdue"]},
            "overdue: closed with an outcome, not followed up (回访), past follow_up_due_at",
        ),
        _query("organisation_id", {"type": "string", "pattern": f"^{ID_PATTERN}$"}, "holder"),
        _query("mediator_id", {"type": "string", "pattern": f"^{ID_PATTERN}$"}, "mediator"),
        _query("limit", {"type": "string", "pattern": "^(200|1[0-9]{2}|[1-9][0-9]?)$"}, "1-200"),
        _query("before", {"type": "string", "pattern": "^[0-9]{1,18}$"}, "the `next` cursor"),
    ]
    return {
        "/api/cases": {
            "post": _op(
                "Register a case: a resident's report without a token (rate-limited per "
                f"address and phone), or a case registered by {STAFF}",
                201,
                400,
                401,
                403,
                413,
                415,
                429,
                503,
                schema={"$ref": "#/components/schemas/CaseReceipt"},
                body=INTAKE,
                optional_auth=True,
            ),
            "get": _op(
                f"The cases the caller may see, newest first ({STAFF})",
                200,
                400,
                401,
                403,
                503,
                schema={
                    "type": "object",
                    "properties": {
                        "cases": {"type": "array", "items": ref},
                        "next": {"type": ["string", "null"]},
                    },
                },
                parameters=filters,
            ),
        },
        "/api/cases/{case_id}": {
            "parameters": [case_id],
            "get": _op(
                "A case as staff see it, with the actions the caller may take",
                200,
                401,
                403,
                404,
                503,
                schema=ref,
            ),
        },
        "/api/cases/{case_id}/transitions": {
            "parameters": [case_id],
            "post": _op(
                "Move a case (accept, dispatch, take, return, transfer, close, withdraw, "
                "follow_up); a move the state or role does not allow changes nothing",
                200,
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                503,
                schema=ref,
                body={"$ref": "#/components/schemas/CaseTransition"},
            ),
        },
        "/api/cases/{case_id}/log": {
            "parameters": [case_id],
            "get": _op(
                "The case's log (a Chain: every change, signed checkpoints) and whether it "
                "verifies",
                200,
                401,
                403,
                404,
                503,
                schema=obj,
            ),
        },
        "/api/cases/{case_id}/attachments": {
            "parameters": [case_id],
            "post": _op(
                "Add photos or PDFs (JSON with base64 `attachments`, or a form of "
                "`attachment` parts); checked by content",
                201,
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                503,
                schema=ref,
                body={
                    "type": "object",
                    "properties": {"attachments": schemas.ATTACHMENTS},
                    "additionalProperties": False,
                },
            ),
        },
        "/api/cases/{case_id}/attachments/{attachment_id}": {
            "parameters": [case_id, _path("attachment_id", ID_PATTERN)],
            "get": _op(
                "An attachment's file",
                200,
                401,
                403,
                404,
                410,
                503,
                content="application/octet-stream",
            ),
        },
        "/api/cases/{case_id}/dossier": {
            "parameters": [case_id],
            "get": _op(
                "The case's dossier (卷宗) as a ZIP, with its sessions' signed agreements and "
                "recordings' manifests (?segments=true: and Segments); `tiaojie verify "
                "dossier.zip` checks it",
                200,
                400,
                401,
                403,
                404,
                503,
                content="application/zip",
                parameters=[
                    _query("segments", {"type": "string", "enum": ["true", "false"]}, "Segments")
                ],
            ),
        },
        "/api/cases/{case_id}/sessions": {
            "parameters": [case_id],
            "post": _op(
                "Schedule a session (the case's mediator, or the admin; the case in "
                "mediation): the room, owned by the mediator, and invites for the case's "
                "parties (with their sides) and the chosen experts, with their links",
                201,
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                503,
                schema={
                    "type": "object",
                    "properties": {
                        "session": {"$ref": "#/components/schemas/CaseSession"},
                        "room": {"type": "object"},
                        "invites": {"type": "array", "items": SESSION_INVITE},
                    },
                    "required": ["session", "room", "invites"],
                },
                body={"$ref": "#/components/schemas/NewCaseSession"},
            ),
            "get": _op(
                "The case's sessions (their links to the case's mediator, coordinators and "
                "the admin)",
                200,
                401,
                403,
                404,
                503,
                schema={
                    "type": "object",
                    "properties": {
                        "sessions": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/CaseSession"},
                        }
                    },
                },
            ),
        },
        "/api/cases/{case_id}/outbox": {
            "parameters": [case_id],
            "get": _op(
                "What should be sent to whom: each person's session link (and a party's own "
                "progress link); the case's mediator, coordinators and the admin",
                200,
                401,
                403,
                404,
                503,
                schema=OUTBOX,
            ),
        },
        "/api/progress/{code}": {
            "parameters": [code],
            "get": _op(
                "一案一码: the public progress of a case (no personal data); ?lang=en; with "
                "a party's own ?key= also `party`: their sessions' links and signed agreements",
                200,
                404,
                503,
                schema={"$ref": "#/components/schemas/CaseProgress"},
                public=True,
                parameters=[
                    _query("lang", {"type": "string", "enum": ["zh-CN", "en"]}, "language"),
                    _query(
                        "key",
                        {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
                        "a party's own key (from their progress link)",
                    ),
                ],
            ),
        },
        "/c/{code}/agreements/{agreement_code}": {
            "parameters": [
                code,
                _path("agreement_code", AGREEMENT_CODE_PATTERN, "the agreement's code"),
            ],
            "get": _op(
                "A party's signed agreement PDF, with their own ?key= (the link on their "
                "progress page): only an agreement sealed in one of their sessions; 404 for "
                "anything else, as if there were none",
                200,
                404,
                503,
                content="application/pdf",
                public=True,
                parameters=[
                    {
                        "name": "key",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
                        "description": "the party's own key (from their progress link)",
                    }
                ],
            ),
        },
        "/api/progress/{code}/qr.svg": {
            "parameters": [code],
            "get": _op(
                "The case's QR code (its progress link) as SVG",
                200,
                404,
                503,
                content="image/svg+xml",
                public=True,
            ),
        },
        "/api/case-options": {
            "get": _op(
                "The dispute types and regions a report may name (the /report form)",
                200,
                503,
                schema=obj,
                public=True,
            ),
        },
        "/api/case-config": {
            "get": _op("The case configuration (admin)", 200, 401, 403, 503, schema=obj),
            "put": _op(
                "Change the dispute types, the regions or where public reports go (admin)",
                200,
                400,
                401,
                403,
                413,
                415,
                503,
                schema=obj,
                body={"$ref": "#/components/schemas/CaseConfig"},
            ),
        },
        "/api/case-config/organisations/{organisation_id}": {
            "parameters": [_path("organisation_id", ID_PATTERN)],
            "get": _op(
                "An organisation's case settings: name, contact, numbering, deadline (admin)",
                200,
                401,
                403,
                404,
                503,
                schema=obj,
            ),
            "put": _op(
                "Change an organisation's case settings (admin)",
                200,
                400,
                401,
                403,
                404,
                413,
                415,
                503,
                schema=obj,
                body={"$ref": "#/components/schemas/CaseOrganisationSettings"},
            ),
        },
        "/api/case-staff": {
            "get": _op(
                f"The organisations and enabled mediators a case may be given to ({STAFF})",
                200,
                401,
                403,
                503,
                schema=STAFF_DIRECTORY,
            ),
        },
        "/api/experts": {
            "get": _op(
                f"The expert pool, by ?specialty= and ?available= ({STAFF})",
                200,
                400,
                401,
                403,
                503,
                schema=obj,
                parameters=[
                    _query("specialty", schemas.SPECIALTY, "one tag"),
                    _query("available", {"type": "string", "enum": ["true", "false"]}, ""),
                ],
            ),
            "post": _op(
                "Add an expert (admin or coordinator)",
                201,
                400,
                401,
                403,
                413,
                415,
                503,
                schema=obj,
                body={"$ref": "#/components/schemas/NewExpert"},
            ),
        },
    }
