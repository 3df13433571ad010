"""A whole case in real headless Chromium, every page phone-sized, with the real recorder
and the real Notary (issue 12):

a resident reports a dispute at /report (with a photo) and gets the receipt with the QR
code; the coordinator, logged in, accepts and dispatches it to a mediator; the mediator
takes it and schedules a session with an expert from the pool; the parties and the
expert join by their links (from the case's outbox); the session is recorded; the
agreement, prefilled from the case, is signed and sealed; the mediator ends the
mediation as 调解成功. The progress page shows each stage as it happens and never a
name or phone number; the applicant's own link downloads the signed agreement. The
dossier (with Segments) verifies with `tiaojie verify`, and fails with a clear reason
after a log entry is edited, the agreement's PDF is swapped, or the photo is changed.

Joining, recording and signing reuse the room tests' helpers (tests/test_browser_room_ui.py
`Pages`, `sign`; tests/test_browser_recording.py `fragments`, `eventually`).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.support.staff import PASSWORD
from tests.test_agreements import keys, shared_keys  # noqa: F401 - the keys, made once
from tests.test_browser_agreement import SEAL_TIMEOUT_MS, TERM_1
from tests.test_browser_cases import camera_photo
from tests.test_browser_recording import browser, eventually, fragments  # noqa: F401
from tests.test_browser_room_ui import Pages, sign

pytestmark = pytest.mark.browser

SECRETS = ["王淑芬", "13912345678", "139 1234 5678", "幸福里物业公司", "电梯停运"]
DESCRIPTION = "小区电梯停运两个月，物业一直不修。"


async def staff(srv: Any) -> dict[str, Any]:
    status, org = await srv.admin(
        "POST", "/api/organisations", json={"name": "桃城区人民调解委员会"}
    )
    assert status == 201
    made: dict[str, Any] = {"org": org}
    for login, name, roles in (
        ("zhao", "赵主任", ["coordinator"]),
        ("zhang", "张调解员", ["mediator"]),
    ):
        status, made[login] = await srv.admin(
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
        assert status == 201, made[login]
    status, made["expert"] = await srv.admin(
        "POST",
        "/api/experts",
        json={"name": "周律师", "specialties": ["物业纠纷"], "phone": "13311112222"},
    )
    assert status == 201
    return made


async def logged_in(pages: Pages, srv: Any, login: str) -> Page:
    page = await pages.open(f"{srv.url}/login", phone=True)
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await page.fill("#login-input", login)
    await page.fill("#password-input", PASSWORD)
    await page.click("#login-submit")
    await expect(page).to_have_url(f"{srv.url}/staff")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    return page


async def verify(path: Path, trust: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tiaojie", "verify", str(path), "--trust", str(trust),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


def rewrite(source: Path, target: Path, change: Any) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            new.writestr(name, change(name, old.read(name)))
    return target


@pytest.mark.timeout(1200)
async def test_a_whole_case_on_phones(live_server, browser, tmp_path) -> None:  # noqa: F811
    srv = live_server
    made = await staff(srv)
    pages = Pages(browser)

    # -- the resident reports, on a phone -------------------------------------------------
    resident = await pages.open(f"{srv.url}/report", phone=True)
    await expect(resident.locator("body")).to_have_attribute("data-state", "ready")
    await resident.fill("#report-name", "王淑芬")
    await resident.fill("#report-phone", "139 1234 5678")
    await resident.select_option("#report-type", label="物业纠纷")
    await resident.select_option("#report-community", label="第一社区")
    await resident.fill("#report-respondent", "幸福里物业公司")
    await resident.fill("#report-description", DESCRIPTION)
    await resident.set_input_files(
        "#report-photos",
        files=[{"name": "电梯.jpg", "mimeType": "image/jpeg", "buffer": camera_photo()}],
    )
    await expect(resident.locator("#report-photo-list .photo-item")).to_have_count(1)
    await resident.click("#report-submit")
    await expect(resident.locator("body")).to_have_attribute("data-screen", "receipt")
    number = await resident.locator("#receipt-number").text_content()
    assert number and re.fullmatch(r"（\d{4}）人调字第0001号", number)
    assert await resident.locator("#receipt-qr").evaluate(
        "img => img.complete && img.naturalWidth > 0"
    )
    progress_url = srv.url + (await resident.locator("#receipt-link").get_attribute("href") or "")

    async def progress(state: str, stage: str) -> None:
        """The progress page: this state, this stage current, nothing personal."""
        await resident.goto(progress_url)
        await expect(resident.locator("#progress-state")).to_have_attribute("data-state", state)
        current = resident.locator('#progress-timeline [data-status="current"]')
        await expect(current).to_have_attribute("data-stage", stage)
        content = await resident.content()
        for word in SECRETS:
            assert word not in content, (state, word)
        assert not re.search(r"1[3-9][0-9]{9}", content)
        assert await resident.evaluate("document.documentElement.scrollWidth <= innerWidth")

    await progress("reported", "reported")

    # -- the coordinator accepts and dispatches it ----------------------------------------
    coordinator = await logged_in(pages, srv, "zhao")
    case = coordinator.locator("#case-list article.case-card", has_text=number)
    await expect(case).to_have_attribute("data-state", "reported")
    await case.locator('[data-action="accept"]').click()
    await expect(case).to_have_attribute("data-state", "accepted")
    await progress("accepted", "accepted")
    await case.locator('select[name="target"]').select_option(f"mediator:{made['zhang']['id']}")
    await case.locator('[data-action="dispatch"]').click()
    await expect(case).to_have_attribute("data-state", "dispatched")
    await progress("dispatched", "dispatched")

    # -- the mediator takes it and schedules a session with the expert --------------------
    mediator = await logged_in(pages, srv, "zhang")
    mine = mediator.locator("#inbox-list article.case-card", has_text=number)
    await mine.locator('[data-action="take"]').click()
    await expect(mine).to_have_attribute("data-state", "mediating")
    await progress("mediating", "mediating")
    await expect(resident.locator("#progress-session")).to_contain_text("尚未安排")
    await mine.locator("details.case-sessions > summary").click()
    await expect(mine.locator("details.case-sessions")).to_have_attribute("data-loaded", "true")
    await mine.locator('form.case-schedule input[name="expert"]').check()
    await mine.locator('[data-action="schedule"]').click()
    session = mine.locator("li.case-session")
    await expect(session).to_have_count(1)
    room_id = await session.get_attribute("data-room-id")
    links: dict[str, str] = {}
    for who, selector in (
        ("applicant", '[data-side="applicant"]'),
        ("respondent", '[data-side="respondent"]'),
        ("expert", '[data-role="expert"]'),
    ):
        message = mine.locator(f"li.outbox-message{selector}")
        links[who] = await message.locator(".invite-url").input_value()
        if who == "applicant":
            text = await message.locator(".outbox-text").inner_text()
            links["own"] = re.search(r"https?://\S+/c/\S+\?key=\S+", text).group(0)  # type: ignore[union-attr]
    await resident.goto(progress_url)
    await expect(resident.locator("#progress-session")).not_to_contain_text("尚未安排")

    # -- the session: the mediator enters from the staff page, everyone joins -------------
    await session.locator('[data-action="enter"]').click()
    await expect(mediator.locator("body")).to_have_attribute("data-screen", "join")
    await mediator.click("#join-button")
    await expect(mediator.locator("body")).to_have_attribute("data-screen", "room")
    applicant = await pages.join({"url": links["applicant"]}, screen="lobby", phone=True)
    respondent = await pages.join({"url": links["respondent"]}, screen="lobby", phone=True)
    expert = await pages.join({"url": links["expert"]}, screen="lobby", phone=True)
    await expect(mediator.locator("#lobby-admit-all")).to_be_visible()
    await mediator.click("#lobby-admit-all")
    for page in (applicant, respondent, expert):
        await expect(page.locator("body")).to_have_attribute("data-screen", "room")
    for page in (respondent, expert, mediator):  # one camera is enough: the machine is shared
        await page.click("#camera-toggle")

    # -- recorded -------------------------------------------------------------------------
    await mediator.click("#recording-button")
    for page in (applicant, respondent, expert):
        await page.click("#recording-consent-accept")
    assert room_id
    recording_id = srv.state.recordings.processes[room_id].recording_id
    directory = srv.state.settings.data_dir / "recordings" / recording_id
    applicant_invite = next(
        i for i in (await srv.room(room_id))["invites"] if i["side"] == "applicant"
    )

    async def recorded() -> bool:
        return fragments(directory, applicant_invite["invite_id"]) >= 3

    await eventually(recorded, "3 fragments of the applicant's camera", timeout=60)

    # -- the agreement, prefilled from the case, signed and sealed ------------------------
    await mediator.click("#tab-agreement")
    await expect(mediator.locator("#agreement-case-number")).to_have_value(number)
    await expect(mediator.locator("#agreement-facts")).to_have_value(DESCRIPTION)
    parties = mediator.locator("#agreement-parties li.agreement-party")
    await expect(parties).to_have_count(2)
    await expect(parties.nth(0).locator('[data-field="name"]')).to_have_value("王淑芬")
    await expect(parties.nth(1).locator('[data-field="role"]')).to_have_value("respondent")
    await expect(mediator.locator("#agreement-experts")).to_have_value("周律师")
    await expect(mediator.locator("#agreement-mediator")).to_have_value("张调解员")
    await mediator.locator("#agreement-terms textarea").nth(0).fill(TERM_1)
    await mediator.fill("#agreement-performance", "银行转账，一次付清。")
    await mediator.fill("#agreement-place", "桃城区人民调解委员会（线上）")
    await expect(mediator.locator("#agreement-save-state")).to_have_attribute("data-kind", "ok")
    await mediator.click("#agreement-request")
    await sign(applicant, "王淑芬")
    await sign(respondent, "幸福里物业公司")
    await expect(
        mediator.locator('#agreement-signers li[data-role="respondent"]')
    ).to_have_attribute("data-signed", "true")
    await sign(mediator, "张调解员")
    for page in (applicant, mediator):
        await expect(page.locator("#agreement-card")).to_have_attribute(
            "data-status", "signed", timeout=SEAL_TIMEOUT_MS
        )
    await mediator.click("#recording-button")
    await expect(mediator.locator("#recording-button")).to_have_attribute(
        "data-recording", "off", timeout=60_000
    )

    # The case's log names the recording's Seal and the PDF.
    _, listed = await srv.admin("GET", "/api/cases")
    case_id = listed["cases"][0]["case_id"]

    async def logged(kind: str) -> dict[str, Any] | None:
        _, log = await srv.admin("GET", f"/api/cases/{case_id}/log")
        found = [
            e["event"]
            for e in log["entries"]
            if e["type"] == "event" and e["event"]["kind"] == kind
        ]
        return found[-1] if found else None

    sealed = await eventually(lambda: logged("agreement_sealed"), "the agreement in the case's log")
    await eventually(
        lambda: logged("recording_sealed"), "the recording's seal in the case's log", 60
    )

    # -- the mediator ends the mediation as 调解成功 ---------------------------------------
    await mediator.goto(f"{srv.url}/staff")
    mine = mediator.locator("#inbox-list article.case-card", has_text=number)
    await mine.locator('form.case-close select[name="outcome"]').select_option("success")
    await mine.locator('[data-action="close"]').click()
    await expect(mine).to_have_attribute("data-state", "succeeded")
    await progress("succeeded", "concluded")
    await expect(resident.locator('#progress-timeline [data-stage="concluded"]')).to_contain_text(
        "调解成功"
    )
    done = resident.locator('#progress-timeline [data-status="done"]')
    await expect(done).to_have_count(4)  # reported, accepted, dispatched, mediating
    # the agreement's state on the case's page (no names: checked by `progress` above)
    await expect(resident.locator(".progress-agreement")).to_have_attribute("data-status", "sealed")

    # The applicant's own link: their signed agreement (and still no name on the page).
    await resident.goto(links["own"])
    await expect(resident.locator("#party-view")).to_have_attribute("data-role", "applicant")
    download = resident.locator("#party-agreements a[data-action='download']")
    await expect(download).to_have_count(1)
    async with resident.expect_download() as download_info:
        await download.click()
    saved = tmp_path / "their-agreement.pdf"
    await (await download_info.value).save_as(saved)
    pdf = saved.read_bytes()
    assert hashlib.sha256(bytes(pdf)).hexdigest() == sealed["sha256"]
    content = await resident.content()
    assert not any(word in content for word in SECRETS)

    # -- the dossier verifies, and says what changed --------------------------------------
    status, data = await srv.admin("GET", f"/api/cases/{case_id}/dossier?segments=true")
    assert status == 200
    dossier = tmp_path / "dossier.zip"
    dossier.write_bytes(data)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    code = sealed["agreement_code"]
    assert f"agreements/{code}.pdf" in names
    assert any(n.startswith(f"recordings/{recording_id}/segments/") for n in names)
    trust = srv.state.settings.data_dir / "keys" / "recorder_ed25519.pub.pem"
    status_code, out = await verify(dossier, trust)
    assert status_code == 0, out

    def edit_log(name: str, data: bytes) -> bytes:
        if name != "case-log.jsonl":
            return data
        lines = data.splitlines(keepends=True)
        entry = json.loads(lines[2])  # the `accepted` event
        entry["event"]["actor"]["id"] = "someone-else"
        lines[2] = json.dumps(entry, ensure_ascii=False).encode() + b"\n"
        return b"".join(lines)

    photo = next(n for n in names if n.startswith("attachments/"))
    tampered = {
        "edited-log": (edit_log, "entry-hash-mismatch"),
        "swapped-pdf": (
            lambda n, d: (
                (d[:-64] + b"\n%swapped\n" + d[-54:]) if n == f"agreements/{code}.pdf" else d
            ),
            "swapped or changed",
        ),
        "changed-photo": (
            lambda n, d: (d[:100] + bytes([d[100] ^ 1]) + d[101:]) if n == photo else d,
            "dossier-file-altered",
        ),
    }
    for label, (change, reason) in tampered.items():
        bad = rewrite(dossier, tmp_path / f"{label}.zip", change)
        status_code, out = await verify(bad, trust)
        assert status_code == 1 and reason in out, (label, out)
    assert "NOT AUTHENTIC" in out and photo in out

    await pages.check()
