"""The agreement in real headless Chromium, end to end with the real Notary.

The mediator drafts the agreement in the console (everyone sees the text and its
fingerprint live), asks for signatures; each party, on their own page (one of them on a
phone-sized screen), reads the text, ticks consent, types their name and draws a mark on
the canvas; the mediator signs last; the server seals the PDF and everyone sees it. The
PDF a party downloads is checked by independent tools: `pdfsig` (with the local CA in an
NSS database) finds every signature valid and trusted, `pdftotext` finds 调解协议书.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000
# Keys on first use, four PAdES signatures with timestamps and validation data: ~20-50 s on
# a quiet 2-core machine, minutes when it is busy.
SEAL_TIMEOUT_MS = 600_000
TERM_1 = "被申请人于2025年12月31日前赔偿申请人维修费人民币3000元。"
TERM_2 = "双方就此纠纷再无其他争议。"
ID_NUMBER = "110101199003071234"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is not installed: run `make test`, which installs it")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def open_page(browser: Browser, phone: bool = False) -> tuple[Page, list[str]]:
    """A fresh page that records uncaught script errors; `phone`: a 390x844 touch screen."""
    if phone:
        context = await browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            accept_downloads=True,
        )
    else:
        context = await browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


async def enter(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.locator("body")).to_have_attribute("data-screen", "join")
    await page.click("#join-button")
    await expect(page.locator("body")).to_have_attribute("data-screen", "room")
    # no need to send video for this test: keep the machine free for the seal
    await page.click("#camera-toggle")


async def draw_mark(page: Page) -> None:
    """Write a squiggle on the signing canvas with the mouse (pointer events)."""
    canvas = page.locator("#agreement-mark")
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    assert box is not None
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    await page.mouse.move(x + 0.1 * w, y + 0.6 * h)
    await page.mouse.down()
    for i in range(1, 16):
        await page.mouse.move(x + (0.1 + 0.05 * i) * w, y + (0.3 if i % 2 else 0.7) * h, steps=3)
    await page.mouse.up()
    await expect(page.locator("#agreement-mark-pad")).to_have_class(re.compile(r"\binked\b"))


async def sign(page: Page, name: str, wrong_name: str | None = None) -> None:
    """Open the dialog, read, consent, type the name, draw, sign."""
    await page.click("#agreement-sign-open")
    dialog = page.locator("#agreement-sign-dialog")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#agreement-sign-text")).to_contain_text(TERM_1)
    # Refusals are explained: nothing ticked, then nothing drawn, then a wrong name.
    await page.click("#agreement-sign-submit")
    await expect(page.locator("#agreement-sign-error")).to_have_text("请先勾选同意。")
    await page.check("#agreement-consent")
    await page.fill("#agreement-sign-name", wrong_name or name)
    await page.click("#agreement-sign-submit")
    await expect(page.locator("#agreement-sign-error")).to_have_text("请先在方框内手写签名。")
    await draw_mark(page)
    if wrong_name:
        await page.click("#agreement-sign-submit")
        await expect(page.locator("#agreement-sign-error")).to_have_text("请输入协议上您的姓名。")
        await page.fill("#agreement-sign-name", name)
    await page.click("#agreement-sign-submit")
    await expect(dialog).to_be_hidden()


async def run(*command: str) -> str:
    """A command's standard output (its exit status is not checked: pdfsig's is not 0
    for a document timestamp it cannot validate)."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    return out.decode()


def nss_db(tmp_path: Path, ca_cert: Path) -> str:
    """An NSS database that trusts the server's local CA (for pdfsig)."""
    db = tmp_path / "nss"
    db.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{db}", "-n", "tiaojie-ca", "-t", "CT,C,C", "-i", ca_cert],
        check=True,
    )
    return f"sql:{db}"


@pytest.mark.timeout(900)
async def test_mediator_drafts_parties_sign_and_the_signed_pdf_appears(
    live_server, browser, tmp_path
) -> None:
    for tool in ("pdfsig", "pdftotext", "pdftoppm", "qpdf", "certutil"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (poppler-utils, libnss3-tools)")
    srv = live_server
    room = await srv.create_room(title="王五与李四漏水纠纷调解", lobby=False)
    rid = room["id"]
    mediator = await srv.create_invite(rid, "mediator", "张调解员")
    party_a = await srv.create_invite(rid, "party", "王五")
    party_b = await srv.create_invite(rid, "party", "李四")

    a, a_errors = await open_page(browser)
    b, b_errors = await open_page(browser, phone=True)
    m, m_errors = await open_page(browser)
    await enter(a, party_a["url"])
    await enter(b, party_b["url"])
    await enter(m, mediator["url"])

    # Before any draft, everyone sees the empty agreement card; only the mediator edits.
    await expect(a.locator("#agreement-empty")).to_be_visible()
    await expect(a.locator("#agreement-editor")).to_be_hidden()
    await m.click("#tab-agreement")  # the mediator's console: the agreement tab
    await expect(m.locator("#agreement-editor")).to_be_visible()

    # -- the mediator drafts -------------------------------------------------------------
    editor = m.locator("#agreement-editor")
    parties = editor.locator("li.agreement-party")
    await expect(parties).to_have_count(2)
    # The console proposes the parties in the room; the mediator checks and completes.
    await expect(parties.nth(0).locator('[data-field="name"]')).to_have_value("王五")
    await parties.nth(0).locator('[data-field="id_number"]').fill(ID_NUMBER)
    await parties.nth(1).locator('[data-field="name"]').fill("李四")
    await parties.nth(1).locator('[data-field="role"]').select_option("respondent")
    await (
        parties.nth(0).locator('[data-field="participant_id"]').select_option(party_a["invite_id"])
    )
    await (
        parties.nth(1).locator('[data-field="participant_id"]').select_option(party_b["invite_id"])
    )
    await expect(m.locator("#agreement-mediator")).to_have_value("张调解员")
    await m.fill("#agreement-case-number", "（2025）京0105民调123号")
    await m.fill(
        "#agreement-facts", "申请人与被申请人系上下楼邻居，因楼上漏水损坏楼下天花板发生纠纷。"
    )
    await m.locator("#agreement-terms textarea").nth(0).fill(TERM_1)
    await m.click("#agreement-add-term")
    await m.locator("#agreement-terms textarea").nth(1).fill(TERM_2)
    await m.fill("#agreement-performance", "银行转账，一次付清。")
    await m.fill("#agreement-place", "朝阳区人民调解委员会（线上）")
    await expect(m.locator("#agreement-save-state")).to_have_attribute("data-kind", "ok")

    # Everyone sees the same text live, with the same short fingerprint.
    fingerprint = await m.locator("#agreement-card").get_attribute("data-fingerprint")
    assert fingerprint and re.fullmatch("[0-9a-f]{64}", fingerprint)
    for page in (a, b, m):
        card = page.locator("#agreement-card")
        await expect(card).to_have_attribute("data-fingerprint", fingerprint)
        await expect(card).to_have_attribute("data-status", "drafting")
        await expect(page.locator("#agreement-text")).to_contain_text("调解协议书")
        await expect(page.locator("#agreement-text")).to_contain_text(f"2. {TERM_2}")
        await expect(page.locator("#agreement-fingerprint")).to_contain_text(fingerprint[:12])
        # nobody signs while drafting
        await expect(page.locator("#agreement-sign-open")).to_be_hidden()

    # -- signatures ----------------------------------------------------------------------
    await m.click("#agreement-request")
    for page in (a, b, m):
        await expect(page.locator("#agreement-card")).to_have_attribute("data-status", "signing")
    # The mediator cannot go first.
    await expect(m.locator("#agreement-sign-open")).to_be_hidden()
    await expect(m.locator("#agreement-sign-hint")).to_have_text(
        "当事人全部签署后，调解员才能签署。"
    )
    final = await a.locator("#agreement-card").get_attribute("data-fingerprint")

    await sign(a, "王五", wrong_name="李四")
    applicant = m.locator('#agreement-signers li[data-role="applicant"]')
    await expect(applicant).to_have_attribute("data-signed", "true")
    await expect(a.locator("#agreement-sign-hint")).to_have_text("您已签署此版本的协议。")
    await expect(m.locator("#agreement-sign-open")).to_be_hidden()

    await sign(b, "李四")  # on the phone-sized screen
    await expect(m.locator('#agreement-signers li[data-role="respondent"]')).to_have_attribute(
        "data-signed", "true"
    )
    await sign(m, "张调解员")

    # -- sealing and the PDF -------------------------------------------------------------
    for page in (a, b, m):
        await expect(page.locator("#agreement-card")).to_have_attribute(
            "data-status", re.compile("sealing|signed")
        )
    for page in (a, b, m):
        await expect(page.locator("#agreement-card")).to_have_attribute(
            "data-status", "signed", timeout=SEAL_TIMEOUT_MS
        )
    await expect(a.locator("#agreement-download")).to_be_visible()
    assert await a.locator("#agreement-card").get_attribute("data-fingerprint") == final

    async with a.expect_download() as download_info:
        await a.click("#agreement-download")
    download = await download_info.value
    pdf_path = tmp_path / "agreement.pdf"
    await download.save_as(pdf_path)
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF-")
    digest = hashlib.sha256(pdf).hexdigest()
    await expect(a.locator("#agreement-pdf-fingerprint")).to_have_text(digest)
    await expect(b.locator("#agreement-pdf-fingerprint")).to_have_text(digest)

    # Independent checks: poppler's pdfsig with the local CA trusted, pdftotext.
    ca = srv.state.settings.data_dir / "keys" / "ca.cert.pem"
    report = await run("pdfsig", "-nssdir", nss_db(tmp_path, ca), str(pdf_path))
    fields = re.findall(r"Signature Field Name: (\S+)", report)
    assert fields[:4] == ["sig1_applicant", "sig2_respondent", "sig3_mediator", "seal"], report
    assert report.count("Signature Validation: Signature is Valid.") >= 4, report
    assert report.count("Certificate Validation: Certificate is Trusted.") >= 4, report
    assert "Common Name: 王五" in report and "Common Name: 李四" in report
    text = await run("pdftotext", str(pdf_path), "-")
    assert "调解协议书" in text and TERM_2 in text
    first_page = await run("pdftotext", "-f", "1", "-l", "1", str(pdf_path), "-")
    assert "调解协议书" in first_page
    rendered = await asyncio.create_subprocess_exec(
        "pdftoppm", "-f", "1", "-l", "1", "-r", "50", "-png", str(pdf_path), str(tmp_path / "p")
    )
    assert await rendered.wait() == 0 and list(tmp_path.glob("p*.png"))
    qpdf = await asyncio.create_subprocess_exec(
        "qpdf", "--check", str(pdf_path), stdout=asyncio.subprocess.PIPE
    )
    qpdf_out, _ = await qpdf.communicate()
    assert qpdf.returncode == 0, qpdf_out.decode()
    # pyhanko's long-term validation (tiaojie verify) agrees with pdfsig
    verify = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tiaojie",
        "verify",
        str(pdf_path),
        "--trust",
        str(ca),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    verify_out, _ = await verify.communicate()
    assert verify.returncode == 0, verify_out.decode()

    # The public status page (the QR code's target): signed, names, the PDF's fingerprint.
    status_url = await a.locator("#agreement-status-link").get_attribute("href")
    assert status_url and re.search(r"/a/[A-Za-z0-9_-]{32}$", status_url)
    await a.goto(status_url)
    await expect(a.locator("#agreement-status")).to_have_attribute("data-status", "signed")
    await expect(a.locator("#pdf-fingerprint")).to_have_text(digest)
    await expect(a.locator("#status-signers")).to_contain_text("王五")
    assert ID_NUMBER not in await a.content()

    assert a_errors == [] and b_errors == [] and m_errors == []
