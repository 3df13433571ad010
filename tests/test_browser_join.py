"""The join page in real headless Chromium: invite link -> lobby -> admitted -> room.

A party opens their invite link, sees the page in Chinese, switches to English, joins
and waits in the lobby; a mediator (a plain socket.io client) admits them and the page
shows the room with the mediator in it. A forged link shows the "link cannot be used"
screen.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

TIMEOUT_MS = 10_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is not installed: run `make test`, which installs it")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def open_page(browser: Browser) -> tuple[Page, list[str]]:
    """A fresh page (fresh localStorage) that records uncaught script errors."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


async def marks(page: Page) -> dict[str, float]:
    """The page's `tiaojie:*` performance marks (the steps of joining), by name."""
    found = await page.evaluate(
        "Object.fromEntries(performance.getEntriesByType('mark')"
        ".filter((m) => m.name.startsWith('tiaojie:')).map((m) => [m.name.slice(8), m.startTime]))"
    )
    return dict(found)


async def test_party_joins_waits_in_lobby_and_is_admitted(live_server, browser) -> None:
    room = await live_server.create_room(title="王某与李某邻里纠纷调解", lobby=True)
    party = await live_server.create_invite(room["id"], "party", "李四")
    mediator = await live_server.create_invite(room["id"], "mediator", "张调解员")
    assert party["url"].startswith(f"{live_server.url}/join#token=")

    page, errors = await open_page(browser)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    await page.goto(party["url"])

    # The join page, in Chinese by default, with the room and the invite's details.
    await expect(page.locator("body")).to_have_attribute("data-screen", "join")
    # One invite check (invite-check.js asks while join.js's imports load; join.js takes
    # that answer), and no English texts fetched for a Chinese page.
    assert sum(url.endswith("/api/me") for url in asked) == 1, asked
    assert not [url for url in asked if url.endswith("/i18n/en.js")], asked
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.locator("#room-title")).to_have_text("王某与李某邻里纠纷调解")
    await expect(page.locator("#join-button")).to_have_text("加入调解")
    await expect(page.locator("#name-input")).to_have_value("李四")
    await expect(page.locator("#role-value")).to_have_text("当事人")
    # The fake camera starts in the preview.
    await expect(page.locator("#preview")).to_have_class(re.compile(r"\bhas-video\b"))

    # Switch to English and back: the static and the dynamic text follow.
    await page.click("#lang-toggle")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#join-button")).to_have_text("Join mediation")
    await expect(page.locator("#role-value")).to_have_text("Party")
    await expect(page.locator("#lang-toggle")).to_have_text("中文")
    assert await page.evaluate("localStorage.getItem('tiaojie.lang')") == "en"
    # The choice is remembered across a reload.
    await page.reload()
    await expect(page.locator("#join-button")).to_have_text("Join mediation")

    mediator_sio = socketio.AsyncClient(reconnection=False)
    lobbies: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()

    @mediator_sio.on("lobby_updated")
    async def on_lobby(data: dict[str, Any]) -> None:
        lobbies.put_nowait(data["lobby"])

    await mediator_sio.connect(
        live_server.url, auth={"token": mediator["token"]}, transports=["websocket"]
    )
    try:
        # The party joins and waits in the lobby.
        await page.click("#join-button")
        await expect(page.locator("body")).to_have_attribute("data-screen", "lobby")
        await expect(page.locator("#screen-lobby")).to_be_visible()
        await expect(page.locator("#screen-lobby")).to_contain_text(
            "Please wait, the mediator will let you in."
        )

        async def party_in_lobby() -> dict[str, Any]:
            while True:
                lobby = await lobbies.get()
                for p in lobby:
                    if p["id"] == party["invite_id"]:
                        return p

        # The lobby needs none of the room view: it is made only on entering the room.
        assert "view_modules" not in await marks(page)

        waiting = await asyncio.wait_for(party_in_lobby(), 10)
        assert waiting["name"] == "李四"
        assert waiting["role"] == "party"
        assert waiting["status"] == "lobby"

        ack = await mediator_sio.call("admit", {"participant_id": party["invite_id"]}, timeout=10)
        assert ack["ok"] is True, ack

        # Admitted: the room view, with the mediator in the participant list.
        await expect(page.locator("body")).to_have_attribute("data-screen", "room")
        await expect(page.locator("#screen-room")).to_be_visible()
        await expect(page.locator("#room-view-title")).to_have_text("王某与李某邻里纠纷调解")
        participants = page.locator("#participant-list")
        await expect(participants).to_contain_text("张调解员")
        await expect(participants).to_contain_text("李四")
        mediator_row = participants.locator("li", has_text="张调解员")
        await expect(mediator_row.locator(".badge")).to_have_text("Mediator")
        # A party has no mediator controls.
        await expect(page.locator("#mediator-panel")).to_be_hidden()

        # Raising a hand reaches the server: the mediator sees it.
        updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        mediator_sio.on("participant_updated", lambda d: updates.put_nowait(d["participant"]))
        await page.click("#hand-button")

        async def hand_raised() -> None:
            while True:
                p = await updates.get()
                if p["id"] == party["invite_id"] and p["hand_raised"]:
                    return

        await asyncio.wait_for(hand_raised(), 10)
        await expect(page.locator("#hand-button")).to_contain_text("Lower hand")
    finally:
        await mediator_sio.disconnect()

    assert errors == []


async def test_forged_link_shows_link_screen(live_server, browser) -> None:
    page, errors = await open_page(browser)
    await page.goto(f"{live_server.url}/join#token=tj1.garbage.garbage")

    await expect(page.locator("body")).to_have_attribute("data-screen", "expired")
    await expect(page.locator("#screen-expired")).to_be_visible()
    await expect(page.locator("#screen-join")).to_be_hidden()
    await expect(page.locator("#expired-message")).to_have_text(
        "此邀请链接无效。请检查链接是否完整，或联系调解员重新发送。"
    )
    await page.click("#lang-toggle")
    await expect(page.locator("#expired-message")).to_have_text(
        "This invite link is not valid. Check that the link is complete, "
        "or ask the mediator to send it again."
    )
    assert errors == []


async def test_link_without_token_shows_link_screen(live_server, browser) -> None:
    page, errors = await open_page(browser)
    await page.goto(f"{live_server.url}/join?lang=en")

    await expect(page.locator("body")).to_have_attribute("data-screen", "expired")
    await expect(page.locator("#expired-message")).to_contain_text("invite token is missing")
    assert errors == []
