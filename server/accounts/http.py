"""The staff accounts' REST API: the browser session (login, who am I, logout, logout
everywhere, own password), organisations, accounts, API keys and the audit log.

Admin routes take the admin token or an admin account; session routes an account (by
its cookie or one of its API keys). The cookie is HttpOnly, SameSite=Strict, Path=/,
without Max-Age (it goes when the browser closes; the server ends it sooner: idle and
absolute expiry), and Secure when the request came over HTTPS or the public URL is
https:// (a TLS-terminating proxy in front). X-Forwarded-Proto counts only from a proxy
named in --trusted-proxies (server/forwarded.py makes the request's scheme from it).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tiaojie.server.accounts.middleware import staff_of
from tiaojie.server.accounts.model import Account, StaffRole
from tiaojie.server.accounts.schemas import (
    AUDIT_QUERY,
    CHANGE_ACCOUNT,
    CHANGE_ORGANISATION,
    CHANGE_OWN_PASSWORD,
    CREATE_ACCOUNT,
    CREATE_KEY,
    CREATE_ORGANISATION,
    ID,
    LOGIN_BODY,
    RESET_PASSWORD,
)
from tiaojie.server.accounts.service import Accounts, forbidden_without_account
from tiaojie.server.accounts.tokens import COOKIE
from tiaojie.server.config import Settings
from tiaojie.server.errors import TiaojieError, bad_request
from tiaojie.server.http_auth import Caller, HttpAuth, json_response
from tiaojie.server.json_input import read_body
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.validation import validate

ACCOUNT = "/api/accounts/{account_id:" + ID_PATTERN + "}"
ORGANISATION = "/api/organisations/{organisation_id:" + ID_PATTERN + "}"
KEY = "/api/keys/{key_id:" + ID_PATTERN + "}"
NO_STORE = {"Cache-Control": "no-store"}


class AccountRoutes:
    def __init__(self, accounts: Accounts, auth: HttpAuth, settings: Settings) -> None:
        self.accounts = accounts
        self.auth = auth
        self.settings = settings

    def install(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/session", self.login)
        router.add_get("/api/session", self.who)
        router.add_delete("/api/session", self.logout)
        router.add_delete("/api/sessions", self.logout_everywhere)
        router.add_post("/api/session/password", self.change_own_password)
        router.add_get("/api/organisations", self.list_organisations)
        router.add_post("/api/organisations", self.create_organisation)
        router.add_get(ORGANISATION, self.get_organisation)
        router.add_patch(ORGANISATION, self.change_organisation)
        router.add_get("/api/accounts", self.list_accounts)
        router.add_post("/api/accounts", self.create_account)
        router.add_get(ACCOUNT, self.get_account)
        router.add_patch(ACCOUNT, self.change_account)
        router.add_post(ACCOUNT + "/password", self.reset_password)
        router.add_delete(ACCOUNT + "/sessions", self.end_sessions)
        router.add_get(ACCOUNT + "/keys", self.account_keys)
        router.add_get("/api/keys", self.list_keys)
        router.add_post("/api/keys", self.create_key)
        router.add_delete(KEY, self.revoke_key)
        router.add_get("/api/audit", self.audit)

    # -- helpers -----------------------------------------------------------------------------
    def _account(self, request: web.Request) -> tuple[Caller, Account]:
        """A staff account's call (its session or API key), not a token's."""
        caller = self.auth.caller(request)
        if caller.account is None:
            raise forbidden_without_account()
        return caller, caller.account

    def _secure(self, request: web.Request) -> bool:
        public = self.settings.public_url or ""
        return request.secure or public.lower().startswith("https://")

    def _clear_cookie(self, request: web.Request, response: web.Response) -> None:
        if COOKIE in request.cookies:
            response.del_cookie(
                COOKIE, path="/", secure=self._secure(request), httponly=True, samesite="Strict"
            )

    async def _who(self, caller: Caller) -> dict[str, Any]:
        staff = caller.staff
        if staff is None:  # the admin token
            return {
                "via": "admin_token",
                "account": None,
                "organisation": None,
                "csrf_token": None,
                "expires_at": None,
            }
        account = staff.account
        organisation = await self.accounts.organisation(account.organisation_id)
        return {
            "via": "session" if staff.session_id else "api_key",
            "account": account.public(),
            "organisation": organisation.public(),
            "csrf_token": staff.csrf_token,
            "expires_at": staff.session_ends_at,
        }

    # -- the session ---------------------------------------------------------------------------
    async def login(self, request: web.Request) -> web.Response:
        body = await read_body(request, LOGIN_BODY)
        token, session, account = await self.accounts.login(
            body["login"], body["password"], request.remote or ""
        )
        organisation = await self.accounts.organisation(account.organisation_id)
        response = json_response(
            {
                "via": "session",
                "account": account.public(),
                "organisation": organisation.public(),
                "csrf_token": session.csrf_token,
                "expires_at": session.ends_at(self.accounts.session_policy),
            },
            201,
            headers=NO_STORE,
        )
        response.set_cookie(
            COOKIE,
            token,
            path="/",
            secure=self._secure(request),
            httponly=True,
            samesite="Strict",
        )
        return response

    async def who(self, request: web.Request) -> web.Response:
        """Who is logged in (or which key or token this is), and the CSRF token."""
        caller = self.auth.caller(request)
        if caller.claims is not None:
            raise TiaojieError("not_staff", "This is an invite token: /api/me describes it.", 403)
        return json_response(await self._who(caller), headers=NO_STORE)

    async def logout(self, request: web.Request) -> web.Response:
        """End this browser's session (and forget its cookie); without one, nothing."""
        staff = staff_of(request)
        ended = staff is not None and staff.session_id is not None
        if staff is not None and staff.session_id is not None:
            await self.accounts.logout(staff.session_id, staff.account.id)
        response = json_response({"logged_out": ended}, headers=NO_STORE)
        self._clear_cookie(request, response)
        return response

    async def logout_everywhere(self, request: web.Request) -> web.Response:
        _, account = self._account(request)
        closed = await self.accounts.logout_everywhere(account.id)
        response = json_response({"sessions_ended": closed}, headers=NO_STORE)
        self._clear_cookie(request, response)
        return response

    async def change_own_password(self, request: web.Request) -> web.Response:
        caller, account = self._account(request)
        body = await read_body(request, CHANGE_OWN_PASSWORD)
        assert caller.staff is not None
        await self.accounts.change_own_password(
            account, body["current_password"], body["new_password"], caller.staff.session_id
        )
        return json_response({"account": (await self.accounts.account(account.id)).public()})

    # -- organisations -------------------------------------------------------------------------
    async def list_organisations(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        found = await self.accounts.organisations()
        return json_response({"organisations": [o.public() for o in found]})

    async def create_organisation(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        body = await read_body(request, CREATE_ORGANISATION)
        short_name = body.get("short_name") or body["name"][:32]
        made = await self.accounts.create_organisation(body["name"], short_name)
        return json_response(made.public(), 201)

    async def get_organisation(self, request: web.Request) -> web.Response:
        """An admin any; an account its own."""
        caller = self.auth.caller(request)
        wanted = request.match_info["organisation_id"]
        account = caller.account
        if not caller.admin and (account is None or account.organisation_id != wanted):
            raise TiaojieError("organisation_not_found", "No such organisation.", 404)
        return json_response((await self.accounts.organisation(wanted)).public())

    async def change_organisation(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        body = await read_body(request, CHANGE_ORGANISATION)
        changed = await self.accounts.change_organisation(
            request.match_info["organisation_id"], body
        )
        return json_response(changed.public())

    # -- accounts ------------------------------------------------------------------------------
    async def list_accounts(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        organisation_id = request.query.get("organisation_id")
        if organisation_id is not None:
            validate(ID, organisation_id, "organisation_id")
        found = await self.accounts.accounts(organisation_id)
        return json_response({"accounts": [a.public() for a in found]})

    async def create_account(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        body = await read_body(request, CREATE_ACCOUNT)
        made = await self.accounts.create_account(
            body["login"],
            body["name"],
            body["organisation_id"],
            frozenset(StaffRole(r) for r in body["roles"]),
            body["password"],
        )
        return json_response(made.public(), 201)

    async def get_account(self, request: web.Request) -> web.Response:
        """An admin any account; an account itself."""
        caller = self.auth.caller(request)
        wanted = request.match_info["account_id"]
        if not caller.admin and (caller.account is None or caller.account.id != wanted):
            raise TiaojieError("account_not_found", "No such account.", 404)
        return json_response((await self.accounts.account(wanted)).public())

    async def change_account(self, request: web.Request) -> web.Response:
        caller = self.auth.admin(request)
        body = await read_body(request, CHANGE_ACCOUNT)
        if "roles" in body:
            body["roles"] = frozenset(StaffRole(r) for r in body["roles"])
        changed = await self.accounts.change_account(
            request.match_info["account_id"], body, caller.account
        )
        return json_response(changed.public())

    async def reset_password(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        body = await read_body(request, RESET_PASSWORD)
        account = await self.accounts.reset_password(
            request.match_info["account_id"], body["password"]
        )
        return json_response(account.public())

    async def end_sessions(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        account = await self.accounts.account(request.match_info["account_id"])
        closed = await self.accounts.logout_everywhere(account.id)
        return json_response({"sessions_ended": closed})

    # -- API keys ------------------------------------------------------------------------------
    async def account_keys(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        account = await self.accounts.account(request.match_info["account_id"])
        found = await self.accounts.keys(account.id)
        return json_response({"keys": [k.public() for k in found]})

    async def list_keys(self, request: web.Request) -> web.Response:
        _, account = self._account(request)
        found = await self.accounts.keys(account.id)
        return json_response({"keys": [k.public() for k in found]})

    async def create_key(self, request: web.Request) -> web.Response:
        """A new API key of the caller's account: its text is in this answer only."""
        _, account = self._account(request)
        body = await read_body(request, CREATE_KEY)
        key, text = await self.accounts.create_key(account, body["label"])
        return json_response({**key.public(), "key": text}, 201, headers=NO_STORE)

    async def revoke_key(self, request: web.Request) -> web.Response:
        caller = self.auth.caller(request)
        if not caller.admin and caller.account is None:
            raise forbidden_without_account()
        key = await self.accounts.revoke_key(
            request.match_info["key_id"], None if caller.account is None else caller.account
        )
        return json_response(key.public())

    # -- the audit log -------------------------------------------------------------------------
    async def audit(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        query: dict[str, Any] = {}
        for name, schema in AUDIT_QUERY.items():
            raw = request.query.get(name)
            if raw is None:
                continue
            value: Any = raw
            if schema.get("type") == "integer":
                if not raw.isdecimal() or len(raw) > 18:
                    raise bad_request(f"{name} must be a whole number")
                value = int(raw)
            query[name] = validate(schema, value, name)
        limit = query.get("limit", AUDIT_QUERY["limit"]["default"])
        entries = await self.accounts.audit(
            action=query.get("action"),
            actor_id=query.get("account"),
            target=query.get("target"),
            before=query.get("before"),
            limit=limit,
        )
        more = len(entries) == limit
        return json_response(
            {"entries": entries, "next_before": entries[-1]["id"] if more and entries else None}
        )
