"""The pages under their Content-Security-Policy, in real headless Chromium.

Every page is used the way people use it (the landing page; a mediator's invite link
through the room, a recording started and stopped, a reload; the recordings page playing
the segment; the agreement status page), and Chromium reports no CSP violation, as a
console message or a `securitypolicyviolation` event. The invite token leaves the
address bar once read, and a reload still works (the tab keeps it in sessionStorage).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, expect

from tests.test_browser_recording import TIMEOUT_MS, browser  # noqa: F401 - the fixture
from tiaojie.archive.chain import read_entries

pytestmark = pytest.mark.browser

#: Collects the page's violation events before any of its own scripts runs.
REPORT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


class Pages:
    """Opens pages that report script errors and CSP violations into one list."""

    def __init__(self, browser: Browser) -> None:  # noqa: F811 - not the fixture
        self.browser = browser
        self.problems: list[str] = []
        self.pages: list[Page] = []

    async def open(self, url: str) -> Page:
        context = await self.browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        await page.add_init_script(REPORT_VIOLATIONS)
        page.on("pageerror", lambda e: self.problems.append(f"{url}: {e}"))
        page.on("console", lambda m: self._console(url, m))
        self.pages.append(page)
        await page.goto(url)
        return page

    def _console(self, url: str, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.problems.append(f"{url}: console: {message.text}")

    async def violations(self) -> list[str]:
        found = list(self.problems)
        for page in self.pages:
            if not page.is_closed():
                found += [f"{page.url}: {v}" for v in await page.evaluate("window.__csp || []")]
        return found


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.25)
    return result


async def test_the_pages_work_under_their_policy(live_server, browser) -> None:  # noqa: F811
    pages = Pages(browser)
    landing = await pages.open(live_server.url + "/")
    await expect(landing.locator("body")).to_have_attribute("data-screen", "landing")

    room = await live_server.create_room(title="内容安全策略", lobby=False)
    invite = await live_server.create_invite(room["id"], "mediator", "张调解员")
    mediator = await pages.open(invite["url"])
    await expect(mediator.locator("body")).to_have_attribute("data-screen", "join")
    # The token has left the address bar; a reload still finds it (this tab's storage).
    assert mediator.url == f"{live_server.url}/join", mediator.url
    await mediator.reload()
    await expect(mediator.locator("body")).to_have_attribute("data-screen", "join")
    await expect(mediator.locator("#name-input")).to_have_value("张调解员")
    await mediator.click("#join-button")
    await expect(mediator.locator("body")).to_have_attribute("data-screen", "room")
    assert "token" not in mediator.url

    # Record a few seconds of the mediator's camera, from the console.
    button = mediator.locator("#recording-button")
    await button.click()
    await expect(button).to_have_attribute("data-recording", "on")
    recording_id = live_server.state.recordings.processes[room["id"]].recording_id
    chain = live_server.state.settings.data_dir / "recordings" / recording_id / "chain.jsonl"

    async def fragments() -> bool:
        try:
            entries, _ = read_entries(chain)
        except FileNotFoundError:
            return False
        return sum(e["type"] == "fragment" for e in entries) >= 2

    await eventually(fragments, "2 fragments of the mediator's camera")
    await button.click()
    await expect(button).to_have_attribute("data-recording", "off", timeout=60_000)

    # The recordings page from the console: the token goes from its address bar too, and
    # the segment plays (media from this origin, with a ticket).
    href = await mediator.locator("#recordings-link").get_attribute("href")
    assert href is not None
    archive = await pages.open(live_server.url + href)
    await expect(archive.locator("body")).to_have_attribute("data-state", "ready")
    assert archive.url == f"{live_server.url}/recordings", archive.url
    await archive.reload()
    await expect(archive.locator("body")).to_have_attribute("data-state", "ready")
    card = archive.locator(f'details.recording[data-recording-id="{recording_id}"]')
    await card.locator("li.segment [data-action='play']").first.click()
    video = archive.locator("#player-video")
    await eventually(
        lambda: video.evaluate("v => v.readyState >= 2 && !v.error"), "the segment playing"
    )

    # The agreement status page (no script) and a 404.
    status = await pages.open(f"{live_server.url}/a/{'A' * 32}")
    await expect(status.locator("#status-not-found")).to_be_visible()
    await pages.open(f"{live_server.url}/no/such/page")

    assert await pages.violations() == []
