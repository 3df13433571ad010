"""A resident's report in real headless Chromium on a phone-sized page: /report, the
receipt with the case number, the QR code and the progress link, then the progress page
as the case moves, in Chinese and English, under the pages' CSP, never showing the
resident's name or phone number."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.async_api import expect

from tests.support.case_staff import seed_case_staff
from tests.test_browser_csp import REPORT_VIOLATIONS
from tests.test_browser_recording import TIMEOUT_MS, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def camera_photo() -> bytes:
    """A photo as a phone camera makes it: bigger than the page sends."""
    image = Image.new("RGB", (2400, 1800))
    for x in range(0, 2400, 100):
        image.paste((x % 255, 120, 200 - x % 200), (x, 0, x + 100, 1800))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


async def test_a_resident_reports_and_follows_the_case_on_a_phone(live_server, browser):  # noqa: F811
    srv = live_server
    await seed_case_staff(srv)  # the mediator the case is dispatched to
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.add_init_script(REPORT_VIOLATIONS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security" in m.text else None)

    await page.goto(srv.url + "/report")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#screen-report h1")).to_have_text("反映纠纷")
    # Sending an empty form says what is missing, and sends nothing.
    await page.click("#report-submit")
    await expect(page.locator("#report-name-error")).to_have_text("请填写您的姓名。")
    await page.fill("#report-name", "王淑芬")
    await page.fill("#report-phone", "139 1234 5678")
    await page.select_option("#report-type", label="物业纠纷")
    await page.select_option("#report-community", label="第二社区")
    await page.fill("#report-respondent", "幸福里物业公司")
    await page.fill("#report-description", "小区电梯停运两个月，物业一直不修。")
    await page.set_input_files(
        "#report-photos",
        files=[{"name": "电梯.jpg", "mimeType": "image/jpeg", "buffer": camera_photo()}],
    )
    await expect(page.locator("#report-photo-list .photo-item")).to_have_count(1)
    await expect(page.locator("#report-photo-list img")).to_have_attribute(
        "src", re.compile("^data:image/jpeg")
    )
    await page.click("#report-submit")

    # The receipt: the case number, the QR code (loaded), the progress link.
    await expect(page.locator("body")).to_have_attribute("data-screen", "receipt")
    number = await page.locator("#receipt-number").text_content()
    assert number and re.fullmatch(r"（\d{4}）人调字第0001号", number)
    qr = page.locator("#receipt-qr")
    await expect(qr).to_have_attribute(
        "src", re.compile(r"^/api/progress/[A-Za-z0-9_-]{22}/qr\.svg$")
    )
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
    link = page.locator("#receipt-link")
    href = await link.get_attribute("href")
    assert href and re.fullmatch(r"/c/[A-Za-z0-9_-]{22}", href)
    assert await link.text_content() == srv.url + href
    # The photo arrived smaller than the camera made it, and is what the log names.
    _, listed = await srv.admin("GET", "/api/cases")
    case_id = listed["cases"][0]["case_id"]
    _, case = await srv.admin("GET", f"/api/cases/{case_id}")
    assert case["parties"][0]["phone"] == "13912345678"
    assert [p["name"] for p in case["parties"]] == ["王淑芬", "幸福里物业公司"]
    (attachment,) = case["attachments"]
    assert attachment["media_type"] == "image/jpeg" and attachment["filename"] == "电梯.jpg"
    _, photo = await srv.admin("GET", f"/api/cases/{case_id}/attachments/{attachment['id']}")
    assert max(Image.open(io.BytesIO(photo)).size) == 1600
    # A reload keeps the receipt (this tab only).
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-screen", "receipt")
    await expect(page.locator("#receipt-number")).to_have_text(number)

    # The progress page from the receipt's link.
    await link.click()
    await page.wait_for_url(srv.url + href)
    state = page.locator("#progress-state")
    await expect(state).to_have_attribute("data-state", "reported")
    await expect(page.locator("#progress-case-number")).to_have_text(number)
    await expect(page.locator('#progress-timeline [data-status="current"]')).to_have_attribute(
        "data-stage", "reported"
    )
    assert await page.locator("#progress-qr").evaluate("img => img.naturalWidth > 0")

    secrets = ["王淑芬", "13912345678", "139 1234 5678", "幸福里物业公司", "电梯停运"]

    async def shows_nothing_personal() -> None:
        text = await page.content()
        for word in secrets:
            assert word not in text, word

    await shows_nothing_personal()
    await srv.admin("POST", f"/api/cases/{case_id}/transitions", json={"action": "accept"})
    await page.reload()
    await expect(state).to_have_attribute("data-state", "accepted")
    await expect(state).to_have_text("待分派")
    await expect(page.locator('#progress-timeline [data-status="done"]')).to_have_count(1)
    await shows_nothing_personal()
    await srv.admin(
        "POST",
        f"/api/cases/{case_id}/transitions",
        json={"action": "dispatch", "mediator_id": "mediator-zhou"},
    )
    await srv.admin("POST", f"/api/cases/{case_id}/transitions", json={"action": "take"})
    await page.reload()
    await expect(state).to_have_attribute("data-state", "mediating")
    await expect(page.locator("#progress-next")).to_contain_text("调解员正在办理")
    await expect(page.locator("#progress-deadline")).to_have_text(
        re.compile(r"^\d{4}-\d{2}-\d{2}$")
    )
    await shows_nothing_personal()
    # In English.
    await page.click("#lang-toggle")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(state).to_have_text("in mediation")
    await shows_nothing_personal()
    # The page fits a phone: nothing scrolls sideways.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # The report page in English too, back on a fresh form.
    await page.goto(srv.url + "/report")
    await page.click("#receipt-new")
    await expect(page.locator("body")).to_have_attribute("data-screen", "report")
    await page.click("#lang-toggle")
    await expect(page.locator("#screen-report h1")).to_have_text("Report a dispute")
    await expect(page.locator("#report-type option").nth(2)).to_have_text("Neighbours")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    violations = await page.evaluate("window.__csp || []")
    assert violations == [] and errors == [], (violations, errors)
    await context.close()
