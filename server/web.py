"""The static browser client: `/`, `/join`, `/recordings` and `/static/` (files under web/)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

#: `tiaojie/web`: package data in a wheel, the checkout's web/ (by its link) when editable.
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB_DIR / name, headers=NO_STORE)

    return handler


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def add_routes(app: web.Application) -> None:
    if not (WEB_DIR / "join.html").is_file():
        raise RuntimeError(
            f"the web client is missing: no {WEB_DIR}/join.html (the package is incomplete)"
        )
    app.router.add_get("/", _page("index.html"))
    app.router.add_get("/join", _page("join.html"))
    app.router.add_get("/recordings", _page("recordings.html"))
    # aiohttp's static route resolves the path and refuses anything outside WEB_DIR.
    app.router.add_static("/static/", WEB_DIR, follow_symlinks=False, show_index=False)
