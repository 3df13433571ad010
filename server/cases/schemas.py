"""JSON Schemas of the cases' REST bodies (validated by server/validation.py with the text
rules, and shown in /api/openapi.json)."""

from __future__ import annotations

import math

from tiaojie.server.cases import attachments, regions, settings, taxonomy
from tiaojie.server.cases.model import PartyRole, Risk, Source
from tiaojie.server.cases.states import Action, Outcome
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.validation import Schema
from tiaojie.signing.text import MULTILINE, TEXT

#: Digits, with an optional leading + (the page strips spaces and dashes first).
PHONE_PATTERN = r"\+?[0-9]{5,20}"
MAX_DESCRIPTION = 2000


def _text(limit: int, min_length: int = 1, *, multiline: bool = False) -> Schema:
    return {
        "type": "string",
        "format": MULTILINE if multiline else TEXT,
        "minLength": min_length,
        "maxLength": limit,
    }


def _object(properties: dict[str, Schema], required: list[str]) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


NAME = _text(32)
SPECIALTY = _text(32)
PHONE: Schema = {"type": "string", "pattern": PHONE_PATTERN}
ID_NUMBER: Schema = {"type": "string", "pattern": r"[0-9A-Za-z]{6,32}"}
ORGANISATION_ID: Schema = {"type": "string", "pattern": ID_PATTERN}
DISPUTE_TYPE: Schema = {"type": "string", "pattern": taxonomy.CODE_PATTERN}
REGION: Schema = {"type": "string", "pattern": regions.CODE_PATTERN}
DESCRIPTION = _text(MAX_DESCRIPTION, multiline=True)
#: An attachment in a JSON body: its bytes as base64 (multipart bodies send files).
ATTACHMENT: Schema = _object(
    {
        "filename": _text(attachments.MAX_FILENAME, 0),
        "data": {
            "type": "string",
            "pattern": "[A-Za-z0-9+/]*={0,2}",
            "minLength": 4,
            "maxLength": 4 * math.ceil(attachments.MAX_BYTES / 3),
        },
    },
    ["data"],
)
ATTACHMENTS: Schema = {"type": "array", "maxItems": attachments.MAX_PER_REPORT, "items": ATTACHMENT}

#: A resident's report (POST /api/cases without a token).
REPORT = _object(
    {
        "name": NAME,
        "phone": PHONE,
        "dispute_type": DISPUTE_TYPE,
        "community": REGION,
        "description": DESCRIPTION,
        "respondent_name": _text(32, 0),
        "attachments": ATTACHMENTS,
    },
    ["name", "phone", "dispute_type", "community", "description"],
)

PARTY = _object(
    {
        "role": {"type": "string", "enum": [str(r) for r in PartyRole]},
        "name": NAME,
        "phone": PHONE,
        "id_number": ID_NUMBER,
    },
    ["role", "name"],
)

#: A case registered by staff (POST /api/cases with a token).
CASE = _object(
    {
        "source": {"type": "string", "enum": [str(s) for s in Source]},
        "dispute_type": DISPUTE_TYPE,
        "region": REGION,
        "description": DESCRIPTION,
        "risk_level": {"type": "string", "enum": [str(r) for r in Risk], "default": "unassessed"},
        "parties": {"type": "array", "minItems": 1, "maxItems": 10, "items": PARTY},
        "organisation_id": ORGANISATION_ID,
        "attachments": ATTACHMENTS,
    },
    ["source", "dispute_type", "region", "description", "parties"],
)

TRANSITION = _object(
    {
        "action": {"type": "string", "enum": [str(a) for a in Action]},
        "reason": _text(500),
        "organisation_id": ORGANISATION_ID,
        "mediator_id": ORGANISATION_ID,
        "outcome": {"type": "string", "enum": [str(o) for o in Outcome]},
        "note": _text(MAX_DESCRIPTION, multiline=True),
    },
    ["action"],
)

EXPERT = _object(
    {
        "name": NAME,
        "organisation": _text(64, 0),
        "specialties": {"type": "array", "maxItems": 20, "items": SPECIALTY},
        "phone": PHONE,
        "profile": _text(MAX_DESCRIPTION, 0, multiline=True),
        "available": {"type": "boolean", "default": True},
    },
    ["name", "specialties"],
)

CONFIG = _object(
    {
        "dispute_types": taxonomy.TYPES,
        "regions": regions.REGIONS,
        "intake_organisation_id": ORGANISATION_ID,
    },
    [],
)

ORGANISATION_SETTINGS = settings.SETTINGS

#: POST /api/cases/{case_id}/sessions: when, with which experts of the pool, lobby or not.
SESSION = _object(
    {
        "scheduled_at": {"type": "integer", "minimum": 0, "maximum": 2**40},
        "expert_ids": {"type": "array", "maxItems": 5, "items": ORGANISATION_ID},
        "lobby": {"type": "boolean", "default": True},
    },
    ["scheduled_at"],
)
