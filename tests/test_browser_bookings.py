"""Bookings in real headless Chromium, on a phone-sized page in 北京时间: a party opens
their own progress link, follows it to the booking page, chooses 律师 and a free time and
books it; the case's mediator sees it in their calendar (day view), then in English.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.test_bookings import SHANGHAI, _case, _expert, _mediator, _tomorrow
from tests.test_browser_staff import PHONE, TIMEOUT_MS, browser  # noqa: F401 - the fixture
from tests.test_browser_staff_cases import log_in

pytestmark = pytest.mark.browser


async def test_a_party_books_and_the_mediator_sees_it(
    live_server: LiveServer,
    browser: Browser,  # noqa: F811 - the fixture
) -> None:
    srv = live_server
    tomorrow = _tomorrow()
    await _mediator(srv, "zhang")
    status, accounts = await srv.admin("GET", "/api/accounts")
    assert status == 200, accounts
    mediator = next(a["id"] for a in accounts["accounts"] if a["login"] == "zhang")
    await _expert(srv, tomorrow)
    case = await _case(srv, mediator)

    errors: list[str] = []
    context = await browser.new_context(viewport=PHONE, timezone_id=str(SHANGHAI))
    party = await context.new_page()
    party.set_default_timeout(TIMEOUT_MS)
    party.on("pageerror", lambda e: errors.append(str(e)))
    await party.goto(f"{srv.url}/c/{case['code']}?{case['links'][0].split('&', 1)[1]}")
    link = party.locator("#party-booking-link")
    await expect(link).to_have_text("预约专家咨询（律师、法官、心理咨询师等）")
    await link.click()
    await expect(party.locator("body")).to_have_attribute("data-state", "ready")
    await expect(party.locator("#booking-none")).to_be_visible()
    await party.locator('#booking-kinds [data-kind="律师"]').click()
    slots = party.locator("#booking-slots .booking-slot")
    await expect(slots).to_have_count(4)
    await expect(slots.first).to_contain_text("09:00")
    await expect(slots.first).to_contain_text("孙律师")
    await slots.first.click()
    mine = party.locator("#booking-list .booking-item")
    await expect(mine).to_have_count(1)
    await expect(mine.first).to_have_attribute("data-status", "active")
    await expect(mine.first.locator('[data-action="cancel"]')).to_have_text("取消预约")
    await expect(slots).to_have_count(3)

    staff_context = await browser.new_context(viewport=PHONE, timezone_id=str(SHANGHAI))
    page = await staff_context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await log_in(page, srv, "zhang")
    await expect(page.locator("#calendar-section")).to_be_visible()
    await page.click("#calendar-day")
    await page.click("#calendar-next")
    await expect(page.locator("#calendar-range")).to_have_text(tomorrow)
    item = page.locator('#calendar-days .calendar-item[data-kind="booking"]')
    await expect(item).to_have_count(1)
    await expect(item).to_contain_text("09:00")
    await expect(item).to_contain_text("预约咨询：孙律师（律师）")
    await page.click("#lang-toggle")
    await expect(page.locator("#calendar-heading")).to_have_text("My calendar")
    await expect(item).to_contain_text("Consultation:")
    assert errors == []
    await context.close()
    await staff_context.close()
