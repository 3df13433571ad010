"""The statistics page (`/statistics`, web/js/statistics.js) in real headless Chromium, on a
phone-sized page, for a coordinator: reached from the staff page; each table beside its
chart holds the numbers of `GET /api/statistics`; changing a filter changes the address
(so a view can be shared), the numbers and the export links; the region table drills
down; the browser's back button restores the view; English; no script error and no CSP
violation (ECharts draws on a canvas, its tooltips as canvas text)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select, update

from bench.synthetic_cases import write
from tests.conftest import LiveServer
from tests.test_accounts import make_account, make_organisation
from tests.test_browser_csp import REPORT_VIOLATIONS
from tests.test_browser_staff import browser, new_page  # noqa: F401 - the fixture
from tests.test_browser_staff_cases import fits, log_in
from tiaojie.server.cases import counts
from tiaojie.server.cases.service import CASES
from tiaojie.server.cases.tables import cases

pytestmark = pytest.mark.browser

TABLES = ["by_type", "by_region", "by_source", "by_state", "monthly", "mediators"]


async def api(page: Page, query: str) -> dict[str, Any]:
    """What the API answers this page's session for `query`."""
    return await page.evaluate(
        "async (q) => (await fetch('/api/statistics' + (q ? '?' + q : ''))).json()", query
    )


async def table(page: Page, name: str) -> dict[str, int]:
    """The table of one statistic: code -> its first number."""
    return await page.evaluate(
        """(name) => Object.fromEntries([...document.querySelectorAll(
             `#stat-${name} tbody tr[data-code]`)].map((tr) =>
             [tr.dataset.code, Number(tr.querySelector('td.stats-count').textContent)]))""",
        name,
    )


def expected(body: dict[str, Any], name: str) -> dict[str, int]:
    if name == "by_region":
        return {r["code"]: r["count"] for r in body["by_region"]["items"]}
    if name == "monthly":
        return {r["month"]: r["count"] for r in body["monthly"]}
    if name == "mediators":
        return {r["id"]: r["in_hand"] for r in body["mediators"]}
    return {r["code"]: r["count"] for r in body[name]}


async def shows(page: Page, query: str) -> dict[str, Any]:
    """Wait until the page shows the numbers of `query`; each table equals the API's."""
    body = page.locator("body")
    await expect(body).to_have_attribute("data-query", query)
    await expect(body).to_have_attribute("data-state", "ready")
    answer = await api(page, query)
    for name in TABLES:
        assert await table(page, name) == expected(answer, name), name
    assert await page.text_content("#fig-total") == str(answer["total"])
    return answer


async def test_a_coordinator_filters_drills_down_and_shares_a_view(
    live_server: LiveServer,
    browser: Browser,  # noqa: F811 - the fixture
) -> None:
    srv = live_server
    store = srv.app[CASES].store
    found = await write(store.database, 400, Ed25519PrivateKey.generate(), time.time())
    org = await make_organisation(srv, "统计街道人民调解委员会")
    await make_account(srv, "stats-coordinator", org["id"], ["coordinator"], name="赵主任")
    async with store.database.write() as conn:  # the coordinator's centre coordinates them
        ids = [r.id for r in await conn.execute(select(cases.c.id).order_by(cases.c.id))]
        await conn.execute(
            update(cases)
            .where(cases.c.id.in_(ids[:300]))
            .values(coordinator_organisation_id=org["id"])
        )
        await counts.rebuild(conn)  # written behind the store's back: the summaries again

    errors: list[str] = []
    context, page = await new_page(browser, errors)
    await page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
    await log_in(page, srv, "stats-coordinator")
    await page.click("#stats-link")
    await expect(page).to_have_url(f"{srv.url}/statistics")
    everything = await shows(page, "")
    assert everything["total"] == 300
    assert await page.locator("#stat-by_type canvas").count() >= 1  # ECharts drew it
    await fits(page)

    # a filter: the address, the numbers and the exports follow
    await page.select_option("#f-type", "labour")
    await expect(page).to_have_url(f"{srv.url}/statistics?type=labour")
    labour = await shows(page, "type=labour")
    assert 0 < labour["total"] < everything["total"]
    href = await page.get_attribute("#export-xlsx", "href")
    assert href == "/api/statistics/export.xlsx?type=labour"

    # the region table drills down: a district, then its streets
    district = found.tree[0]["code"]
    await page.click(f'#stat-by_region tr[data-code="{district}"] button')
    query = f"region={district}&type=labour"
    await expect(page).to_have_url(f"{srv.url}/statistics?{query}")
    inside = await shows(page, query)
    assert inside["by_region"]["level"] == "street"
    assert await page.input_value("#f-region") == district

    # the shared address opens the same view; back restores the one before
    other = await context.new_page()
    await other.goto(f"{srv.url}/statistics?{query}")
    await shows(other, query)
    assert await other.input_value("#f-type") == "labour"
    await other.close()
    await page.go_back()
    await shows(page, "type=labour")
    assert await page.input_value("#f-region") == ""

    await page.click("#lang-toggle")
    await expect(page.locator("h1")).to_have_text("Statistics")
    await expect(page.locator("#heading-by_type")).to_have_text("By dispute type")
    await fits(page)
    violations = await page.evaluate("window.__csp || []")
    assert (errors, violations) == ([], [])
    await context.close()
