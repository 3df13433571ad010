"""A party's network goes away for 5 s in real headless Chromium, and comes back.

The party's page loses its network (DevTools `Network.emulateNetworkConditions` offline,
so its reconnection attempts fail) and the server loses its connection (closed from the
server side, as a dead phone connection ends: socket.io's transport closes). The mediator's
page shows "重新连接中…" on the party's tile, never a departure; when the network returns,
the party's page reconnects by itself with the same link, is back in the room (not the
lobby), its consent stands, and the mediator decodes its camera again (getStats
framesDecoded increasing) within a bound. The recording verifies, and its chain says when
the party's media stopped (`reconnecting`) and resumed (`joined`, a new segment).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, CDPSession, async_playwright, expect

from tests.test_browser_media import eventually, growing, join
from tests.test_browser_recording import chain_events, consent_row, fragments
from tests.test_reconnect import drop
from tests.test_recording import verify

pytestmark = pytest.mark.browser

#: From the network's return to the mediator decoding the party's camera again. The goal
#: is about 3 s; the bound leaves room for a loaded 2-core machine.
BACK_WITHIN_S = 15.0


@pytest.fixture
async def browser(chromium_cdp: str, live_server: Any) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.connect_over_cdp(chromium_cdp)
        yield browser
        for context in browser.contexts:
            await context.close()
        await browser.close()
    await live_server.connections_closed()


async def network(cdp: CDPSession, online: bool) -> None:
    """The page's network on or off (for the CDP session that turned it off: emulation
    belongs to a session)."""
    await cdp.send("Network.enable")
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": not online, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


async def test_a_party_whose_network_drops_comes_back_to_its_seat(live_server, browser) -> None:
    srv = live_server
    room = await srv.create_room(title="断网重连", lobby=True)
    mediator = await join(browser, srv, room, "mediator", "张调解员", "room")
    party = await join(browser, srv, room, "party", "李四", "lobby")
    lobby_row = mediator.page.locator(f'#lobby-list li[data-participant-id="{party.id}"]')
    await lobby_row.locator('[data-action="admit"]').click()
    await expect(party.page.locator("body")).to_have_attribute("data-screen", "room")
    await growing(mediator, party, "camera", "framesDecoded")

    # Recording, and the party consents.
    await mediator.page.locator("#recording-button").click()
    await party.page.locator("#recording-consent-accept").click()
    await expect(consent_row(mediator.page, party.id)).to_have_attribute("data-consent", "accepted")
    recording_id = srv.state.recordings.processes[room["id"]].recording_id
    directory = srv.state.settings.data_dir / "recordings" / recording_id

    async def recorded(count: int) -> bool:
        return fragments(directory, party.id) >= count

    await eventually(lambda: recorded(2), "the party's media in the recording", timeout=30)

    # The network goes away.
    cdp = await party.page.context.new_cdp_session(party.page)
    await network(cdp, online=False)
    await drop(srv, room["id"], party.id)
    tile = mediator.tile(party)
    await expect(tile.locator(".tile-away")).to_have_text("重新连接中…")
    await expect(party.page.locator("#conn-banner")).to_be_visible()
    await expect(party.page.locator("#conn-banner")).to_contain_text("网络中断，正在重新连接…")
    before = fragments(directory, party.id)
    outage = time.monotonic() + 5  # the outage itself: 5 s without a network
    while time.monotonic() < outage:
        await expect(tile).to_be_visible()  # still in the room for the others all along
        await mediator.page.wait_for_timeout(250)

    # ... and comes back: the party's page reconnects by itself.
    await network(cdp, online=True)
    back = time.monotonic()
    await expect(tile.locator(".tile-away")).to_be_hidden(timeout=int(BACK_WITHIN_S * 1000))
    decoded = await mediator.stat(party, "camera")
    base = decoded["framesDecoded"] if decoded else 0

    async def decoding_again() -> bool:
        s = await mediator.stat(party, "camera")
        return bool(s and s["framesDecoded"] > base + 10)

    await eventually(decoding_again, "the party's camera decoded again", timeout=BACK_WITHIN_S)
    assert time.monotonic() - back < BACK_WITHIN_S
    await expect(party.page.locator("body")).to_have_attribute("data-screen", "room")
    await expect(party.page.locator("#conn-banner")).to_be_hidden()
    # same seat: same id, not in the lobby, consent stands (no second question)
    await expect(consent_row(mediator.page, party.id)).to_have_attribute("data-consent", "accepted")
    await expect(party.page.locator("#recording-consent-dialog")).to_be_hidden()
    assert await party.page.evaluate("window.tiaojie.reconnects") >= 1
    stored = await srv.state.store.require(room["id"])
    assert stored.participants[party.id].away_since is None
    assert stored.recording and stored.recording["consents"][party.id]["accepted"] is True

    # The recording goes on with the party's media, and says when it stopped and resumed.
    await eventually(lambda: recorded(before + 2), "the party recorded again", timeout=30)
    await mediator.page.locator("#recording-button").click()
    await expect(mediator.page.locator("#recording-button")).to_have_attribute(
        "data-recording", "off", timeout=60_000
    )
    events = [
        (e["kind"], e.get("participant_id"))
        for e in chain_events(directory)
        if e["kind"] in ("joined", "reconnecting", "left")
    ]
    assert ("reconnecting", party.id) in events
    away = events.index(("reconnecting", party.id))
    assert ("joined", party.id) in events[away:]
    assert ("left", party.id) not in events
    # a new segment for the new connection, which the summary links to the one before
    summary = json.loads((directory / "recording.json").read_text())
    cameras = [
        s
        for s in summary["segments"]
        if s["participant_id"] == party.id and s["source"] == "camera" and s["fragments"]
    ]
    assert len(cameras) >= 2, cameras
    assert cameras[-1]["follows"] == cameras[-2]["name"]
    result = verify(directory, srv.state.settings.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert party.errors == [] and mediator.errors == []
