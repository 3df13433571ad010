"""The OpenAPI description of the staff accounts' routes (merged into /api/openapi.json
by server/openapi.py, which adds the patterns of text and password fields)."""

from __future__ import annotations

from typing import Any

from tiaojie.server.accounts.audit import ACTIONS
from tiaojie.server.accounts.middleware import CSRF_HEADER
from tiaojie.server.accounts.model import ROLE_ORDER
from tiaojie.server.accounts.schemas import (
    AUDIT_QUERY,
    CHANGE_ACCOUNT,
    CHANGE_ORGANISATION,
    CHANGE_OWN_PASSWORD,
    CREATE_ACCOUNT,
    CREATE_KEY,
    CREATE_ORGANISATION,
    LOGIN_BODY,
    RESET_PASSWORD,
)
from tiaojie.server.accounts.tokens import COOKIE
from tiaojie.server.openapi_parts import operation, path_param, ref
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.validation import Schema

_ERROR = {"$ref": "#/components/schemas/Error"}
_STRING_OR_NULL: Schema = {"type": ["string", "null"]}
_INT_OR_NULL: Schema = {"type": ["integer", "null"]}


def _ref(name: str) -> Schema:
    return ref(name)


def _path(name: str) -> dict[str, Any]:
    return path_param(name)


def _op(
    summary: str,
    ok: tuple[int, Schema],
    *errors: int,
    body: Schema | None = None,
    public: bool = False,
    headers: dict[int, dict[str, Any]] | None = None,
    query: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return operation(
        summary, ok[0], ok[1], *errors, body=body, public=public, headers=headers, parameters=query
    )


_ORGANISATION: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "short_name": {"type": "string"},
        "created_at": {"type": "integer"},
    },
    "required": ["id", "name", "short_name", "created_at"],
}
_ACCOUNT: Schema = {
    "type": "object",
    "description": "A staff account: never its password or its hash",
    "properties": {
        "id": {"type": "string"},
        "login": {"type": "string"},
        "name": {"type": "string"},
        "organisation_id": {"type": "string"},
        "roles": {"type": "array", "items": {"type": "string", "enum": list(ROLE_ORDER)}},
        "disabled": {"type": "boolean"},
        "created_at": {"type": "integer"},
        "password_changed_at": {"type": "integer"},
    },
    "required": ["id", "login", "name", "organisation_id", "roles", "disabled"],
}
_API_KEY: Schema = {
    "type": "object",
    "description": "An API key as listed: never its secret",
    "properties": {
        "id": {"type": "string"},
        "account_id": {"type": "string"},
        "label": {"type": "string"},
        "created_at": {"type": "integer"},
        "last_used_at": _INT_OR_NULL,
        "revoked_at": _INT_OR_NULL,
    },
    "required": ["id", "account_id", "label", "created_at"],
}
_NEW_API_KEY: Schema = {
    "allOf": [
        _ref("ApiKey"),
        {
            "type": "object",
            "properties": {
                "key": {
                    "type": "string",
                    "description": "the key (tjk1....): shown here once, never again; "
                    "send it as Authorization: Bearer",
                }
            },
            "required": ["key"],
        },
    ]
}
_SESSION: Schema = {
    "type": "object",
    "description": "Who is calling: a browser session, an account's API key, or the admin token",
    "properties": {
        "via": {"type": "string", "enum": ["session", "api_key", "admin_token"]},
        "account": {"oneOf": [_ref("Account"), {"type": "null"}]},
        "organisation": {"oneOf": [_ref("Organisation"), {"type": "null"}]},
        "csrf_token": {
            **_STRING_OR_NULL,
            "description": f"send it in {CSRF_HEADER} with every write made with the cookie",
        },
        "expires_at": {**_INT_OR_NULL, "description": "when the session ends unless used"},
    },
    "required": ["via", "account", "organisation", "csrf_token", "expires_at"],
}
_AUDIT_ENTRY: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "integer"},
        "actor": {
            "type": "object",
            "properties": {
                "kind": {
                    "type": "string",
                    "enum": [
                        "account",
                        "admin-token",
                        "invite",
                        "archivist-token",
                        "anonymous",
                        "cli",
                        "server",
                    ],
                },
                "id": _STRING_OR_NULL,
            },
        },
        "action": {"type": "string", "enum": ACTIONS},
        "target": _STRING_OR_NULL,
        "detail": {"type": "object"},
        "address": _STRING_OR_NULL,
    },
    "required": ["id", "at", "actor", "action", "target", "detail"],
}


def account_schemas() -> dict[str, Schema]:
    """The components these routes refer to."""
    return {
        "Organisation": _ORGANISATION,
        "Account": _ACCOUNT,
        "ApiKey": _API_KEY,
        "NewApiKey": _NEW_API_KEY,
        "Session": _SESSION,
        "AuditEntry": _AUDIT_ENTRY,
        "Login": LOGIN_BODY,
        "CreateOrganisation": CREATE_ORGANISATION,
        "ChangeOrganisation": CHANGE_ORGANISATION,
        "CreateAccount": CREATE_ACCOUNT,
        "ChangeAccount": CHANGE_ACCOUNT,
        "ResetPassword": RESET_PASSWORD,
        "ChangeOwnPassword": CHANGE_OWN_PASSWORD,
        "CreateApiKey": CREATE_KEY,
    }


def _list(key: str, item: str) -> Schema:
    return {
        "type": "object",
        "properties": {key: {"type": "array", "items": _ref(item)}},
        "required": [key],
    }


def account_paths() -> dict[str, Any]:
    retry = {429: {"Retry-After": {"schema": {"type": "integer"}}}}
    account, organisation, key = _path("account_id"), _path("organisation_id"), _path("key_id")
    audit_query = [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in AUDIT_QUERY.items()
    ]
    ended = {
        "type": "object",
        "properties": {"sessions_ended": {"type": "integer"}},
        "required": ["sessions_ended"],
    }
    return {
        "/api/session": {
            "post": _op(
                f"Log in: sets the session cookie {COOKIE} (HttpOnly, SameSite=Strict); the "
                "same refusal whether or not the login exists; 429 while the login or the "
                "address is locked after failed logins",
                (201, _ref("Session")),
                400,
                401,
                403,
                413,
                415,
                429,
                body=_ref("Login"),
                public=True,
                headers=retry,
            ),
            "get": _op(
                "Who is calling (session cookie, API key or admin token) and the session's "
                "CSRF token",
                (200, _ref("Session")),
                401,
                403,
            ),
            "delete": _op(
                "Log out: ends this browser's session (needs the CSRF token with the cookie)",
                (
                    200,
                    {
                        "type": "object",
                        "properties": {"logged_out": {"type": "boolean"}},
                        "required": ["logged_out"],
                    },
                ),
                403,
                public=True,
            ),
        },
        "/api/sessions": {
            "delete": _op(
                "Log out everywhere: ends every session of the caller's account",
                (200, ended),
                401,
                403,
            ),
        },
        "/api/session/password": {
            "post": _op(
                "Change your own password (the current one is asked); your other sessions end",
                (200, {"type": "object", "properties": {"account": _ref("Account")}}),
                400,
                401,
                403,
                413,
                415,
                429,
                body=_ref("ChangeOwnPassword"),
                headers=retry,
            ),
        },
        "/api/organisations": {
            "get": _op(
                "Organisations (admin)",
                (200, _list("organisations", "Organisation")),
                401,
                403,
            ),
            "post": _op(
                "Create an organisation (admin)",
                (201, _ref("Organisation")),
                400,
                401,
                403,
                413,
                415,
                body=_ref("CreateOrganisation"),
            ),
        },
        "/api/organisations/{organisation_id}": {
            "parameters": [organisation],
            "get": _op(
                "An organisation (admin; an account its own)",
                (200, _ref("Organisation")),
                401,
                403,
                404,
            ),
            "patch": _op(
                "Rename an organisation (admin)",
                (200, _ref("Organisation")),
                400,
                401,
                403,
                404,
                413,
                415,
                body=_ref("ChangeOrganisation"),
            ),
        },
        "/api/accounts": {
            "get": _op(
                "Staff accounts (admin); ?organisation_id= for one organisation's",
                (200, _list("accounts", "Account")),
                400,
                401,
                403,
                query=[
                    {
                        "name": "organisation_id",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
                    }
                ],
            ),
            "post": _op(
                "Create a staff account (admin): login, name, organisation, roles, password",
                (201, _ref("Account")),
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                body=_ref("CreateAccount"),
            ),
        },
        "/api/accounts/{account_id}": {
            "parameters": [account],
            "get": _op(
                "A staff account (admin; an account itself)", (200, _ref("Account")), 401, 403, 404
            ),
            "patch": _op(
                "Change an account's name, roles, organisation, or disable it (admin); a "
                "disabled account's sessions end",
                (200, _ref("Account")),
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                body=_ref("ChangeAccount"),
            ),
        },
        "/api/accounts/{account_id}/password": {
            "parameters": [account],
            "post": _op(
                "Reset an account's password (admin); its sessions end",
                (200, _ref("Account")),
                400,
                401,
                403,
                404,
                413,
                415,
                body=_ref("ResetPassword"),
            ),
        },
        "/api/accounts/{account_id}/sessions": {
            "parameters": [account],
            "delete": _op("End every session of an account (admin)", (200, ended), 401, 403, 404),
        },
        "/api/accounts/{account_id}/keys": {
            "parameters": [account],
            "get": _op(
                "An account's API keys, without their secrets (admin)",
                (200, _list("keys", "ApiKey")),
                401,
                403,
                404,
            ),
        },
        "/api/keys": {
            "get": _op(
                "Your account's API keys, without their secrets",
                (200, _list("keys", "ApiKey")),
                401,
                403,
            ),
            "post": _op(
                "A new API key of your account, with your roles: its text is shown once",
                (201, _ref("NewApiKey")),
                400,
                401,
                403,
                413,
                415,
                body=_ref("CreateApiKey"),
            ),
        },
        "/api/keys/{key_id}": {
            "parameters": [key],
            "delete": _op(
                "Revoke an API key (yours; an admin any)", (200, _ref("ApiKey")), 401, 403, 404
            ),
        },
        "/api/audit": {
            "get": _op(
                "The audit log, newest first (admin): filter by action, by the acting "
                "account (account=) or the target; page with before=<next_before>",
                (
                    200,
                    {
                        "type": "object",
                        "properties": {
                            "entries": {"type": "array", "items": _ref("AuditEntry")},
                            "next_before": _INT_OR_NULL,
                        },
                        "required": ["entries", "next_before"],
                    },
                ),
                400,
                401,
                403,
                query=audit_query,
            ),
        },
    }
