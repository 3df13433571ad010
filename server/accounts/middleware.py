"""Who a staff request comes from: the session cookie or an account's API key, resolved
before the handler runs (it takes the database), and the CSRF check of cookie writes.

- `Authorization: Bearer tjk1....`: an API key; not genuine, revoked, or its account
  disabled: 401. Other bearer tokens (the admin token, invite and archivist tokens) are
  server/http_auth.py's; with any `Authorization` header the cookie is ignored, so
  scripts never need a CSRF token.
- Otherwise the cookie `tiaojie_session`: a live session of an enabled account, or
  nothing (the handler then refuses as for a request without credentials).
- A cookie-authenticated request that is not GET/HEAD/OPTIONS must send the session's
  CSRF token in `X-CSRF-Token` (403 `csrf_failed`), except the login itself. The cookie
  is also SameSite=Strict; the header is what a page of another site can never send.

Only /api/ paths are looked at. Each gets a fresh actor (server/accounts/actor.py):
the account, or an anonymous caller that HttpAuth names once it knows the token.
"""

from __future__ import annotations

import hmac
from contextvars import ContextVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tiaojie.server.accounts.actor import Actor, ActorKind, act_as, acting
from tiaojie.server.accounts.model import Staff
from tiaojie.server.accounts.service import Accounts
from tiaojie.server.accounts.tokens import COOKIE, looks_like_key
from tiaojie.server.errors import TiaojieError

#: The Staff of the request being handled (the handler runs in the middleware's task).
_STAFF: ContextVar[Staff | None] = ContextVar("tiaojie_staff", default=None)
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Writes a session cookie may make without the CSRF token: logging in (again).
NO_CSRF = frozenset({("POST", "/api/session")})


def staff_of(request: web.Request) -> Staff | None:
    """The account `request` comes from, if the middleware found one."""
    return _STAFF.get()


def key_invalid() -> TiaojieError:
    return TiaojieError("token_invalid", "This API key is not valid (or was revoked).", 401)


async def identify(accounts: Accounts, request: web.Request) -> Staff | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not looks_like_key(token):
            return None
        found = await accounts.by_key(token)
        if found is None:
            raise key_invalid()
        account, key = found
        return Staff(account, key_id=key.id)
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    session = await accounts.by_session(cookie)
    if session is None:
        return None
    account, live = session
    return Staff(
        account,
        session_id=live.id,
        csrf_token=live.csrf_token,
        session_ends_at=live.ends_at(accounts.session_policy),
    )


def check_csrf(request: web.Request, staff: Staff) -> None:
    if staff.csrf_token is None or request.method in SAFE_METHODS:
        return
    if (request.method, request.path) in NO_CSRF:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), staff.csrf_token.encode()):
        raise TiaojieError(
            "csrf_failed",
            f"This request needs the session's CSRF token in {CSRF_HEADER} "
            "(GET /api/session gives it).",
            403,
        )


def staff_middleware(accounts: Accounts) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        with acting(Actor(ActorKind.ANONYMOUS, None, request.remote)):
            staff = await identify(accounts, request)
            if staff is not None:
                check_csrf(request, staff)
                act_as(Actor(ActorKind.ACCOUNT, staff.account.id, request.remote))
            token = _STAFF.set(staff)
            try:
                return await handler(request)
            finally:
                _STAFF.reset(token)

    return middleware
