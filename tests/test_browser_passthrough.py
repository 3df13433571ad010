"""A Python client's H264 reaches a real browser, and the server never decodes it."""

from __future__ import annotations

import asyncio
import time

import aiortc.rtcrtpreceiver
import pytest
from playwright.async_api import expect

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.testmedia import make_test_mp4
from tests.test_browser_join import open_page
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def test_python_publisher_h264_decoded_by_browser_without_server_decoding(
    live_server,
    browser,
    tmp_path,
    monkeypatch,
):
    decoders: list[str] = []
    original = aiortc.rtcrtpreceiver.get_decoder

    def counting_get_decoder(codec):
        decoders.append(codec.mimeType)
        return original(codec)

    # aiortc's decoder thread looks get_decoder up in this module: any decode shows here.
    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", counting_get_decoder)

    room = await live_server.create_room(lobby=False)
    publisher_invite = await live_server.create_invite(room["id"], "party", "Python")
    viewer_invite = await live_server.create_invite(room["id"], "observer", "Browser")
    publisher = RoomClient(publisher_invite["url"])
    source = FileSource(make_test_mp4(tmp_path / "p.mp4", seconds=3))
    page, errors = await open_page(browser)
    try:
        await publisher.join()
        await publisher.publish(source)
        await page.goto(viewer_invite["url"])
        await page.click("#join-button")
        await expect(page.locator("body")).to_have_attribute("data-screen", "room")
        pid = publisher_invite["invite_id"]
        deadline = time.monotonic() + 20
        video = None
        while time.monotonic() < deadline:
            stats = await page.evaluate("window.tiaojie ? window.tiaojie.inbound() : []")
            video = next(
                (
                    s
                    for s in stats
                    if s["kind"] == "video"
                    and s["participantId"] == pid
                    and s["framesDecoded"] > 20
                ),
                None,
            )
            audio = next(
                (
                    s
                    for s in stats
                    if s["kind"] == "audio"
                    and s["participantId"] == pid
                    and s["packetsReceived"] > 20
                ),
                None,
            )
            if video and audio:
                break
            await asyncio.sleep(0.5)
        assert video is not None, stats
        assert (video["frameWidth"], video["frameHeight"]) == (640, 480)
        assert video["codec"].lower() == "video/h264"
        assert audio is not None and audio["codec"].lower() == "audio/opus"
        assert decoders == []  # the server forwarded without decoding anything
        assert errors == []
    finally:
        await source.stop()
        await publisher.close()
        await page.context.close()
