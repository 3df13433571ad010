"""Several nodes in headless Chromium: a page opened by a link naming the node that does
not host the room's media is sent to the one that does (`/api/me` names it), joins
there, and exchanges media with a bot that joined through the other node. When the
room's node stops, the page moves to the other node by itself (joining with the same
name) and so does the bot: the media flows again there."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect

from tests.support.testmedia import make_test_mp4
from tests.test_browser_media import HAS_VIDEO, Participant, growing, hears, open_page
from tests.test_cluster_placement import close, two_nodes, until, via
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient

pytestmark = pytest.mark.browser


async def test_a_page_sent_to_the_room_node_exchanges_media_and_moves_when_it_stops(
    chromium_cdp: str, redis_url: str, tmp_path: Any
) -> None:
    a, b = await two_nodes(tmp_path, redis_url)
    source = FileSource(make_test_mp4(tmp_path / "m.mp4", seconds=3))
    bot = None
    a_running = True
    try:
        # b drains while the room is placed: the room goes to a, both links name b
        await b.admin("POST", "/api/node/drain", json={"draining": True})
        room = await a.create_room(title="跨节点浏览器", lobby=False)
        bot_invite = await a.create_invite(room["id"], "mediator", "机器人")
        bot = RoomClient(via(b, bot_invite["url"]))
        await bot.join()
        assert bot.base_url == a.url
        await bot.publish(source)
        invite = await a.create_invite(room["id"], "party", "李四")
        async with async_playwright() as p:
            browser = await p.chromium.connect_over_cdp(chromium_cdp)
            page, errors = await open_page(browser, via(b, invite["url"]))
            await expect(page.locator("#preview")).to_have_class(HAS_VIDEO)
            assert page.url.startswith(a.url + "/join"), page.url
            await b.admin("POST", "/api/node/drain", json={"draining": False})
            await page.fill("#name-input", "李四（手机）")
            await page.click("#join-button")
            await expect(page.locator("body")).to_have_attribute("data-screen", "room")
            li = Participant(page, invite, errors)
            robot = Participant(page, bot_invite, [])
            await growing(li, robot, "camera", "framesDecoded")
            await hears(li, robot)

            async def bot_receives() -> bool:
                camera = bot.subscriptions_of(li.id).get("camera")
                return bool(camera and camera.keyframes >= 1 and camera.packets >= 10)

            await until(bot_receives, "the bot receiving the page's camera")
            assert room["id"] not in b.state.media.rooms

            # a stops: the page and the bot find the room again on b
            await a.close()
            await a.server.close()
            a_running = False
            await page.wait_for_url(b.url + "/join**", timeout=30_000)
            await expect(page.locator("body")).to_have_attribute("data-screen", "room")
            await until(lambda: asyncio.sleep(0, bot.base_url == b.url), "the bot on b", 30)
            await growing(li, robot, "camera", "framesDecoded")
            await until(bot_receives, "the bot receiving the page's camera on b")
            state = await b.room(room["id"])
            names = {p["name"] for p in state["participants"] if p["presence"] == "online"}
            assert "李四（手机）" in names, state["participants"]
            assert errors == []
            await source.stop()
            await bot.leave()
            for context in browser.contexts:
                await context.close()
            await browser.close()
        await b.connections_closed()  # before the nodes shut down
    finally:
        await source.stop()
        if bot is not None:
            await bot.close()
        await close(*([a, b] if a_running else [b]))
