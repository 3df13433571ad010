"""Sessions from a case, on SQLite and PostgreSQL: the case's mediator schedules one, which
makes the room (theirs, in the case's organisation) and invites for the case's parties
(with their sides) and the experts chosen from the pool; the outbox says what to send to
whom; the progress page shows the next session, and a party's own link their session
link; an expert sees only the sessions they are invited to; what happens in the room
(held, recorded with the real recorder, ended) is in the case's log; the agreement's
prefill comes from the case. The browser's whole case is tests/test_browser_whole_case.py.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from tests.conftest import start_server
from tests.support.staff import StaffBrowser
from tests.test_accounts import Centre, centre, make_account  # noqa: F401 - the fixture
from tests.test_agreements import keys, shared_keys  # noqa: F401 - the keys, made once
from tests.test_recording_api import wait_recorder
from tiaojie.server.cases.service import CASES

CASE = {
    "source": "court",
    "dispute_type": "property_management",
    "region": "900001001",
    "description": "申请人与物业公司因电梯停运两个月发生纠纷。",
    "parties": [
        {
            "role": "applicant",
            "name": "王淑芬",
            "phone": "13912345678",
            "id_number": "110101199003071234",
        },
        {"role": "respondent", "name": "幸福里物业公司", "phone": "031188886666"},
    ],
}  # fmt: skip
SECRETS = ["王淑芬", "13912345678", "110101199003071234", "幸福里物业公司", "031188886666"]


async def in_mediation(centre: Centre) -> dict[str, Any]:  # noqa: F811
    """A case of organisation A registered by its coordinator, given to mediator_a1."""
    coordinator, mediator = centre["coordinator_a"], centre["mediator_a1"]
    status, receipt = await coordinator.request("POST", "/api/cases", json=CASE)
    assert status == 201, receipt
    path = f"/api/cases/{receipt['case_id']}"
    for who, body in (
        (coordinator, {"action": "accept"}),
        (coordinator, {"action": "dispatch", "mediator_id": centre.accounts["mediator_a1"]["id"]}),
        (mediator, {"action": "take"}),
    ):
        status, case = await who.request("POST", f"{path}/transitions", json=body)
        assert status == 200, case
    return case


async def experts(centre: Centre) -> list[dict[str, Any]]:  # noqa: F811
    made = []
    for name, phone in (("周律师", "13311112222"), ("吴老师", "13322223333")):
        status, expert = await centre["coordinator_a"].request(
            "POST",
            "/api/experts",
            json={"name": name, "specialties": ["物业纠纷"], "phone": phone},
        )
        assert status == 201
        made.append(expert)
    return made


def events(log: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["event"] for e in log["entries"] if e["type"] == "event"]


async def eventually_logged(srv: Any, case_id: str, kind: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, log = await srv.admin("GET", f"/api/cases/{case_id}/log")
        found = [e for e in events(log) if e["kind"] == kind]
        if found:
            assert log["verification"]["authentic"] is True
            return found[-1]
        assert time.monotonic() < deadline, f"no {kind} in the case's log"
        await asyncio.sleep(0.2)


async def test_a_session_from_a_case(centre: Centre) -> None:  # noqa: F811
    srv = centre.srv
    case = await in_mediation(centre)
    cid, path = case["case_id"], f"/api/cases/{case['case_id']}"
    mediator, mediator2 = centre["mediator_a1"], centre["mediator_a2"]
    zhou, wu = await experts(centre)
    at = int(time.time()) + 2 * 86400

    # Who may schedule: the case's mediator (and the admin), while it is in mediation.
    body = {"scheduled_at": at, "expert_ids": [zhou["expert_id"]]}
    assert (await centre["coordinator_a"].request("POST", f"{path}/sessions", json=body))[0] == 403
    assert (await centre["archivist_a"].request("POST", f"{path}/sessions", json=body))[0] == 403
    assert (await mediator2.request("POST", f"{path}/sessions", json=body))[0] == 404
    for bad in (
        {"scheduled_at": at, "expert_ids": ["no-such-expert-1"]},
        {"scheduled_at": at - 400 * 86400},
        {"scheduled_at": at, "expert_ids": [zhou["expert_id"], zhou["expert_id"]]},
    ):
        status, answer = await mediator.request("POST", f"{path}/sessions", json=bad)
        assert status == 400, answer
    _, rooms_before = await mediator.request("GET", "/api/rooms")
    assert rooms_before["rooms"] == []  # a refusal makes no room

    status, made = await mediator.request("POST", f"{path}/sessions", json=body)
    assert status == 201, made
    session, room = made["session"], made["room"]
    assert session["scheduled_at"] == at and session["mediator_id"] == case["mediator_id"]
    invites = {i["name"]: i for i in made["invites"]}
    assert {n: (i["kind"], i["side"]) for n, i in invites.items()} == {
        "王淑芬": ("party", "applicant"),
        "幸福里物业公司": ("party", "respondent"),
        "周律师": ("expert", None),
    }
    assert all(i["url"].startswith(f"{srv.url}/join#token=") for i in invites.values())
    assert all(i["expires_at"] > at for i in invites.values())
    # The room is the mediator's, in the case's organisation: on their staff page.
    status, listed = await mediator.request("GET", "/api/rooms")
    (mine,) = listed["rooms"]
    assert mine["id"] == room["id"] and mine["owner_id"] == case["mediator_id"]
    assert mine["organisation_id"] == centre.org_a["id"] and case["case_number"] in mine["title"]
    status, me = await srv.request("GET", "/api/me", invites["王淑芬"]["token"])
    assert me["invite"]["side"] == "applicant" and me["room"]["id"] == room["id"]

    # The log, the audit log, the sessions.
    _, log = await mediator.request("GET", f"{path}/log")
    scheduled = events(log)[-1]
    assert scheduled["kind"] == "session_scheduled" and scheduled["room_id"] == room["id"]
    assert scheduled["experts"] == [zhou["expert_id"]] and scheduled["parties"] == 2
    _, audit = await srv.admin("GET", f"/api/audit?action=case_session_scheduled&target={cid}")
    assert [e["actor"]["id"] for e in audit["entries"]] == [case["mediator_id"]]
    _, sessions = await mediator.request("GET", f"{path}/sessions")
    assert [s["session_id"] for s in sessions["sessions"]] == [session["session_id"]]
    assert sessions["sessions"][0]["invites"][0]["url"].startswith(srv.url)
    _, sessions = await centre["archivist_a"].request("GET", f"{path}/sessions")
    assert "url" not in sessions["sessions"][0]["invites"][0]  # reads, sends nothing

    # The outbox: what to send to whom, with the links made again.
    assert (await centre["archivist_a"].request("GET", f"{path}/outbox"))[0] == 403
    status, outbox = await mediator.request("GET", f"{path}/outbox")
    assert status == 200
    to = {m["to"]["name"]: m for m in outbox["messages"]}
    assert set(to) == {"王淑芬", "幸福里物业公司", "周律师"}
    assert (
        to["王淑芬"]["to"]["phone"] == "13912345678"
        and to["周律师"]["to"]["phone"] == "13311112222"
    )
    assert all(m["status"] == "pending" for m in to.values())
    assert to["王淑芬"]["links"]["join"] == invites["王淑芬"]["url"]
    assert invites["王淑芬"]["url"] in to["王淑芬"]["text"] and "申请人" in to["王淑芬"]["text"]
    own = to["王淑芬"]["links"]["progress"]
    assert re.fullmatch(rf"{srv.url}/c/{case['code']}\?key=[A-Za-z0-9_-]{{22}}", own)
    assert to["周律师"]["links"]["progress"] is None and "专家" in to["周律师"]["text"]
    assert to["幸福里物业公司"]["links"]["progress"] != own

    # The public progress: the next session, never a name or phone.
    _, public = await srv.request("GET", f"/api/progress/{case['code']}")
    assert public["next_session"] == {"scheduled_at": at} and "party" not in public
    _, page = await srv.request("GET", f"/c/{case['code']}")
    assert 'id="progress-session"' in page and "尚未安排" not in page
    assert not any(word in page for word in SECRETS) and "party-view" not in page
    # A party's own link: their session link too (still no name on the page).
    key = own.split("key=")[1]
    _, public = await srv.request("GET", f"/api/progress/{case['code']}?key={key}")
    assert public["party"]["role"] == "applicant"
    assert public["party"]["sessions"][0]["join_url"] == invites["王淑芬"]["url"]
    assert public["party"]["agreements"] == []
    _, page = await srv.request("GET", f"/c/{case['code']}?key={key}")
    assert 'id="party-view"' in page and "您在本案中的身份：申请人" in page
    assert invites["王淑芬"]["url"].split("#")[1] in page
    assert invites["幸福里物业公司"]["url"].split("#")[1] not in page
    assert not any(word in page for word in SECRETS)
    for wrong in ("A" * 22, key[:-1] + ("A" if key[-1] != "A" else "B"), "short"):
        _, public = await srv.request("GET", f"/api/progress/{case['code']}?key={wrong}")
        assert "party" not in public

    # An expert sees only the sessions they are invited to.
    status, second = await mediator.request(
        "POST",
        f"{path}/sessions",
        json={"scheduled_at": at + 86400, "expert_ids": [wu["expert_id"]]},
    )
    assert status == 201
    zhou_token = invites["周律师"]["token"]
    status, answer = await srv.request("GET", f"/api/rooms/{second['room']['id']}", zhou_token)
    assert (status, answer["error"]) == (403, "token_wrong_room")
    assert (await srv.request("GET", f"/api/rooms/{room['id']}", zhou_token))[0] == 200
    assert (await srv.request("GET", path, zhou_token))[0] == 403
    assert "周律师" not in {i["name"] for i in second["invites"]}
    _, public = await srv.request("GET", f"/api/progress/{case['code']}?key={key}")
    assert [s["scheduled_at"] for s in public["party"]["sessions"]] == [at, at + 86400]

    # In the room: the mediator enters from the staff page, a party comes in: held.
    status, entry = await mediator.request("POST", f"/api/rooms/{room['id']}/enter")
    m = await srv.join(entry)
    prefill = (await m.call("agreement_prefill", {}))["prefill"]
    assert prefill["case_number"] == case["case_number"]
    assert prefill["facts"] == CASE["description"]
    assert [(p["name"], p["role"]) for p in prefill["parties"]] == [
        ("王淑芬", "applicant"),
        ("幸福里物业公司", "respondent"),
    ]
    assert prefill["mediator"] == "张三"
    party = await srv.join({"token": invites["王淑芬"]["token"]})
    assert (await m.call("admit", {"participant_id": invites["王淑芬"]["invite_id"]}))["ok"]
    held = await eventually_logged(srv, cid, "session_held")
    assert held["session_id"] == session["session_id"]
    # Recorded (the real recorder process): started, stopped, sealed, by the chain's hash.
    recording_path = f"/api/rooms/{room['id']}/recording"
    status, started = await srv.request("POST", recording_path, entry["token"])
    assert status == 201, started
    await wait_recorder(srv, room["id"])
    status, _ = await srv.request("DELETE", recording_path, entry["token"])
    assert status == 200
    sealed = await eventually_logged(srv, cid, "recording_sealed")
    assert sealed["recording_id"] == started["id"] and re.fullmatch(
        "[0-9a-f]{64}", sealed["seal_hash"]
    )
    _, log = await mediator.request("GET", f"{path}/log")
    kinds = [e["kind"] for e in events(log)]
    assert kinds[-5:] == [
        "session_scheduled", "session_held", "recording_started", "recording_stopped",
        "recording_sealed",
    ]  # fmt: skip
    started_event = next(e for e in events(log) if e["kind"] == "recording_started")
    assert (
        started_event["actor"]["kind"] == "invite"
        and started_event["actor"]["id"] == entry["invite_id"]
    )
    # Ended: logged once; the party's link no longer opens the room.
    await party.close()
    await m.close()
    status, _ = await mediator.request("DELETE", f"/api/rooms/{room['id']}")
    assert status == 200
    ended = await eventually_logged(srv, cid, "session_ended")
    assert ended["session_id"] == session["session_id"]
    _, public = await srv.request("GET", f"/api/progress/{case['code']}?key={key}")
    first, later = public["party"]["sessions"]
    assert first["ended_at"] is not None and first["join_url"] is None
    assert later["join_url"] is not None
    assert public["next_session"] == {"scheduled_at": at + 86400}

    # Once the case is out of mediation, no more sessions.
    status, _ = await mediator.request(
        "POST", f"{path}/transitions", json={"action": "close", "outcome": "success"}
    )
    assert status == 200
    status, answer = await mediator.request("POST", f"{path}/sessions", json={"scheduled_at": at})
    assert (status, answer["error"]) == (409, "case_not_in_mediation")


async def test_a_session_on_the_memory_store(tmp_path) -> None:
    """`--database memory:`: rooms in memory, the case's log in the in-memory SQLite; the
    room's changes still reach the case's log."""
    srv = await start_server(tmp_path / "data", database_url="memory:")
    try:
        status, org = await srv.admin("POST", "/api/organisations", json={"name": "调解中心"})
        mediator = await make_account(srv, "mediator_m", org["id"], ["mediator"])
        browser = StaffBrowser(srv.url)
        assert (await browser.login("mediator_m"))[0] == 201
        status, receipt = await srv.admin("POST", "/api/cases", json=CASE)
        assert status == 201, receipt
        path = f"/api/cases/{receipt['case_id']}"
        await srv.admin("POST", f"{path}/transitions", json={"action": "accept"})
        await srv.admin(
            "POST",
            f"{path}/transitions",
            json={"action": "dispatch", "mediator_id": mediator["id"]},
        )
        await browser.request("POST", f"{path}/transitions", json={"action": "take"})
        status, made = await browser.request(
            "POST", f"{path}/sessions", json={"scheduled_at": int(time.time()) + 600}
        )
        assert status == 201, made
        status, _ = await browser.request("DELETE", f"/api/rooms/{made['room']['id']}")
        assert status == 200
        _, log = await srv.admin("GET", f"{path}/log")
        assert [e["kind"] for e in events(log)][-2:] == ["session_scheduled", "session_ended"]
        assert log["verification"]["authentic"] is True
        assert srv.app[CASES].database.kind == "memory"
        await browser.close()
    finally:
        await srv.close()
        await srv.server.close()
