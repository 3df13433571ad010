"""The video room in real headless Chromium, through the real SFU.

Every page is a participant who opened their invite link and joined; each publishes the
fake camera (640x480 at 20 fps) and fake microphone. What a page receives is read from
`getStats()` on its subscriber connection (`window.tiaojie.inbound()`: pcSub's
inbound-rtp stats per mid, joined with whose publication each mid carries, from the
`subscriber_offer` tracks list).

One Chromium process serves the whole module (started once, with the fake-media flags);
each test connects to it over CDP from its own event loop and uses its own contexts.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.testmedia import make_test_mp4
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000
MEDIA_TIMEOUT_S = 20.0


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
async def browser(chromium_cdp: str, live_server: Any) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.connect_over_cdp(chromium_cdp)
        yield browser
        await live_server.stop_recordings()  # while the pages are still in the room
        for context in browser.contexts:
            await context.close()
        await browser.close()
    await live_server.connections_closed()  # before live_server shuts it down


# ----------------------------------------------------------------------------- helpers


class Participant:
    """A browser page that joined a room with an invite link."""

    def __init__(self, page: Page, invite: dict[str, Any], errors: list[str]) -> None:
        self.page = page
        self.invite = invite
        self.id: str = invite["invite_id"]
        self.name: str = invite["name"]
        self.errors = errors

    async def inbound(self) -> list[dict[str, Any]]:
        """pcSub's inbound-rtp stats per mid, with participantId and source."""
        return await self.page.evaluate("window.tiaojie.inbound()")

    async def stat(self, of: Participant, source: str) -> dict[str, Any] | None:
        for s in await self.inbound():
            if s["participantId"] == of.id and s["source"] == source:
                return s
        return None

    def tile(self, of: Participant, source: str = "camera") -> Any:
        return self.page.locator(
            f'#video-grid .tile[data-participant-id="{of.id}"][data-source="{source}"]'
        )


async def open_page(
    browser: Browser, url: str, width: int = 1280, init_script: str | None = None
) -> tuple[Page, list[str]]:
    context = await browser.new_context(viewport={"width": width, "height": 800})
    if init_script is not None:
        await context.add_init_script(init_script)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url)
    return page, errors


async def join(
    browser: Browser,
    live_server: Any,
    room: dict[str, Any],
    role: str,
    name: str,
    screen: str,
    init_script: str | None = None,
) -> Participant:
    """Create an invite, open its link, press join and wait for `screen` (room / lobby)."""
    invite = await live_server.create_invite(room["id"], role, name)
    page, errors = await open_page(browser, invite["url"], init_script=init_script)
    await expect(page.locator("#preview")).to_have_class(HAS_VIDEO)
    await page.click("#join-button")
    await expect(page.locator("body")).to_have_attribute("data-screen", screen)
    return Participant(page, invite, errors)


HAS_VIDEO = re.compile(r"\bhas-video\b")


async def eventually(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float = MEDIA_TIMEOUT_S
) -> Any:
    """Poll `check` until it returns something truthy (then return it) or time runs out."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.25)


async def growing(
    viewer: Participant, of: Participant, source: str, field: str, what: str = ""
) -> dict[str, Any]:
    """Wait until `field` of `of`'s `source` on `viewer`'s pcSub is > 0 and increases."""
    label = what or f"{viewer.name} receiving {of.name}'s {source} ({field} growing)"
    first = await eventually(lambda: _positive(viewer, of, source, field), label)

    async def more() -> dict[str, Any] | None:
        s = await viewer.stat(of, source)
        return s if s and s[field] > first[field] else None

    return await eventually(more, label)


async def _positive(
    viewer: Participant, of: Participant, source: str, field: str
) -> dict[str, Any] | None:
    s = await viewer.stat(of, source)
    return s if s and s[field] > 0 else None


async def decodes_vga(viewer: Participant, of: Participant) -> None:
    """`viewer` decodes `of`'s camera at 640x480 and the frame count keeps growing."""

    last: list[Any] = [None]

    async def vga() -> dict[str, Any] | None:
        s = last[0] = await viewer.stat(of, "camera")
        if s and s["framesDecoded"] > 0 and (s["frameWidth"], s["frameHeight"]) == (640, 480):
            return s
        return None

    try:
        await eventually(vga, f"{viewer.name} decoding {of.name}'s camera at 640x480")
    except AssertionError as error:
        raise AssertionError(f"{error}; last inbound-rtp: {last[0]}") from None
    await growing(viewer, of, "camera", "framesDecoded")


async def hears(viewer: Participant, of: Participant) -> None:
    """`viewer` receives `of`'s microphone: packets and decoded samples keep coming."""
    await growing(viewer, of, "microphone", "packetsReceived")
    await growing(viewer, of, "microphone", "totalSamplesReceived")


async def audio_packets(viewer: Participant, of: Participant) -> int:
    s = await viewer.stat(of, "microphone")
    assert s is not None, f"{viewer.name} has no audio from {of.name}"
    return int(s["packetsReceived"])


async def confirm(page: Page) -> None:
    """Press OK in the page's confirm dialog."""
    await page.locator("#confirm-dialog [data-confirm-ok]").click()


async def backup_stopped(live_server: Any, room: dict[str, Any], publisher: Participant) -> None:
    """The server dropped `publisher`'s backup encoding and their page renegotiated
    without it (its transceiver is inactive on the server's side of their publisher
    connection)."""
    peer = live_server.state.media.rooms[room["id"]].peers[publisher.id]

    async def stopped() -> bool:
        if any(p.backup_of is not None for p in peer.publications.values()):
            return False
        published = {p.mid for p in peer.publications.values()}
        idle = [
            t
            for t in peer.publisher.getTransceivers()
            if t.kind == "video" and t.mid not in published
        ]
        return bool(idle) and all(t.currentDirection == "inactive" for t in idle)

    await eventually(stopped, f"{publisher.name}'s backup stopped")
    published = await publisher.page.evaluate("window.tiaojie.publishedTracks()")
    assert not any(t.get("backup") for t in published), published


def no_errors(*people: Participant) -> None:
    for p in people:
        assert p.errors == [], f"{p.name}: {p.errors}"


# ----------------------------------------------------------------------------- tests


async def test_three_people_see_and_hear_each_other(live_server, browser) -> None:
    room = await live_server.create_room(title="三方视频调解", lobby=False)
    mediator = await join(browser, live_server, room, "mediator", "张调解员", "room")
    await eventually(
        lambda: mediator.page.evaluate("window.tiaojie.publisherState === 'published'"),
        "the mediator published",
    )
    alice = await join(browser, live_server, room, "party", "李四", "room")
    # Alice's first subscriber answer (the mediator's media) was taken before the room view's
    # modules ran and drew the room (web/js/join.js `drawRoom`; the join time, issue 15).
    steps = await alice.page.evaluate(
        "Object.fromEntries(performance.getEntriesByType('mark')"
        ".filter((m) => m.name.startsWith('tiaojie:')).map((m) => [m.name.slice(8), m.startTime]))"
    )
    assert steps["sub_answered"] <= steps["view_modules"] <= steps["room_drawn"], steps
    bob = await join(browser, live_server, room, "party", "王五", "room")
    everyone = [mediator, alice, bob]

    # Each page publishes camera and microphone, H264 preferred.
    for p in everyone:
        await eventually(
            lambda p=p: p.page.evaluate("window.tiaojie.publisherState === 'published'"),
            f"{p.name} published",
        )
        published = await p.page.evaluate("window.tiaojie.publishedTracks()")
        assert sorted(t["source"] for t in published) == ["camera", "microphone"]

    # Every page decodes the other two's video at 640x480 and receives their audio.
    await asyncio.gather(
        *(
            check(viewer, other)
            for viewer in everyone
            for other in everyone
            if other is not viewer
            for check in (decodes_vga, hears)
        )
    )

    # The tiles show them: a video element playing 640x480 per other participant.
    for other in (alice, bob):
        video = mediator.tile(other).locator("video")
        await expect(video).to_have_count(1)
        await eventually(
            lambda video=video: video.evaluate("v => v.videoWidth === 640 && !v.paused"),
            f"{other.name}'s tile playing",
        )
    await expect(mediator.page.locator("#self-tile video")).to_have_count(1)
    codecs = {s["codec"] for s in await mediator.inbound() if s["kind"] == "video"}
    assert codecs == {"video/H264"}, codecs
    no_errors(*everyone)


async def test_mediator_mutes_a_party_and_their_audio_stops(live_server, browser) -> None:
    room = await live_server.create_room(title="静音测试", lobby=False)
    mediator = await join(browser, live_server, room, "mediator", "张调解员", "room")
    alice = await join(browser, live_server, room, "party", "李四", "room")
    bob = await join(browser, live_server, room, "party", "王五", "room")
    await asyncio.gather(hears(bob, alice), hears(bob, mediator), hears(mediator, alice))

    # The mediator clicks "mute" on Alice in the participant list.
    row = mediator.page.locator(f'#participant-list li[data-participant-id="{alice.id}"]')
    await row.locator('[data-action="mute"]').click()
    await expect(mediator.tile(alice)).to_have_class(re.compile(r"\bmuted\b"))
    # Alice cannot unmute herself: her microphone button is disabled, a banner says why.
    await expect(alice.page.locator("#mic-toggle")).to_be_disabled()
    await expect(alice.page.locator("#room-banner")).to_be_visible()

    # The server stops forwarding Alice's audio: nothing more arrives at Bob or the
    # mediator, while the mediator's audio keeps reaching Bob.
    await asyncio.sleep(1.0)  # packets already in flight
    before = {v.name: await audio_packets(v, alice) for v in (bob, mediator)}
    mediator_before = await audio_packets(bob, mediator)
    await asyncio.sleep(2.5)
    after = {v.name: await audio_packets(v, alice) for v in (bob, mediator)}
    for name in before:
        assert after[name] - before[name] <= 2, (name, before[name], after[name])
    assert await audio_packets(bob, mediator) > mediator_before + 50

    # The mediator asks Alice to speak; she decides to unmute, and Bob hears her again.
    await row.locator('[data-action="ask-unmute"]').click()
    await expect(alice.page.locator("#unmute-now")).to_be_visible()
    await expect(alice.page.locator("#mic-toggle")).to_be_enabled()
    await alice.page.click("#unmute-now")
    await growing(bob, alice, "microphone", "packetsReceived", "Alice's audio back at Bob")
    await expect(alice.page.locator("#room-banner")).to_be_hidden()
    no_errors(mediator, alice, bob)


async def test_mediator_removes_a_party(live_server, browser) -> None:
    room = await live_server.create_room(title="移出测试", lobby=False)
    mediator = await join(browser, live_server, room, "mediator", "张调解员", "room")
    alice = await join(browser, live_server, room, "party", "李四", "room")
    await decodes_vga(mediator, alice)

    row = mediator.page.locator(f'#participant-list li[data-participant-id="{alice.id}"]')
    await row.locator('[data-action="remove"]').click()
    await confirm(mediator.page)

    await expect(alice.page.locator("body")).to_have_attribute("data-screen", "removed")
    await expect(alice.page.locator("#screen-removed")).to_be_visible()
    # Her media is gone from the mediator's page: no tile, no subscribed track.
    await expect(mediator.tile(alice)).to_have_count(0)
    await eventually(
        lambda: mediator.page.evaluate(
            f"!window.tiaojie.remoteTracks().some(t => t.participantId === {alice.id!r})"
        ),
        "Alice's tracks unsubscribed",
    )

    # Her link is dead now.
    again, errors = await open_page(browser, alice.invite["url"])
    await expect(again.locator("body")).to_have_attribute("data-screen", "expired")
    await expect(again.locator("#screen-expired")).to_have_attribute("data-reason", "token_revoked")
    assert errors == []
    no_errors(mediator, alice)


async def test_party_in_lobby_receives_no_media_until_admitted(live_server, browser) -> None:
    room = await live_server.create_room(title="等候室测试", lobby=True)
    mediator = await join(browser, live_server, room, "mediator", "张调解员", "room")
    await eventually(
        lambda: mediator.page.evaluate("window.tiaojie.publisherState === 'published'"),
        "the mediator published",
    )
    alice = await join(browser, live_server, room, "party", "李四", "lobby")

    # Waiting in the lobby: no subscriber offer, no subscriber connection, no media.
    await mediator.page.locator(f'#lobby-list li[data-participant-id="{alice.id}"]').wait_for()
    await asyncio.sleep(2.0)
    assert await alice.page.evaluate("window.tiaojie.subscriberOffers") == 0
    assert await alice.page.evaluate("window.tiaojie.pcSub") is None
    assert await alice.page.evaluate("window.tiaojie.pcPub") is None
    assert await alice.inbound() == []

    # Admitted: she enters the room and media flows both ways.
    lobby_row = mediator.page.locator(f'#lobby-list li[data-participant-id="{alice.id}"]')
    await lobby_row.locator('[data-action="admit"]').click()
    await expect(alice.page.locator("body")).to_have_attribute("data-screen", "room")
    await asyncio.gather(decodes_vga(alice, mediator), decodes_vga(mediator, alice))
    no_errors(mediator, alice)


async def test_screen_share_is_decoded_by_the_others(live_server, browser) -> None:
    room = await live_server.create_room(title="屏幕共享测试", lobby=False)
    mediator = await join(browser, live_server, room, "mediator", "张调解员", "room")
    alice = await join(browser, live_server, room, "party", "李四", "room")
    await decodes_vga(mediator, alice)

    # Alice shares her screen: a third track in her publish, a third video at the mediator.
    await alice.page.click("#screen-toggle")
    await eventually(
        lambda: alice.page.evaluate(
            "window.tiaojie.publishedTracks().some(t => t.source === 'screen')"
        ),
        "Alice publishing her screen",
    )
    await expect(alice.page.locator("#room-sharing-badge")).to_be_visible()
    await growing(mediator, alice, "screen", "framesDecoded")
    videos = [s for s in await mediator.inbound() if s["kind"] == "video"]
    assert sorted(s["source"] for s in videos) == ["camera", "screen"], videos
    await expect(mediator.tile(alice, "screen").locator("video")).to_have_count(1)
    # her role, from her token, is on every tile of hers (issue 10, finding 8)
    screen_badge = mediator.tile(alice, "screen").locator(".badge")
    await expect(screen_badge).to_have_text(re.compile("^(当事人|Party)$"))
    await decodes_vga(mediator, alice)  # the camera keeps going alongside

    # She stops: the screen is unpublished and its tile goes away.
    await alice.page.click("#screen-toggle")
    await expect(mediator.tile(alice, "screen")).to_have_count(0, timeout=TIMEOUT_MS)
    assert not await alice.page.evaluate(
        "window.tiaojie.publishedTracks().some(t => t.source === 'screen')"
    )

    # ... and can share again (the same transceiver comes back).
    await alice.page.click("#screen-toggle")
    await growing(mediator, alice, "screen", "framesDecoded", "the second screen share")
    no_errors(mediator, alice)


async def test_camera_toggle_and_device_switch(live_server, browser) -> None:
    room = await live_server.create_room(title="设备测试", lobby=False)
    mediator = await join(browser, live_server, room, "mediator", "张调解员", "room")
    alice = await join(browser, live_server, room, "party", "李四", "room")
    await asyncio.gather(decodes_vga(mediator, alice), hears(mediator, alice))
    mids = await alice.page.evaluate("window.tiaojie.publishedTracks()")

    # Camera off: the server is told (the others' tiles show her initial), the track is
    # disabled; camera on again: her video comes back.
    await alice.page.click("#camera-toggle")
    await expect(mediator.tile(alice)).to_have_class(re.compile(r"\bvideo-off\b"))
    assert not await alice.page.evaluate(
        "window.tiaojie.pcPub.getSenders().find(s => s.track?.kind === 'video').track.enabled"
    )
    await alice.page.click("#camera-toggle")
    await expect(mediator.tile(alice)).not_to_have_class(re.compile(r"\bvideo-off\b"))
    await growing(mediator, alice, "camera", "framesDecoded", "Alice's camera back on")

    # Another microphone while in the room: the sender's track is replaced, without a
    # new negotiation, and the mediator keeps hearing her.
    await alice.page.click("#devices-button")
    await expect(alice.page.locator("#device-dialog")).to_be_visible()
    await alice.page.select_option("#room-mic-select", label="Fake Audio Input 1")
    await eventually(
        lambda: alice.page.evaluate(
            "window.tiaojie.pcPub.getSenders()"
            ".some(s => s.track?.kind === 'audio' && s.track.label === 'Fake Audio Input 1')"
        ),
        "the new microphone being sent",
    )
    await alice.page.locator("#device-dialog button[value=ok]").click()
    assert await alice.page.evaluate("window.tiaojie.publishedTracks()") == mids
    await hears(mediator, alice)
    no_errors(mediator, alice)


async def test_mediator_creates_an_invite_link(live_server, browser) -> None:
    room = await live_server.create_room(title="邀请测试", lobby=False)
    mediator = await join(browser, live_server, room, "mediator", "张调解员", "room")
    page = mediator.page
    await page.click("#tab-invite")
    await page.select_option("#invite-role", "expert")
    await page.fill("#invite-name", "赵律师")
    await page.click("#invite-create")
    url = page.locator("#invite-url")
    await expect(url).to_have_value(re.compile(r"/join#token=tj1\."))
    await expect(page.locator("#invite-for")).to_contain_text("赵律师")

    # The link works and is for an expert named 赵律师.
    expert, errors = await open_page(browser, await url.input_value())
    await expect(expert.locator("body")).to_have_attribute("data-screen", "join")
    await expect(expert.locator("#role-value")).to_have_text("专家")
    await expect(expert.locator("#name-input")).to_have_value("赵律师")
    assert errors == []
    no_errors(mediator)


#: A browser that cannot decode H264 (a Chromium without proprietary codecs, Firefox
#: without OpenH264): the subscriber offers' H264 is renamed to a codec nobody knows, so
#: Chromium itself rejects those video sections in its answers (port 0).
NO_H264 = """(() => {
  const apply = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (desc, ...rest) {
    if (desc && desc.type === "offer" && typeof desc.sdp === "string") {
      desc = { type: "offer", sdp: desc.sdp.replaceAll(" H264/90000", " X-NO-H264/90000") };
    }
    return apply.call(this, desc, ...rest);
  };
})();"""


async def test_a_browser_without_h264_gets_vp8_backups_or_is_told_why(
    live_server, browser, tmp_path, caplog
) -> None:
    """李四's browser cannot decode H264; 王五's can, and a bot publishes an H264 file.
    李四 hears both; 王五's camera reaches 李四 as a VP8 backup encoding, which 王五's
    page sends when the server asks; the bot, told to send no backups (as a client that
    cannot encode), is heard, and 李四's page says why its picture is missing. When 李四
    leaves, 王五's page stops the backup. Nothing goes wrong in the server's log. (A bot
    that sends its backup: tests/test_bot_backup.py, tests/test_browser_firefox.py.)"""
    room = await live_server.create_room(title="编解码测试", lobby=False)
    invite = await live_server.create_invite(room["id"], "mediator", "机器人")
    bot = RoomClient(invite["url"], backups=False)
    await bot.join()
    source = FileSource(make_test_mp4(tmp_path / "av.mp4", seconds=3))
    try:
        await bot.publish(source)
        wang = await join(browser, live_server, room, "party", "王五", "room")
        li = await join(browser, live_server, room, "party", "李四", "room", NO_H264)
        robot = Participant(li.page, invite, [])
        # (frames, not 640x480: two encodings share the publisher's bandwidth estimate)
        await asyncio.gather(
            hears(li, robot),
            hears(li, wang),
            growing(li, wang, "camera", "framesDecoded"),
            growing(wang, li, "camera", "framesDecoded"),
        )
        codecs = {
            s["participantId"]: s["codec"] for s in await li.inbound() if s["kind"] == "video"
        }
        assert codecs.get(wang.id) == "video/VP8", codecs
        codecs = {
            s["participantId"]: s["codec"] for s in await wang.inbound() if s["kind"] == "video"
        }
        assert codecs == {li.id: "video/H264", robot.id: "video/H264"}, codecs
        backups = [
            t
            for t in await wang.page.evaluate("window.tiaojie.publishedTracks()")
            if t.get("backup")
        ]
        assert [t["source"] for t in backups] == ["camera"]
        notice = li.tile(robot).locator(".tile-unsupported")
        await expect(notice).to_have_text("对方的视频格式您的浏览器不支持，只能听到声音")
        await expect(li.tile(wang).locator(".tile-unsupported")).to_be_hidden()
        unavailable = await li.page.evaluate("window.tiaojie.unavailable()")
        assert [(u["participant_id"], u["source"], u["reason"]) for u in unavailable] == [
            (robot.id, "camera", "codec_unsupported")
        ]
        # The backup is never announced: everyone sees one camera per person.
        sources = await li.page.evaluate(
            "id => [...window.tiaojie.room.publications.values()]"
            ".filter(p => p.participant_id === id).map(p => p.source).sort()",
            wang.id,
        )
        assert sources == ["camera", "microphone"], sources
        no_errors(li, wang)

        # 李四 leaves: nobody needs the backup any more, 王五's page is told to stop it
        await li.page.context.close()
        await backup_stopped(live_server, room, wang)
        no_errors(wang)
    finally:
        await source.stop()
        await bot.close()
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING and "tiaojie" in r.name]
    assert problems == [], [r.getMessage() for r in problems]
