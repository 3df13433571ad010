"""The room page as people use it, in real headless Chromium (one per module): what a real
session showed (issue 13, "Fixes a real session showed", items 1-2, 4-6, 9-11, and that
item 3 holds in the page).

- The mediator's editor is prefilled from the invites before the parties have come
  (names, 申请人 / 被申请人, who signs each line) and from who is present (the expert).
- Signing is announced to each signer: a banner, a chime (the page's WebAudio
  oscillators are counted), and a party on a phone is taken to the sign button.
- The signing dialog shows the whole text readably, sums of money marked, needs the
  reader to reach its end, keeps the fingerprint out of the consent sentence, and has no
  grey name that looks filled in.
- The console is tabs beside the videos, the header stays, "admit all" empties the
  lobby, and 申请人 / 被申请人 show in the lobby, the list and on the tiles.
- A new invite link and its copy button are not under the control bar.
- The phone's control bar has labels, strong states, and no screen sharing it cannot do.
- The 录制中 badge has its own place in the header and never covers text.

Geometry is checked as people see it: `elementFromPoint` at the centre of what must be
usable, the rectangles of what must not overlap. The pages report no CSP violation.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.test_browser_csp import REPORT_VIOLATIONS
from tests.test_browser_recording import TIMEOUT_MS, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
ID_NUMBER = "110101199003071234"
TERM = "被申请人于2025年12月31日前赔偿申请人维修费人民币3000元。"

#: Counts the oscillators the page starts (the chime is two notes), before any script.
COUNT_SOUNDS = """
window.__sounds = 0;
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__sounds += 1;
  return start.apply(this, args);
};
"""

#: What is at the centre of an element: the element itself (or inside it), or what.
HIT = """(el) => {
  const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {
    ok: !!hit && (hit === el || el.contains(hit)),
    hit: hit ? hit.outerHTML.slice(0, 120) : null,
    top: r.top, bottom: r.bottom, height: innerHeight,
  };
}"""


class Pages:
    """Opens pages (desktop or phone) that report script errors and CSP violations."""

    def __init__(self, browser: Browser) -> None:  # noqa: F811 - not the fixture
        self.browser = browser
        self.problems: list[str] = []
        self.pages: list[Page] = []

    async def open(
        self,
        url: str,
        *,
        phone: bool = False,
        size: dict[str, int] | None = None,
        init: str = "",
        user_agent: str | None = None,
    ) -> Page:
        options: dict[str, Any] = {"viewport": size or {"width": 1280, "height": 800}}
        if phone:
            options = {
                "viewport": size or PHONE,
                "device_scale_factor": 2,
                "is_mobile": True,
                "has_touch": True,
            }
        if user_agent:
            options["user_agent"] = user_agent
        context = await self.browser.new_context(**options)
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        await page.add_init_script(REPORT_VIOLATIONS + init)
        page.on("pageerror", lambda e: self.problems.append(f"{url}: {e}"))
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console: {m.text}")
                if "Content Security Policy" in m.text
                else None
            ),
        )
        self.pages.append(page)
        await page.goto(url)
        return page

    async def join(self, invite: dict[str, Any], screen: str = "room", **options: Any) -> Page:
        page = await self.open(invite["url"], **options)
        await expect(page.locator("body")).to_have_attribute("data-screen", "join")
        await page.click("#join-button")
        await expect(page.locator("body")).to_have_attribute("data-screen", screen)
        return page

    async def check(self) -> None:
        found = list(self.problems)
        for page in self.pages:
            if not page.is_closed():
                found += [f"{page.url}: {v}" for v in await page.evaluate("window.__csp || []")]
        assert found == []
        for page in self.pages:
            await page.context.close()


async def usable(page: Page, selector: str) -> dict[str, Any]:
    """The element is what is at its centre (nothing over it) and inside the window."""
    found: dict[str, Any] = await page.locator(selector).evaluate(HIT)
    assert found["ok"], f"{selector} is covered by {found['hit']}"
    assert found["top"] >= 0 and found["bottom"] <= found["height"], found
    return found


async def draw_mark(page: Page) -> None:
    canvas = page.locator("#agreement-mark")
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    assert box is not None
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    await page.mouse.move(x + 0.1 * w, y + 0.5 * h)
    await page.mouse.down()
    for i in range(1, 12):
        await page.mouse.move(x + (0.1 + 0.07 * i) * w, y + (0.3 if i % 2 else 0.7) * h, steps=2)
    await page.mouse.up()
    await expect(page.locator("#agreement-mark-pad")).to_have_class(re.compile(r"\binked\b"))


async def sign(page: Page, name: str) -> None:
    """The whole signing, read to the end (Playwright scrolls to what it clicks)."""
    await page.click("#agreement-sign-open")
    await expect(page.locator("#agreement-sign-dialog")).to_be_visible()
    await page.check("#agreement-consent")
    await page.fill("#agreement-sign-name", name)
    await draw_mark(page)
    await page.click("#agreement-sign-submit")
    await expect(page.locator("#agreement-sign-dialog")).to_be_hidden()


# -- items 2, 1, 6 (and 3) ---------------------------------------------------------------------
@pytest.mark.timeout(300)
async def test_editor_prefilled_before_parties_come_and_signing_is_announced(
    live_server,
    browser,  # noqa: F811 - the fixture
) -> None:
    srv = live_server
    room = await srv.create_room(title="王五与李四漏水纠纷调解", lobby=False)
    rid = room["id"]
    mediator = await srv.create_invite(rid, "mediator", "张调解员")
    # invited in the other order: the editor still puts the applicant first
    respondent = await srv.create_invite(rid, "party", "李四", side="respondent")
    applicant = await srv.create_invite(rid, "party", "王五", side="applicant")
    expert = await srv.create_invite(rid, "expert", "赵律师")
    pages = Pages(browser)

    # -- the mediator opens the editor alone: the invites fill it ---------------------------
    m = await pages.join(mediator)
    await m.click("#tab-agreement")
    await expect(m.locator("#tab-agreement")).to_have_attribute("aria-selected", "true")
    parties = m.locator("#agreement-parties li.agreement-party")
    await expect(parties).to_have_count(2)
    first, second = parties.nth(0), parties.nth(1)
    await expect(first.locator('[data-field="name"]')).to_have_value("王五")
    await expect(first.locator('[data-field="role"]')).to_have_value("applicant")
    await expect(first.locator('[data-field="participant_id"]')).to_have_value(
        applicant["invite_id"]
    )
    assert (
        "王五（尚未进入）"
        in await first.locator('[data-field="participant_id"] option:checked').inner_text()
    )
    await expect(second.locator('[data-field="name"]')).to_have_value("李四")
    await expect(second.locator('[data-field="role"]')).to_have_value("respondent")
    await expect(second.locator('[data-field="participant_id"]')).to_have_value(
        respondent["invite_id"]
    )
    await expect(m.locator("#agreement-mediator")).to_have_value("张调解员")
    await expect(m.locator("#agreement-experts")).to_have_value("")  # invited, not here

    # -- the expert comes in: present, so on the agreement ---------------------------------
    e = await pages.join(expert)
    await expect(m.locator("#agreement-experts")).to_have_value("赵律师")

    await first.locator('[data-field="id_number"]').fill(ID_NUMBER)
    await m.fill("#agreement-case-number", "（2025）京0105民调123号")
    await m.fill("#agreement-facts", "申请人与被申请人系上下楼邻居，因楼上漏水发生纠纷。")
    await m.locator("#agreement-terms textarea").nth(0).fill(TERM)
    await m.fill("#agreement-performance", "银行转账，一次付清。")
    await m.fill("#agreement-place", "朝阳区人民调解委员会（线上）")
    await expect(m.locator("#agreement-save-state")).to_have_attribute("data-kind", "ok")
    text = m.locator("#agreement-text")
    await expect(text).to_contain_text("到场专家：赵律师")
    await expect(text).not_to_contain_text("到场专家：无")
    await expect(text).to_contain_text("被申请人：李四")

    # -- the parties come, on phones; personal numbers only to the mediator and that party
    a = await pages.join(applicant, phone=True, init=COUNT_SOUNDS)
    b = await pages.join(respondent, phone=True, init=COUNT_SOUNDS)
    await expect(a.locator("#agreement-text")).to_contain_text(ID_NUMBER)
    for page in (b, e):
        await expect(page.locator("#agreement-text")).to_contain_text("王五")
        await expect(page.locator("#agreement-text")).not_to_contain_text(ID_NUMBER)
    await expect(m.locator("#agreement-text")).to_contain_text(ID_NUMBER)
    # the lines now name the parties who came
    await expect(first.locator('[data-field="participant_id"] option:checked')).to_have_text("王五")

    # -- signing starts: the parties are told and taken to the button ----------------------
    assert await a.evaluate("window.scrollY") == 0
    before = await a.locator("#agreement-sign-open").evaluate("b => b.hidden")
    assert before is True
    sounds_before = await a.evaluate("window.__sounds")
    await m.click("#agreement-request")
    for page in (a, b):
        banner = page.locator("#signing-banner")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("请阅读协议后签署")
        await expect(page.locator("#agreement-sign-open")).to_be_focused()
        await usable(page, "#agreement-sign-open")
        await usable(page, "#signing-banner-go")  # in the header, wherever one is
        assert await page.evaluate("window.scrollY") > 600  # far below the videos
    assert await a.evaluate("window.__sounds") >= sounds_before + 2  # the chime's two notes
    assert await b.evaluate("window.__sounds") >= 2
    # the expert does not sign, so is not told; nor the mediator yet (parties first)
    await expect(e.locator("#signing-banner")).to_be_hidden()
    await expect(m.locator("#signing-banner")).to_be_hidden()

    # -- the signing dialog on the phone --------------------------------------------------
    await a.click("#agreement-sign-open")
    dialog = a.locator("#agreement-sign-dialog")
    await expect(dialog).to_be_visible()
    await expect(a.locator("#signing-banner")).to_be_hidden()
    sign_text = a.locator("#agreement-sign-text")
    await expect(sign_text).to_contain_text(TERM[:20])
    shape = await sign_text.evaluate(
        """t => ({scroll: t.scrollHeight - t.clientHeight,
                  size: parseFloat(getComputedStyle(t).fontSize),
                  overflow: getComputedStyle(t).overflowY})"""
    )
    assert shape["scroll"] <= 1 and shape["overflow"] == "visible", shape  # no box to scroll
    assert shape["size"] >= 16, shape
    await expect(sign_text.locator("mark.money")).to_have_text(["人民币3000元"])
    consent = await a.locator("#agreement-consent-label").inner_text()
    assert consent == "我已阅读上述协议全文，同意其全部内容，自愿签署。"
    assert not re.search("[0-9a-f]{8}", consent)
    fingerprint = await a.locator("#agreement-card").get_attribute("data-fingerprint")
    assert fingerprint
    await expect(a.locator("#agreement-sign-fingerprint")).to_have_text(fingerprint[:12])
    text_box = await sign_text.bounding_box()
    fp_box = await a.locator("#agreement-sign-fingerprint").bounding_box()
    assert text_box and fp_box and fp_box["y"] >= text_box["y"] + text_box["height"]
    name = a.locator("#agreement-sign-name")
    await expect(name).to_have_value("")
    assert not await name.get_attribute("placeholder")  # nothing grey that looks filled in
    await expect(a.locator("#agreement-sign-name-hint")).to_contain_text("王五")

    # Signing before the end of the text was on screen is refused.
    await expect(a.locator("#agreement-sign-read-hint")).to_be_visible()
    await a.locator("#agreement-sign-submit").evaluate("b => b.click()")  # no scrolling
    error = a.locator("#agreement-sign-error")
    await expect(error).to_have_attribute("data-reason", "need_read")
    await expect(error).to_contain_text("读完协议全文")
    await a.locator("#agreement-sign-end").scroll_into_view_if_needed()
    await expect(dialog).to_have_attribute("data-read", "true")
    await expect(a.locator("#agreement-sign-read-hint")).to_be_hidden()
    await a.click("#agreement-sign-cancel")

    await sign(a, "王五")
    await expect(a.locator("#signing-banner")).to_be_hidden()
    await expect(m.locator('#agreement-signers li[data-role="applicant"]')).to_have_attribute(
        "data-signed", "true"
    )
    await sign(b, "李四")

    # -- now the mediator's turn: told in the header, taken to the agreement tab ----------
    await m.click("#tab-people")
    banner = m.locator("#signing-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("当事人均已签署")
    await m.click("#signing-banner-go")
    await expect(m.locator("#tab-agreement")).to_have_attribute("aria-selected", "true")
    await usable(m, "#agreement-sign-open")
    await pages.check()


# -- items 10, 11, 4 ------------------------------------------------------------------------
async def test_console_tabs_admit_all_sides_and_the_invite_link_in_view(
    live_server,
    browser,  # noqa: F811 - the fixture
) -> None:
    srv = live_server
    room = await srv.create_room(title="邻里纠纷调解", lobby=True)
    rid = room["id"]
    mediator = await srv.create_invite(rid, "mediator", "张调解员")
    applicant = await srv.create_invite(rid, "party", "王五", side="applicant")
    respondent = await srv.create_invite(rid, "party", "李四", side="respondent")
    expert = await srv.create_invite(rid, "expert", "赵律师")
    pages = Pages(browser)
    # a small laptop's window (or large text): the side column scrolls to a new invite
    m = await pages.join(mediator, size={"width": 1280, "height": 480})
    a = await pages.join(applicant, "lobby", phone=True)
    await pages.join(respondent, "lobby", phone=True)
    e = await pages.join(expert, "lobby")

    # -- the lobby says who is who, and admits everyone at once ----------------------------
    lobby = m.locator("#lobby-list")
    await expect(lobby.locator("li")).to_have_count(3)
    for invite, label in ((applicant, "申请人"), (respondent, "被申请人"), (expert, "专家")):
        item = lobby.locator(f'li[data-participant-id="{invite["invite_id"]}"]')
        await expect(item.locator(".badge")).to_have_text(label)
    await expect(m.locator("#lobby-alert-text")).to_have_text("3 人正在等候室等候。")
    await expect(m.locator("#lobby-alert-admit-all")).to_be_visible()
    await expect(m.locator("#tab-lobby-count")).to_have_text("3")
    await m.click("#lobby-admit-all")
    await expect(m.locator("#toast")).to_have_text("已准许 3 人进入调解室。")  # shown for 5 s
    for page in (a, e):
        await expect(page.locator("body")).to_have_attribute("data-screen", "room")
    await expect(lobby.locator("li.empty")).to_be_visible()
    await expect(m.locator("#lobby-alert")).to_be_hidden()

    # -- 申请人 / 被申请人 on tiles and in the list, for everyone -----------------------------
    for page in (m, e):
        for invite, label in ((applicant, "申请人"), (respondent, "被申请人")):
            pid = invite["invite_id"]
            tile = page.locator(f'.tile[data-participant-id="{pid}"][data-source="camera"]')
            await expect(tile.locator(".badge")).to_have_text(label)
            row = page.locator(f'#participant-list li[data-participant-id="{pid}"]')
            await expect(row.locator(".badge")).to_have_text(label)
    await expect(
        a.locator(f'.tile[data-participant-id="{respondent["invite_id"]}"] .badge')
    ).to_have_text("被申请人")

    # -- the console: tabs for the mediator; the header never scrolls away ---------------
    await expect(m.locator("#console-tabs")).to_be_visible()
    await expect(a.locator("#console-tabs")).to_be_hidden()
    for page in (a, e):  # the others see the people and the agreement
        await expect(page.locator("#participant-list")).to_be_visible()
        await expect(page.locator("#agreement-card")).to_be_visible()
        await expect(page.locator("#mediator-panel")).to_be_hidden()
    await m.click("#tab-invite")
    await expect(m.locator("#panel-invite")).to_be_visible()
    await expect(m.locator("#panel-people")).to_be_hidden()
    await m.keyboard.press("ArrowRight")
    await expect(m.locator("#tab-agreement")).to_be_focused()
    await expect(m.locator("#panel-agreement")).to_be_visible()
    await expect(m.locator("#agreement-editor")).to_be_visible()
    # the side column scrolls on its own; the window does not, the header stays
    await m.locator("#room-side").evaluate("s => s.scrollTo(0, s.scrollHeight)")
    assert await m.evaluate("document.scrollingElement.scrollHeight <= innerHeight + 1")
    await usable(m, "#room-view-title")
    await usable(m, "#end-button")

    # an ID number typed before another party is invited stays on its line
    lines = m.locator("#agreement-parties li.agreement-party")
    await expect(lines).to_have_count(2)
    await lines.nth(0).locator('[data-field="id_number"]').fill(ID_NUMBER)

    # -- a new invite: the link and its copy button are clear of the control bar ---------
    await m.click("#tab-invite")
    await m.select_option("#invite-role", "applicant")
    await m.fill("#invite-name", "王五之子")
    await m.click("#invite-create")
    await expect(m.locator("#invite-url")).to_have_value(re.compile(r"/join#token=tj1\."))
    await expect(m.locator("#invite-for")).to_contain_text("王五之子（申请人）")
    await usable(m, "#invite-copy")
    await usable(m, "#invite-url")
    bar = await m.locator("#control-bar").bounding_box()
    copy = await m.locator("#invite-copy").bounding_box()
    assert bar and copy and copy["y"] + copy["height"] <= bar["y"]
    token = (await m.locator("#invite-url").input_value()).split("#token=")[1]
    status, me = await srv.request("GET", "/api/me", token)
    assert status == 200 and (me["invite"]["role"], me["invite"]["side"]) == ("party", "applicant")
    # the editor proposes the new party at once, an applicant, before they come
    await m.click("#tab-agreement")
    await expect(lines).to_have_count(3)
    names = [await lines.nth(i).locator('[data-field="name"]').input_value() for i in range(3)]
    assert names == ["王五", "王五之子", "李四"]
    await expect(lines.nth(1).locator('[data-field="role"]')).to_have_value("applicant")
    await expect(lines.nth(1).locator('[data-field="participant_id"]')).to_have_value(
        me["invite"]["invite_id"]
    )
    await expect(lines.nth(0).locator('[data-field="id_number"]')).to_have_value(ID_NUMBER)
    await pages.check()


# -- item 5 ------------------------------------------------------------------------------------
NO_SCREEN_SHARING = "delete MediaDevices.prototype.getDisplayMedia;"
ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)

#: Each control on show: its label's text and whether the label is fully visible.
CONTROLS = """() => [...document.querySelectorAll('#control-bar .ctl')].filter(b => !b.hidden)
  .map(b => {
    const l = b.querySelector('.label'), lr = l.getBoundingClientRect(),
          br = b.getBoundingClientRect(), style = getComputedStyle(l);
    return {id: b.id, text: l.textContent, size: parseFloat(style.fontSize),
            shown: lr.width > 8 && lr.height > 8 && style.clip === 'auto'
                   && l.scrollWidth <= l.clientWidth + 1
                   && lr.left >= br.left - 1 && lr.right <= br.right + 1
                   && br.left >= 0 && br.right <= innerWidth};
  })"""

#: How light a colour is (WCAG relative luminance).
LUMINANCE = """(el) => {
  const [r, g, b] = getComputedStyle(el).backgroundColor.match(/[\\d.]+/g).map(Number);
  const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}"""


async def test_phone_controls_have_labels_strong_states_and_no_impossible_buttons(
    live_server,
    browser,  # noqa: F811 - the fixture
) -> None:
    srv = live_server
    room = await srv.create_room(title="手机测试", lobby=False)
    rid = room["id"]
    pages = Pages(browser)
    party = await srv.create_invite(rid, "party", "王大爷", side="applicant")
    phone = await pages.join(party, phone=True, init=NO_SCREEN_SHARING)

    controls = await phone.evaluate(CONTROLS)
    assert [c["id"] for c in controls] == [
        "mic-toggle",
        "camera-toggle",
        "hand-button",
        "devices-button",
        "leave-button",
    ]  # no screen sharing where the browser has none
    for control in controls:
        assert control["text"] and control["shown"] and control["size"] >= 12, control
    assert [c["text"] for c in controls] == ["静音", "关闭视频", "举手", "设备", "离开"]

    # Muted and hand raised: a strong fill and the state in words.
    mic, hand = phone.locator("#mic-toggle"), phone.locator("#hand-button")
    light = await mic.evaluate(LUMINANCE)
    await mic.click()
    await expect(mic.locator(".ctl-state")).to_have_text("已静音")
    await expect(mic.locator(".label")).to_have_text("解除静音")
    await expect(mic).to_have_attribute("aria-label", "解除静音（已静音）")
    await hand.click()
    await expect(hand.locator(".ctl-state")).to_have_text("已举手")
    for button in (mic, hand):
        assert await button.evaluate(LUMINANCE) < 0.2 < light  # dark, not a pale tint
        await usable(phone, f"#{await button.get_attribute('id')} .ctl-state")
    for control in await phone.evaluate(CONTROLS):
        assert control["shown"], control

    # A phone's browser that has getDisplayMedia cannot share either; a desktop can.
    android = await srv.create_invite(rid, "party", "李大妈", side="respondent")
    other = await pages.join(android, phone=True, user_agent=ANDROID)
    await expect(other.locator("#mic-toggle")).to_be_visible()
    await expect(other.locator("#screen-toggle")).to_be_hidden()
    desk = await srv.create_invite(rid, "expert", "赵律师")
    desktop = await pages.join(desk)
    await expect(desktop.locator("#screen-toggle")).to_be_visible()
    await pages.check()


# -- item 9 ------------------------------------------------------------------------------------
#: Is the 录制中 badge in a strip of its own: what is just beside it, at its height, is
#: the header (opaque, the window's width), never the page's text.
BADGE_PLACE = """() => {
  const badge = document.getElementById('recording-indicator');
  const header = document.getElementById('room-header');
  const r = badge.getBoundingClientRect(), hr = header.getBoundingClientRect();
  const y = r.top + r.height / 2;
  const at = (x) => document.elementFromPoint(x, y);
  const centre = at(r.left + r.width / 2);
  const beside = [at(r.left - 6), at(r.right + 6), at(hr.left + 2), at(hr.right - 2)];
  const title = document.getElementById('room-view-title').getBoundingClientRect();
  const bg = getComputedStyle(header).backgroundColor;
  return {
    visible: r.top >= 0 && r.bottom <= innerHeight && r.width > 0,
    own: !!centre && badge.contains(centre),
    beside: beside.every((el) => !!el && header.contains(el)),
    clearOfTitle: r.left >= title.right || r.right <= title.left
                  || r.top >= title.bottom || r.bottom <= title.top,
    opaque: !bg.startsWith('rgba') || bg.endsWith(', 1)'),
    wide: hr.left <= 0.5 && hr.right >= document.documentElement.clientWidth - 0.5,
    found: [centre, ...beside].map((el) => (el ? el.outerHTML.slice(0, 80) : null)),
  };
}"""


@pytest.mark.timeout(180)
async def test_the_recording_badge_has_its_own_place_and_covers_no_text(
    live_server,
    browser,  # noqa: F811 - the fixture
) -> None:
    srv = live_server
    room = await srv.create_room(title="王五与李四漏水纠纷调解", lobby=False)
    rid = room["id"]
    pages = Pages(browser)
    m = await pages.join(await srv.create_invite(rid, "mediator", "张调解员"))
    applicant = await srv.create_invite(rid, "party", "王五", side="applicant")
    a = await pages.join(applicant, phone=True)
    await pages.join(await srv.create_invite(rid, "party", "李四", side="respondent"), phone=True)
    await m.click("#recording-button")
    await a.click("#recording-consent-accept")
    await expect(a.locator("#recording-consent-dialog")).to_be_hidden()
    await expect(a.locator("#recording-indicator")).to_be_visible()
    await expect(m.locator("#recording-indicator")).to_be_visible()

    max_scroll = await a.evaluate(
        "document.scrollingElement.scrollHeight - document.scrollingElement.clientHeight"
    )
    assert max_scroll > 300  # a phone's page scrolls a long way
    for y in (0, max_scroll // 2, max_scroll):
        await a.evaluate(f"window.scrollTo(0, {y})")
        place = await a.evaluate(BADGE_PLACE)
        found = place.pop("found")
        assert all(place.values()), (y, place, found)
    # the page's end is not under the control bar: the last text clears it
    last = await a.locator("#agreement-empty").bounding_box()
    bar = await a.locator("#control-bar").bounding_box()
    assert last and bar and last["y"] + last["height"] <= bar["y"]
    place = await m.evaluate(BADGE_PLACE)
    found = place.pop("found")
    assert all(place.values()), (place, found)

    await m.click("#recording-button")
    await expect(m.locator("#recording-button")).to_have_attribute(
        "data-recording", "off", timeout=60_000
    )
    await expect(a.locator("#recording-indicator")).to_be_hidden()
    await pages.check()
