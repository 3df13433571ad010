"""Cases on the staff page in real headless Chromium, on a phone-sized page: the
coordinator's queue (filters by state, type, region, overdue; accept; dispatch to an
organisation or a mediator), the mediator's inbox (take; return with a reason; schedule a
session with an expert from the pool, its outbox; close with an outcome), staff intake,
in Chinese and in English, without sideways scrolling or script errors.

The whole case, into the room and the signed agreement, is tests/test_browser_whole_case.py.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.support.staff import PASSWORD
from tests.test_browser_staff import browser, new_page  # noqa: F401 - the fixture
from tiaojie.server.cases.actor import ADMIN
from tiaojie.server.cases.service import CASES
from tiaojie.server.cases.states import Action

pytestmark = pytest.mark.browser

REPORT = {
    "name": "王淑芬",
    "phone": "13912345678",
    "dispute_type": "property_management",
    "community": "900001001001",
    "description": "小区电梯停运两个月，物业一直不修。",
    "respondent_name": "幸福里物业公司",
}


async def centre(srv: LiveServer) -> dict[str, Any]:
    """Two organisations, a coordinator and two mediators in the first, one in the second."""
    made: dict[str, Any] = {}
    for key, name in (("a", "东城区人民调解委员会"), ("b", "西城区人民调解委员会")):
        status, made[key] = await srv.admin("POST", "/api/organisations", json={"name": name})
        assert status == 201
    for login, name, org, roles in (
        ("coordinator", "赵主任", "a", ["coordinator"]),
        ("zhang", "张调解员", "a", ["mediator"]),
        ("li", "李调解员", "a", ["mediator"]),
        ("xi", "西调解员", "b", ["mediator"]),
    ):
        status, made[login] = await srv.admin(
            "POST",
            "/api/accounts",
            json={
                "login": login,
                "name": name,
                "organisation_id": made[org]["id"],
                "roles": roles,
                "password": PASSWORD,
            },
        )
        assert status == 201, made[login]
    status, made["expert"] = await srv.admin(
        "POST",
        "/api/experts",
        json={"name": "周律师", "specialties": ["物业纠纷"], "phone": "13311112222"},
    )
    assert status == 201
    return made


async def log_in(page: Page, srv: LiveServer, login: str) -> None:
    await page.goto(f"{srv.url}/login")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await page.fill("#login-input", login)
    await page.fill("#password-input", PASSWORD)
    await page.click("#login-submit")
    await expect(page).to_have_url(f"{srv.url}/staff")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")


def card(page: Page, where: str, number: str) -> Any:
    return page.locator(
        f"{where} article.case-card", has=page.locator(".case-card-number", has_text=number)
    )


async def fits(page: Page) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_the_queue_the_inbox_and_intake_on_a_phone(
    live_server: LiveServer,
    browser: Browser,  # noqa: F811 - the fixture
) -> None:
    srv = live_server
    made = await centre(srv)
    status, first = await srv.request("POST", "/api/cases", json=REPORT)
    assert status == 201
    status, second = await srv.request(
        "POST",
        "/api/cases",
        json={**REPORT, "phone": "13900000002", "dispute_type": "neighbourhood"},
    )
    assert status == 201
    # A third, accepted long ago: overdue.
    store = srv.app[CASES].store
    status, late = await srv.request("POST", "/api/cases", json={**REPORT, "phone": "13900000003"})
    await store.transition(late["case_id"], ADMIN, Action.ACCEPT, {}, time.time() - 40 * 86400)

    errors: list[str] = []
    context, page = await new_page(browser, errors)
    await log_in(page, srv, "coordinator")
    await expect(page.locator("body")).to_have_attribute("data-roles", "coordinator")
    await expect(page.locator("#cases-section")).to_be_visible()
    await expect(page.locator("#inbox-section")).to_be_hidden()
    queue = page.locator("#case-list article.case-card")
    await expect(queue).to_have_count(3)
    await expect(page.locator("#cases-count")).to_have_text("3")
    one = card(page, "#case-list", first["case_number"])
    await expect(one).to_have_attribute("data-state", "reported")
    await expect(one.locator(".case-state")).to_have_text("待受理")
    await expect(one.locator(".case-card-parties")).to_have_text(
        "申请人 王淑芬　被申请人 幸福里物业公司"
    )
    # Filters: overdue, type, state, region.
    await page.check("#filter-overdue")
    await expect(queue).to_have_count(1)
    await expect(queue.first).to_have_attribute("data-overdue", "true")
    await expect(queue.first.locator(".badge.overdue")).to_have_text("已超期")
    await page.uncheck("#filter-overdue")
    await page.select_option("#filter-type", label="邻里纠纷")
    await expect(queue).to_have_count(1)
    await expect(queue.first.locator(".case-card-number")).to_have_text(second["case_number"])
    await page.select_option("#filter-type", "")
    await page.select_option("#filter-state", "reported")
    await expect(queue).to_have_count(2)
    await page.select_option("#filter-region", label="　　第二社区")
    await expect(page.locator("#cases-empty")).to_be_visible()
    await page.select_option("#filter-region", "")
    await page.select_option("#filter-state", "")
    await expect(queue).to_have_count(3)

    # Accept, then dispatch the first to a mediator, the second to organisation B.
    await one.locator('[data-action="accept"]').click()
    await expect(one).to_have_attribute("data-state", "accepted")
    await expect(one.locator('[data-action="accept"]')).to_have_count(0)
    await one.locator('form.case-dispatch [data-action="dispatch"]').click()
    await expect(one.locator("form.case-dispatch .field-error")).to_have_text(
        "请选择分派给哪个组织或调解员。"
    )
    await one.locator('select[name="target"]').select_option(f"mediator:{made['zhang']['id']}")
    await one.locator('[data-action="dispatch"]').click()
    await expect(one).to_have_attribute("data-state", "dispatched")
    await expect(one).to_contain_text("调解员：张调解员")
    two = card(page, "#case-list", second["case_number"])
    await two.locator('[data-action="accept"]').click()
    await expect(two).to_have_attribute("data-state", "accepted")
    await two.locator('select[name="target"]').select_option(f"org:{made['b']['id']}")
    await two.locator('[data-action="dispatch"]').click()
    await expect(two).to_have_attribute("data-state", "dispatched")
    await expect(two).to_contain_text("办理：西城区人民调解委员会")
    await fits(page)

    # The mediator, on a phone: the inbox holds the case given to them only.
    m_context, m = await new_page(browser, errors)
    await log_in(m, srv, "zhang")
    await expect(m.locator("#cases-section")).to_be_hidden()
    inbox = m.locator("#inbox-list article.case-card")
    await expect(inbox).to_have_count(1)
    mine = card(m, "#inbox-list", first["case_number"])
    await expect(mine.locator('[data-action="return"]')).to_have_count(1)
    await mine.locator('[data-action="take"]').click()
    await expect(mine).to_have_attribute("data-state", "mediating")
    await expect(mine.locator(".case-state")).to_have_text("调解中")
    # Its sessions: one with the expert from the pool; the outbox to send.
    await mine.locator("details.case-sessions > summary").click()
    await expect(mine.locator("details.case-sessions")).to_have_attribute("data-loaded", "true")
    schedule = mine.locator("form.case-schedule")
    await expect(schedule.locator('input[name="expert"]')).to_have_count(1)
    await schedule.locator('input[name="expert"]').check()
    await schedule.locator('[data-action="schedule"]').click()
    await expect(mine.locator("li.case-session")).to_have_count(1)
    await expect(mine.locator("li.case-session")).to_have_attribute("data-state", "scheduled")
    messages = mine.locator("li.outbox-message")
    await expect(messages).to_have_count(3)
    applicant = mine.locator('li.outbox-message[data-side="applicant"]')
    await expect(applicant).to_contain_text("王淑芬")
    await expect(applicant).to_contain_text("13912345678")
    await expect(applicant.locator(".invite-url")).to_have_value(
        re.compile(re.escape(f"{srv.url}/join#token="))
    )
    await expect(applicant.locator(".outbox-text")).to_contain_text(f"{srv.url}/c/")
    await expect(mine.locator('li.outbox-message[data-role="expert"]')).to_contain_text("周律师")
    # The notifications the server sends itself: their kinds and states, addresses masked.
    sent = mine.locator("ul.case-notifications")
    await expect(sent.locator('li[data-kind="session_scheduled"]')).to_have_count(3)
    received = sent.locator('li[data-kind="case_received"]').first
    await expect(received).to_contain_text("案件已登记")
    await expect(received).to_contain_text("139****5678")
    await m_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=srv.url)
    await applicant.locator('[data-action="copy"]').click()
    await expect(m.locator("#toast")).to_have_text("链接已复制，请发送给受邀人。")
    copied = await m.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("【调解通知】王淑芬您好") and "申请人" in copied
    await fits(m)
    # Close with an outcome.
    await mine.locator('form.case-close select[name="outcome"]').select_option("success")
    await mine.locator('[data-action="close"]').click()
    await expect(mine).to_have_attribute("data-state", "succeeded")
    # After mediation (docs/COURT.md): the checklist, the court bundle downloaded, the
    # court's answer and a follow-up recorded, in the panel 回访与司法确认.
    await mine.locator("details.case-aftercare > summary").click()
    court = mine.locator(".case-court")
    await expect(court.locator(".case-court-checklist li").first).to_contain_text("司法确认申请书")
    await expect(court.locator('li[data-present="false"]').first).to_contain_text("［尚缺］")
    await court.locator('input[name="court"]').fill("东城区人民法院")
    async with m.expect_download() as download:
        await court.locator('[data-action="court-bundle"]').click()
    assert (await download.value).suggested_filename.endswith(".zip")
    await expect(m.locator("#toast")).to_have_text("申请材料已生成并下载")
    await expect(court.locator('input[name="court"]')).to_have_value("东城区人民法院")
    await court.locator('input[name="document_number"]').fill("（2026）东民特1号")
    await court.locator('[data-action="court-answer"]').click()
    await expect(mine.locator("ul.case-court-answers li")).to_contain_text("已受理")
    await mine.locator('form.case-follow-up select[name="performance"]').select_option("已履行")
    await mine.locator('[data-action="follow-up"]').click()
    await expect(mine).to_have_attribute("data-state", "following_up")
    await expect(mine.locator("ul.case-follow-ups li")).to_contain_text("电话 · 已履行")
    await fits(m)

    # Organisation B's mediator returns the second case with a reason: back to A's queue.
    x_context, x = await new_page(browser, errors)
    await log_in(x, srv, "xi")
    theirs = card(x, "#inbox-list", second["case_number"])
    await theirs.locator("details.case-return > summary").click()
    await theirs.locator('[data-action="return"]').click()
    await expect(theirs.locator(".case-return .field-error")).to_have_text("请写明退回原因。")
    await theirs.locator('textarea[name="reason"]').fill("不在本组织辖区")
    await theirs.locator('[data-action="return"]').click()
    await expect(x.locator("#inbox-empty")).to_be_visible()
    await page.reload()
    await expect(card(page, "#case-list", second["case_number"])).to_have_attribute(
        "data-state", "accepted"
    )

    # Staff intake from the home page (the mediator registers one in their organisation).
    await m.locator("#case-new > summary").click()
    await m.click("#case-create")
    await expect(m.locator("#case-error")).to_have_text("请选择纠纷类型。")
    await m.select_option("#case-source", "court")
    await m.select_option("#case-type", label="劳动争议")
    await m.select_option("#case-region", label="　　第一社区")
    await m.fill("#case-description", "拖欠三名工人两个月工资。")
    await m.fill("#case-applicant-name", "李建国")
    await m.fill("#case-applicant-phone", "137 0000 1111")
    await m.fill("#case-respondent-name", "某某建筑公司")
    await m.click("#case-create")
    await expect(m.locator("#toast")).to_contain_text("已登记：（")
    _, listed = await srv.admin("GET", "/api/cases?dispute_type=labour")
    (registered,) = listed["cases"]
    assert registered["holder_organisation_id"] == made["a"]["id"]
    _, full = await srv.admin("GET", f"/api/cases/{registered['case_id']}")
    assert full["source"] == "court" and full["parties"][0]["phone"] == "13700001111"
    assert full["reported_by"]["id"] == made["zhang"]["id"]

    # In English.
    await page.click("#lang-toggle")
    await expect(page.locator("#cases-section h2")).to_contain_text("Case queue")
    await expect(
        card(page, "#case-list", first["case_number"]).locator(".case-state")
    ).to_have_text("follow-up")  # followed up above (回访)
    await expect(page.locator("#filter-state option").first).to_have_text("All statuses")
    await fits(page)
    assert errors == []
    for c in (context, m_context, x_context):
        await c.close()
