"""Cases over the REST API, on SQLite and on a real PostgreSQL: intake (public and staff),
case numbers under concurrency, the states and transitions, the public progress (never a
name, phone or ID number), flood limits, attachments checked by content, the case log as
a verifiable Chain, the expert pool and the case configuration."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from sqlalchemy import select, update

from tests.conftest import LiveServer, start_server
from tests.support.case_staff import seed_case_staff
from tiaojie.server.cases.actor import ADMIN
from tiaojie.server.cases.model import Party, PartyRole, Source
from tiaojie.server.cases.service import CASES, new_code
from tiaojie.server.cases.states import SOURCES, Action, State
from tiaojie.server.cases.store import NewCase
from tiaojie.server.cases.tables import case_log, cases
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import new_id

COMMUNITY = "900001001001"
NUMBER = re.compile(r"（(\d{4})）人调字第(\d{4})号")


@pytest.fixture
async def live_server(room_server):
    """The case suite runs on each database (SQLite, PostgreSQL): conftest's room_server,
    with the organisations and mediators the tests name (tests/support/case_staff.py)."""
    await seed_case_staff(room_server)
    return room_server


def report_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "张秀兰",
        "phone": "13912345678",
        "dispute_type": "neighbourhood",
        "community": COMMUNITY,
        "description": "楼上住户装修漏水，把我家厨房的天花板泡坏了。",
        **overrides,
    }


def staff_body(**overrides: Any) -> dict[str, Any]:
    return {
        "source": "grid_worker",
        "dispute_type": "labour",
        "region": "900001001",
        "description": "工地拖欠三名工人两个月工资。",
        "parties": [
            {
                "role": "applicant",
                "name": "李建国",
                "phone": "13700001111",
                "id_number": "130102198001011234",
            },
            {"role": "respondent", "name": "某某建筑公司", "phone": "031188886666"},
        ],
        **overrides,
    }


async def report(srv: LiveServer, address: str = "127.0.0.1", **kwargs: Any) -> tuple[int, Any]:
    """A public report (no token) sent from `address` (any 127.x address reaches the server)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(srv.url + "/api/cases", **kwargs) as response,
    ):
        return response.status, await response.json()


async def staff_case(srv: LiveServer, **overrides: Any) -> dict[str, Any]:
    status, body = await srv.admin("POST", "/api/cases", json=staff_body(**overrides))
    assert status == 201, body
    return body


async def move(srv: LiveServer, case_id: str, action: str, **params: Any) -> dict[str, Any]:
    status, body = await srv.admin(
        "POST", f"/api/cases/{case_id}/transitions", json={"action": action, **params}
    )
    assert status == 200, body
    return body


async def snapshot(srv: LiveServer, case_id: str) -> tuple[Any, Any]:
    _, case = await srv.admin("GET", f"/api/cases/{case_id}")
    _, log = await srv.admin("GET", f"/api/cases/{case_id}/log")
    return case, log["entries"]


# -- intake ----------------------------------------------------------------------------------
async def test_a_report_gets_a_number_a_code_and_a_progress_link(live_server):
    srv = live_server
    status, receipt = await report(srv, json=report_body())
    assert status == 201, receipt
    assert set(receipt) == {"case_id", "case_number", "code", "progress_url"}
    year, seq = NUMBER.fullmatch(receipt["case_number"]).groups()  # type: ignore[union-attr]
    assert int(year) == time.localtime().tm_year and seq == "0001"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", receipt["code"])
    assert receipt["progress_url"] == f"{srv.url}/c/{receipt['code']}"

    status, case = await srv.admin("GET", f"/api/cases/{receipt['case_id']}")
    assert status == 200 and case["state"] == "reported" and case["state_label"] == "待受理"
    assert case["source"] == "resident" and case["dispute_type"]["name"] == "邻里纠纷"
    assert [p["name"] for p in case["parties"]] == ["张秀兰"]
    assert (
        case["parties"][0]["phone"] == "13912345678" and case["parties"][0]["role"] == "applicant"
    )
    assert [r["name"] for r in case["region"]] == ["示例区", "示例街道", "第一社区"]
    assert case["actions"] == ["accept", "withdraw"] and case["deadline_at"] is None

    status, progress = await srv.request("GET", f"/api/progress/{receipt['code']}")
    assert status == 200 and progress["state"] == "reported"
    assert progress["timeline"][0] == {
        "stage": "reported",
        "label": "已提交",
        "done": False,
        "current": True,
        "at": case["created_at"],
    }
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{srv.url}/api/progress/{receipt['code']}/qr.svg") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/svg+xml"
            assert b"<svg" in await response.read()
        async with session.get(f"{srv.url}/c/{receipt['code']}") as response:
            assert response.status == 200
            assert "script-src" not in response.headers["Content-Security-Policy"]
            page = await response.text()
    assert receipt["case_number"] in page and "待受理" in page
    async with aiohttp.ClientSession() as session, session.get(f"{srv.url}/report") as response:
        assert response.status == 200 and "report.js" in await response.text()
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    # A code that is not one, or is no case's: 404 everywhere.
    for code in ("A" * 22, "not-a-code"):
        status, body = await srv.request("GET", f"/api/progress/{code}")
        assert (status, body["error"]) == (404, "case_not_found")
    status, _ = await srv.request("GET", "/c/" + "A" * 22)
    assert status == 404


async def test_staff_register_cases_and_bad_reports_are_refused(live_server):
    srv = live_server
    case = await staff_case(srv)
    _, full = await srv.admin("GET", f"/api/cases/{case['case_id']}")
    assert full["source"] == "grid_worker" and full["risk_level"] == "unassessed"
    assert full["parties"][0]["id_number"] == "130102198001011234"
    assert full["region"][-1]["level"] == "street"
    for body, status_code in [
        (report_body(dispute_type="alien_abduction"), 400),
        (report_body(community="900001001"), 400),  # a street, not a community
        (report_body(phone="call me"), 400),
        (report_body(name="张\u202e三"), 400),  # a bidirectional control
        ({**report_body(), "source": "court"}, 400),  # not a field of a report
    ]:
        got, answer = await report(srv, json=body)
        assert got == status_code, (body, answer)
    got, answer = await srv.admin("POST", "/api/cases", json=staff_body(parties=[]))
    assert (got, answer["error"]) == (400, "bad_request")
    # A wrong token is refused rather than taken as a resident's report.
    got, answer = await srv.request("POST", "/api/cases", "not-the-admin-token", json=report_body())
    assert got == 401 or got == 403
    _, listed = await srv.admin("GET", "/api/cases")
    assert [c["case_id"] for c in listed["cases"]] == [case["case_id"]]


async def test_case_numbers_are_unique_and_gapless_under_50_concurrent_intakes(live_server):
    srv = live_server
    answers = await asyncio.gather(
        *(
            srv.admin("POST", "/api/cases", json=staff_body(description=f"第 {i} 件"))
            for i in range(50)
        )
    )
    assert all(status == 201 for status, _ in answers), answers
    seqs = sorted(int(NUMBER.fullmatch(b["case_number"]).group(2)) for _, b in answers)  # type: ignore[union-attr]
    assert seqs == list(range(1, 51))
    assert len({b["code"] for _, b in answers}) == 50

    # Registrations that fail inside their transaction (here: a code already taken) give
    # their number back: the next 50 that succeed are 51..100, whatever ran beside them.
    store = srv.app[CASES].store
    taken = answers[0][1]["code"]
    new = NewCase(
        Source.GRID_WORKER, "labour", "900001001", "并发", [Party(PartyRole.APPLICANT, "甲")]
    )

    async def create(duplicate: bool) -> str:
        case = await store.create(
            new, ADMIN, new_id(), taken if duplicate else new_code(), [], time.time()
        )
        return case.number

    results = await asyncio.gather(*(create(i % 6 == 0) for i in range(60)), return_exceptions=True)
    numbers = [r for r in results if isinstance(r, str)]
    failures = [r for r in results if not isinstance(r, str)]
    assert len(failures) == 10 and all(isinstance(f, TiaojieError) for f in failures)
    seqs = sorted(int(NUMBER.fullmatch(n).group(2)) for n in numbers)  # type: ignore[union-attr]
    assert seqs == list(range(51, 101))


# -- states and transitions ------------------------------------------------------------------
async def test_a_case_goes_the_whole_way_and_every_step_is_logged(live_server):
    srv = live_server
    case = await staff_case(srv)
    cid = case["case_id"]
    accepted = await move(srv, cid, "accept")
    assert accepted["state"] == "accepted" and accepted["deadline_at"] is not None
    assert 29 * 86400 < accepted["deadline_at"] - time.time() <= 30 * 86400
    await move(srv, cid, "dispatch", organisation_id="org-mediation-1")
    returned = await move(srv, cid, "return", reason="不属于本组织辖区")
    assert returned["state"] == "accepted" and returned["holder_organisation_id"] == "org-default"
    await move(srv, cid, "transfer", organisation_id="org-mediation-2", mediator_id="mediator-wang")
    taken = await move(srv, cid, "take")
    assert taken["state"] == "mediating" and taken["mediator_id"] == "mediator-wang"
    closed = await move(srv, cid, "close", outcome="success")
    assert closed["state"] == "succeeded" and closed["state_label"] == "调解成功"
    await move(srv, cid, "follow_up", note="双方已按协议履行。")
    final = await move(srv, cid, "close")
    assert final["state"] == "closed" and final["actions"] == []

    status, log = await srv.admin("GET", f"/api/cases/{cid}/log")
    assert status == 200 and log["verification"] == {"authentic": True, "problems": []}
    assert log["chain"] == f"case:{cid}"
    kinds = [e["event"]["kind"] for e in log["entries"] if e["type"] == "event"]
    assert kinds == [
        "reported", "accepted", "dispatched", "returned", "transferred", "taken", "closed",
        "followed_up", "closed",
    ]  # fmt: skip
    # Every change is an event then a signed checkpoint; each names who acted.
    types = [e["type"] for e in log["entries"]]
    assert types == ["event", "checkpoint"] * len(kinds)
    assert all(
        e["event"]["actor"]["kind"] == "admin" for e in log["entries"] if e["type"] == "event"
    )
    returned_event = next(
        e["event"] for e in log["entries"] if e.get("event", {}).get("kind") == "returned"
    )
    assert returned_event["reason"] == "不属于本组织辖区"

    status, progress = await srv.request("GET", f"/api/progress/{case['code']}")
    assert [s["done"] for s in progress["timeline"]] == [True] * 7
    assert progress["timeline"][4]["label"] == "调解成功"
    assert all(s["at"] is not None for s in progress["timeline"])


async def test_every_wrong_transition_is_refused_and_changes_nothing(live_server):
    srv = live_server
    # A case in each state, reached the right way.
    paths: dict[State, list[dict[str, Any]]] = {
        State.REPORTED: [],
        State.ACCEPTED: [{"action": "accept"}],
        State.DISPATCHED: [
            {"action": "accept"}, {"action": "dispatch", "mediator_id": "mediator-li"},
        ],
        State.MEDIATING: [
            {"action": "accept"}, {"action": "dispatch", "mediator_id": "mediator-li"},
            {"action": "take"},
        ],
        State.SUCCEEDED: [
            {"action": "accept"}, {"action": "dispatch", "mediator_id": "mediator-li"},
            {"action": "take"}, {"action": "close", "outcome": "success"},
        ],
        State.FAILED: [
            {"action": "accept"}, {"action": "dispatch", "mediator_id": "mediator-li"},
            {"action": "take"}, {"action": "close", "outcome": "failure"},
        ],
        State.WITHDRAWN: [{"action": "withdraw", "reason": "双方已自行和解"}],
        State.FOLLOWING_UP: [
            {"action": "withdraw", "reason": "双方已自行和解"},
            {"action": "follow_up", "note": "电话回访，已和解"},
        ],
        State.CLOSED: [
            {"action": "withdraw", "reason": "双方已自行和解"},
            {"action": "follow_up", "note": "电话回访，已和解"}, {"action": "close"},
        ],
    }  # fmt: skip
    every = {
        "accept": {},
        "dispatch": {"organisation_id": "org-mediation-1"},
        "take": {"mediator_id": "mediator-li"},
        "return": {"reason": "退回"},
        "transfer": {"organisation_id": "org-mediation-2"},
        "close": {"outcome": "success"},
        "withdraw": {"reason": "撤回"},
        "follow_up": {"note": "回访"},
    }
    refused = 0
    for state, steps in paths.items():
        case = await staff_case(srv)
        for step in steps:
            await move(srv, case["case_id"], **step)
        before = await snapshot(srv, case["case_id"])
        assert before[0]["state"] == state
        for action, params in every.items():
            if state in SOURCES[Action(action)]:
                continue
            status, body = await srv.admin(
                "POST",
                f"/api/cases/{case['case_id']}/transitions",
                json={"action": action, **params},
            )
            assert (status, body["error"]) == (409, "transition_not_allowed"), (state, action)
            assert str(state) in body["message"] and "Nothing was changed" in body["message"]
            refused += 1
        assert await snapshot(srv, case["case_id"]) == before
    assert refused == sum(8 - len([a for a in Action if s in SOURCES[a]]) for s in State)

    # What an action needs is checked too, and a refusal changes nothing.
    case = await staff_case(srv)
    await move(srv, case["case_id"], "accept")
    before = await snapshot(srv, case["case_id"])
    for bad in [
        {"action": "dispatch"},
        {"action": "withdraw"},
        {"action": "fly"},
        {"action": "accept", "extra": 1},
    ]:
        status, body = await srv.admin(
            "POST", f"/api/cases/{case['case_id']}/transitions", json=bad
        )
        assert status in (400, 409), (bad, body)
    assert await snapshot(srv, case["case_id"]) == before
    status, body = await srv.admin(
        "POST", "/api/cases/AAAAAAAAAAAAAAAAAAAAAA/transitions", json={"action": "accept"}
    )
    assert (status, body["error"]) == (404, "case_not_found")


async def test_overdue_cases_are_flagged_and_filtered(live_server):
    srv = live_server
    store = srv.app[CASES].store
    late, fresh = await staff_case(srv), await staff_case(srv)
    await store.transition(late["case_id"], ADMIN, Action.ACCEPT, {}, time.time() - 40 * 86400)
    await move(srv, fresh["case_id"], "accept")
    status, found = await srv.admin("GET", "/api/cases?overdue=true")
    assert [c["case_id"] for c in found["cases"]] == [late["case_id"]]
    assert found["cases"][0]["overdue"] is True
    status, found = await srv.admin("GET", "/api/cases?overdue=false&state=accepted")
    assert [c["case_id"] for c in found["cases"]] == [fresh["case_id"]]
    _, progress = await srv.request("GET", f"/api/progress/{late['code']}")
    assert progress["overdue"] is True
    # Once mediation has ended, a case is no longer late.
    await move(srv, late["case_id"], "withdraw", reason="撤回")
    status, found = await srv.admin("GET", "/api/cases?overdue=true")
    assert found["cases"] == []
    for query in ("state=flying", "overdue=maybe", "limit=0", "region=../x"):
        status, _ = await srv.admin("GET", f"/api/cases?{query}")
        assert status == 400, query


async def test_the_queue_filters_and_pages(live_server):
    srv = live_server
    made = [await staff_case(srv, dispute_type=t) for t in ("labour", "contract", "labour")]
    _, found = await srv.admin("GET", "/api/cases?dispute_type=labour")
    assert [c["case_id"] for c in found["cases"]] == [made[2]["case_id"], made[0]["case_id"]]
    _, first = await srv.admin("GET", "/api/cases?limit=2")
    assert len(first["cases"]) == 2 and first["next"] is not None
    _, rest = await srv.admin("GET", f"/api/cases?limit=2&before={first['next']}")
    assert [c["case_id"] for c in rest["cases"]] == [made[0]["case_id"]] and rest["next"] is None
    _, found = await srv.admin("GET", "/api/cases?region=900001001")
    assert len(found["cases"]) == 3
    _, found = await srv.admin("GET", "/api/cases?region=900002")
    assert found["cases"] == []


# -- the public progress ---------------------------------------------------------------------
async def test_the_progress_never_shows_a_name_phone_or_id_number(live_server):
    srv = live_server
    secret_words = ["李建国", "13700001111", "130102198001011234", "某某建筑公司", "031188886666"]
    case = await staff_case(srv, description="李建国（电话 13700001111）反映工资被拖欠。")
    secret_words += ["反映工资被拖欠", "不归我们管", "回访时李建国说已付清"]
    steps = [
        ("accept", {}),
        ("dispatch", {"organisation_id": "org-mediation-1"}),
        ("return", {"reason": "不归我们管"}),
        ("dispatch", {"mediator_id": "mediator-li"}),
        ("take", {}),
        ("close", {"outcome": "failure"}),
        ("follow_up", {"note": "回访时李建国说已付清"}),
        ("close", {}),
    ]
    seen_states = []
    for action, params in [(None, {}), *steps]:
        if action is not None:
            await move(srv, case["case_id"], action, **params)
        for lang in ("zh-CN", "en"):
            status, progress = await srv.request("GET", f"/api/progress/{case['code']}?lang={lang}")
            assert status == 200
            text = json.dumps(progress, ensure_ascii=False)
            status, page = await srv.request("GET", f"/c/{case['code']}?lang={lang}")
            assert status == 200
            for word in secret_words:
                assert word not in text and word not in page, (action, lang, word)
            assert not re.search(r"1[3-9][0-9]{9}", text + page)
        seen_states.append(progress["state"])
    assert seen_states == [
        "reported", "accepted", "dispatched", "accepted", "dispatched", "mediating", "failed",
        "following_up", "closed",
    ]  # fmt: skip


# -- flood limits ----------------------------------------------------------------------------
async def test_flood_limits_refuse_without_harming_another_address(live_server):
    srv = live_server
    # One address: 10 reports at once, then refused (each with its own phone number).
    for i in range(10):
        status, body = await report(srv, json=report_body(phone=f"1390000{i:04d}"))
        assert status == 201, body
    status, body = await report(srv, json=report_body(phone="13900009999"))
    assert (status, body["error"]) == (429, "rate_limited")
    # Another address is not harmed.
    status, body = await report(srv, "127.0.0.2", json=report_body(phone="13900008888"))
    assert status == 201, body
    # One phone number: 3 reports, then refused from any address; another number is fine.
    for address in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        status, body = await report(srv, address, json=report_body(phone="+8613800000001"))
        assert status == 201, body
    status, body = await report(srv, "127.0.0.6", json=report_body(phone="13800000001"))
    assert (status, body["error"]) == (429, "rate_limited")
    status, body = await report(srv, "127.0.0.6", json=report_body(phone="13800000002"))
    assert status == 201, body
    # Staff intake is not limited by the public buckets.
    await staff_case(srv)
    # A body over the cap is refused before it is read; a JSON body over its own cap too.
    status, body = await report(
        srv,
        "127.0.0.7",
        data=b"x" * (30 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert status == 413
    status, body = await report(
        srv,
        "127.0.0.8",
        json=report_body(description="很长" * 5_000_000),
    )
    assert (status, body["error"]) == (413, "payload_too_large")
    status, listed = await srv.admin("GET", "/api/cases?limit=200")
    assert len(listed["cases"]) == 10 + 1 + 3 + 1 + 1


# -- attachments -----------------------------------------------------------------------------
def jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (20, 80, 140)).save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def form(case: dict[str, Any], *files: tuple[str, bytes]) -> aiohttp.FormData:
    """The form a browser sends (file names as UTF-8, as browsers write them)."""
    data = aiohttp.FormData(quote_fields=False)
    data.add_field("case", json.dumps(case), content_type="application/json")
    for name, content in files:
        data.add_field("attachment", content, filename=name)
    return data


async def test_attachments_are_checked_by_content_and_kept_with_their_sha256(live_server):
    srv = live_server
    photo, scan = jpeg(), PDF
    status, receipt = await report(
        srv, data=form(report_body(), ("现场.jpg", photo), ("../../证明.pdf", scan))
    )
    assert status == 201, receipt
    status, case = await srv.admin("GET", f"/api/cases/{receipt['case_id']}")
    got = [(a["filename"], a["media_type"], a["sha256"], a["size"]) for a in case["attachments"]]
    assert got == [
        ("现场.jpg", "image/jpeg", hashlib.sha256(photo).hexdigest(), len(photo)),
        ("证明.pdf", "application/pdf", hashlib.sha256(scan).hexdigest(), len(scan)),
    ]
    data_dir: Path = srv.state.settings.data_dir
    stored = data_dir / "cases" / receipt["case_id"] / "attachments" / got[0][2]
    assert stored.read_bytes() == photo
    status, content = await srv.admin(
        "GET", f"/api/cases/{receipt['case_id']}/attachments/{case['attachments'][0]['id']}"
    )
    assert status == 200 and content == photo
    _, log = await srv.admin("GET", f"/api/cases/{receipt['case_id']}/log")
    assert log["entries"][0]["event"]["attachments"] == [
        {"sha256": got[0][2], "size": len(photo), "media_type": "image/jpeg"},
        {"sha256": got[1][2], "size": len(scan), "media_type": "application/pdf"},
    ]
    # JSON with base64 works too (staff adding to a case).
    status, after = await srv.admin(
        "POST",
        f"/api/cases/{receipt['case_id']}/attachments",
        json={"attachments": [{"filename": "图.png", "data": base64.b64encode(png()).decode()}]},
    )
    assert status == 201 and after["attachments"][-1]["media_type"] == "image/png"

    # Refusals: by content, never by name; nothing kept, no number used.
    broken_png = bytearray(png())
    broken_png[40] ^= 0xFF  # a damaged chunk: its CRC no longer matches
    refusals = [
        (
            [("photo.jpg", b"just some text, named like a photo " * 3)],
            415,
            "attachment_type_not_allowed",
        ),
        ([("x.png", bytes(broken_png))], 400, "attachment_invalid"),
        ([("x.pdf", b"%PDF-1.4\nno end")], 400, "attachment_invalid"),
        ([("big.jpg", jpeg()[:-2] + b"\0" * (5 * 1024 * 1024))], 413, "attachment_too_large"),
        ([(f"{i}.jpg", photo) for i in range(5)], 413, "too_many_attachments"),
    ]
    for i, (files, code, error) in enumerate(refusals):
        status, body = await report(
            srv, f"127.0.1.{i}", data=form(report_body(phone=f"1350000000{i}"), *files)
        )
        assert (status, body["error"]) == (code, error), (files[0][0], body)
    assert list((data_dir / "cases" / ".incoming").iterdir()) == []
    status, receipt = await report(srv, "127.0.2.1", json=report_body(phone="13600000000"))
    assert NUMBER.fullmatch(receipt["case_number"]).group(2) == "0002"  # type: ignore[union-attr]
    # A form must start with the case.
    data = aiohttp.FormData()
    data.add_field("attachment", photo, filename="a.jpg")
    status, body = await report(srv, "127.0.2.2", data=data)
    assert (status, body["error"]) == (400, "bad_request")


# -- the log as evidence ---------------------------------------------------------------------
async def test_the_case_log_verifies_and_fails_clearly_after_an_edit(live_server):
    srv = live_server
    case = await staff_case(srv)
    cid = case["case_id"]
    await move(srv, cid, "accept")
    await move(srv, cid, "withdraw", reason="当事人撤回申请")
    _, log = await srv.admin("GET", f"/api/cases/{cid}/log")
    assert log["verification"]["authentic"] is True
    entry = log["entries"][4]
    assert entry["event"]["kind"] == "withdrawn"

    # Someone with database access rewrites the reason.
    edited = {**entry, "event": {**entry["event"], "reason": "调解员主动撤销"}}
    database = srv.app[CASES].database
    async with database.write() as conn:
        await conn.execute(
            update(case_log)
            .where(case_log.c.case_id == cid, case_log.c.seq == 4)
            .values(entry=json.dumps(edited, ensure_ascii=False))
        )
    _, log = await srv.admin("GET", f"/api/cases/{cid}/log")
    problem = log["verification"]["problems"][0]
    assert log["verification"]["authentic"] is False
    assert (problem["code"], problem["seq"]) == ("entry-hash-mismatch", 4)
    assert "edited" in problem["message"]

    # Rewriting the hash too breaks the link to the next entry; re-signing needs the key.
    edited["hash"] = "0" * 64
    from tiaojie.archive.chain import entry_hash

    edited["hash"] = entry_hash(edited)
    async with database.write() as conn:
        await conn.execute(
            update(case_log)
            .where(case_log.c.case_id == cid, case_log.c.seq == 4)
            .values(entry=json.dumps(edited, ensure_ascii=False), hash=edited["hash"])
        )
    _, log = await srv.admin("GET", f"/api/cases/{cid}/log")
    problem = log["verification"]["problems"][0]
    assert (problem["code"], problem["seq"]) == ("entry-unlinked", 5)
    async with database.read() as conn:
        head = (await conn.execute(select(cases.c.log_head).where(cases.c.id == cid))).scalar()
    assert head == log["entries"][-1]["hash"]


# -- the expert pool -------------------------------------------------------------------------
async def test_the_expert_pool_is_searchable_by_specialty(live_server):
    srv = live_server
    lawyer = {
        "name": "周律师",
        "organisation": "桃城律师事务所",
        "specialties": ["劳动争议", "合同纠纷", "劳动争议"],
        "phone": "13311112222",
        "profile": "执业十五年。",
    }
    status, made = await srv.admin("POST", "/api/experts", json=lawyer)
    assert status == 201 and made["specialties"] == sorted(["劳动争议", "合同纠纷"])
    assert made["available"] is True
    status, _ = await srv.admin(
        "POST",
        "/api/experts",
        json={"name": "吴老师", "specialties": ["心理疏导"], "available": False},
    )
    assert status == 201
    _, found = await srv.admin("GET", "/api/experts?specialty=劳动争议")
    assert [e["name"] for e in found["experts"]] == ["周律师"]
    assert found["experts"][0]["phone"] == "13311112222"
    _, found = await srv.admin("GET", "/api/experts?available=true")
    assert [e["name"] for e in found["experts"]] == ["周律师"]
    _, found = await srv.admin("GET", "/api/experts")
    assert [e["name"] for e in found["experts"]] == ["周律师", "吴老师"]
    status, body = await srv.admin("POST", "/api/experts", json={"name": "无专长"})
    assert (status, body["error"]) == (400, "bad_request")
    status, body = await srv.request("GET", "/api/experts")
    assert status == 401


# -- configuration ---------------------------------------------------------------------------
async def test_numbering_types_and_regions_are_configurable(live_server):
    srv = live_server
    path = "/api/case-config/organisations/org-default"
    status, settings = await srv.admin(
        "PUT",
        path,
        json={
            "name": "桃城区人民调解委员会",
            "short_name": "桃",
            "number_format": "（{year}）{short}{word}字第{seq:04d}号",
            "contact": "0318-1234567",
            "deadline_days": 15,
        },
    )
    assert status == 200 and settings["short_name"] == "桃"
    case = await staff_case(srv)
    assert re.fullmatch(r"（\d{4}）桃调字第0001号", case["case_number"])
    accepted = await move(srv, case["case_id"], "accept")
    assert 14 * 86400 < accepted["deadline_at"] - time.time() <= 15 * 86400
    _, progress = await srv.request("GET", f"/api/progress/{case['code']}")
    assert progress["organisation"] == {"name": "桃城区人民调解委员会", "contact": "0318-1234567"}
    for bad in ("{seq.__class__}", "第{seq}号", "{year}{seq:q}", "{year}{seq}{0}"):
        status, body = await srv.admin("PUT", path, json={"number_format": bad})
        assert status == 400, bad

    status, config = await srv.admin(
        "PUT",
        "/api/case-config",
        json={
            "dispute_types": [{"code": "water", "name": "用水纠纷", "name_en": "Water"}],
            "regions": [
                {
                    "code": "130102",
                    "name": "桃城区",
                    "children": [
                        {
                            "code": "130102001",
                            "name": "河西街道",
                            "children": [{"code": "130102001001", "name": "新华社区"}],
                        }
                    ],
                }
            ],
        },
    )
    assert status == 200, config
    status, _ = await report(srv, json=report_body(dispute_type="water", community="130102001001"))
    assert status == 201
    status, body = await report(srv, json=report_body(phone="13900000001"))
    assert status == 400  # neighbourhood and 900001001001 are gone
    status, options = await srv.request("GET", "/api/case-options")
    assert options["dispute_types"][0]["code"] == "water"
    status, body = await srv.admin(
        "PUT",
        "/api/case-config",
        json={"regions": [{"code": "1", "name": "区", "children": [{"code": "2", "name": "街"}]}]},
    )
    assert status == 400 and "must start with" in body["message"]


async def test_a_memory_server_keeps_cases_for_its_lifetime(tmp_path):
    """`--database memory:`: cases in the process's in-memory SQLite."""
    srv = await start_server(tmp_path / "data", database_url="memory:")
    try:
        status, receipt = await report(srv, json=report_body())
        assert status == 201, receipt
        await move(srv, receipt["case_id"], "accept")
        _, log = await srv.admin("GET", f"/api/cases/{receipt['case_id']}/log")
        assert log["verification"]["authentic"] is True
        assert srv.app[CASES].database.kind == "memory"
    finally:
        await srv.close()
        await srv.server.close()
