"""Chat and stepping out to the lobby, over real socket.io connections (SQLite and
PostgreSQL for the room suite; a real recorder for the chain): who gets a message (in
the room, privately, inside a caucus), who may write privately to whom, the rate limit,
the text rules, the history of someone who comes in late or comes back, and
`send_to_lobby` keeping who the person is."""

from __future__ import annotations

import asyncio
import hashlib
import json

from tests.conftest import restart_server
from tests.test_recording import verify
from tests.test_recording_api import chain_events, wait_recorder
from tiaojie.server.chat.service import CHAT_BURST
from tiaojie.server.schemas import MAX_CHAT_CHARS


async def room_with(srv, lobby: bool = False):
    room = await srv.create_room(lobby=lobby)
    invites = {
        "mediator": await srv.create_invite(room["id"], "mediator", "王调解员"),
        "applicant": await srv.create_invite(room["id"], "party", "王五", side="applicant"),
        "respondent": await srv.create_invite(room["id"], "party", "李四", side="respondent"),
        "expert": await srv.create_invite(room["id"], "expert", "赵律师"),
    }
    return room, invites


async def inside(srv, invite):
    client = await srv.join(invite)
    await client.wait_for("room_state")
    await client.wait_for("chat_history")
    return client


def texts(client) -> list[str]:
    return [m["text"] for m in client.received("chat")]


async def said(client, text: str) -> dict:
    return await client.wait_for("chat", lambda m: m["text"] == text)


# -- routing -------------------------------------------------------------------------------
async def test_room_chat_reaches_everyone_inside_and_private_only_the_two(room_server):
    srv = room_server
    _room, inv = await room_with(srv)
    m = await inside(srv, inv["mediator"])
    a = await inside(srv, inv["applicant"])
    r = await inside(srv, inv["respondent"])
    e = await inside(srv, inv["expert"])
    everyone = (m, a, r, e)

    answer = await a.call("chat_send", {"text": "大家好"})
    assert answer["ok"] is True, answer
    message = answer["message"]
    assert message["from"] == inv["applicant"]["invite_id"] and message["to"] is None
    assert message["name"] == "王五" and message["caucus_id"] is None and message["at"] > 0
    for client in everyone:
        assert await said(client, "大家好") == message

    # a party writes privately to the mediator: the two of them, nobody else
    private = await r.call("chat_send", {"text": "只给调解员", "to": inv["mediator"]["invite_id"]})
    assert private["ok"] is True, private
    assert private["message"]["to"] == inv["mediator"]["invite_id"]
    assert (await said(m, "只给调解员"))["from"] == inv["respondent"]["invite_id"]
    await said(r, "只给调解员")
    # the mediator to a party
    reply = await m.call("chat_send", {"text": "收到", "to": inv["respondent"]["invite_id"]})
    assert reply["ok"] is True, reply
    await said(r, "收到")
    # a later room message reached everyone: nothing private went to the others before it
    await m.call("chat_send", {"text": "继续"})
    for client in (a, e):
        await said(client, "继续")
        assert texts(client) == ["大家好", "继续"]

    # who may not write to whom: a party or an expert to anyone but the mediator
    for sender, to in ((a, "respondent"), (e, "applicant"), (a, "expert")):
        refused = await sender.call("chat_send", {"text": "悄悄话", "to": inv[to]["invite_id"]})
        assert (refused["ok"], refused["error"]) == (False, "forbidden"), refused
    nobody = await m.call("chat_send", {"text": "x", "to": "NoSuchPerson0000"})
    assert (nobody["ok"], nobody["error"]) == (False, "participant_not_found")
    itself = await m.call("chat_send", {"text": "x", "to": inv["mediator"]["invite_id"]})
    assert (itself["ok"], itself["error"]) == (False, "cannot_write_self")
    for client in everyone:
        assert "悄悄话" not in texts(client) and "x" not in texts(client)


async def test_the_lobby_neither_writes_nor_reads_the_chat(room_server):
    srv = room_server
    _room, inv = await room_with(srv, lobby=True)
    m = await inside(srv, inv["mediator"])
    waiting = await srv.join(inv["applicant"])
    await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 1)
    refused = await waiting.call("chat_send", {"text": "让我进去"})
    assert (refused["ok"], refused["error"]) == (False, "not_joined")
    assert (await m.call("chat_send", {"text": "里面的话"}))["ok"] is True
    await said(m, "里面的话")
    assert waiting.received("chat") == [] and waiting.received("chat_history") == []


# -- limits and the text rules ---------------------------------------------------------------
async def test_chat_is_rate_limited_per_person(live_server):
    srv = live_server
    _room, inv = await room_with(srv)
    m = await inside(srv, inv["mediator"])
    a = await inside(srv, inv["applicant"])
    answers = [await a.call("chat_send", {"text": f"第{i}条"}) for i in range(CHAT_BURST + 5)]
    assert all(x["ok"] for x in answers[:CHAT_BURST]), answers
    limited = [x for x in answers if not x["ok"]]
    assert limited and all(x["error"] == "rate_limited" for x in limited), answers
    # somebody else is not held back by it
    assert (await m.call("chat_send", {"text": "调解员"}))["ok"] is True
    delivered = [t for t in texts(m) if t.startswith("第")]
    assert len(delivered) == sum(1 for x in answers if x["ok"])


async def test_chat_text_is_checked_and_kept_as_typed_not_as_markup(live_server):
    srv = live_server
    _room, inv = await room_with(srv)
    m = await inside(srv, inv["mediator"])
    a = await inside(srv, inv["applicant"])
    markup = '<img src=x onerror="alert(1)"> & <b>粗体</b>'
    answer = await a.call("chat_send", {"text": markup})
    assert answer["ok"] is True and answer["message"]["text"] == markup
    assert (await said(m, markup))["text"] == markup  # the server sends text, not HTML
    # the text rules of signing/text.py: normal form, no controls or bidi overrides
    combined = await a.call("chat_send", {"text": "Cafe\u0301\n第二行"})
    assert combined["message"]["text"] == "Café\n第二行"
    for bad in ("", "响铃\x07", "\u202eevil", "x" * (MAX_CHAT_CHARS + 1), 42):
        refused = await a.call("chat_send", {"text": bad})
        assert (refused["ok"], refused["error"]) == (False, "bad_request"), (bad, refused)
    extra = await a.call("chat_send", {"text": "hi", "html": "<b>"})
    assert (extra["ok"], extra["error"]) == (False, "bad_request")
    assert texts(m) == [markup, "Café\n第二行"]


# -- history -----------------------------------------------------------------------------------
async def test_a_late_joiner_sees_the_chat_since_they_were_admitted(room_server):
    srv = room_server
    _room, inv = await room_with(srv, lobby=True)
    m = await inside(srv, inv["mediator"])
    await m.call("chat_send", {"text": "开始前"})
    late = await srv.join(inv["applicant"])
    await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 1)
    await m.call("chat_send", {"text": "等候时"})
    await m.call("chat_send", {"text": "私下", "to": inv["applicant"]["invite_id"]})
    assert (await m.call("chat_send", {"text": "x", "to": inv["applicant"]["invite_id"]}))[
        "error"
    ] == "participant_not_found"  # not inside yet
    assert (await m.call("admit", {"participant_id": inv["applicant"]["invite_id"]}))["ok"]
    history = await late.wait_for("chat_history")
    assert history["messages"] == []
    await m.call("chat_send", {"text": "进来后"})
    assert texts(late) == ["进来后"]
    # the mediator, coming back (a reload), gets everything delivered to them, in order
    await m.close()
    again = await inside(srv, inv["mediator"])
    back = again.received("chat_history")[0]["messages"]
    assert [x["text"] for x in back] == ["开始前", "等候时", "进来后"]


async def test_private_messages_stay_out_of_others_history(room_server):
    srv = room_server
    _room, inv = await room_with(srv)
    m = await inside(srv, inv["mediator"])
    a = await inside(srv, inv["applicant"])
    await inside(srv, inv["respondent"])
    await a.call("chat_send", {"text": "只给您说", "to": inv["mediator"]["invite_id"]})
    await m.call("chat_send", {"text": "大家"})
    await said(a, "大家")
    for name, expected in (("respondent", ["大家"]), ("applicant", ["只给您说", "大家"])):
        client = await inside(srv, inv[name])  # the same link again: replaces the connection
        history = client.received("chat_history")[0]["messages"]
        assert [x["text"] for x in history] == expected, name


async def test_chat_survives_a_restart(live_server):
    srv = live_server
    _room, inv = await room_with(srv)
    m = await inside(srv, inv["mediator"])
    answer = await m.call("chat_send", {"text": "重启前说的"})
    assert answer["ok"] is True
    srv = await restart_server(srv)
    try:
        again = await inside(srv, inv["mediator"])
        history = again.received("chat_history")[0]["messages"]
        assert history == [answer["message"]]
    finally:
        await srv.close()
        await srv.server.close()


# -- chat inside a caucus ----------------------------------------------------------------------
async def test_caucus_chat_stays_in_the_caucus_and_out_of_the_recording(live_server):
    """Inside a caucus, room chat reaches its members only (marked with the caucus), the
    main room's chat does not reach them, neither side's history holds the other's, and
    only the main room's message is chained while the room is recorded."""
    srv = live_server
    room, inv = await room_with(srv)
    ids = {role: invite["invite_id"] for role, invite in inv.items()}
    m = await inside(srv, inv["mediator"])
    a = await inside(srv, inv["applicant"])
    r = await inside(srv, inv["respondent"])
    e = await inside(srv, inv["expert"])
    started = await m.call("start_recording", {})
    assert started["ok"], started
    recording_id = started["recording"]["id"]
    await wait_recorder(srv, room["id"])

    opened = await m.call("caucus_open", {"members": [ids["applicant"], ids["mediator"]]})
    assert opened["ok"], opened
    caucus_text, main_text = "单独说：可以再让五百元", "主房间里说的话"
    sent = await a.call("chat_send", {"text": caucus_text})
    assert sent["ok"], sent
    assert sent["message"]["caucus_id"] == opened["caucus_id"]
    assert (await said(m, caucus_text))["caucus_id"] == opened["caucus_id"]
    assert (await r.call("chat_send", {"text": main_text}))["ok"]
    said_in_main = await said(e, main_text)
    assert said_in_main["caucus_id"] is None
    await said(r, main_text)
    # a witness after both: nothing of the caucus reached the main room, nor the reverse
    assert (await m.call("caucus_close", {"caucus_id": opened["caucus_id"]}))["ok"]
    await m.call("chat_send", {"text": "回到主房间"})
    for client in (a, r, e):
        await said(client, "回到主房间")
    assert texts(r) == texts(e) == [main_text, "回到主房间"]
    assert texts(a) == [caucus_text, "回到主房间"]
    again = await inside(srv, inv["respondent"])  # the history, as a reload gets it
    history = [x["text"] for x in again.received("chat_history")[0]["messages"]]
    assert history == [main_text, "回到主房间"]

    assert await srv.state.recordings.flush(room["id"])
    assert (await m.call("stop_recording", {}))["ok"]
    await wait_recorder(srv, room["id"], present=False)
    chats = [x for x in chain_events(srv, recording_id) if x["kind"] == "chat"]
    assert [c["sha256"] for c in chats] == [
        hashlib.sha256(t.encode()).hexdigest() for t in (main_text, "回到主房间")
    ]


# -- step out without kicking, and the chain ---------------------------------------------------
async def test_send_to_lobby_keeps_the_person_and_the_chain_has_chat_and_moderation(
    live_server,
):
    srv = live_server
    room, inv = await room_with(srv, lobby=True)
    applicant_id = inv["applicant"]["invite_id"]
    m = await inside(srv, inv["mediator"])
    a = await srv.join(inv["applicant"])
    e = await srv.join(inv["expert"])
    await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 2)
    assert (await m.call("admit_all", {}))["ok"]
    await a.wait_for("room_state")
    await e.wait_for("room_state")

    started = await m.call("start_recording", {})
    assert started["ok"], started
    recording_id = started["recording"]["id"]
    await wait_recorder(srv, room["id"])
    assert (await a.call("recording_consent", {"recording_id": recording_id, "accepted": True}))[
        "ok"
    ]
    room_text, private_text = "协议第一条没问题", "我其实可以再让一步"
    sent = await a.call("chat_send", {"text": room_text})
    assert sent["ok"], sent
    assert (await a.call("chat_send", {"text": private_text, "to": inv["mediator"]["invite_id"]}))[
        "ok"
    ]

    # only the mediator, and not themselves
    refused = await e.call("send_to_lobby", {"participant_id": applicant_id})
    assert (refused["ok"], refused["error"]) == (False, "forbidden")
    itself = await m.call("send_to_lobby", {"participant_id": inv["mediator"]["invite_id"]})
    assert (itself["ok"], itself["error"]) == (False, "cannot_send_self")

    answer = await m.call("send_to_lobby", {"participant_id": applicant_id})
    assert answer["ok"] is True and answer["participant"]["status"] == "lobby", answer
    told = await a.wait_for("sent_to_lobby")
    assert "调解员请您在等候区稍候" in told["message"]
    left = await e.wait_for("participant_left", lambda d: d["participant_id"] == applicant_id)
    assert left["reason"] == "sent_to_lobby"
    lobby = await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 1)
    assert lobby["lobby"][0]["id"] == applicant_id
    assert a.sio.connected  # not kicked: still connected, waiting
    again = await m.call("send_to_lobby", {"participant_id": applicant_id})
    assert (again["ok"], again["error"]) == (False, "not_in_room")
    # out of the room: no chat either way
    assert (await a.call("chat_send", {"text": "我还在吗"}))["error"] == "not_joined"
    await m.call("chat_send", {"text": "趁他不在"})
    await said(e, "趁他不在")

    # admitted again: the same person (id, role, side), the consent still on the recording
    admitted = await m.call("admit", {"participant_id": applicant_id})
    assert admitted["ok"], admitted
    await a.wait_for("room_state", lambda _: len(a.received("room_state")) == 2)
    state = a.received("room_state")[-1]
    assert state["self"]["id"] == applicant_id
    assert (state["self"]["role"], state["self"]["side"]) == ("party", "applicant")
    assert state["recording"]["id"] == recording_id
    kept = (await srv.state.store.require(room["id"])).recording
    assert kept is not None and kept["consents"][applicant_id]["accepted"] is True
    stored = await srv.room(room["id"])
    me = next(p for p in stored["participants"] if p["id"] == applicant_id)
    assert (me["status"], me["name"], me["side"]) == ("joined", "王五", "applicant")
    history = [x["text"] for x in a.received("chat_history")[-1]["messages"]]
    assert history == [room_text, private_text]  # not what was said while they were out

    assert (await m.call("stop_recording", {}))["ok"]
    await wait_recorder(srv, room["id"], present=False)
    events = chain_events(srv, recording_id)
    chats = [x for x in events if x["kind"] == "chat"]
    assert [c["sha256"] for c in chats] == [
        hashlib.sha256(t.encode()).hexdigest() for t in (room_text, "趁他不在")
    ]
    assert (
        chats[0]["participant_id"] == applicant_id and chats[0]["chat_id"] == sent["message"]["id"]
    )
    chain_text = (
        srv.state.settings.data_dir / "recordings" / recording_id / "chain.jsonl"
    ).read_text()
    for text in (room_text, private_text, "趁他不在"):
        assert text not in chain_text and text.encode("unicode_escape").decode() not in chain_text
    kinds = [x["kind"] for x in events if x.get("participant_id") == applicant_id]
    assert kinds.index("consent") < kinds.index("send_to_lobby") < kinds.index("left")
    assert kinds[kinds.index("left") :].count("joined") == 1
    assert (
        next(x for x in events if x.get("participant_id") == applicant_id and x["kind"] == "left")[
            "reason"
        ]
        == "sent_to_lobby"
    )
    summary = srv.state.settings.data_dir / "recordings" / recording_id / "recording.json"
    assert json.loads(summary.read_text())["participants"][applicant_id]["consent"] == "consent"
    result = await asyncio.to_thread(
        verify,
        srv.state.settings.data_dir / "recordings" / recording_id,
        srv.state.settings.data_dir,
    )
    assert result.returncode == 0, result.stdout + result.stderr
