"""The static browser client (`/`, `/join`, `/recordings`, `/login`, `/staff`,
`/static/`: files under web/) and the security headers of every response.

Caching: the pages are `no-store` (they change with the server) and name their scripts
and styles by versioned URLs, `/static/v/<ASSET_VERSION>/<path>`, where the version is a
hash of everything under web/; those are cached for a year (`immutable`), so a second
visit fetches nothing but the page. A version in the path, not `?v=`: ES modules import
each other by relative URLs, which keep the path's version and drop a query. A file asked
for under another version (a page loaded before the server was updated) is served from
today's web/ but revalidated; unversioned `/static/` files are revalidated every time.

Every response gets nosniff, `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`
(errors and 404s of unknown routes too: `security_headers` is an on_response_prepare
hook, which also sees raised HTTPExceptions, where a middleware would not). Every HTML
response gets a Content-Security-Policy; the pages hold invite tokens in their URL
fragment, and have no inline script or style, so `page_policy` allows only our own files.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from tiaojie.server.state import app_state

#: `tiaojie/web`: package data in a wheel, the checkout's web/ (by its link) when editable.
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
#: A file under today's versioned URL never changes: a year, without revalidation.
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
#: Unversioned (or another version's) files: kept, but checked with the server each time.
REVALIDATE = {"Cache-Control": "no-cache"}
VERSIONED_PREFIX = "/static/v/"
#: `src="/static/…"` and `href="/static/…"` in the pages
_STATIC_REF = re.compile(r'((?:src|href)=")/static/')
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: Pages without script (the agreement status page `/a/{code}`).
NO_SCRIPT_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def page_policy(hosts: list[str]) -> str:
    """The policy of the client's pages: our scripts, styles and media; the data: favicon;
    fetch and socket.io (a WebSocket) to this origin, and the page's own blob: URLs (the
    signed PDF is downloaded into one). `'self'` covers ws:/wss: in CSP 3, but older
    WebKit wants the WebSocket origins spelled out: `hosts` are ours."""
    sockets = "".join(f" ws://{h} wss://{h}" for h in dict.fromkeys(hosts))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src 'self'; connect-src 'self' blob:{sockets}; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _our_hosts(request: web.Request) -> list[str]:
    """The Host the page was asked for (checked: it goes into a header) and the public
    URL's."""
    hosts = [request.host]
    public_url = app_state(request.app).settings.public_url
    if public_url:
        hosts.append(urlsplit(public_url).netloc)
    return [h for h in hosts if HOST.fullmatch(h)]


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the headers above, without overriding a handler's own."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", page_policy(_our_hosts(request)))


@functools.cache
def asset_version() -> str:
    """A hash of every file under web/ (names and contents), read once: it changes when
    any of them does, so a versioned URL never names two contents."""
    digest = hashlib.sha256()
    for path in sorted(p for p in WEB_DIR.rglob("*") if p.is_file()):
        digest.update(path.relative_to(WEB_DIR).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def asset_url(path: str) -> str:
    """The versioned, cacheable URL of web/`path` (e.g. "css/app.css")."""
    return f"{VERSIONED_PREFIX}{asset_version()}/{path}"


@functools.cache
def _page_body(name: str) -> bytes:
    """The page with its /static/ references versioned (read once, like the version)."""
    text = (WEB_DIR / name).read_text(encoding="utf-8")
    return _STATIC_REF.sub(rf"\g<1>{VERSIONED_PREFIX}{asset_version()}/", text).encode()


def page_response(name: str) -> web.Response:
    """The page web/`name`, not stored, naming versioned assets."""
    return web.Response(
        body=_page_body(name), content_type="text/html", charset="utf-8", headers=NO_STORE
    )


def _page(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return page_response(name)

    return handler


async def _versioned(request: web.Request) -> web.StreamResponse:
    """`/static/v/{version}/{path}`: the file under web/ (never outside it)."""
    root = WEB_DIR.resolve()
    path = (root / request.match_info["path"]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise web.HTTPNotFound()
    current = request.match_info["version"] == asset_version()
    return web.FileResponse(path, headers=IMMUTABLE if current else REVALIDATE)


async def _revalidated(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: unversioned /static/ files are checked on every use."""
    if request.path.startswith("/static/") and not request.path.startswith(VERSIONED_PREFIX):
        response.headers.setdefault("Cache-Control", REVALIDATE["Cache-Control"])


def add_routes(app: web.Application) -> None:
    if not (WEB_DIR / "join.html").is_file():
        raise RuntimeError(
            f"the web client is missing: no {WEB_DIR}/join.html (the package is incomplete)"
        )
    app.on_response_prepare.append(security_headers)
    app.on_response_prepare.append(_revalidated)
    asset_version()  # hashed once, at start
    app.router.add_get("/", _page("index.html"))
    app.router.add_get("/join", _page("join.html"))
    app.router.add_get("/recordings", _page("recordings.html"))
    # staff accounts (server/accounts/): the login page and the staff home page
    app.router.add_get("/login", _page("login.html"))
    app.router.add_get("/staff", _page("staff.html"))
    app.router.add_get("/statistics", _page("statistics.html"))  # server/statistics/
    # a party's booking page (server/bookings/): their link's code and key in the fragment
    app.router.add_get("/booking", _page("booking.html"))
    app.router.add_get(VERSIONED_PREFIX + "{version}/{path:.+}", _versioned)
    # aiohttp's static route resolves the path and refuses anything outside WEB_DIR.
    app.router.add_static("/static/", WEB_DIR, follow_symlinks=False, show_index=False)
