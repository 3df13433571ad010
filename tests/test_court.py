"""What follows a successful mediation: the hand-off to the court (司法确认) and the
follow-ups (回访).

- With the real recorder and Notary (SQLite): a case closed as 调解成功 with a signed
  agreement and a sealed recording; the court bundle its mediator prepares holds the
  pre-filled application (pdftotext reads it: the court, the parties, the checklist with
  what is missing), the signed agreement (pdfsig trusts its signatures), the recording's
  Chain and verification report, the case log; `tiaojie verify` accepts it, and names the
  problem when a byte of the application changed, the agreement was removed or the
  manifest edited. The case log names the bundle's manifest; the court's answer is
  recorded and logged.
- Without media (SQLite and PostgreSQL): the bundle refused for a case not closed as
  调解成功 (409) and for an archivist (403); the court deadline reminder queued on closing
  and moot once the court answered; follow-ups recorded (in the log, the state 回访),
  the `follow_up=overdue` query, and the 回访 reminder moot once followed up.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.staff import StaffBrowser
from tests.test_accounts import make_account, make_organisation
from tests.test_agreements import (  # noqa: F401 - the keys, made once
    Room,
    keys,
    pdf_text,
    shared_keys,
    tiaojie_verify,
    wait_status,
)
from tests.test_browser_agreement import nss_db, run
from tests.test_case_evidence import a_session, rewrite
from tests.test_case_sessions import CASE, events, eventually_logged
from tests.test_cases import png
from tests.test_recording_api import wait_recorder
from tiaojie.server.agreements import AGREEMENTS
from tiaojie.server.cases.service import CASES
from tiaojie.server.notifications.service import NOTIFICATIONS
from tiaojie.server.notifications.tables import notifications as outbox_rows

COURT = "桃城区人民法院"


async def raw_post(browser: Any, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """A staff member's POST whose answer is bytes (the ZIP)."""
    async with browser.http.post(
        browser.base_url + path, json=body, headers={"X-CSRF-Token": browser.csrf}
    ) as response:
        return response.status, await response.read()


def problems(report: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(p["code"], p["file"]) for p in report["problems"]]


async def verify_json(bundle: Path, trust: Path) -> tuple[int, dict[str, Any]]:
    ca = trust.parent / "ca.cert.pem"
    done = await tiaojie_verify(bundle, "--trust", trust, "--ca", ca, "--json")
    return done.returncode, json.loads(done.stdout)


@pytest.mark.timeout(900)
async def test_the_court_bundle_of_a_successful_case(live_server: Any, tmp_path: Path) -> None:
    srv = live_server
    s = await a_session(srv)
    cid, path, m = s["case"]["case_id"], s["path"], s["clients"]["mediator"]
    browser = s["browser"]

    # Recorded, agreed, signed and sealed (as tests/test_case_evidence.py does).
    recording = f"/api/rooms/{s['room']['id']}/recording"
    status, started = await srv.request("POST", recording, s["entry"]["token"])
    assert status == 201, started
    await wait_recorder(srv, s["room"]["id"])
    prefill = (await m.call("agreement_prefill", {}))["prefill"]
    draft = {
        **{k: prefill[k] for k in ("case_number", "parties", "mediator", "experts", "facts")},
        "language": "zh-CN",
        "terms": ["物业公司于2026年12月31日前修复电梯。"],
        "performance": "物业公司自行修复。",
        "date": "2026年11月30日",
        "place": "桃城区人民调解委员会（线上）",
    }
    ack = await m.call("agreement_draft", draft)
    ack = await m.call("agreement_request_signatures", {"fingerprint": ack["fingerprint"]})
    fingerprint, code = ack["fingerprint"], ack["code"]
    for side, name in (("applicant", "王淑芬"), ("respondent", "幸福里物业公司")):
        assert (await Room.sign(s["clients"][side], fingerprint, name))["ok"] is True
    assert (await Room.sign(m, fingerprint, "张调解员"))["ok"] is True
    await wait_status(s["clients"]["applicant"], "signed")
    await srv.app[AGREEMENTS].wait_sealed()
    await eventually_logged(srv, cid, "agreement_sealed")
    assert (await srv.request("DELETE", recording, s["entry"]["token"]))[0] == 200
    await eventually_logged(srv, cid, "recording_sealed")

    # Still in mediation: no bundle (409).
    status, _ = await raw_post(browser, f"{path}/court-bundle", {"court": COURT})
    assert status == 409
    # The applicant's identity document, attached to the case.
    photo = {"filename": "身份证.png", "data": base64.b64encode(png()).decode()}
    status, case = await browser.request(
        "POST", f"{path}/attachments", json={"attachments": [photo]}
    )
    assert status == 201, case
    id_document = case["attachments"][0]
    status, case = await browser.request(
        "POST", f"{path}/transitions", json={"action": "close", "outcome": "success"}
    )
    assert status == 200 and case["state"] == "succeeded", case

    body = {
        "court": COURT,
        "parties": [
            {"position": 0, "address": "桃城区幸福里3号楼201", "id_document": id_document["id"]},
            {"position": 1, "address": "桃城区幸福里物业服务中心", "agent": {"name": "赵律师"}},
        ],
    }
    status, data = await raw_post(browser, f"{path}/court-bundle", body)
    assert status == 200, data[:300]
    bundle = tmp_path / "court.zip"
    bundle.write_bytes(data)
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    rid = started["id"]
    assert {
        "application.pdf",
        f"agreements/{code}.pdf",
        f"recordings/{rid}/chain.jsonl",
        f"recordings/{rid}/verification.json",
        "case-log.jsonl",
        f"attachments/{id_document['sha256']}",
        "manifest.json",
        "manifest.sig",
    } <= names
    manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
    assert manifest["application"]["agreement_code"] == code
    assert manifest["application"]["recording_ids"] == [rid]

    # `tiaojie verify` accepts it, the agreement's PAdES signatures too.
    trust = srv.state.settings.data_dir / "keys" / "recorder_ed25519.pub.pem"
    code_, report = await verify_json(bundle, trust)
    assert code_ == 0, report
    assert report["subject"] == "court_bundle" and report["court"] == COURT
    (agreement,) = report["agreements"]
    assert agreement["verdict"] == "authentic" and agreement["recording"] is not None
    # The checklist names what is missing: the respondent's identity document, and the
    # power of attorney of its agent; property proof (物业纠纷) is asked for too.
    missing = " ".join(report["missing_items"])
    assert "被申请人 幸福里物业公司 的身份证明" in missing
    assert "赵律师 的授权委托书" in missing and "财产权利证明" in missing
    assert "申请人 王淑芬 的身份证明" not in missing
    text = await tiaojie_verify(bundle, "--trust", trust, "--lang", "zh")
    assert "司法确认申请材料包" in text.stdout and "尚缺材料" in text.stdout

    # Independent judges: pdftotext reads the application; pdfsig trusts the agreement.
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(bundle).extractall(unpacked)
    printed = "".join((await pdf_text(unpacked / "application.pdf")).split())
    for expected in ("司法确认申请书", COURT, s["case"]["case_number"], "王淑芬", "申请材料清单"):
        assert expected in printed, expected
    assert "［尚缺］" in printed and "赵律师" in printed
    ca = srv.state.settings.data_dir / "keys" / "ca.cert.pem"
    nss = await asyncio.to_thread(nss_db, tmp_path, ca)
    signed = await run("pdfsig", "-nssdir", nss, str(unpacked / "agreements" / f"{code}.pdf"))
    assert signed.count("Signature Validation: Signature is Valid.") >= 4, signed

    # Tampering is caught, each with its problem named.
    def flip(name: str, data: bytes) -> bytes:
        if name != "application.pdf":
            return data
        at = len(data) // 2
        return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]

    changed = rewrite(bundle, tmp_path / "changed.zip", flip)
    code_, report = await verify_json(changed, trust)
    assert code_ == 1 and problems(report) == [("dossier-file-altered", "application.pdf")]
    removed = rewrite(
        bundle, tmp_path / "removed.zip", lambda n, d: None if n.endswith(f"{code}.pdf") else d
    )
    code_, report = await verify_json(removed, trust)
    assert code_ == 1
    assert ("dossier-file-missing", f"agreements/{code}.pdf") in problems(report)
    assert f"agreements/{code}.pdf" in report["missing"]

    def forge(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        return data.replace(COURT.encode(), "别的法院".encode())

    forged = rewrite(bundle, tmp_path / "forged.zip", forge)
    code_, report = await verify_json(forged, trust)
    assert code_ == 1 and problems(report) == [("dossier-manifest-signature", "manifest.sig")]

    # The case log names the bundle's manifest; the court's answer is recorded and logged.
    prepared = await eventually_logged(srv, cid, "court_bundle_prepared")
    raw_manifest = zipfile.ZipFile(bundle).read("manifest.json")
    assert prepared["manifest_sha256"] == hashlib.sha256(raw_manifest).hexdigest()
    answer = {"status": "confirmed", "document_number": "（2026）桃民特12号", "date": "2026-12-10"}
    status, court = await browser.request("POST", f"{path}/court-answer", json=answer)
    assert status == 201, court
    assert court["answers"][-1]["document_number"] == "（2026）桃民特12号"
    assert court["court"] == COURT and court["agreement_code"] == code
    logged = await eventually_logged(srv, cid, "court_answered")
    assert logged["status"] == "confirmed" and logged["court"] == COURT

    for client in s["clients"].values():
        await client.close()
    await browser.close()


async def a_case_in_mediation(srv: Any, mediator: dict[str, Any], browser: Any) -> str:
    status, receipt = await srv.admin("POST", "/api/cases", json=CASE)
    assert status == 201, receipt
    path = f"/api/cases/{receipt['case_id']}"
    await srv.admin("POST", f"{path}/transitions", json={"action": "accept"})
    await srv.admin(
        "POST", f"{path}/transitions", json={"action": "dispatch", "mediator_id": mediator["id"]}
    )
    status, case = await browser.request("POST", f"{path}/transitions", json={"action": "take"})
    assert status == 200, case
    return path


async def outbox_of(srv: Any, case_id: str, kind: str) -> dict[str, Any]:
    from sqlalchemy import select

    async with srv.app[CASES].database.read() as conn:
        rows = await conn.execute(
            select(outbox_rows).where(outbox_rows.c.case_id == case_id, outbox_rows.c.kind == kind)
        )
        (row,) = [dict(r) for r in rows.mappings()]
    return row


@pytest.mark.timeout(300)
async def test_court_rules_deadline_reminder_and_follow_ups(room_server: Any) -> None:
    srv = room_server
    org = await make_organisation(srv, "桃城区人民调解委员会")
    mediator = await make_account(srv, "13912340000", org["id"], ["mediator"])
    await make_account(srv, "dang-an", org["id"], ["archivist"])
    browser, archivist = StaffBrowser(srv.url), StaffBrowser(srv.url)
    assert (await browser.login("13912340000"))[0] == 201
    assert (await archivist.login("dang-an"))[0] == 201
    store = srv.app[CASES].store

    # Case A: closed as 调解成功 with its follow-up already overdue (due a day before it
    # closed); case B: closed as 调解不成功, due in 30 days.
    a = await a_case_in_mediation(srv, mediator, browser)
    b = await a_case_in_mediation(srv, mediator, browser)
    store.follow_up_days = -1
    status, closed_a = await browser.request(
        "POST", f"{a}/transitions", json={"action": "close", "outcome": "success"}
    )
    assert status == 200, closed_a
    store.follow_up_days = 30
    status, closed_b = await browser.request(
        "POST", f"{b}/transitions", json={"action": "close", "outcome": "failure"}
    )
    assert status == 200
    assert closed_a["follow_up_overdue"] is True and closed_b["follow_up_overdue"] is False
    status, listed = await browser.request("GET", "/api/cases?follow_up=overdue")
    assert status == 200
    assert [c["case_id"] for c in listed["cases"]] == [closed_a["case_id"]]

    # The bundle: 409 for a case not closed as 调解成功, 403 for an archivist who reads it.
    status, _ = await raw_post(browser, f"{b}/court-bundle", {"court": COURT})
    assert status == 409
    status, _ = await raw_post(archivist, f"{a}/court-bundle", {"court": COURT})
    assert status == 403
    answer = {"status": "accepted", "document_number": "（2026）桃民特1号", "date": "2026-12-01"}
    status, _ = await archivist.request("POST", f"{a}/court-answer", json=answer)
    assert status == 403
    # With no signed agreement in the system, the checklist says the agreement is missing.
    status, data = await raw_post(browser, f"{a}/court-bundle", {"court": COURT})
    assert status == 200
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))
    assert "调解协议书（已签署）" in manifest["application"]["missing"]
    status, court = await browser.request("GET", f"{a}/court")
    assert status == 200 and court["court"] == COURT
    assert court["deadline_at"] - court["effective_at"] == 30 * 86400

    # The court deadline reminder: queued when the case closed as 调解成功, to the mediator
    # (their login is a phone number), a week before the 30 days end; moot once answered.
    notices = srv.app[NOTIFICATIONS]
    reminder = await outbox_of(srv, closed_a["case_id"], "court_deadline")
    assert reminder["status"] == "queued" and reminder["address"] == "13912340000"
    assert reminder["not_before"] == court["deadline_at"] - 7 * 86400
    assert await notices.resolve(reminder) is not None
    status, court = await browser.request("POST", f"{a}/court-answer", json=answer)
    assert status == 201 and court["answers"][0]["label"] == "已受理"
    assert await notices.resolve(reminder) is None
    _, log = await browser.request("GET", f"{a}/log")
    assert [e["kind"] for e in events(log)][-2:] == ["court_bundle_prepared", "court_answered"]
    assert log["verification"]["authentic"] is True

    # A follow-up: recorded, logged, the case in 回访, off the overdue list, reminder moot.
    due = await outbox_of(srv, closed_a["case_id"], "follow_up_due")
    assert await notices.resolve(due) is not None
    follow_up = {
        "date": "2026-12-20",
        "method": "电话",
        "performance": "履行中",
        "notes": "已修一半",
    }
    status, made = await archivist.request("POST", f"{a}/follow-ups", json=follow_up)
    assert status == 403
    status, made = await browser.request(
        "POST", f"{a}/follow-ups", json={**follow_up, "method": "x"}
    )
    assert status == 400
    status, made = await browser.request("POST", f"{a}/follow-ups", json=follow_up)
    assert status == 201, made
    assert made["case"]["state"] == "following_up"
    status, listed = await browser.request("GET", f"{a}/follow-ups")
    assert [(f["method"], f["performance"], f["notes"]) for f in listed["follow_ups"]] == [
        ("电话", "履行中", "已修一半")
    ]
    _, log = await browser.request("GET", f"{a}/log")
    last = events(log)[-1]
    assert last["kind"] == "followed_up" and last["performance"] == "履行中"
    assert last["method"] == "电话" and last["date"] == "2026-12-20"
    status, listed = await browser.request("GET", "/api/cases?follow_up=overdue")
    assert listed["cases"] == []
    assert await notices.resolve(due) is None
    await browser.close()
    await archivist.close()
