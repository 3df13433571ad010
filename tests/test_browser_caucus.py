"""Screening and caucuses set from the mediator's console in real headless Chromium,
checked with getStats on the pages (pcSub inbound-rtp), with the fake camera.

The mediator screens the respondent from the applicant's video with the screening
controls (不可看): the respondent's page stops receiving the applicant's camera (and
shows the applicant's initial, not a frozen picture) while it still hears the applicant
and the mediator still receives both; 解除 restores it. The applicant asks for a private
talk with the expert in the room (chosen on the page); the mediator sees whom with and
declines, and the applicant is told. Then
the mediator opens a caucus with the applicant and a 1-minute timer: the main room (the
respondent) and the applicant stop receiving each other, the caucus members receive
each other, the members and the mediator get the server's warning (a minute before the
end: at once here) and see the countdown; the mediator's notice reaches the caucus and
the main room alike. Last, the room is recorded and the mediator asks to record the
caucus: its member is asked (the main room is not), and the recorder gets the caucus
only once they agree.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.test_browser_media import Participant, browser, eventually, growing, join  # noqa: F401

pytestmark = pytest.mark.browser

#: The recorder is a process of its own: it starts and subscribes slowly on a loaded machine.
RECORDER_TIMEOUT_S = 45.0
VIDEO_OFF = re.compile(r"\bvideo-off\b")
#: Frames the witness must decode (about 1 s at 20 fps) while the watched stat stands still.
WITNESS_FRAMES = 20


async def frames(viewer: Participant, of: Participant) -> int:
    s = await viewer.stat(of, "camera")
    return s["framesDecoded"] if s else 0


async def withheld(
    viewer: Participant, of: Participant, source: str, witness: Participant, seen: Participant
) -> None:
    """`viewer` receives nothing more of `of`'s `source` while `witness` decodes
    WITNESS_FRAMES more of `seen`'s camera (after as many again, which let what was
    already on the wire arrive)."""

    async def witnessed() -> None:
        start = await frames(witness, seen)

        async def more() -> bool:
            return await frames(witness, seen) >= start + WITNESS_FRAMES

        await eventually(more, f"{witness.name} decoding {seen.name}'s camera")

    await witnessed()
    before = await viewer.stat(of, source)
    assert before is not None, f"{viewer.name} has no stats of {of.name}'s {source}"
    await witnessed()
    after = await viewer.stat(of, source)
    assert after is not None and after["bytesReceived"] == before["bytesReceived"], (
        f"{viewer.name} still receives {of.name}'s {source}"
    )


async def test_screening_caucus_notice_and_timer_from_the_console(
    live_server: Any,
    browser: Any,  # noqa: F811 - the fixture
) -> None:
    srv = live_server
    room = await srv.create_room(title="背靠背调解", lobby=False)
    m = await join(browser, srv, room, "mediator", "张调解员", "room")
    a = await join(browser, srv, room, "party", "王五", "room")
    r = await join(browser, srv, room, "party", "李四", "room")
    for viewer, of in ((m, a), (m, r), (r, a), (a, r), (a, m), (r, m)):
        await growing(viewer, of, "camera", "framesDecoded")

    # -- screening: 李四 must not see 王五 (set on the console, with labels) ------------
    page = m.page
    await expect(page.locator("#screening-panel")).to_be_visible()
    await expect(page.locator("#screening-list")).to_contain_text("目前没有屏蔽")
    await page.select_option("#screening-who", r.id)
    await page.select_option("#screening-mode", "video")
    await page.select_option("#screening-from", a.id)
    await page.click("#screening-apply")
    entry = page.locator(f'#screening-list li[data-participant-id="{r.id}"][data-from="{a.id}"]')
    await expect(entry).to_contain_text("李四")
    await expect(entry).to_contain_text("不可看 王五")
    await withheld(r, a, "camera", m, a)  # the mediator still sees 王五 ...
    # 李四's page shows no frozen picture of 王五: the tile shows the initial
    await expect(r.tile(a)).to_have_class(VIDEO_OFF)
    await growing(m, r, "camera", "framesDecoded")  # ... and 李四
    await growing(r, a, "microphone", "bytesReceived")  # 李四 still hears 王五
    await expect(a.tile(r)).not_to_have_class(VIDEO_OFF)  # only 李四 is screened
    await entry.locator('[data-action="lift"]').click()
    await expect(page.locator("#screening-list")).to_contain_text("目前没有屏蔽")
    await growing(r, a, "camera", "framesDecoded", "李四 sees 王五 again after 解除")
    await expect(r.tile(a)).not_to_have_class(VIDEO_OFF)

    # -- 王五 asks for a private talk with the expert in the room; the mediator declines --
    expert = await srv.join(await srv.create_invite(room["id"], "expert", "赵律师"))
    await expert.wait_for("room_state")
    ask_with = a.page.locator("#caucus-ask-with")
    await expect(ask_with.locator("option")).to_have_text(["调解员", "赵律师"])
    await ask_with.select_option(label="赵律师")
    await a.page.click("#caucus-ask")
    await expect(a.page.locator("#toast")).to_contain_text("已提出与赵律师单独沟通的申请")
    request = page.locator("#caucus-requests li")
    await expect(request).to_have_text(re.compile("王五 申请与赵律师单独沟通"))
    await request.get_by_role("button", name="暂不").click()
    await expect(a.page.locator("#toast")).to_have_text("调解员暂未同意单独沟通")
    await expect(request).to_have_count(0)
    assert (await expert.call("leave", {}))["ok"]
    await expect(ask_with).to_be_hidden()  # no expert in the room: the mediator only

    # -- a caucus of 王五 and the mediator, with a 1-minute timer -----------------------
    await page.check(f'#caucus-members input[value="{a.id}"]')
    await page.check(f'#caucus-members input[value="{m.id}"]')
    await page.fill("#caucus-title", "申请人单独沟通")
    await page.fill("#caucus-minutes", "1")
    await page.click("#caucus-open")
    await expect(a.page.locator("#caucus-banner")).to_be_visible()
    await expect(r.page.locator("#caucus-away")).to_contain_text("王五")
    # the main room and the caucus receive nothing of each other; the members each other
    await withheld(r, a, "camera", m, a)
    await withheld(a, r, "camera", a, m)
    await expect(r.tile(a)).to_have_class(VIDEO_OFF)  # no frozen picture either way
    await expect(a.tile(r)).to_have_class(VIDEO_OFF)
    await expect(a.tile(m)).not_to_have_class(VIDEO_OFF)
    await growing(a, m, "camera", "framesDecoded", "王五 sees the mediator in the caucus")

    # the timer: the members and the mediator see the countdown and the server's warning
    for p in (a, m):
        alert = p.page.locator("#caucus-time-alert")
        await expect(alert).to_be_visible()
        await expect(alert).to_contain_text("申请人单独沟通还剩约 1 分钟")
    await expect(a.page.locator("#caucus-countdown")).to_contain_text("剩余 ")
    await expect(page.locator("#caucus-list .caucus-countdown")).to_contain_text("剩余 ")
    await expect(r.page.locator("#caucus-time-alert")).to_be_hidden()

    # the mediator's notice reaches the caucus and the main room
    await page.fill("#notice-input", "还有五分钟，请准备回到主会场")
    await page.click("#notice-send")
    for p in (a, r, m):
        notice = p.page.locator("#notice-banner")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("调解员通知")
        await expect(notice).to_contain_text("还有五分钟，请准备回到主会场")

    # -- recording the caucus: only once every member agrees --------------------------
    await page.click("#recording-button")  # the room's recording, from the console
    for p in (a, r):
        await p.page.click("#recording-consent-accept")
    recorder = await eventually(
        lambda: _recorder_slots(srv, room["id"], a.id),
        "the recorder subscribed to 王五",
        RECORDER_TIMEOUT_S,
    )
    assert all(slot.withheld for slot in recorder)  # 王五 is in the caucus
    await page.locator('#caucus-list [data-action="caucus-record"]').click()
    await expect(page.locator("#caucus-list .caucus-recording")).to_contain_text(
        "等待同意录制：王五"
    )
    await expect(r.page.locator("#caucus-recording-ask")).to_be_hidden()  # not a member
    assert all(slot.withheld for slot in recorder)
    await a.page.click("#caucus-recording-accept")
    await expect(a.page.locator("#caucus-recorded")).to_have_text("本单独沟通正在录制")
    await expect(page.locator("#caucus-list .caucus-recording")).to_contain_text("录制中")
    await eventually(
        lambda: _all_forwarded(recorder),
        "the recorder receiving the caucus once 王五 agreed",
        RECORDER_TIMEOUT_S,
    )

    for p in (m, a, r):
        assert p.errors == [], p.errors


async def _recorder_slots(srv: Any, room_id: str, publisher: str) -> list[Any]:
    """The recorder's subscriber slots of `publisher` (both kinds), once it has them."""
    media_room = srv.state.media.rooms.get(room_id)
    recording = (await srv.state.store.require(room_id)).recording
    peer = media_room.peers.get(recording["invite_id"]) if media_room and recording else None
    slots = [
        slot
        for slot in (peer.slots if peer else [])
        if slot.publication is not None and slot.publication.participant_id == publisher
    ]
    return slots if len(slots) == 2 else []


async def _all_forwarded(slots: list[Any]) -> bool:
    return all(not slot.withheld and slot.track.forwarded > 0 for slot in slots)
