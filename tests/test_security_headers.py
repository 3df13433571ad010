"""Every response carries nosniff, X-Frame-Options and Referrer-Policy, errors and 404s of
unknown routes too; every HTML page a Content-Security-Policy that allows no inline script.
"""

from __future__ import annotations

import aiohttp

from tests.conftest import LiveServer

BASIC = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


async def head(srv: LiveServer, method: str, path: str, **kwargs: object) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, srv.url + path, allow_redirects=False, **kwargs) as response,
    ):
        await response.read()
        return response.status, dict(response.headers)


def directives(policy: str) -> dict[str, list[str]]:
    parts = [p.split() for p in policy.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


async def test_every_response_has_the_basic_headers(live_server: LiveServer) -> None:
    room = await live_server.create_room()
    cases = [
        ("GET", "/no/such/page", 404),
        ("GET", "/api/no/such/route", 404),
        ("GET", "/static/no-such-file.js", 404),
        ("POST", "/join", 405),
        ("GET", "/api/rooms", 401),  # no token
        ("GET", f"/api/rooms/{room['id']}", 401),
        ("GET", "/api/health", 200),
        ("GET", "/static/js/join.js", 200),
        ("GET", "/static/css/app.css", 200),
    ]
    for method, path, status in cases:
        got, headers = await head(live_server, method, path)
        assert got == status, (method, path, got)
        for name, value in BASIC.items():
            assert headers.get(name) == value, (method, path, name, headers)


async def test_html_pages_have_a_content_security_policy(live_server: LiveServer) -> None:
    pages = ["/", "/join", "/recordings", "/login", "/staff", "/statistics", "/static/join.html"]
    pages += ["/a/" + "x" * 32, "/a/short"]
    for path in pages:
        status, headers = await head(live_server, "GET", path)
        assert status in (200, 404), (path, status)
        assert headers["Content-Type"].startswith("text/html"), path
        for name, value in BASIC.items():
            assert headers.get(name) == value, (path, name)
        policy = directives(headers["Content-Security-Policy"])
        assert policy["default-src"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
        for sources in policy.values():
            assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, path
        if path.startswith("/a/"):  # the status page has no script at all
            assert "script-src" not in policy and "connect-src" not in policy, path
        else:
            assert policy["script-src"] == ["'self'"], path
            host = live_server.url.removeprefix("http://")
            assert policy["connect-src"] == ["'self'", "blob:", f"ws://{host}", f"wss://{host}"]
