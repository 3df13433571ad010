"""The device check of the join page, in real headless Chromium with the fake camera and
microphone: camera, microphone, speaker and the network check through the real media
plane (`/api/probe`) pass, the last through a real coturn from a page that may use
relayed candidates only (as behind a firewall that lets only the TURN server through),
and "进入调解室" joins; in a second context whose camera and
microphone the browser refuses, the camera and microphone steps fail with their advice,
in Chinese and, after the language switch, in English, and the network check of a link
withdrawn meanwhile is refused by the server and says so.

This module's Chromium runs without `--use-fake-ui-for-media-stream` (which grants every
request, even against a refused permission): each context is granted or refused the
camera and microphone as a person would in the browser's prompt.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.conftest import LiveServer, start_server
from tests.support.chromium import CHROMIUM_ARGS, chromium_over_cdp
from tests.support.coturn import Coturn, start_coturn
from tests.test_turn import RELAY_ONLY
from tiaojie.server.media.probe_http import PROBES

pytestmark = pytest.mark.browser

TIMEOUT_MS = 20_000
TURN_SECRET = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def chromium_cdp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's Chromium: fake devices, but permissions as each context has them."""
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]
    yield from chromium_over_cdp(tmp_path_factory.mktemp("chromium-profile"), args)


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    server = start_coturn(tmp_path_factory.mktemp("coturn"), TURN_SECRET)
    yield server
    server.stop()


@pytest.fixture
async def live_server(tmp_path: Path, coturn: Coturn) -> AsyncIterator[LiveServer]:
    """A server that hands out TURN logins for the coturn (as tests/test_turn.py)."""
    srv = await start_server(
        tmp_path / "data", announce_ip="127.0.0.1", turn_secret=TURN_SECRET, turn_urls=coturn.urls
    )
    yield srv
    await srv.close()
    await srv.server.close()


@pytest.fixture
async def browser(chromium_cdp: str, live_server: Any) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.connect_over_cdp(chromium_cdp)
        yield browser
        await live_server.stop_recordings()  # while the pages are still in the room
        for context in browser.contexts:
            await context.close()
        await browser.close()
    await live_server.connections_closed()


async def test_the_device_check_passes_then_joins_and_explains_a_refused_camera(
    browser: Browser, live_server: Any
) -> None:
    room = await live_server.create_room()
    invite = await live_server.create_invite(room["id"], "party", "王大爷", side="applicant")

    # a phone-sized page: the join screen offers the check
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, permissions=["camera", "microphone"]
    )
    await context.add_init_script(RELAY_ONLY)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(invite["url"])
    await page.get_by_role("button", name="检测设备").click()
    await expect(page.locator("body")).to_have_attribute("data-screen", "check")
    await page.get_by_role("button", name="开始检测").click()

    camera = page.locator("#check-camera")
    await expect(camera).to_have_attribute("data-state", "active")
    # the question comes once frames arrive
    await page.get_by_role("button", name="我能看到自己").click()
    await expect(camera).to_have_attribute("data-state", "pass")
    await expect(camera.locator(".check-status")).to_have_text("✓ 正常")

    # the fake microphone beeps: heard above the threshold
    await expect(page.locator("#check-microphone")).to_have_attribute("data-state", "pass")

    speaker = page.locator("#check-speaker")
    await expect(speaker).to_have_attribute("data-state", "active")
    await page.get_by_role("button", name="播放声音").click()
    await page.get_by_role("button", name="听到了").click()
    await expect(speaker).to_have_attribute("data-state", "pass")

    network = page.locator("#check-network")
    await expect(network).to_have_attribute("data-state", "pass")
    await expect(network).to_have_attribute("data-rtt", re.compile(r"^\d+$"))
    await expect(network).to_have_attribute("data-path", "relay")
    await expect(network.locator(".check-detail")).to_contain_text("网络连接正常（经中转服务器连接")
    await expect(page.locator("#check-summary")).to_have_attribute("data-failed", "0")
    await expect(page.locator("#check-summary-text")).to_have_text("全部正常，您可以进入调解室了。")
    # the page closed its probe; the server's side goes with it
    probes = live_server.app[PROBES]
    for _ in range(200):
        if probes.open_count == 0:
            break
        await asyncio.sleep(0.05)
    assert probes.open_count == 0

    await page.get_by_role("button", name="进入调解室").click()
    await expect(page.locator("body")).to_have_attribute("data-screen", "lobby")
    assert not errors, errors

    # the browser refuses camera and microphone; `?check=1` opens the check at once
    refused = await browser.new_context(viewport={"width": 390, "height": 844})  # no grant
    other = await refused.new_page()
    other.set_default_timeout(TIMEOUT_MS)
    cdp = await refused.new_cdp_session(other)
    for name in ("camera", "microphone"):
        await cdp.send(
            "Browser.setPermission",
            {"permission": {"name": name}, "setting": "denied", "origin": live_server.url},
        )
    second = await live_server.create_invite(room["id"], "party", "李阿姨", side="respondent")
    await other.goto(second["url"].replace("/join#", "/join?check=1#"))
    await expect(other.locator("body")).to_have_attribute("data-screen", "check")
    await other.get_by_role("button", name="开始检测").click()
    failed = other.locator("#check-camera")
    await expect(failed).to_have_attribute("data-state", "fail")
    await expect(failed.locator(".check-status")).to_have_text("✗ 有问题")
    advice = failed.locator(".check-advice")
    await expect(advice).to_contain_text("浏览器没有允许使用摄像头")
    await other.click("#lang-toggle")
    await expect(advice).to_contain_text("The browser was not allowed to use the camera")
    await expect(advice.get_by_role("button", name="Try again")).to_be_visible()
    # going on, the microphone step fails the same way, in words
    await advice.get_by_role("button", name="Next").click()
    microphone = other.locator("#check-microphone")
    await expect(microphone).to_have_attribute("data-state", "fail")
    await expect(microphone.locator(".check-advice")).to_contain_text(
        "not allowed to use the microphone"
    )
    # the link is withdrawn meanwhile: the server refuses the network check, in words
    await microphone.get_by_role("button", name="Next").click()
    await other.get_by_role("button", name="Play a sound").click()
    status, _ = await live_server.admin(
        "DELETE", f"/api/rooms/{room['id']}/invites/{second['invite_id']}"
    )
    assert status == 200
    await other.get_by_role("button", name="I heard it").click()
    network = other.locator("#check-network")
    await expect(network).to_have_attribute("data-state", "fail")
    await expect(network).to_have_attribute("data-error", "link")
    await expect(network.locator(".check-advice")).to_contain_text(
        "Ask your mediator for a new link"
    )
    await network.get_by_role("button", name="See the result").click()
    await expect(other.locator("#check-summary")).to_have_attribute("data-failed", "3")
    assert live_server.app[PROBES].open_count == 0
