"""Bookings (预约): free slots from weekly availability and its exceptions in a time zone;
20 parties at once for one slot (exactly one wins, on SQLite and PostgreSQL); a booking's
private room, its messages in the outbox, moving and cancelling with reasons on the case
log; who may do what (a party only for their own case, a mediator only their own
availability)."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import LiveServer, start_server
from tests.support.staff import PASSWORD, StaffBrowser
from tiaojie.server.bookings.slots import Rule, free, slots
from tiaojie.server.cases.service import CASES
from tiaojie.server.roles import Role

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_free_slots_from_weekly_slots_exceptions_and_the_zone() -> None:
    monday = date(2026, 3, 2)
    rules = [
        Rule("weekly", 9 * 60, 11 * 60, 30, weekday=0),
        Rule("off", 0, 1440, 30, day=monday + timedelta(days=7)),
        Rule("extra", 14 * 60, 15 * 60, 60, day=monday + timedelta(days=1)),
    ]
    found = slots(rules, monday, monday + timedelta(days=13), SHANGHAI)
    starts = [datetime.fromtimestamp(s.starts_at, SHANGHAI) for s in found]
    # Mondays 9:00-11:00 in four half hours (北京时间 = 01:00 UTC), the 9th off, plus
    # one hour on Tuesday the 3rd.
    assert [f"{m:%d %H:%M}" for m in starts] == [
        "02 09:00", "02 09:30", "02 10:00", "02 10:30", "03 14:00",
    ]  # fmt: skip
    assert found[0].starts_at == int(datetime(2026, 3, 2, 1, 0, tzinfo=ZoneInfo("UTC")).timestamp())
    # Busy times (a booking, a session) and the past take slots away.
    busy = [(found[1].starts_at + 60, found[1].starts_at + 120)]
    assert [s.starts_at for s in free(found, busy, found[0].starts_at)] == [
        found[2].starts_at, found[3].starts_at, found[4].starts_at,
    ]  # fmt: skip
    # Wall-clock times hold across a daylight saving change.
    york = ZoneInfo("America/New_York")
    weekly = [Rule("weekly", 9 * 60, 10 * 60, 60, weekday=0)]
    utc = [
        datetime.fromtimestamp(s.starts_at, ZoneInfo("UTC")).hour
        for s in slots(weekly, date(2026, 3, 2), date(2026, 3, 9), york)
    ]
    assert utc == [14, 13]


CASE = {
    "source": "court",
    "dispute_type": "property_management",
    "region": "900001001",
    "description": "申请人与物业公司因电梯停运两个月发生纠纷。",
    "parties": [
        {"role": "applicant", "name": "王淑芬", "phone": "13912345678"},
        {"role": "respondent", "name": "赵建国", "phone": "13700001111"},
    ],
}


async def _mediator(srv: LiveServer, login: str) -> str:
    status, orgs = await srv.admin("GET", "/api/organisations")
    organisation = (
        orgs["organisations"][0]["id"] if status == 200 and orgs.get("organisations") else None
    )
    if organisation is None:
        status, org = await srv.admin("POST", "/api/organisations", json={"name": "东城区调委会"})
        assert status == 201, org
        organisation = org["id"]
    status, account = await srv.admin(
        "POST",
        "/api/accounts",
        json={
            "login": login,
            "name": f"调解员{login[-2:]}",
            "organisation_id": organisation,
            "roles": ["mediator"],
            "password": PASSWORD,
        },
    )
    assert status == 201, account
    return str(account["id"])


async def _case(srv: LiveServer, mediator: str | None) -> dict[str, Any]:
    status, receipt = await srv.admin("POST", "/api/cases", json=CASE)
    assert status == 201, receipt
    path = f"/api/cases/{receipt['case_id']}/transitions"
    changes: list[dict[str, Any]] = [{"action": "accept"}]
    if mediator:
        changes.append({"action": "dispatch", "mediator_id": mediator})
    for change in changes:
        status, answer = await srv.admin("POST", path, json=change)
        assert status == 200, answer
    keys = srv.app[CASES].party_keys
    receipt["links"] = [
        f"code={receipt['code']}&key={keys.key(receipt['case_id'], p)}" for p in (0, 1)
    ]
    return receipt


async def _expert(srv: LiveServer, tomorrow: str) -> str:
    body = {"name": "孙律师", "specialties": ["律师"], "phone": "13600002222"}
    status, expert = await srv.admin("POST", "/api/experts", json=body)
    assert status == 201, expert
    rule = {
        "provider_kind": "expert",
        "provider_id": expert["expert_id"],
        "kind": "extra",
        "date": tomorrow,
        "start": "09:00",
        "end": "11:00",
        "slot_minutes": 30,
    }
    status, made = await srv.admin("POST", "/api/availability", json=rule)
    assert status == 201, made
    return str(expert["expert_id"])


def _tomorrow() -> str:
    return (datetime.now(SHANGHAI).date() + timedelta(days=1)).isoformat()


async def test_twenty_parties_at_once_for_one_slot_one_wins(
    tmp_path: Path, database_url: str
) -> None:
    srv = await start_server(tmp_path / "data", database_url=database_url)
    try:
        tomorrow = _tomorrow()
        expert = await _expert(srv, tomorrow)
        receipts = [await _case(srv, None) for _ in range(20)]
        status, offer = await srv.request(
            "GET", f"/api/availability?{receipts[0]['links'][0]}&specialty=律师&from={tomorrow}"
        )
        assert status == 200, offer
        first = offer["slots"][0]
        body = {"provider_kind": "expert", "provider_id": expert, "starts_at": first["starts_at"]}
        answers = await asyncio.gather(
            *(srv.request("POST", f"/api/bookings?{r['links'][0]}", json=body) for r in receipts)
        )
        statuses = sorted(status for status, _ in answers)
        assert statuses == [201] + [409] * 19, answers
        refused = [a for s, a in answers if s == 409]
        assert {a["error"] for a in refused} <= {"slot_taken", "slot_not_free"}
        # The slot is no longer offered; the next one is.
        _, offer = await srv.request(
            "GET", f"/api/availability?{receipts[1]['links'][0]}&specialty=律师&from={tomorrow}"
        )
        assert offer["slots"][0]["starts_at"] == first["starts_at"] + 1800
    finally:
        await srv.close()


async def test_a_booking_its_room_messages_moves_cancels_and_who_may(tmp_path: Path) -> None:
    srv = await start_server(tmp_path / "data")
    mediator_browser = StaffBrowser(srv.url)
    try:
        tomorrow = _tomorrow()
        mediator = await _mediator(srv, "13800001111")
        other = await _mediator(srv, "13800002222")
        expert = await _expert(srv, tomorrow)
        case = await _case(srv, mediator)
        stranger = await _case(srv, None)
        mine, theirs = case["links"]

        # The party's page: the kinds of expert, then the free slots of one kind.
        status, listed = await srv.request("GET", f"/api/bookings?{mine}")
        assert status == 200 and listed["kinds"] == ["律师"] and listed["bookings"] == []
        status, offer = await srv.request(
            "GET", f"/api/availability?{mine}&specialty=律师&from={tomorrow}"
        )
        assert status == 200 and len(offer["slots"]) == 4
        slot = offer["slots"][0]
        assert datetime.fromtimestamp(slot["starts_at"], SHANGHAI).strftime("%H:%M") == "09:00"
        body = {"provider_kind": "expert", "provider_id": expert, "starts_at": slot["starts_at"]}

        # Least privilege: a wrong key, or naming another case, is refused.
        bad_key = mine[:-4] + ("AAAA" if not mine.endswith("AAAA") else "BBBB")
        assert (await srv.request("POST", f"/api/bookings?{bad_key}", json=body))[0] == 404
        for_other = {**body, "case_id": stranger["case_id"], "party_position": 0}
        assert (await srv.request("POST", f"/api/bookings?{mine}", json=for_other))[0] == 400
        assert (await srv.request("POST", "/api/bookings", json=body))[0] == 401

        status, booking = await srv.request("POST", f"/api/bookings?{mine}", json=body)
        assert status == 201, booking
        assert booking["status"] == "active" and booking["provider_name"] == "孙律师"

        # Its room: lobby off, the party and the expert invited, nobody else.
        room = await srv.state.store.get(booking["room_id"])
        assert room is not None and not room.lobby
        invited = sorted((i.role, i.name) for i in room.invites.values())
        assert invited == sorted([(Role.PARTY, "王淑芬"), (Role.EXPERT, "孙律师")])

        # The outbox: a confirmation to each, with their own link when sent.
        async def notes() -> list[dict[str, Any]]:
            status, answer = await srv.admin("GET", f"/api/notifications?case_id={case['case_id']}")
            assert status == 200, answer
            return [n for n in answer["notifications"] if n["kind"].startswith("booking")]

        first = await notes()
        confirmed = [(n["kind"], n["recipient"]["role"]) for n in first if "confirmed" in n["kind"]]
        assert sorted(confirmed) == [
            ("booking_confirmed", "expert"),
            ("booking_confirmed", "party"),
        ]
        # ... and to each a reminder a day and an hour before, those still ahead
        leads = (("booking_reminder_day", 86400), ("booking_reminder_hour", 3600))
        ahead = [(k, lead) for k, lead in leads if slot["starts_at"] - lead > time.time() + 60]
        assert ahead  # the talk is tomorrow: at least the hour's reminder is ahead
        reminded = sorted(
            (n["kind"], n["recipient"]["role"], n["not_before"], n["status"])
            for n in first
            if "reminder" in n["kind"]
        )
        assert reminded == sorted(
            (kind, role, slot["starts_at"] - lead, "queued")
            for kind, lead in ahead
            for role in ("expert", "party")
        )

        def confirmations(found: list[dict[str, Any]]) -> list[str]:
            return [n["status"] for n in found if "confirmed" in n["kind"]]

        # The worker sends them (the log channel here) with their links made at sending
        # time: a message whose link could not be made would be cancelled, not sent.
        deadline = time.monotonic() + 30
        while confirmations(await notes()) != ["sent", "sent"]:
            assert time.monotonic() < deadline, await notes()
            await asyncio.sleep(0.05)

        # The other party and another case's party do not see nor change it.
        _, seen = await srv.request("GET", f"/api/bookings?{theirs}")
        assert seen["bookings"] == []
        reason = {"reason": "临时有事"}
        path = f"/api/bookings/{booking['booking_id']}"
        assert (await srv.request("DELETE", f"{path}?{theirs}", json=reason))[0] == 404
        other_case = stranger["links"][0]
        assert (await srv.request("DELETE", f"{path}?{other_case}", json=reason))[0] == 404

        # The mediator's calendar holds it; the expert's slot is taken.
        status, calendar = await srv.admin(
            "GET", f"/api/calendar?mediator_id={mediator}&from={tomorrow}&to={tomorrow}"
        )
        assert status == 200, calendar
        assert [b["booking_id"] for b in calendar["bookings"]] == [booking["booking_id"]]
        status, rules = await srv.admin(
            "GET", f"/api/availability?provider_kind=expert&provider_id={expert}&from={tomorrow}"
        )
        assert status == 200 and len(rules["slots"]) == 3 and len(rules["rules"]) == 1

        # The party moves it, with a reason: a new room, the old one ended, both logged.
        later = offer["slots"][2]["starts_at"]
        move = {"starts_at": later, "reason": "上午要去医院"}
        status, moved = await srv.request("PUT", f"{path}?{mine}", json=move)
        assert status == 200, moved
        assert moved["starts_at"] == later and moved["room_id"] != booking["room_id"]
        old_room = await srv.state.store.get(booking["room_id"])
        assert old_room is not None and old_room.ended
        _, listed = await srv.request("GET", f"/api/bookings?{mine}")
        states = {b["booking_id"]: (b["status"], b["reason"]) for b in listed["bookings"]}
        assert states[booking["booking_id"]] == ("rescheduled", "上午要去医院")

        # Staff cancel it, with a reason.
        status, cancelled = await srv.admin(
            "DELETE", f"/api/bookings/{moved['booking_id']}", json={"reason": "专家出差"}
        )
        assert status == 200 and cancelled["status"] == "cancelled", cancelled
        assert (await srv.state.store.get(moved["room_id"])).ended
        status, again = await srv.admin(
            "DELETE", f"/api/bookings/{moved['booking_id']}", json={"reason": "再次"}
        )
        assert status == 409, again

        kinds = sorted((n["kind"], n["recipient"]["role"]) for n in await notes())
        assert ("booking_rescheduled", "party") in kinds and (
            "booking_rescheduled",
            "expert",
        ) in kinds
        assert ("booking_cancelled", "party") in kinds and ("booking_cancelled", "expert") in kinds

        status, log = await srv.admin("GET", f"/api/cases/{case['case_id']}/log")
        assert status == 200 and log["verification"]["authentic"], log
        events = [e["event"] for e in log["entries"] if e["type"] == "event"]
        booked = [(e["kind"], e.get("reason")) for e in events if e["kind"].startswith("booking")]
        assert booked == [
            ("booking_made", None),
            ("booking_rescheduled", "上午要去医院"),
            ("booking_cancelled", "专家出差"),
        ]
        assert [e["actor"]["kind"] for e in events if e["kind"].startswith("booking")] == [
            "party", "party", "admin",
        ]  # fmt: skip

        # A mediator manages their own availability, not another's nor an expert's.
        status, _ = await mediator_browser.login("13800001111")
        assert status == 201
        weekly = {"provider_kind": "mediator", "kind": "weekly", "weekday": 2,
                  "start": "14:00", "end": "17:00", "slot_minutes": 60}  # fmt: skip
        status, own = await mediator_browser.request("POST", "/api/availability", json=weekly)
        assert status == 201 and own["provider_id"] == mediator, own
        status, _ = await mediator_browser.request(
            "POST", "/api/availability", json={**weekly, "provider_id": other}
        )
        assert status == 403
        expert_rule = {**weekly, "provider_kind": "expert", "provider_id": expert}
        status, _ = await mediator_browser.request("POST", "/api/availability", json=expert_rule)
        assert status == 403
        status, _ = await mediator_browser.request("GET", f"/api/calendar?mediator_id={other}")
        assert status == 403
        status, _ = await mediator_browser.request(
            "DELETE", f"/api/availability/{own['availability_id']}"
        )
        assert status == 200
    finally:
        await mediator_browser.close()
        await srv.close()
