"""The mediator's notice to everyone (`caucus_broadcast`) and caucus timers
(`caucus_timer`, `caucus_open` with `minutes`), over real socket.io connections and a
real recorder: who may send them, what is refused, who hears them (the main room and
every caucus; a timer's members and the mediators only, again after a reconnect), and
what the chain gets (the notice's sha256, never its text; the timer set, cleared, up);
and a party's request for a private talk with a named expert, declined by the mediator."""

from __future__ import annotations

import hashlib

import pytest

from tests.test_recording_api import chain_events, wait_recorder
from tiaojie.server import caucus_timer
from tiaojie.server.notices import NOTICE_BURST
from tiaojie.server.schemas import MAX_NOTICE_CHARS

#: Seconds to wait for an event (a loaded 2-core machine can be slow).
WAIT_S = 15


async def room_with(srv):
    room = await srv.create_room(lobby=False)
    invites = {
        "mediator": await srv.create_invite(room["id"], "mediator", "王调解员"),
        "applicant": await srv.create_invite(room["id"], "party", "王五", side="applicant"),
        "respondent": await srv.create_invite(room["id"], "party", "李四", side="respondent"),
        "expert": await srv.create_invite(room["id"], "expert", "赵律师"),
        "observer": await srv.create_invite(room["id"], "observer", "钱观察"),
    }
    return room, invites


def refused(answer: dict, error: str) -> bool:
    return answer["ok"] is False and answer["error"] == error


async def start(srv, m, room_id: str) -> str:
    started = await m.call("start_recording", {})
    assert started["ok"], started
    await wait_recorder(srv, room_id)
    return started["recording"]["id"]


async def stop(srv, m, room_id: str) -> None:
    assert await srv.state.recordings.flush(room_id)  # every queued event is in the chain
    assert (await m.call("stop_recording", {}))["ok"]
    await wait_recorder(srv, room_id, present=False)


async def test_the_mediators_notice_reaches_every_caucus_and_the_main_room(live_server):
    srv = live_server
    room, inv = await room_with(srv)
    c = {role: await srv.join(invite) for role, invite in inv.items()}
    m, a = c["mediator"], c["applicant"]
    ids = {role: invite["invite_id"] for role, invite in inv.items()}
    recording_id = await start(srv, m, room["id"])

    # only the mediator sends one
    for role in ("applicant", "expert", "observer"):
        answer = await c[role].call("caucus_broadcast", {"text": "大家好"})
        assert refused(answer, "forbidden"), (role, answer)
    # one short line of text, nothing else
    for bad in (
        {"text": ""},
        {"text": "x" * (MAX_NOTICE_CHARS + 1)},
        {"text": "两\n行"},
        {},
        {"text": "hi", "html": "<b>"},
        {"text": 5},
    ):
        assert refused(await m.call("caucus_broadcast", bad), "bad_request"), bad

    opened = await m.call("caucus_open", {"members": [ids["applicant"], ids["mediator"]]})
    assert opened["ok"], opened
    other = await m.call("caucus_open", {"members": [ids["expert"]]})
    assert other["ok"], other
    text = "还有五分钟，请准备回到主会场"
    sent = await m.call("caucus_broadcast", {"text": text})
    assert sent["ok"], sent
    notice = sent["notice"]
    assert (notice["text"], notice["from"], notice["name"]) == (text, ids["mediator"], "王调解员")
    for role in inv:  # the mediator's caucus, the other caucus, the main room
        got = await c[role].wait_for("mediator_notice", timeout=WAIT_S)
        assert got == notice, role

    # a few at once, then refused for a while
    answers = [await m.call("caucus_broadcast", {"text": f"第{i}条"}) for i in range(NOTICE_BURST)]
    assert [x["ok"] for x in answers].count(False) >= 1
    assert all(refused(x, "rate_limited") for x in answers if not x["ok"])

    await stop(srv, m, room["id"])
    chained = [e for e in chain_events(srv, recording_id) if e["kind"] == "mediator_notice"]
    assert chained[0]["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert chained[0]["participant_id"] == ids["mediator"]
    assert chained[0]["notice_id"] == notice["id"] and chained[0]["recipients"] == 5
    chain_text = srv.state.settings.data_dir / "recordings" / recording_id / "chain.jsonl"
    assert text.encode("unicode_escape").decode() not in chain_text.read_text()
    assert text not in chain_text.read_text()
    assert a.received("mediator_notice")[0]["text"] == text


async def test_a_caucus_timer_warns_its_members_and_the_mediators_and_forces_nothing(
    live_server, monkeypatch: pytest.MonkeyPatch
):
    # a minute of 2 s, warned 1 s before the end: the real timer, faster
    monkeypatch.setattr(caucus_timer, "SECONDS_PER_MINUTE", 2.0)
    monkeypatch.setattr(caucus_timer, "WARNING_S", 1.0)
    srv = live_server
    room, inv = await room_with(srv)
    c = {role: await srv.join(invite) for role, invite in inv.items()}
    m, a, r = c["mediator"], c["applicant"], c["respondent"]
    ids = {role: invite["invite_id"] for role, invite in inv.items()}
    recording_id = await start(srv, m, room["id"])
    members = [ids["applicant"], ids["expert"]]

    # validation and permissions
    for bad in (0, 241, "5", 1.5, True):
        answer = await m.call("caucus_open", {"members": members, "minutes": bad})
        assert refused(answer, "bad_request"), bad
    opened = await m.call("caucus_open", {"members": members, "minutes": 30})
    assert opened["ok"], opened
    caucus_id = opened["caucus_id"]
    assert opened["caucus"]["minutes"] == 30 and opened["caucus"]["timer_state"] == "running"
    # 30 "minutes" of 2 s; a loaded machine may take a few seconds to answer
    assert 50 <= opened["caucus"]["remaining_s"] <= 60
    for role in ("applicant", "expert", "respondent", "observer"):
        answer = await c[role].call("caucus_timer", {"caucus_id": caucus_id, "minutes": 1})
        assert refused(answer, "forbidden"), role
    nowhere = await m.call("caucus_timer", {"caucus_id": "c_NoSuchCaucus", "minutes": 1})
    assert refused(nowhere, "no_caucus"), nowhere
    # everyone sees the caucus's end (the countdown is the members' and mediators')
    updated = await r.wait_for("caucus_updated", timeout=WAIT_S)
    assert updated["caucuses"][0]["ends_at"] == opened["caucus"]["ends_at"]

    # cleared: no timer, nothing announced
    cleared = await m.call("caucus_timer", {"caucus_id": caucus_id})
    assert cleared["ok"] and cleared["caucus"]["ends_at"] is None, cleared
    # set again: 1 minute (2 s here); warned after 1 s, up after 2 s
    timed = await m.call("caucus_timer", {"caucus_id": caucus_id, "minutes": 1})
    assert timed["ok"] and timed["caucus"]["timer_state"] == "running", timed
    for who in (m, a, c["expert"]):
        warning = await who.wait_for(
            "caucus_time", lambda d: d["state"] == "warning", timeout=WAIT_S
        )
        assert warning["caucus_id"] == caucus_id
        ended = await who.wait_for("caucus_time", lambda d: d["state"] == "ended", timeout=WAIT_S)
        assert ended["remaining_s"] == 0
    for outside in (r, c["observer"]):
        assert outside.received("caucus_time") == []  # not theirs
    # each moment once, however many waited for it
    assert [d["state"] for d in a.received("caucus_time")] == ["warning", "ended"]
    # nothing forced: the caucus is still open with its members
    stored = await srv.state.store.require(room["id"])
    assert stored.caucuses[caucus_id]["members"] == members

    # a member who comes back hears that the time is up, from the server
    await a.close()
    again = await srv.join(inv["applicant"])
    told = await again.wait_for("caucus_time", timeout=WAIT_S)
    assert (told["caucus_id"], told["state"]) == (caucus_id, "ended")
    state = again.received("room_state")[-1]
    assert state["caucuses"][0]["timer_state"] == "ended"

    assert (await m.call("caucus_close", {"caucus_id": caucus_id}))["ok"]
    await stop(srv, m, room["id"])
    events = chain_events(srv, recording_id)
    timers = [e for e in events if e["kind"] == "caucus_timer"]
    assert [t["minutes"] for t in timers] == [None, 1]
    assert all(t["caucus_id"] == caucus_id and t["by"] == ids["mediator"] for t in timers)
    opened_event = next(e for e in events if e["kind"] == "caucus_opened")
    assert opened_event["minutes"] == 30
    up = [e for e in events if e["kind"] == "caucus_time_up"]
    assert [(u["caucus_id"], u["minutes"]) for u in up] == [(caucus_id, 1)]
    kinds = [e["kind"] for e in events]
    assert kinds.index("caucus_time_up") < kinds.index("caucus_closed")


async def test_the_screened_person_is_told_what_they_do_not_receive_and_no_one_else(live_server):
    srv = live_server
    _room, inv = await room_with(srv)
    c = {role: await srv.join(invite) for role, invite in inv.items()}
    m, a, r = c["mediator"], c["applicant"], c["respondent"]
    ids = {role: invite["invite_id"] for role, invite in inv.items()}
    assert r.received("room_state")[-1]["screened"] == []
    screen = {"participant_id": ids["respondent"], "from": ids["applicant"], "mode": "video"}
    assert (await m.call("screen", screen))["ok"]
    told = await r.wait_for("screened_updated", timeout=WAIT_S)
    assert told == {"screened": [{"from": ids["applicant"], "mode": "video"}]}
    assert (await m.call("screen", {**screen, "mode": "none"}))["ok"]
    await r.wait_for("screened_updated", lambda d: d["screened"] == [], timeout=WAIT_S)
    assert (await m.call("screen", {**screen, "mode": "all"}))["ok"]
    await r.wait_for(
        "screened_updated", lambda d: d["screened"] and d["screened"][0]["mode"] == "all"
    )
    # a page that comes back learns it from its room_state
    await r.close()
    again = await srv.join(inv["respondent"])
    assert again.received("room_state")[-1]["screened"] == [
        {"from": ids["applicant"], "mode": "all"}
    ]
    # the one screened from, and the others, are not told
    for who in (a, c["expert"], c["observer"], m):
        assert who.received("screened_updated") == []


async def test_a_party_asks_for_a_named_expert_and_the_mediator_declines(live_server):
    """`caucus_request` with an expert: only the mediators hear it, naming the expert; a
    request for someone who cannot hold a private talk is refused; `caucus_decline`
    tells the asking party (and no one else) and clears it from every mediator's list."""
    srv = live_server
    _room, inv = await room_with(srv)
    c = {role: await srv.join(invite) for role, invite in inv.items()}
    m, a, e = c["mediator"], c["applicant"], c["expert"]
    ids = {role: invite["invite_id"] for role, invite in inv.items()}
    for client in c.values():
        await client.wait_for("room_state", timeout=WAIT_S)

    assert (await a.call("caucus_request", {"with": ids["expert"]}))["ok"]
    asked = await m.wait_for("caucus_requested", timeout=WAIT_S)
    assert (asked["participant_id"], asked["side"]) == (ids["applicant"], "applicant")
    assert (asked["with"], asked["with_name"]) == (ids["expert"], "赵律师")
    # who cannot be asked for (a request refused counts against the sender's few), and
    # who cannot ask or decline
    for asker, whom in ((a, "respondent"), (a, "observer"), (c["respondent"], "respondent")):
        answer = await asker.call("caucus_request", {"with": ids[whom]})
        assert refused(answer, "bad_request"), (whom, answer)
    assert refused(await a.call("caucus_request", {"with": "mediator"}), "rate_limited")
    assert refused(await e.call("caucus_request", {"with": "mediator"}), "forbidden")
    declined = await a.call("caucus_decline", {"participant_id": ids["respondent"]})
    assert refused(declined, "forbidden")

    assert (await m.call("caucus_decline", {"participant_id": ids["applicant"]}))["ok"]
    assert await a.wait_for("caucus_request_declined", timeout=WAIT_S) == {}
    answered = await m.wait_for("caucus_request_answered", timeout=WAIT_S)
    assert answered == {"participant_id": ids["applicant"]}
    # the others heard neither the request nor its answer
    for role in ("respondent", "expert", "observer"):
        for event in ("caucus_requested", "caucus_request_declined", "caucus_request_answered"):
            assert c[role].received(event) == [], (role, event)
