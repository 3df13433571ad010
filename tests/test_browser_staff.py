"""The staff pages in real headless Chromium (docs/ACCOUNTS.md).

A mediator on a phone-sized page logs in (a wrong password first), creates a room,
makes a party's invite link and copies it; the party opens the copied link in a second
browser context and waits in the lobby; the mediator enters their own room from the
staff page, without an invite link, and admits the party. An archivist reaches the
recordings archive with their session alone. An admin creates an account, changes its
roles, resets its password and disables it, and reads the audit log, in English.

One Chromium process serves the module (tests/conftest.py `chromium_cdp`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.conftest import EXPECT_TIMEOUT_MS, LiveServer
from tests.support.staff import PASSWORD, StaffBrowser

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def browser(chromium_cdp: str, live_server: LiveServer) -> AsyncIterator[Browser]:
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


async def new_page(
    browser: Browser, errors: list[str], viewport: dict[str, int] = PHONE
) -> tuple[BrowserContext, Page]:
    """A fresh context (its own cookies and storage) and a page recording script errors."""
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page


async def staff_member(srv: LiveServer, login: str, name: str, roles: list[str]) -> dict[str, Any]:
    """An organisation (the first one made) and an account in it, with the admin token."""
    status, orgs = await srv.admin("GET", "/api/organisations")
    if orgs["organisations"]:
        org = orgs["organisations"][0]
    else:
        status, org = await srv.admin("POST", "/api/organisations", json={"name": "东城调解中心"})
        assert status == 201, org
    status, account = await srv.admin(
        "POST",
        "/api/accounts",
        json={
            "login": login,
            "name": name,
            "organisation_id": org["id"],
            "roles": roles,
            "password": PASSWORD,
        },
    )
    assert status == 201, account
    return account


async def log_in(page: Page, srv: LiveServer, login: str, password: str = PASSWORD) -> None:
    await page.goto(f"{srv.url}/staff")
    await expect(page).to_have_url(f"{srv.url}/login")  # no session yet: to the login
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await page.fill("#login-input", login)
    await page.fill("#password-input", password)
    await page.click("#login-submit")


async def test_login_create_a_room_copy_a_party_link_and_the_party_joins(
    live_server: LiveServer, browser: Browser
) -> None:
    srv = live_server
    await staff_member(srv, "zhang", "张调解员", ["mediator"])
    errors: list[str] = []
    context, page = await new_page(browser, errors)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=srv.url)

    # A wrong password first: refused, in Chinese, the password field cleared.
    await log_in(page, srv, "zhang", "not the password")
    await expect(page.locator("#login-error")).to_have_attribute("data-reason", "login_failed")
    await expect(page.locator("#login-error")).to_have_text("账号或密码不正确。")
    await expect(page.locator("#password-input")).to_have_value("")
    await page.fill("#password-input", PASSWORD)
    await page.click("#login-submit")

    # The staff home page: who is logged in, their rooms (none yet).
    await expect(page).to_have_url(f"{srv.url}/staff")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("body")).to_have_attribute("data-roles", "mediator")
    await expect(page.locator("#staff-name")).to_contain_text("张调解员")
    await expect(page.locator("#staff-roles")).to_have_text("调解员")
    await expect(page.locator("#rooms-empty")).to_be_visible()
    await expect(page.locator("#accounts-section")).to_be_hidden()
    cookies = await context.cookies()
    session = next(c for c in cookies if c["name"] == "tiaojie_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""  # no script reads it

    # A new room: its invite panel opens, for the parties.
    await page.fill("#room-title-input", "王某与李某邻里纠纷调解")
    await page.click("#room-create")
    card = page.locator("article.room-card")
    await expect(card).to_have_count(1)
    await expect(card).to_have_attribute("data-manage", "true")
    await expect(card.locator(".room-card-title")).to_have_text("王某与李某邻里纠纷调解")
    await expect(card.locator("details.room-invites")).to_have_attribute("open", "")

    # A party's link, copied.
    form = card.locator("form.staff-invite-form")
    await form.locator('select[name="role"]').select_option("party")
    await form.locator('input[name="name"]').fill("申请人 王某")
    await form.locator('[data-action="invite"]').click()
    link = card.locator(".invite-url")
    await expect(link).to_have_value(re.compile("^" + re.escape(f"{srv.url}/join#token=tj1.")))
    await card.locator('[data-action="copy"]').click()
    await expect(page.locator("#toast")).to_have_text("链接已复制，请发送给受邀人。")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == await link.input_value()
    await expect(card.locator('li.invite[data-role="party"]')).to_contain_text("申请人 王某")

    # The party opens the copied link in a browser of their own and waits in the lobby.
    party_context, party = await new_page(browser, errors)
    await party.goto(copied)
    await expect(party.locator("body")).to_have_attribute("data-screen", "join")
    await expect(party.locator("#room-title")).to_have_text("王某与李某邻里纠纷调解")
    await expect(party.locator("#name-input")).to_have_value("申请人 王某")
    await expect(party.locator("#role-value")).to_have_text("当事人")
    await party.click("#join-button")
    await expect(party.locator("body")).to_have_attribute("data-screen", "lobby")

    # The mediator enters their own room from the staff page: no invite link needed.
    await card.locator('[data-action="enter"]').click()
    await expect(page).to_have_url(f"{srv.url}/join")  # the token left the address bar
    await expect(page.locator("body")).to_have_attribute("data-screen", "join")
    await expect(page.locator("#role-value")).to_have_text("调解员")
    await expect(page.locator("#name-input")).to_have_value("张调解员")
    await page.click("#join-button")
    await expect(page.locator("body")).to_have_attribute("data-screen", "room")
    waiting = page.locator("#lobby-list li", has_text="申请人 王某")
    await waiting.locator('[data-action="admit"]').click()
    await expect(party.locator("body")).to_have_attribute("data-screen", "room")
    await expect(party.locator("#participant-list")).to_contain_text("张调解员")

    # Back on the staff page, in English: the room with the two inside.
    staff = await context.new_page()
    staff.on("pageerror", lambda e: errors.append(str(e)))
    await staff.goto(f"{srv.url}/staff")
    await staff.click("#lang-toggle")
    await expect(staff.locator("#logout-button")).to_have_text("Log out")
    await expect(staff.locator("article.room-card .room-card-meta")).to_contain_text(
        "2 inside, 0 waiting"
    )
    assert errors == []
    await party_context.close()


async def test_an_archivist_reaches_the_archive_with_the_session(
    live_server: LiveServer, browser: Browser
) -> None:
    srv = live_server
    await staff_member(srv, "chen", "陈档案员", ["archivist"])
    errors: list[str] = []
    context, page = await new_page(browser, errors, {"width": 1280, "height": 800})
    await log_in(page, srv, "chen")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#rooms-section")).to_be_hidden()  # an archivist runs no room
    await expect(page.locator("#room-form")).to_be_hidden()
    await page.click("#archive-link")
    await expect(page).to_have_url(f"{srv.url}/recordings")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#recordings-session")).to_have_text("已用工作人员账号登录：陈档案员")
    await expect(page.locator("#recordings-empty")).to_be_visible()
    await expect(page.locator("#agreements-empty")).to_be_visible()
    await expect(page.locator("#recordings-error")).to_be_hidden()
    # Logged out (everywhere), the archive asks for a token again.
    await page.goto(f"{srv.url}/staff")
    await page.click("#logout-all-button")
    await page.click("#confirm-dialog [data-confirm-ok]")
    await expect(page).to_have_url(f"{srv.url}/login")
    await page.goto(f"{srv.url}/recordings")
    await expect(page.locator("body")).to_have_attribute("data-state", "empty")
    await expect(page.locator("#recordings-session")).to_be_hidden()
    assert errors == []
    await context.close()


async def test_an_admin_manages_accounts_and_reads_the_audit_log(
    live_server: LiveServer, browser: Browser
) -> None:
    srv = live_server
    await staff_member(srv, "admin", "刘主任", ["admin"])
    errors: list[str] = []
    context, page = await new_page(browser, errors, {"width": 1280, "height": 900})
    await page.goto(f"{srv.url}/login?lang=en")
    await page.fill("#login-input", "admin")
    await page.fill("#password-input", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#staff-roles")).to_have_text("Admin")

    # A new mediator account.
    await page.fill("#account-login", "li")
    await page.fill("#account-name", "李调解员")
    await page.fill("#account-password", "a first password")
    await page.click("#account-create")
    made = page.locator('li.account[data-login="li"]')
    await expect(made).to_contain_text("李调解员")
    await expect(made.locator('input[data-role="mediator"]')).to_be_checked()
    # Roles: a coordinator too.
    await made.locator('input[data-role="coordinator"]').check()
    await made.locator('[data-action="save-roles"]').click()
    await expect(page.locator("#toast")).to_have_text("Changes to li saved.")
    status, listed = await srv.admin("GET", "/api/accounts")
    li = next(a for a in listed["accounts"] if a["login"] == "li")
    assert li["roles"] == ["coordinator", "mediator"]
    # A new password: the account logs in with it.
    await made.locator('input[name="new-password"]').fill("the second password")
    await made.locator('[data-action="reset-password"]').click()
    await expect(page.locator("#toast")).to_have_text(
        "Password of li reset; all their sessions ended."
    )
    status, body = await srv.request(
        "POST", "/api/session", json={"login": "li", "password": "the second password"}
    )
    assert status == 201, body
    # Disabled: the same password is refused.
    await made.locator('[data-action="toggle-disabled"]').click()
    await page.click("#confirm-dialog [data-confirm-ok]")
    await expect(page.locator('li.account[data-login="li"]')).to_have_attribute(
        "data-disabled", "true"
    )
    status, body = await srv.request(
        "POST", "/api/session", json={"login": "li", "password": "the second password"}
    )
    assert (status, body["error"]) == (403, "account_disabled")
    # Their own account cannot be disabled from here.
    await expect(
        page.locator('li.account[data-login="admin"] [data-action="toggle-disabled"]')
    ).to_be_disabled()

    # The audit log: what just happened, newest first, and filtered.
    audit = page.locator("#audit-list li.audit-entry")
    await expect(audit.first).to_have_attribute("data-action", "account_disabled")
    await expect(audit.first).to_contain_text("Account disabled")
    await expect(audit.first).to_contain_text("刘主任")
    await page.select_option("#audit-action", "account_created")
    await expect(audit).to_have_count(2)  # 刘主任 (by the admin token), then 李调解员
    await expect(audit.first).to_contain_text("刘主任")
    await expect(audit.nth(1)).to_contain_text("Admin token")
    assert errors == []
    await context.close()


async def test_a_mediator_makes_and_revokes_an_api_key_and_changes_their_password(
    live_server: LiveServer, browser: Browser
) -> None:
    """My account, on a phone: an API key made (shown once, copied, working), listed
    without its secret, revoked (no longer working); the password changed (a wrong
    current one refused first): this session stays, the others end."""
    srv = live_server
    await staff_member(srv, "wang", "王调解员", ["mediator"])
    other = StaffBrowser(srv.url)  # the same account in another browser
    assert (await other.login("wang"))[0] == 201
    errors: list[str] = []
    context, page = await new_page(browser, errors)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=srv.url)
    await log_in(page, srv, "wang")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    section = page.locator("#self-section")
    await expect(section).to_be_visible()
    await expect(page.locator("#keys-empty")).to_have_text("还没有 API 密钥。")
    await expect(page.locator("#key-made")).to_be_hidden()

    # A key without a label is not asked for; with one, it is made and shown once.
    await page.click("#key-create")
    await expect(page.locator("#key-error")).to_have_text("请填写密钥的用途。")
    await page.fill("#key-label", "区综治平台对接")
    await page.click("#key-create")
    await expect(page.locator("#key-made")).to_be_visible()
    value = page.locator("#key-value")
    await expect(value).to_have_value(re.compile(r"^tjk1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"))
    key = await value.input_value()
    await page.click("#key-copy")
    await expect(page.locator("#toast")).to_have_text("密钥已复制。")
    assert await page.evaluate("navigator.clipboard.readText()") == key
    item = page.locator("li.api-key")
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-revoked", "false")
    await expect(item.locator(".api-key-label")).to_have_text("区综治平台对接")
    await expect(item).to_contain_text("尚未使用")
    # The key works, as this account.
    bearer = {"Authorization": f"Bearer {key}"}
    status, me = await srv.request("GET", "/api/session", headers=bearer)
    assert status == 200 and me["account"]["login"] == "wang" and me["via"] == "api_key"
    # Reloaded: listed, its secret gone for good.
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#key-made")).to_be_hidden()
    await expect(item).to_contain_text("最近使用")
    assert key not in await page.content()
    assert key.split(".")[2] not in await page.content()

    # Revoked (after a confirmation): it no longer works.
    await item.locator('[data-action="revoke-key"]').click()
    await page.click("#confirm-dialog [data-confirm-ok]")
    await expect(page.locator("#toast")).to_have_text("已撤销密钥“区综治平台对接”。")
    await expect(item).to_have_attribute("data-revoked", "true")
    await expect(item.locator('[data-action="revoke-key"]')).to_have_count(0)
    status, _ = await srv.request("GET", "/api/session", headers=bearer)
    assert status == 401

    # The password: a wrong current one is refused, then it is changed.
    await page.fill("#current-password", "not my password")
    await page.fill("#new-password", "a much newer password")
    await page.fill("#new-password-again", "a much newer password")
    await page.click("#password-change")
    await expect(page.locator("#password-error")).to_have_text("当前密码不正确。")
    await expect(page.locator("#current-password")).to_have_value("")
    await page.fill("#current-password", PASSWORD)
    await page.fill("#new-password-again", "a different password")
    await page.click("#password-change")
    await expect(page.locator("#password-error")).to_have_text("两次输入的新密码不一致。")
    await page.fill("#new-password-again", "a much newer password")
    await page.click("#password-change")
    await expect(page.locator("#toast")).to_have_text("密码已修改。您在其他设备上的登录已退出。")
    await expect(page.locator("#password-error")).to_be_hidden()
    await expect(page.locator("#new-password")).to_have_value("")
    # This session goes on, the other one ended; the new password logs in, the old does not.
    assert (await other.request("GET", "/api/session"))[0] == 401
    await other.close()
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page).to_have_url(f"{srv.url}/staff")
    status, _ = await srv.request(
        "POST", "/api/session", json={"login": "wang", "password": "a much newer password"}
    )
    assert status == 201
    status, body = await srv.request(
        "POST", "/api/session", json={"login": "wang", "password": PASSWORD}
    )
    assert (status, body["error"]) == (401, "login_failed")

    # In English too.
    await page.click("#lang-toggle")
    await expect(page.locator("#self-heading")).to_have_text("My account")
    await expect(item).to_contain_text("Revoked")
    assert errors == []
    await context.close()
