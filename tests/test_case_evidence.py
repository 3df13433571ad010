"""A session's recording and agreement belong to its case, with the real recorder and the
real Notary: the case's log names them by their hashes; the agreement was prefilled from
the case and prints the case's QR code; the party's own link downloads the signed PDF;
the dossier carries the PDF and the recording's manifest, `tiaojie verify` finds it
authentic, and says clearly what changed when the PDF is swapped, the Chain edited, or
either removed. (The whole case in Chromium, with Segments: test_browser_whole_case.py.)
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from tests.support.staff import StaffBrowser
from tests.test_accounts import make_account, make_organisation
from tests.test_agreements import (  # noqa: F401 - the keys, made once
    Room,
    attachments,
    keys,
    pdf_text,
    shared_keys,
    tiaojie_verify,
    wait_status,
)
from tests.test_case_sessions import CASE, SECRETS, events, eventually_logged
from tests.test_recording_api import wait_recorder
from tiaojie.archive.dossier import verify_dossier
from tiaojie.archive.verify.trust import load_public_key
from tiaojie.server.agreements import AGREEMENTS
from tiaojie.server.cases.openapi import PROGRESS


async def a_session(srv: Any) -> dict[str, Any]:
    """A case in mediation with its mediator logged in, a session scheduled, the mediator
    (from the staff page) and both parties in the room."""
    org = await make_organisation(srv, "桃城区人民调解委员会")
    mediator = await make_account(srv, "zhang", org["id"], ["mediator"], name="张调解员")
    browser = StaffBrowser(srv.url)
    assert (await browser.login("zhang"))[0] == 201
    status, receipt = await srv.admin("POST", "/api/cases", json=CASE)
    assert status == 201, receipt
    path = f"/api/cases/{receipt['case_id']}"
    await srv.admin("POST", f"{path}/transitions", json={"action": "accept"})
    await srv.admin(
        "POST", f"{path}/transitions", json={"action": "dispatch", "mediator_id": mediator["id"]}
    )
    status, case = await browser.request("POST", f"{path}/transitions", json={"action": "take"})
    assert status == 200, case
    status, made = await browser.request(
        "POST", f"{path}/sessions", json={"scheduled_at": int(time.time()), "lobby": False}
    )
    assert status == 201, made
    invites = {i["side"]: i for i in made["invites"]}
    status, entry = await browser.request("POST", f"/api/rooms/{made['room']['id']}/enter")
    clients = {
        "mediator": await srv.join(entry),
        "applicant": await srv.join(invites["applicant"]),
        "respondent": await srv.join(invites["respondent"]),
    }
    for client in clients.values():
        await client.wait_for("room_state")
    return {
        "case": case,
        "path": path,
        "room": made["room"],
        "entry": entry,
        "invites": invites,
        "clients": clients,
        "browser": browser,
    }


async def public_agreements(srv: Any, case_code: str, code: str = "") -> list[dict[str, Any]]:
    """The agreements on the case's public progress, checked to name nobody (in the JSON
    and on the page) and not to give the agreement's code (its /a/ page names signers)."""
    _, public = await srv.request("GET", f"/api/progress/{case_code}")
    jsonschema_rs.validate(PROGRESS, public)  # as the OpenAPI document describes it
    _, page = await srv.request("GET", f"/c/{case_code}")
    for shown in (json.dumps(public, ensure_ascii=False), page):
        assert not any(word in shown for word in [*SECRETS, "张调解员"])
        assert not code or code not in shown
    statuses = [a["status"] for a in public["agreements"]]
    assert page.count('class="progress-agreement"') == len(statuses)
    assert all(f'data-status="{status}"' in page for status in statuses)
    return list(public["agreements"])


def rewrite(source: Path, target: Path, change: Any) -> Path:
    """A copy of a ZIP with `change(name, data) -> data | None` applied (None: removed)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            data = change(name, old.read(name))
            if data is not None:
                new.writestr(name, data)
    return target


@pytest.mark.timeout(900)
async def test_the_sessions_recording_and_agreement_in_the_case_and_its_dossier(
    live_server, tmp_path
) -> None:
    srv = live_server
    s = await a_session(srv)
    cid, path, m = s["case"]["case_id"], s["path"], s["clients"]["mediator"]
    token = s["entry"]["token"]

    # Recorded: the real recorder starts, seals; the case's log names the Seal.
    recording = f"/api/rooms/{s['room']['id']}/recording"
    status, started = await srv.request("POST", recording, token)
    assert status == 201, started
    await wait_recorder(srv, s["room"]["id"])

    # The agreement, prefilled from the case: its number, its facts, the two parties.
    prefill = (await m.call("agreement_prefill", {}))["prefill"]
    assert prefill["case_number"] == s["case"]["case_number"]
    assert prefill["facts"] == CASE["description"]
    draft = {
        "case_number": prefill["case_number"],
        "language": "zh-CN",
        "parties": prefill["parties"],
        "mediator": prefill["mediator"],
        "experts": prefill["experts"],
        "facts": prefill["facts"],
        "terms": ["物业公司于2026年12月31日前修复电梯。"],
        "performance": "物业公司自行修复。",
        "date": "2026年11月30日",
        "place": "桃城区人民调解委员会（线上）",
    }
    case_code = s["case"]["code"]
    assert (await public_agreements(srv, case_code)) == []
    ack = await m.call("agreement_draft", draft)
    assert ack["ok"] is True, ack
    (drafted,) = await public_agreements(srv, case_code)
    assert drafted["status"] == "drafted" and drafted["signatures"] == {"signed": 0, "total": 3}
    ack = await m.call("agreement_request_signatures", {"fingerprint": ack["fingerprint"]})
    assert ack["ok"] is True, ack
    fingerprint, code = ack["fingerprint"], ack["code"]
    for side, name in (("applicant", "王淑芬"), ("respondent", "幸福里物业公司")):
        answer = await Room.sign(s["clients"][side], fingerprint, name)
        assert answer["ok"] is True, answer
        if side == "applicant":  # being signed: how many of how many, no name, no code
            (signing,) = await public_agreements(srv, case_code, code)
            assert signing["status"] == "signing" and signing["label"] == "签署中：已签 1/3"
            assert signing["signatures"] == {"signed": 1, "total": 3}
    assert (await Room.sign(m, fingerprint, "张调解员"))["ok"] is True
    await wait_status(s["clients"]["applicant"], "signed")
    await srv.app[AGREEMENTS].wait_sealed()
    pdf_path = srv.state.settings.data_dir / "agreements" / code / "agreement.pdf"
    pdf = pdf_path.read_bytes()
    sealed = await eventually_logged(srv, cid, "agreement_sealed")
    assert sealed["agreement_code"] == code
    # The case's public page: signed and sealed, at the seal's time (UTC+8), in both languages.
    (done,) = await public_agreements(srv, case_code, code)
    assert done["status"] == "sealed" and done["signatures"] == {"signed": 3, "total": 3}
    _, status_of = await srv.request("GET", f"/api/agreements/{code}")
    assert done["at"] == int(status_of["sealed_at"])
    _, page = await srv.request("GET", f"/c/{case_code}")
    assert 'class="progress-agreement" data-status="sealed"' in page and "已签署并盖章" in page
    _, page = await srv.request("GET", f"/c/{case_code}?lang=en")
    assert "Signed and sealed" in page and "(UTC+8)" in page
    assert sealed["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert sealed["fingerprint"] == fingerprint
    # Both were told: the agreement to sign, then sealed (the notification outbox).
    _, told = await srv.admin("GET", f"/api/notifications?case_id={cid}")
    kinds = [(n["kind"], n["recipient"]["side"]) for n in told["notifications"]]
    for kind in ("agreement_ready", "agreement_sealed"):
        assert sorted(side for k, side in kinds if k == kind) == ["applicant", "respondent"]
    _, log = await srv.admin("GET", f"{path}/log")
    signed = [e for e in events(log) if e["kind"] == "agreement_signed"]
    assert [e["role"] for e in signed] == ["applicant", "respondent", "mediator"]
    assert {e["fingerprint"] for e in signed} == {fingerprint}
    # The PDF carries the case's QR code: its progress link, beside the agreement's own.
    files = await attachments(pdf_path, tmp_path / "attachments")
    record = json.loads(files["agreement.json"])
    progress = f"{srv.url}/c/{s['case']['code']}"
    assert record["agreement"]["case_url"] == progress
    text = "".join((await pdf_text(pdf_path)).split())
    assert "一案一码" in text and s["case"]["case_number"] in text

    status, _ = await srv.request("DELETE", recording, token)
    assert status == 200
    seal = await eventually_logged(srv, cid, "recording_sealed")
    assert seal["recording_id"] == started["id"]

    # The party's own link: the signed agreement, downloadable with their key only.
    _, outbox = await s["browser"].request("GET", f"{path}/outbox")
    own = next(
        m_["links"]["progress"] for m_ in outbox["messages"] if m_["to"]["side"] == "applicant"
    )
    key = own.split("key=")[1]
    _, public = await srv.request("GET", f"/api/progress/{s['case']['code']}?key={key}")
    (theirs,) = public["party"]["agreements"]
    assert theirs["code"] == code and theirs["sha256"] == sealed["sha256"]
    status, downloaded = await srv.request("GET", theirs["url"].removeprefix(srv.url))
    assert status == 200 and downloaded == pdf
    status, _ = await srv.request("GET", f"/c/{s['case']['code']}/agreements/{code}?key={'A' * 22}")
    assert status == 404
    status, _ = await srv.request("GET", f"/c/{s['case']['code']}/agreements/{code}")
    assert status == 404

    # The dossier: the PDF and the recording's manifest, authentic.
    status, data = await srv.admin("GET", f"{path}/dossier")
    assert status == 200
    dossier = tmp_path / "dossier.zip"
    dossier.write_bytes(data)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    chain_name = f"recordings/{started['id']}/chain.jsonl"
    assert f"agreements/{code}.pdf" in names and chain_name in names
    assert f"recordings/{started['id']}/recording.json" in names
    assert not any("/segments/" in n for n in names)  # only with ?segments=true
    trust = srv.state.settings.data_dir / "keys" / "recorder_ed25519.pub.pem"
    done = await tiaojie_verify(dossier, "--trust", trust)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((await tiaojie_verify(dossier, "--trust", trust, "--json")).stdout)
    assert f"agreements/{code}.pdf" in report["authentic_files"]
    assert chain_name in report["authentic_files"]
    key_file = load_public_key(trust)

    # A swapped PDF, an edited Chain, a removed PDF: not authentic, and it says why.
    other = pdf[:-10] + b"%%EOF\n\n\n\n"
    swapped = rewrite(
        dossier,
        tmp_path / "swapped.zip",
        lambda n, d: other if n.endswith(".pdf") and n.startswith("agreements/") else d,
    )
    checked = verify_dossier(swapped, key_file)
    assert not checked.authentic
    (problem,) = [f for f in checked.problems if f.file == f"agreements/{code}.pdf"][:1]
    assert "swapped or changed" in problem.describe()
    done = await tiaojie_verify(swapped, "--trust", trust)
    assert done.returncode == 1 and "swapped or changed" in done.stdout

    def edit_chain(name: str, data: bytes) -> bytes:
        if name != chain_name:
            return data
        lines = data.splitlines(keepends=True)
        entry = json.loads(lines[1])
        entry["time"] = entry["time"] + 1
        lines[1] = json.dumps(entry).encode() + b"\n"
        return b"".join(lines)

    edited = verify_dossier(rewrite(dossier, tmp_path / "edited.zip", edit_chain), key_file)
    chain_problems = [f for f in edited.problems if f.file == chain_name]
    assert chain_problems and "Chain does not verify" in chain_problems[0].describe()
    removed = verify_dossier(
        rewrite(
            dossier,
            tmp_path / "removed.zip",
            lambda n, d: None if n.endswith(".pdf") and n.startswith("agreements/") else d,
        ),
        key_file,
    )
    assert f"agreements/{code}.pdf" in removed.details()["missing"]
    assert re.search("missing", " ".join(f.describe() for f in removed.problems))

    for client in s["clients"].values():
        await client.close()
    await s["browser"].close()
