"""The pages name their scripts and styles by versioned URLs, cached for a year; the
pages themselves and unversioned files are not kept without asking (server/web.py)."""

from __future__ import annotations

import re

import aiohttp

from tests.conftest import LiveServer
from tiaojie.server.web import WEB_DIR, asset_version

YEAR = 365 * 24 * 3600


async def get(srv: LiveServer, path: str) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(srv.url + path, allow_redirects=False) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def max_age(cache_control: str) -> int:
    found = re.search(r"max-age=(\d+)", cache_control)
    return int(found.group(1)) if found else 0


async def test_versioned_assets_are_cached_and_pages_are_not(live_server: LiveServer) -> None:
    version = asset_version()
    status, headers, body = await get(live_server, "/join")
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    page = body.decode()
    # every script and style of the page, under today's version
    refs = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert f"/static/v/{version}/js/join.js" in refs
    assert f"/static/v/{version}/css/app.css" in refs
    assert all(ref.startswith(f"/static/v/{version}/") for ref in refs), refs

    for ref in refs:
        status, headers, body = await get(live_server, ref)
        assert status == 200, ref
        assert "immutable" in headers["Cache-Control"], (ref, headers)
        assert max_age(headers["Cache-Control"]) >= YEAR, (ref, headers)
        assert body == (WEB_DIR / ref.removeprefix(f"/static/v/{version}/")).read_bytes()
    # a module's relative imports keep the version (the reason it is in the path)
    status, headers, _ = await get(live_server, f"/static/v/{version}/js/room-view.js")
    assert status == 200 and "immutable" in headers["Cache-Control"]

    # unversioned, or another version's: served, but checked with the server each time
    for path in ["/static/js/join.js", "/static/v/0123456789abcdef/js/join.js"]:
        status, headers, body = await get(live_server, path)
        assert status == 200, path
        assert headers["Cache-Control"] == "no-cache", (path, headers)
        assert body == (WEB_DIR / "js/join.js").read_bytes()

    # nothing outside web/
    for path in [
        f"/static/v/{version}/../pyproject.toml",
        f"/static/v/{version}/%2e%2e/pyproject.toml",
        f"/static/v/{version}/js/no-such-file.js",
        f"/static/v/{version}/js",
    ]:
        status, headers, _ = await get(live_server, path)
        assert status == 404, path
        assert "immutable" not in headers.get("Cache-Control", ""), path

    # the other pages too
    for path in ["/", "/login", "/staff", "/recordings", "/statistics", "/booking", "/report"]:
        status, headers, body = await get(live_server, path)
        assert status == 200, path
        assert headers["Cache-Control"] == "no-store", path
        assert f"/static/v/{version}/css/app.css" in body.decode(), path


def static_imports(module: str) -> set[str]:
    """Every module `module` (a path under web/) imports statically, transitively."""
    found: set[str] = set()
    todo = [module]
    while todo:
        path = WEB_DIR / todo.pop()
        text = path.read_text(encoding="utf-8")
        for ref in re.findall(r'^\s*import\s[^;]*?["\'](\.{1,2}/[^"\']+)["\']', text, re.M):
            name = (path.parent / ref).resolve().relative_to(WEB_DIR.resolve()).as_posix()
            if name not in found:
                found.add(name)
                todo.append(name)
    return found


def test_the_join_page_preloads_what_its_script_imports() -> None:
    """join.html names join.js's static imports as modulepreload (fetched beside join.js,
    not one level after another); the room's modules are imported later, dynamically."""
    page = (WEB_DIR / "join.html").read_text(encoding="utf-8")
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/([^"]+)">', page))
    assert preloaded == static_imports("js/join.js")
    assert "js/room-view.js" not in preloaded


def _listed(script: str, name: str) -> set[str]:
    listed = re.search(rf"const {name} = \[(.*?)\];", script, re.S)
    assert listed is not None, name
    return {f"js/{module}.js" for module in re.findall(r'"([^"]+)"', listed.group(1))}


def test_the_join_page_preloads_the_rooms_modules_in_one_round() -> None:
    """join.js names every module the room imports (at any level) and the join screen
    has not loaded as modulepreload, so they come in one round, not level by level: the
    media's (MEDIA_MODULES) and the room view's (VIEW_MODULES); a module added to the
    room and not to its list fails here."""
    script = (WEB_DIR / "js/join.js").read_text(encoding="utf-8")
    join = static_imports("js/join.js") | {"js/join.js"}
    media: set[str] = set()
    for module in ("js/room-state.js", "js/media-session.js", "js/stats.js"):
        media |= static_imports(module) | {module}
    assert _listed(script, "MEDIA_MODULES") == media - join
    view = static_imports("js/room-view.js") | {"js/room-view.js"}
    assert _listed(script, "VIEW_MODULES") == view - media - join


def test_the_subscriber_answer_needs_none_of_the_room_views_modules() -> None:
    """The modules that answer the first subscriber offer (the media's) import nothing
    of the room view or its panels, and join.js imports the view only dynamically: the
    answer never waits for the panels' code to run (the join time, issue 15)."""
    script = (WEB_DIR / "js/join.js").read_text(encoding="utf-8")
    media = _listed(script, "MEDIA_MODULES")
    for module in media:
        assert not (static_imports(module) & _listed(script, "VIEW_MODULES")), module
    assert "js/room-view.js" not in static_imports("js/join.js")
    assert 'import("./room-view.js")' in script
