"""The chat panel in real headless Chromium: a party on a phone and the mediator on a
desktop write to each other; a message that looks like HTML shows as text (no element
made from it), a private message is marked 私信 and reaches only the two, the mediator's
chat tab counts what is unread, and the mediator sends the party to the lobby and admits
them again. The pages report no CSP violation."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.test_browser_recording import browser  # noqa: F401 - the fixture
from tests.test_browser_room_ui import Pages

pytestmark = pytest.mark.browser

MARKUP = '<img src=x onerror="window.__owned=1"><b id="bold">粗体</b>'


@pytest.mark.timeout(240)
async def test_chat_panel_shows_text_marks_private_and_counts_unread(
    live_server,
    browser,  # noqa: F811 - the fixture
) -> None:
    srv = live_server
    room = await srv.create_room(title="聊天测试", lobby=False)
    rid = room["id"]
    mediator = await srv.create_invite(rid, "mediator", "张调解员")
    applicant = await srv.create_invite(rid, "party", "王五", side="applicant")
    respondent = await srv.create_invite(rid, "party", "李四", side="respondent")
    pages = Pages(browser)
    m = await pages.join(mediator)
    a = await pages.join(applicant, phone=True)
    r = await srv.join(respondent)  # a socket.io client: sees what the page sends
    await r.wait_for("room_state")

    # the mediator is on another tab: the chat tab counts what arrives
    await expect(m.locator("#tab-chat")).to_be_visible()
    await expect(m.locator("#tab-people")).to_have_attribute("aria-selected", "true")

    # the party, on a phone: the chat button has a label, the panel opens from it
    await expect(a.locator("#chat-button")).to_contain_text("聊天")
    await a.click("#chat-button")
    await expect(a.locator("#chat-text")).to_be_visible()
    await a.fill("#chat-text", MARKUP)
    await a.click("#chat-send")
    mine = a.locator("#chat-list .chat-message")
    await expect(mine).to_have_count(1)
    await expect(mine.locator(".chat-text")).to_have_text(MARKUP)

    # the mediator: unread 1 on the tab; the message is text, nothing made of it
    await expect(m.locator("#tab-chat-unread")).to_have_text("1")
    await m.click("#tab-chat")
    theirs = m.locator("#chat-list .chat-message")
    await expect(theirs.locator(".chat-text")).to_have_text(MARKUP)
    await expect(m.locator("#tab-chat-unread")).to_be_hidden()
    for page in (m, a):
        assert await page.locator("#chat-list img, #chat-list b, #bold").count() == 0
        assert await page.evaluate("window.__owned === undefined")
    assert (await r.wait_for("chat"))["text"] == MARKUP

    # a private message from the party to the mediator: marked 私信, only the two see it
    options = await a.locator("#chat-to option").all_inner_texts()
    assert len(options) == 2 and "张调解员" in options[1]  # everyone, or the mediator only
    await a.select_option("#chat-to", mediator["invite_id"])
    await a.fill("#chat-text", "我可以再让一步")
    await a.press("#chat-text", "Enter")
    private = m.locator('#chat-list .chat-message[data-private="true"]')
    await expect(private.locator(".chat-text")).to_have_text("我可以再让一步")
    await expect(private.locator(".chat-private")).to_contain_text("私信")
    sent = a.locator('#chat-list .chat-message[data-private="true"] .chat-private')
    await expect(sent).to_contain_text("私信 → 张调解员")
    # the mediator may write privately to anyone inside
    mediator_options = await m.locator("#chat-to option").all_inner_texts()
    assert any("王五" in o for o in mediator_options) and any("李四" in o for o in mediator_options)

    # the mediator sends the party to the lobby, and admits them again
    await m.click("#tab-people")
    row = m.locator(f'#participant-list [data-participant-id="{applicant["invite_id"]}"]')
    await row.locator('[data-action="send-to-lobby"]').click()
    await m.click("#confirm-dialog [data-confirm-ok]")
    await expect(a.locator("body")).to_have_attribute("data-screen", "lobby")
    await expect(a.locator("#lobby-sent-back")).to_have_text("调解员请您在等候区稍候。")
    await (
        m.locator(f'#lobby-list [data-participant-id="{applicant["invite_id"]}"]')
        .locator('[data-action="admit"]')
        .click()
    )
    await expect(a.locator("body")).to_have_attribute("data-screen", "room")
    # back with what was said to them (not a word of the private one to anyone else)
    await expect(a.locator("#chat-list .chat-message")).to_have_count(2)
    assert "我可以再让一步" not in [x["text"] for x in r.received("chat")]
    await pages.check()
