"""Recording from the browser, in real headless Chromium, with the real recorder process.

The mediator starts recording from the console; every page shows the indicator; a party
is asked for consent and accepts, an observer who enters the recorded room is asked and
refuses; the mediator's consent list shows both, and the chain holds both answers. The
mediator stops recording; the indicator goes; the recordings page opened from the
console lists the recording and plays a segment in a <video>; a party's token is refused.

One Chromium process serves the module (as in test_browser_media.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import EXPECT_TIMEOUT_MS
from tests.test_agreements import (  # the signing keys in place before each server
    keys,  # noqa: F401
    shared_keys,  # noqa: F401
)
from tiaojie.archive.chain import read_entries

pytestmark = pytest.mark.browser

#: Generous: this machine may be busy (the recorder process runs beside three pages).
TIMEOUT_MS = 30_000


@pytest.fixture
async def browser(chromium_cdp: str, live_server: Any) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.connect_over_cdp(chromium_cdp)
        expect.set_options(timeout=TIMEOUT_MS)
        try:
            yield browser
        finally:
            expect.set_options(timeout=EXPECT_TIMEOUT_MS)  # the suite's, for other modules
        await live_server.stop_recordings()  # while the pages are still in the room
        for context in browser.contexts:
            await context.close()
        await browser.close()
    await live_server.connections_closed()  # before live_server shuts it down


async def open_page(browser: Browser, url: str, errors: list[str], width: int = 1280) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda e: errors.append(f"{url}: {e}"))
    await page.goto(url)
    return page


async def join(
    browser: Browser, live_server: Any, room: dict[str, Any], role: str, name: str, errors: list
) -> tuple[Page, dict[str, Any]]:
    invite = await live_server.create_invite(room["id"], role, name)
    page = await open_page(browser, invite["url"], errors, width=1280 if role != "party" else 390)
    await page.click("#join-button")
    await expect(page.locator("body")).to_have_attribute("data-screen", "room")
    return page, invite


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.25)


def chain_events(directory: Path) -> list[dict[str, Any]]:
    try:
        entries, _ = read_entries(directory / "chain.jsonl")
    except FileNotFoundError:
        return []
    return [e["event"] for e in entries if e["type"] == "event"]


def fragments(directory: Path, participant_id: str) -> int:
    try:
        entries, _ = read_entries(directory / "chain.jsonl")
    except FileNotFoundError:
        return 0
    return sum(
        1 for e in entries if e["type"] == "fragment" and f"-{participant_id}-" in e["segment"]
    )


def consent_row(page: Page, participant_id: str) -> Any:
    return page.locator(f'#recording-consents li[data-participant-id="{participant_id}"]')


async def test_recording_consent_and_playback_in_the_browser(live_server, browser) -> None:
    errors: list[str] = []
    room = await live_server.create_room(title="录制调解", lobby=False)
    mediator, m_invite = await join(browser, live_server, room, "mediator", "张调解员", errors)
    party, p_invite = await join(browser, live_server, room, "party", "李四", errors)
    indicators = [page.locator("#recording-indicator") for page in (mediator, party)]
    for indicator in indicators:
        await expect(indicator).to_be_hidden()

    # The mediator starts recording from the console.
    button = mediator.locator("#recording-button")
    await expect(button).to_have_text("开始录制")
    await button.click()
    for indicator in indicators:
        await expect(indicator).to_be_visible()
        await expect(indicator).to_have_text("录制中")
    await expect(button).to_have_attribute("data-recording", "on")
    await expect(button).to_have_text("停止录制")
    recording_id = live_server.state.recordings.processes[room["id"]].recording_id
    directory = live_server.state.settings.data_dir / "recordings" / recording_id

    # The recorder is listed with its icon on every page, and has no video tile.
    for page in (mediator, party):
        recorder = page.locator('#participant-list li[data-role="recorder"]')
        await expect(recorder.locator(".indicator.recorder")).to_be_visible()
        await expect(page.locator('#video-grid .tile[data-role="recorder"]')).to_have_count(0)

    # The party is asked; the mediator, who started it, is not (and has consented).
    dialog = party.locator("#recording-consent-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("证据")
    await expect(mediator.locator("#recording-consent-dialog")).to_be_hidden()
    await expect(consent_row(mediator, m_invite["invite_id"])).to_have_attribute(
        "data-consent", "accepted"
    )
    await expect(consent_row(mediator, p_invite["invite_id"])).to_have_attribute(
        "data-consent", "pending"
    )

    # The party accepts: the mediator's list shows it.
    await party.click("#recording-consent-accept")
    await expect(dialog).to_be_hidden()
    await expect(consent_row(mediator, p_invite["invite_id"])).to_have_attribute(
        "data-consent", "accepted"
    )

    # An observer who enters the recorded room is asked at once, and refuses.
    observer, o_invite = await join(browser, live_server, room, "observer", "王旁听", errors)
    await expect(observer.locator("#recording-indicator")).to_be_visible()
    await observer.click("#recording-consent-refuse")
    await expect(observer.locator("#recording-consent-dialog")).to_be_hidden()
    await expect(observer.locator("#recording-refused")).to_be_visible()
    await expect(consent_row(mediator, o_invite["invite_id"])).to_have_attribute(
        "data-consent", "refused"
    )
    await expect(mediator.locator("#recording-consent-summary")).to_have_text(
        "同意 2 人 · 不同意 1 人 · 未回答 0 人"
    )

    # Both answers are in the chain.
    def answered() -> bool:
        kinds = {(e["kind"], e.get("participant_id")) for e in chain_events(directory)}
        return {
            ("consent", p_invite["invite_id"]),
            ("consent", m_invite["invite_id"]),
            ("refusal", o_invite["invite_id"]),
        } <= kinds

    async def answered_async() -> bool:
        return answered()

    await eventually(answered_async, "the consents in the chain")
    party_consent = next(
        e
        for e in chain_events(directory)
        if e["kind"] == "consent" and e.get("participant_id") == p_invite["invite_id"]
    )
    assert party_consent["name"] == "李四" and party_consent["role"] == "party"

    # A few seconds of the party's camera, then the mediator stops.
    async def party_recorded() -> bool:
        return fragments(directory, p_invite["invite_id"]) >= 3

    await eventually(party_recorded, "3 fragments of the party's camera", timeout=30)
    await button.click()
    await expect(button).to_have_attribute("data-recording", "off", timeout=60_000)
    for indicator in [*indicators, observer.locator("#recording-indicator")]:
        await expect(indicator).to_be_hidden()
    await expect(observer.locator("#recording-refused")).to_be_hidden()
    await expect(mediator.locator("#recording-consents")).to_be_hidden()
    await expect(party.locator('#participant-list li[data-role="recorder"]')).to_have_count(0)

    # The recordings page, opened from the console with the mediator's token.
    href = await mediator.locator("#recordings-link").get_attribute("href")
    assert href and href.startswith("/recordings#token=") and "?" not in href
    archive = await open_page(browser, live_server.url + href, errors)
    await expect(archive.locator("body")).to_have_attribute("data-state", "ready")
    card = archive.locator(f'details.recording[data-recording-id="{recording_id}"]')
    await expect(card).to_have_attribute("data-status", "sealed")
    await expect(card.locator(".rec-status")).to_have_text("已封存")
    person = card.locator(f'.rec-person[data-participant-id="{p_invite["invite_id"]}"]')
    await expect(person).to_have_attribute("data-consent", "accepted")
    segment = card.locator(f'li.segment[data-segment*="-{p_invite["invite_id"]}-camera"]')
    await expect(segment).to_have_count(1)
    download = segment.locator("a[data-action='download']")
    await expect(download).to_have_attribute("href", re.compile(r"ticket=.+&download=1|download=1"))
    chain_link = card.locator("a[data-file='chain.jsonl']")
    await expect(chain_link).to_have_attribute("href", re.compile(r"ticket="))
    fetched = await chain_link.evaluate(
        "a => fetch(a.href).then(r => [r.status, r.headers.get('content-disposition')])"
    )
    assert fetched[0] == 200 and fetched[1].startswith("attachment"), fetched

    await segment.locator("[data-action='play']").click()
    video = archive.locator("#player-video")
    await expect(archive.locator("#player")).to_be_visible()
    await eventually(
        lambda: video.evaluate("v => v.readyState >= 2 && v.videoWidth === 640 && !v.error"),
        "the segment playing at 640 px wide",
    )
    start = await video.evaluate("v => v.currentTime")
    await eventually(
        lambda: video.evaluate(f"v => v.currentTime > {start} + 0.3"), "playback advancing"
    )

    # A party's token may not read recordings: a clear refusal.
    refused = await open_page(
        browser, f"{live_server.url}/recordings#token={p_invite['token']}", errors
    )
    await expect(refused.locator("body")).to_have_attribute("data-state", "error")
    error = refused.locator("#recordings-error")
    await expect(error).to_have_attribute("data-reason", "forbidden")
    await expect(error).to_contain_text("无权查看录像")
    await expect(refused.locator("details.recording")).to_have_count(0)
    await refused.click("#lang-toggle")
    await expect(error).to_contain_text("may not read recordings")

    # A forged archivist token is refused as invalid; a genuine one lists everything.
    await refused.fill("#token-input", "tja1.forged.token")
    await refused.click("#token-submit")
    await expect(error).to_have_attribute("data-reason", "token_invalid")
    await refused.fill("#token-input", live_server.archivist_token())
    await refused.click("#token-submit")
    await expect(refused.locator("body")).to_have_attribute("data-state", "ready")
    await expect(error).to_be_hidden()
    await expect(
        refused.locator(f'details.recording[data-recording-id="{recording_id}"]')
    ).to_be_visible()

    assert errors == []


async def test_the_archive_page_lists_and_downloads_agreements(live_server, browser) -> None:
    """The agreements of the mediator's room below the recordings, with a Blob download
    (the token only in a header); an archivist sees them too; a party's token, nothing."""
    import hashlib
    import json

    errors: list[str] = []
    room = await live_server.create_room(title="协议存档", lobby=False)
    mediator = await live_server.create_invite(room["id"], "mediator", "张调解员")
    party = await live_server.create_invite(room["id"], "party", "王五")
    pdf = b"%PDF-1.7 a signed agreement"
    code = "A1b2C3d4" * 4
    public = {
        "code": code,
        "status": "signed",
        "case_number": "（2025）京0105民调7号",
        "signers": [
            {"role": "applicant", "name": "王五", "signed_at": 1_763_800_000.0},
            {"role": "mediator", "name": "张调解员", "signed_at": 1_763_800_060.0},
        ],
        "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
        "sealed_at": 1_763_800_065.0,
        "updated_at": 1_763_800_065.0,
    }
    folder = live_server.state.settings.data_dir / "agreements" / code
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"room_id": room["id"], "public": public}))
    (folder / "agreement.pdf").write_bytes(pdf)
    # Files put into the archive by hand reach its index as `tiaojie reindex` puts them.
    from tiaojie.server.archive_index.rebuild import rebuild

    await rebuild(live_server.state.recordings.index, live_server.state.settings.data_dir)

    page = await open_page(
        browser, f"{live_server.url}/recordings#token={mediator['token']}", errors
    )
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#recordings-empty")).to_be_visible()
    await expect(page.locator("#agreements-count")).to_have_text("1")
    card = page.locator(f'article.agreement[data-code="{code}"]')
    await expect(card).to_have_attribute("data-status", "signed")
    await expect(card).to_have_attribute("data-room-id", room["id"])
    await expect(card.locator(".agreement-case")).to_have_text("（2025）京0105民调7号")
    await expect(card.locator(".agreement-status")).to_have_text("已签署")
    await expect(card.locator('li.agreement-signer[data-signed="true"]')).to_have_count(2)
    await expect(card.locator('li.agreement-signer[data-role="applicant"]')).to_contain_text("王五")
    await expect(card).to_contain_text(public["pdf_sha256"])
    await expect(card.locator('[data-action="download-pdf"]')).to_be_visible()
    await page.click("#lang-toggle")
    await expect(card.locator(".agreement-status")).to_have_text("Signed")
    await expect(page.locator("#agreements-section h2")).to_contain_text("Agreements")

    # An archivist's token lists it too, and downloads the PDF: fetched with the token in
    # a header and saved from a blob: URL (caught here: a browser attached over CDP does
    # not report downloads).
    archivist = live_server.archivist_token()
    await page.fill("#token-input", archivist)
    await page.click("#token-submit")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await page.evaluate(
        """() => {
        window.savedBlobs = [];
        const click = HTMLAnchorElement.prototype.click;
        HTMLAnchorElement.prototype.click = function () {
          if (!this.href.startsWith("blob:")) return click.call(this);
          window.savedBlobs.push(
            fetch(this.href)
              .then((r) => r.arrayBuffer())
              .then((b) => ({ name: this.download, bytes: [...new Uint8Array(b)] })),
          );
        };
      }"""
    )
    await card.locator('[data-action="download-pdf"]').click()
    await page.wait_for_function("() => window.savedBlobs.length > 0")
    saved = await page.evaluate("() => window.savedBlobs[0]")
    assert saved["name"].endswith(".pdf") and bytes(saved["bytes"]) == pdf
    await expect(page.locator("#agreements-error")).to_be_hidden()
    assert not [url for url in requests if mediator["token"] in url or archivist in url]

    # A party's token is refused and shows nothing.
    await page.fill("#token-input", party["token"])
    await page.click("#token-submit")
    await expect(page.locator("body")).to_have_attribute("data-state", "error")
    await expect(page.locator("#recordings-error")).to_have_attribute("data-reason", "forbidden")
    await expect(page.locator("#agreements-section")).to_be_hidden()
    await expect(page.locator("article.agreement")).to_have_count(0)
    assert errors == []


async def test_the_archive_page_names_links_searches_and_zips(live_server, browser) -> None:
    """Room titles, 申请人/被申请人, each recording's agreement linked both ways, one ZIP per
    recording, search, and times in the server's zone (北京时间) whatever the browser's."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from tests.test_agreements import Room, start_recording, stop_recording, wait_status

    srv = live_server
    r = await Room(srv).setup()
    rid = await start_recording(srv, r.room["id"])
    ready = await r.ready()
    for client, name in ((r.a, "王五"), (r.b, "李四"), (r.mediator, "张调解员")):
        assert (await Room.sign(client, ready["fingerprint"], name))["ok"]
    await wait_status(r.a, "signed")
    await stop_recording(srv, r.room["id"])
    other = await srv.create_room(title="物业费争议", lobby=False)
    other_rid = await start_recording(srv, other["id"])
    await stop_recording(srv, other["id"])
    _, listing = await srv.admin("GET", "/api/recordings")
    started_at = next(x["started_at"] for x in listing["recordings"] if x["recording_id"] == rid)
    beijing = dt.datetime.fromtimestamp(started_at, dt.UTC).astimezone(ZoneInfo("Asia/Shanghai"))

    errors: list[str] = []
    context = await browser.new_context(timezone_id="UTC", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{srv.url}/recordings")
    await page.fill("#token-input", srv.archivist_token())
    await page.click("#token-submit")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("details.recording")).to_have_count(2)
    await expect(page.locator("#timezone-note")).to_have_text("时间均为北京时间。")
    card = page.locator(f"#recording-{rid}")
    await expect(card.locator(".rec-room")).to_have_text("王五与李四漏水纠纷")
    await expect(card.locator(".rec-when")).to_have_text(f"{beijing:%Y/%m/%d %H:%M:%S}")
    await expect(page.locator(f"#recording-{other_rid} .rec-room")).to_have_text("物业费争议")
    if not await card.evaluate("d => d.open"):
        await card.locator("summary").click()
    person = card.locator(f'.rec-person[data-participant-id="{r.a_invite["invite_id"]}"]')
    await expect(person.locator(".badge")).to_have_text("申请人")
    respondent = card.locator(f'.rec-person[data-participant-id="{r.b_invite["invite_id"]}"]')
    await expect(respondent.locator(".badge")).to_have_text("被申请人")
    # the agreement reached in it, linked both ways
    bound = card.locator(f'li.rec-agreement[data-code="{ready["code"]}"]')
    await expect(bound).to_have_attribute("data-status", "signed")
    await bound.locator("a").click()
    agreement = page.locator(f"#agreement-{ready['code']}")
    await expect(agreement).to_be_in_viewport()
    back = agreement.locator('a[data-action="show-recording"]')
    await expect(back).to_have_attribute("href", f"#recording-{rid}")
    # the whole recording as one ZIP, with a ticket (a link sends no token)
    zipped = card.locator('a[data-action="download-zip"]')
    await expect(zipped).to_have_attribute("href", re.compile(r"/archive\.zip\?ticket="))
    fetched = await zipped.evaluate(
        "a => fetch(a.href).then(r => [r.status, r.headers.get('content-type')])"
    )
    assert fetched == [200, "application/zip"], fetched
    # search: by a party's name, and for nothing
    await page.fill("#search-input", "李四")
    await page.click("#search-submit")
    await expect(page.locator("details.recording")).to_have_count(1)
    await expect(page.locator(f"#recording-{rid}")).to_be_visible()
    await expect(page.locator("article.agreement")).to_have_count(1)
    await page.fill("#search-input", "没有这个人")
    await page.click("#search-submit")
    await expect(page.locator("details.recording")).to_have_count(0)
    await expect(page.locator("#recordings-empty")).to_have_text("没有符合搜索条件的录像。")
    await page.click("#lang-toggle")
    await expect(page.locator("#timezone-note")).to_have_text("Times are in Asia/Shanghai.")
    await context.close()
    assert errors == []
