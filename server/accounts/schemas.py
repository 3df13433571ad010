"""JSON Schemas of the staff accounts' REST bodies and queries (validated by
server/validation.py and shown in /api/openapi.json)."""

from __future__ import annotations

from tiaojie.server.accounts.audit import ACTIONS
from tiaojie.server.accounts.model import LOGIN_PATTERN, ROLE_ORDER
from tiaojie.server.accounts.passwords import MAX_LENGTH, MIN_LENGTH
from tiaojie.server.schemas import ID_PATTERN, NAME
from tiaojie.server.validation import Schema
from tiaojie.signing.text import TEXT

#: OpenAPI's "password" format: checked as it is, never normalised; any characters but
#: controls, bidirectional and invisible ones (server/validation.py).
PASSWORD_FORMAT = "password"
# (patterns anchored: JSON Schema's `pattern` searches, server/validation.py matches whole)
LOGIN: Schema = {"type": "string", "pattern": f"^{LOGIN_PATTERN}$"}
PASSWORD: Schema = {
    "type": "string",
    "format": PASSWORD_FORMAT,
    "minLength": MIN_LENGTH,
    "maxLength": MAX_LENGTH,
}
ANY_PASSWORD: Schema = {**PASSWORD, "minLength": 1}
ID: Schema = {"type": "string", "pattern": f"^{ID_PATTERN}$"}
ROLES: Schema = {
    "type": "array",
    "maxItems": len(ROLE_ORDER),
    "items": {"type": "string", "enum": [str(r) for r in ROLE_ORDER]},
}
ORGANISATION_NAME: Schema = {"type": "string", "format": TEXT, "minLength": 1, "maxLength": 200}
SHORT_NAME: Schema = {"type": "string", "format": TEXT, "minLength": 1, "maxLength": 32}
LABEL: Schema = {"type": "string", "format": TEXT, "minLength": 1, "maxLength": 64}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


LOGIN_BODY = _object({"login": LOGIN, "password": ANY_PASSWORD}, ["login", "password"])
CREATE_ORGANISATION = _object({"name": ORGANISATION_NAME, "short_name": SHORT_NAME}, ["name"])
CHANGE_ORGANISATION = _object({"name": ORGANISATION_NAME, "short_name": SHORT_NAME})
CREATE_ACCOUNT = _object(
    {
        "login": LOGIN,
        "name": NAME,
        "organisation_id": ID,
        "roles": {**ROLES, "default": []},
        "password": PASSWORD,
    },
    ["login", "name", "organisation_id", "password"],
)
CHANGE_ACCOUNT = _object(
    {"name": NAME, "roles": ROLES, "disabled": {"type": "boolean"}, "organisation_id": ID}
)
RESET_PASSWORD = _object({"password": PASSWORD}, ["password"])
CHANGE_OWN_PASSWORD = _object(
    {"current_password": ANY_PASSWORD, "new_password": PASSWORD},
    ["current_password", "new_password"],
)
CREATE_KEY = _object({"label": LABEL}, ["label"])

#: GET /api/audit's query (strings, as URLs carry them; numbers checked by the handler).
AUDIT_QUERY: dict[str, Schema] = {
    "action": {"type": "string", "enum": ACTIONS},
    "account": ID,
    "target": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,200}$"},
    "before": {"type": "integer", "minimum": 1},
    "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
}
