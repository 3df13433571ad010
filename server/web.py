"""The static browser client (`/`, `/join`, `/recordings`, `/login`, `/staff`,
`/static/`: files under web/) and the security headers of every response.

Every response gets nosniff, `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`
(errors and 404s of unknown routes too: `security_headers` is an on_response_prepare
hook, which also sees raised HTTPExceptions, where a middleware would not). Every HTML
response gets a Content-Security-Policy; the pages hold invite tokens in their URL
fragment, and have no inline script or style, so `page_policy` allows only our own files.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from tiaojie.server.state import app_state

#: `tiaojie/web`: package data in a wheel, the checkout's web/ (by its link) when editable.
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
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


def _page(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB_DIR / name, headers=NO_STORE)

    return handler


def add_routes(app: web.Application) -> None:
    if not (WEB_DIR / "join.html").is_file():
        raise RuntimeError(
            f"the web client is missing: no {WEB_DIR}/join.html (the package is incomplete)"
        )
    app.on_response_prepare.append(security_headers)
    app.router.add_get("/", _page("index.html"))
    app.router.add_get("/join", _page("join.html"))
    app.router.add_get("/recordings", _page("recordings.html"))
    # staff accounts (server/accounts/): the login page and the staff home page
    app.router.add_get("/login", _page("login.html"))
    app.router.add_get("/staff", _page("staff.html"))
    app.router.add_get("/statistics", _page("statistics.html"))  # server/statistics/
    # a party's booking page (server/bookings/): their link's code and key in the fragment
    app.router.add_get("/booking", _page("booking.html"))
    # aiohttp's static route resolves the path and refuses anything outside WEB_DIR.
    app.router.add_static("/static/", WEB_DIR, follow_symlinks=False, show_index=False)
