"""The notifications' part of the OpenAPI document (server/openapi.py adds it)."""

from __future__ import annotations

from typing import Any

from tiaojie.server.notifications.http import PUT_TEMPLATES
from tiaojie.server.notifications.templates import KINDS
from tiaojie.server.openapi_parts import operation
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.validation import Schema

_NULLABLE_INT: Schema = {"type": ["integer", "null"]}
_NULLABLE_STR: Schema = {"type": ["string", "null"]}

NOTIFICATION: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string", "enum": sorted(KINDS)},
        "status": {
            "type": "string",
            "enum": ["queued", "sending", "sent", "failed", "cancelled"],
        },
        "channel": _NULLABLE_STR,
        "recipient": {
            "type": "object",
            "properties": {
                "role": _NULLABLE_STR,
                "side": _NULLABLE_STR,
                "address_kind": {"type": ["string", "null"], "enum": ["phone", "email", None]},
                "address": {**_NULLABLE_STR, "description": "masked"},
            },
        },
        "attempts": {"type": "integer"},
        "not_before": {"type": "integer", "description": "the next attempt (unix seconds)"},
        "last_error": _NULLABLE_STR,
        "created_at": {"type": "integer"},
        "updated_at": {"type": "integer"},
        "sent_at": _NULLABLE_INT,
    },
    "required": ["id", "kind", "status", "attempts", "not_before", "created_at"],
}

TEMPLATE: Schema = {
    "type": "object",
    "properties": {
        "kind": {"type": "string"},
        "label": {"type": "string"},
        "variables": {"type": "array", "items": {"type": "string"}},
        "text": {"type": "string"},
        "default": {"type": "string"},
    },
    "required": ["kind", "label", "variables", "text", "default"],
}
TEMPLATES: Schema = {
    "type": "object",
    "properties": {"templates": {"type": "array", "items": TEMPLATE}},
    "required": ["templates"],
}


def paths() -> dict[str, Any]:
    case_id = {
        "name": "case_id",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
        "description": "the case",
    }
    return {
        "/api/notifications": {
            "get": operation(
                "The case's notification outbox: each message's kind, recipient (address "
                "masked), channel and state (queued, sending, sent, failed with the reason, "
                "cancelled), attempts and next attempt; staff who may read the case",
                200,
                {
                    "type": "object",
                    "properties": {
                        "case_id": {"type": "string"},
                        "notifications": {"type": "array", "items": NOTIFICATION},
                    },
                    "required": ["case_id", "notifications"],
                },
                400,
                401,
                403,
                404,
                503,
                parameters=[case_id],
            )
        },
        "/api/notification-templates": {
            "get": operation(
                "The notification templates (zh-CN) with the variables each may use; staff",
                200,
                TEMPLATES,
                401,
                403,
                503,
            ),
            "put": operation(
                "Change templates (the admin): {kind: text}; an empty text restores the "
                "default; a variable the kind does not have is a 400",
                200,
                TEMPLATES,
                400,
                401,
                403,
                415,
                503,
                body=PUT_TEMPLATES,
            ),
        },
    }
