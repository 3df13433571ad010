"""The OpenAPI 3.1 description of the REST API, built from the same schemas we validate with."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from tiaojie import __version__
from tiaojie.server.accounts.middleware import CSRF_HEADER
from tiaojie.server.accounts.openapi import account_paths, account_schemas
from tiaojie.server.accounts.schemas import PASSWORD_FORMAT
from tiaojie.server.accounts.tokens import COOKIE
from tiaojie.server.agreements import CODE_PATTERN
from tiaojie.server.bookings import openapi as bookings_openapi
from tiaojie.server.cases import court_openapi
from tiaojie.server.cases import openapi as cases_openapi
from tiaojie.server.cluster.http import openapi_paths as node_paths
from tiaojie.server.http_auth import READERS
from tiaojie.server.media.probe_http import openapi_paths as probe_paths
from tiaojie.server.notifications import openapi as notifications_openapi
from tiaojie.server.openapi_parts import ERROR, operation
from tiaojie.server.recordings.http import openapi_paths as recording_paths
from tiaojie.server.schemas import CREATE_INVITE, CREATE_ROOM, ID_PATTERN
from tiaojie.server.statistics.openapi import paths as statistics_paths
from tiaojie.server.validation import Schema
from tiaojie.signing.text import MULTILINE, TEXT, check_chars

_ERROR = ERROR


def documented(schema: Schema) -> Schema:
    """`schema` as /api/openapi.json shows it: each text field (`format: "text"` or
    `"multiline-text"`, signing/text.py) gets the `pattern` of what the text rules accept
    (without `minLength`, blank text too), so a client (or schemathesis) generating from
    the document sends what the server takes; a password (`format: "password"`, taken as
    it is) the pattern of the characters any string may hold.
    """
    if not isinstance(schema, dict):
        return schema
    out = {key: documented_value(value) for key, value in schema.items()}
    if out.get("type") == "string" and out.get("format") in (TEXT, MULTILINE):
        pattern = text_pattern(multiline=out["format"] == MULTILINE)
        if out.get("minLength", 0) == 0:  # stripped to nothing is allowed too
            pattern = pattern.split("*", 1)[0] + "*$"
        out["pattern"] = pattern
    if out.get("type") == "string" and out.get("format") == PASSWORD_FORMAT:
        out["pattern"] = f"^[^{_refused(multiline=False)}]*$"
    return out


def documented_value(value: Any) -> Any:
    if isinstance(value, dict):
        return documented(value)
    if isinstance(value, list):
        return [documented_value(item) for item in value]
    return value


@functools.cache
def _refused(multiline: bool) -> str:
    """The characters the text rules refuse, found by asking them about every character
    of the Basic Multilingual Plane (0.1 s, once), as the inside of a character class."""
    keep = "\t\r\n" if multiline else ""  # a multi-line text's line breaks and tabs
    refused = []
    for code in range(0x10000):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF or char in keep:
            continue  # (lone surrogates are never JSON text a client means to send)
        try:
            check_chars(char, "text", multiline=multiline)
        except ValueError:
            refused.append(code)
    ranges: list[list[int]] = []
    for code in refused:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(
        f"\\u{first:04x}" if first == last else f"\\u{first:04x}-\\u{last:04x}"
        for first, last in ranges
    )


def text_pattern(multiline: bool) -> str:
    """What a text may hold, as one pattern: none of the refused characters, and at
    least one that is not white space (a text is stripped, then not empty)."""
    bad = _refused(multiline)
    return f"^[^{bad}]*[^\\s{bad}][^{bad}]*$"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {"description": "error", "content": {"application/json": {"schema": _ERROR}}}
        for s in statuses
    }


def _op(
    summary: str,
    ok: tuple[int, str, Schema],
    *errors: int,
    body: Schema | None = None,
    secure: bool = True,
) -> dict[str, Any]:
    return operation(
        summary, ok[0], ok[2], *errors, description=ok[1], body=body, public=not secure
    )


_ROOM_ID = {
    "name": "room_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
}
_INVITE_ID = {**_ROOM_ID, "name": "invite_id"}
_CODE = {
    "name": "code",
    "in": "path",
    "required": True,
    "description": "the agreement's public code (the one in its QR code, /a/{code})",
    "schema": {"type": "string", "pattern": f"^{CODE_PATTERN}$"},
}
_AGREEMENT_STATUS: Schema = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "status": {"type": "string", "enum": ["drafting", "signing", "sealing", "signed"]},
        "case_number": {"type": "string"},
        "signers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "role": {"type": "string", "enum": ["applicant", "respondent", "mediator"]},
                    "name": {"type": "string"},
                    "signed_at": {"type": ["number", "null"]},
                },
            },
        },
        "pdf_sha256": {"type": ["string", "null"], "description": "sha256 of the signed PDF"},
        "sealed_at": {"type": ["number", "null"]},
        "updated_at": {"type": "number"},
    },
    "required": ["code", "status", "signers"],
}

_ROOM: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "lobby": {"type": "boolean"},
        "max_participants": {"type": "integer"},
        "locked": {"type": "boolean"},
        "status": {"type": "string", "enum": ["open", "ended"]},
        "created_at": {"type": "integer"},
        "ended_at": {"type": ["integer", "null"]},
        "participant_count": {"type": "integer"},
        "lobby_count": {"type": "integer"},
        "participants": {"type": "array", "items": {"type": "object"}},
        "invites": {"type": "array", "items": _ref("Invite")},
        "owner_id": {
            "type": ["string", "null"],
            "description": "staff accounts only: the mediator account owning the room",
        },
        "owner_name": {"type": ["string", "null"]},
        "organisation_id": {"type": ["string", "null"]},
    },
    "required": ["id", "title", "lobby", "max_participants", "locked", "status"],
}
_INVITE: Schema = {
    "type": "object",
    "properties": {
        "invite_id": {"type": "string"},
        "room_id": {"type": "string"},
        "role": {"type": "string"},
        "side": {"type": ["string", "null"], "enum": ["applicant", "respondent", None]},
        "name": {"type": "string"},
        "expires_at": {"type": "integer"},
        "revoked": {"type": "boolean"},
        "created_at": {"type": "integer"},
    },
}
_NEW_INVITE: Schema = {
    "type": "object",
    "properties": {
        "invite_id": {"type": "string"},
        "url": {"type": "string"},
        "token": {"type": "string"},
        "expires_at": {"type": "integer"},
        "role": {"type": "string"},
        "side": {"type": ["string", "null"], "enum": ["applicant", "respondent", None]},
        "name": {"type": "string"},
    },
    "required": ["invite_id", "url", "token", "expires_at"],
}


def build_spec() -> dict[str, Any]:
    spec = _base_spec()
    spec["paths"].update(recording_paths())
    spec["paths"].update(probe_paths())
    spec["paths"].update(node_paths())
    spec["paths"].update(documented_value(account_paths()))
    spec["components"]["schemas"].update(documented_value(account_schemas()))
    spec["paths"].update(documented_value(cases_openapi.paths()))
    spec["components"]["schemas"].update(documented_value(cases_openapi.components()))
    spec["paths"].update(documented_value(notifications_openapi.paths()))
    spec["paths"].update(statistics_paths())
    spec["paths"].update(documented_value(bookings_openapi.paths()))
    spec["paths"].update(documented_value(court_openapi.paths()))
    spec["paths"]["/api/agreements"] = {
        "get": {
            "summary": f"Agreements of the rooms the caller may read ({READERS}), the newest "
            "first: each is an AgreementStatus with room_id, room_title, recording_id and "
            "pdf_available; the PDF is GET /api/agreements/{code}/pdf",
            "parameters": [
                {
                    "name": "q",
                    "in": "query",
                    "required": False,
                    "description": "search: the case number, the room's title or id, the "
                    "code, a signer's name, the recording's id",
                    "schema": {"type": "string", "maxLength": 200},
                }
            ],
            "responses": {
                "200": {"description": "success", "content": {"application/json": {}}},
                **_errors(400, 401, 403, 410),
            },
        }
    }
    return spec


def _base_spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tiaojie",
            "version": __version__,
            "description": "Video mediation rooms. Signalling events: docs/PROTOCOL.md.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token, a staff account's API key (tjk1.), "
                    "an invite token (from an invite link), or where the archive is read "
                    "an archivist token (tja1.).",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": COOKIE,
                    "description": "A staff account's browser session (POST /api/session). "
                    f"Every write made with it sends the session's CSRF token in {CSRF_HEADER}.",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["error", "message"],
                },
                "Room": _ROOM,
                "Invite": _INVITE,
                "NewInvite": _NEW_INVITE,
                "CreateRoom": documented(CREATE_ROOM),
                "CreateInvite": documented(CREATE_INVITE),
                "AgreementStatus": _AGREEMENT_STATUS,
            },
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/health": {
                "get": _op(
                    "Liveness, backend, and that the database answers (503 when not)",
                    (200, "healthy", {"type": "object"}),
                    503,
                    secure=False,
                )
            },
            "/api/rooms": {
                "post": _op(
                    "Create a room: the admin (token or account; may name owner_id, a "
                    "mediator account, and organisation_id), or a mediator account (the "
                    "room is theirs)",
                    (201, "the room", _ref("Room")),
                    400,
                    401,
                    403,
                    404,
                    409,
                    413,
                    415,
                    body=_ref("CreateRoom"),
                ),
                "get": _op(
                    "List rooms: the admin all, a mediator account its own, a coordinator "
                    "its organisation's",
                    (
                        200,
                        "rooms",
                        {
                            "type": "object",
                            "properties": {"rooms": {"type": "array", "items": _ref("Room")}},
                        },
                    ),
                    401,
                    403,
                ),
            },
            "/api/rooms/{room_id}": {
                "parameters": [_ROOM_ID],
                "get": _op(
                    "A room: full for admin and its mediators, summary for others",
                    (200, "the room", _ref("Room")),
                    401,
                    403,
                    404,
                    410,
                ),
                "delete": _op(
                    "End a room and disconnect everyone",
                    (200, "the ended room", _ref("Room")),
                    401,
                    403,
                    404,
                    410,
                ),
            },
            "/api/rooms/{room_id}/enter": {
                "parameters": [_ROOM_ID],
                "post": _op(
                    "Enter your own room as its mediator (the mediator account that owns "
                    "it, or an admin account): a short-lived mediator invite link",
                    (201, "the mediator's invite", _ref("NewInvite")),
                    401,
                    403,
                    404,
                    410,
                ),
            },
            "/api/rooms/{room_id}/invites": {
                "parameters": [_ROOM_ID],
                "post": _op(
                    "Create an invite link",
                    (201, "the invite", _ref("NewInvite")),
                    400,
                    401,
                    403,
                    404,
                    410,
                    413,
                    415,
                    body=_ref("CreateInvite"),
                ),
            },
            "/api/rooms/{room_id}/invites/{invite_id}": {
                "parameters": [_ROOM_ID, _INVITE_ID],
                "delete": _op(
                    "Revoke an invite; its holder is disconnected",
                    (200, "the revoked invite", _ref("Invite")),
                    401,
                    403,
                    404,
                    410,
                ),
            },
            "/api/me": {
                "get": _op(
                    "What an invite token opens (used by the join page)",
                    (
                        200,
                        "invite and room",
                        {
                            "type": "object",
                            "properties": {
                                "invite": _ref("Invite"),
                                "room": _ref("Room"),
                                # several nodes: the room's media is on this other node
                                "node_url": {"type": "string"},
                                "nodes": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                    ),
                    400,
                    401,
                    403,
                    404,
                    410,
                )
            },
            "/api/agreements/{code}": {
                "parameters": [_CODE],
                "get": _op(
                    "An agreement's public status (no text, no ID numbers; names only)",
                    (200, "the status", _ref("AgreementStatus")),
                    404,
                    secure=False,
                ),
            },
            "/api/agreements/{code}/pdf": {
                "parameters": [_CODE],
                "get": {
                    "summary": "The signed agreement PDF: admin, archivist, or an invite "
                    "token of the room's mediator or a party",
                    "responses": {
                        "200": {
                            "description": "the signed PDF",
                            "content": {"application/pdf": {}},
                        },
                        **_errors(401, 403, 404, 409),
                    },
                },
            },
            "/api/openapi.json": {
                "get": _op("This document", (200, "OpenAPI 3.1", {"type": "object"}), secure=False)
            },
        },
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_spec())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi)
