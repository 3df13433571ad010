"""The room suite over real socket.io connections, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.signal_client import Refused
from tiaojie.server.model import now
from tiaojie.server.roles import PERMISSIONS, Role
from tiaojie.server.schemas import EVENTS
from tiaojie.server.tokens import InviteClaims


async def setup_room(srv, lobby: bool = True, **extra):
    room = await srv.create_room(lobby=lobby, **extra)
    mediator = await srv.create_invite(room["id"], "mediator", "王调解员")
    party = await srv.create_invite(room["id"], "party", "李四")
    return room, mediator, party


async def assert_refused(srv, auth, code: str) -> None:
    with pytest.raises(Refused) as refused:
        await srv.client().connect(auth)
    assert refused.value.code == code, refused.value.data
    assert refused.value.data["message"]


# -- tokens --------------------------------------------------------------------------------
async def test_forged_expired_and_garbage_tokens_are_refused(room_server):
    srv = room_server
    room, _, party = await setup_room(srv)
    before = await srv.room(room["id"])
    prefix, _payload, mac = party["token"].split(".")
    # A payload changed to another role with the original MAC.
    forged_claims = InviteClaims(room["id"], Role.MEDIATOR, party["invite_id"], now() + 60)
    from tiaojie.server.tokens import TokenSigner

    forged = TokenSigner(b"x" * 32).sign(forged_claims)  # signed with the wrong secret
    other_payload = forged.split(".")[1]
    for token in [
        f"{prefix}.{other_payload}.{mac}",
        forged,
        "tj1.garbage.garbage",
        "not-a-token",
        party["token"][:-2] + "AA",
    ]:
        await assert_refused(srv, {"token": token}, "token_invalid")
    await assert_refused(srv, {}, "token_missing")
    await assert_refused(srv, None, "token_missing")
    expired = srv.state.signer.sign(
        InviteClaims(room["id"], Role.PARTY, party["invite_id"], now() - 1)
    )
    await assert_refused(srv, {"token": expired}, "token_expired")
    assert await srv.room(room["id"]) == before


async def test_revoked_token_refused_and_holder_disconnected(room_server):
    srv = room_server
    room, mediator, _ = await setup_room(srv, lobby=False)
    expert = await srv.create_invite(room["id"], "expert", "赵律师")
    m = await srv.join(mediator)
    e = await srv.join(expert)
    status, body = await srv.admin(
        "DELETE", f"/api/rooms/{room['id']}/invites/{expert['invite_id']}"
    )
    assert status == 200 and body["revoked"] is True
    closed = await e.wait_for("closed")
    assert closed["reason"] == "revoked"
    await asyncio.wait_for(e.disconnected.wait(), 5)
    left = await m.wait_for("participant_left")
    assert left["participant_id"] == expert["invite_id"]
    await assert_refused(srv, {"token": expert["token"]}, "token_revoked")
    status, body = await srv.request("GET", "/api/me", expert["token"])
    assert status == 403 and body["error"] == "token_revoked"


async def test_other_room_token_refused(room_server):
    srv = room_server
    _room_a, mediator_a, party_a = await setup_room(srv)
    room_b, _, _ = await setup_room(srv)
    await assert_refused(
        srv, {"token": party_a["token"], "room_id": room_b["id"]}, "token_wrong_room"
    )
    for method, path in [
        ("GET", f"/api/rooms/{room_b['id']}"),
        ("DELETE", f"/api/rooms/{room_b['id']}"),
        ("POST", f"/api/rooms/{room_b['id']}/invites"),
    ]:
        status, body = await srv.request(
            method, path, mediator_a["token"], json={"role": "party", "name": "x"}
        )
        assert (status, body["error"]) == (403, "token_wrong_room"), (method, path, body)
    assert (await srv.room(room_b["id"]))["status"] == "open"
    # A genuine token for a room this server does not have.
    ghost = srv.state.signer.sign(InviteClaims("NoSuchRoom0000", Role.PARTY, "x" * 22, now() + 60))
    await assert_refused(srv, {"token": ghost}, "room_not_found")


# -- permissions -------------------------------------------------------------------------
MEDIATOR_ACTIONS = [
    ("admit", "target"),
    ("deny", "target"),
    ("mute", "target"),
    ("request_unmute", "target"),
    ("remove", "target"),
    ("lock", {"locked": True}),
    ("end_room", {}),
]


async def test_party_cannot_use_mediator_actions(room_server):
    srv = room_server
    room, mediator, party = await setup_room(srv, lobby=False)
    other = await srv.create_invite(room["id"], "party", "张三")
    m = await srv.join(mediator)
    p = await srv.join(party)
    await srv.join(other)
    await m.call("mute", {"participant_id": other["invite_id"]})
    before = await srv.room(room["id"])
    for event, payload in MEDIATOR_ACTIONS:
        if payload == "target":
            payload = {"participant_id": other["invite_id"]}
        answer = await p.call(event, payload)
        assert answer["ok"] is False and answer["error"] == "forbidden", (event, answer)
    assert await srv.room(room["id"]) == before
    assert len(p.received("request_error")) == len(MEDIATOR_ACTIONS)
    # The connection stays healthy.
    assert (await p.call("raise_hand", {"raised": True}))["ok"] is True


async def test_observer_and_expert_permissions(room_server):
    srv = room_server
    room, mediator, _ = await setup_room(srv, lobby=False)
    observer = await srv.create_invite(room["id"], "observer", "旁听")
    o = await srv.join(observer)
    assert (await o.call("raise_hand", {"raised": True}))["error"] == "forbidden"
    assert (await o.call("set_muted", {"track": "audio", "muted": False}))["error"] == "forbidden"
    # A mediator's REST powers need the mediator token: a party token may not invite.
    party = await srv.create_invite(room["id"], "party", "李四")
    status, body = await srv.request(
        "POST",
        f"/api/rooms/{room['id']}/invites",
        party["token"],
        json={"role": "party", "name": "x"},
    )
    assert (status, body["error"]) == (403, "forbidden")
    # A mediator may invite parties but not mediators.
    status, _ = await srv.request(
        "POST",
        f"/api/rooms/{room['id']}/invites",
        mediator["token"],
        json={"role": "expert", "name": "律师"},
    )
    assert status == 201
    status, body = await srv.request(
        "POST",
        f"/api/rooms/{room['id']}/invites",
        mediator["token"],
        json={"role": "mediator", "name": "x"},
    )
    assert (status, body["error"]) == (403, "forbidden")


# -- lobby -----------------------------------------------------------------------------------
async def test_lobby_admit(room_server):
    srv = room_server
    room, mediator, party = await setup_room(srv)
    m = await srv.join(mediator)
    state = await m.wait_for("room_state")
    assert [x["role"] for x in state["participants"]] == ["mediator"]
    p = srv.client()
    await p.connect({"token": party["token"], "name": "李四（本人）"})
    welcome = await p.wait_for("welcome")
    assert welcome["participant"]["status"] == "lobby"
    assert welcome["participant"]["name"] == "李四（本人）"
    lobby = await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 1)
    assert lobby["lobby"][0]["id"] == party["invite_id"]
    # In the lobby: no room state, no presence, and only `leave` is allowed.
    assert (await p.call("raise_hand", {"raised": True}))["error"] == "not_joined"
    await asyncio.sleep(0.2)
    assert not p.received("room_state") and not p.received("participant_joined")
    assert (await m.call("admit", {"participant_id": party["invite_id"]}))["ok"] is True
    await p.wait_for("admitted")
    state = await p.wait_for("room_state")
    assert {x["role"] for x in state["participants"]} == {"mediator", "party"}
    assert state["lobby"] == []
    joined = await m.wait_for("participant_joined")
    assert joined["participant"]["id"] == party["invite_id"]
    await m.wait_for("lobby_updated", lambda d: d["lobby"] == [])
    assert (await srv.room(room["id"]))["participant_count"] == 2
    # Admitting again is refused: not in the lobby any more.
    answer = await m.call("admit", {"participant_id": party["invite_id"]})
    assert answer["error"] == "not_in_lobby"


async def test_lobby_deny(room_server):
    srv = room_server
    room, mediator, party = await setup_room(srv)
    m = await srv.join(mediator)
    p = await srv.join(party)
    await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 1)
    assert (await m.call("deny", {"participant_id": party["invite_id"]}))["ok"] is True
    closed = await p.wait_for("closed")
    assert closed["reason"] == "denied"
    await asyncio.wait_for(p.disconnected.wait(), 5)
    await m.wait_for("lobby_updated", lambda d: d["lobby"] == [])
    await assert_refused(srv, {"token": party["token"]}, "token_revoked")
    assert (await srv.room(room["id"]))["participant_count"] == 1


async def test_mediator_and_observer_skip_lobby_and_readmitted_party_returns(room_server):
    srv = room_server
    room, mediator, party = await setup_room(srv)
    observer = await srv.create_invite(room["id"], "observer", "书记员")
    m = await srv.join(mediator)
    o = await srv.join(observer)
    assert (await o.wait_for("welcome"))["participant"]["status"] == "joined"
    p = await srv.join(party)
    await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 1)
    await m.call("admit", {"participant_id": party["invite_id"]})
    await p.wait_for("room_state")
    await p.close()
    await m.wait_for("participant_left", lambda d: d["participant_id"] == party["invite_id"])
    again = await srv.join(party)
    assert (await again.wait_for("welcome"))["participant"]["status"] == "joined"


# -- mediator control ------------------------------------------------------------------------
async def test_mediator_rejoin_keeps_control(room_server):
    srv = room_server
    _room, mediator, party = await setup_room(srv)
    m = await srv.join(mediator)
    await m.close()
    p = await srv.join(party)  # waits in the lobby while no mediator is present
    assert (await p.wait_for("welcome"))["participant"]["status"] == "lobby"
    m2 = await srv.join(mediator)
    state = await m2.wait_for("room_state")
    assert [x["id"] for x in state["lobby"]] == [party["invite_id"]]
    assert (await m2.call("admit", {"participant_id": party["invite_id"]}))["ok"] is True
    await p.wait_for("admitted")


async def test_same_link_twice_replaces_first_connection(room_server):
    srv = room_server
    room, mediator, _ = await setup_room(srv)
    first = await srv.join(mediator)
    second = await srv.join(mediator)
    assert (await first.wait_for("closed"))["reason"] == "replaced"
    await asyncio.wait_for(first.disconnected.wait(), 5)
    await asyncio.sleep(0.2)
    snapshot = await srv.room(room["id"])
    assert [p["id"] for p in snapshot["participants"]] == [mediator["invite_id"]]
    assert (await second.call("lock", {"locked": True}))["ok"] is True


async def test_two_mediators_both_have_control(room_server):
    srv = room_server
    room, mediator, party = await setup_room(srv, lobby=False)
    second = await srv.create_invite(room["id"], "mediator", "陈调解员")
    m1 = await srv.join(mediator)
    m2 = await srv.join(second)
    p = await srv.join(party)
    assert (await m2.call("mute", {"participant_id": party["invite_id"]}))["ok"] is True
    assert (await m1.call("request_unmute", {"participant_id": party["invite_id"]}))["ok"] is True
    assert (await p.wait_for("unmute_requested"))["track"] == "audio"


async def test_mute_and_ask_to_unmute(room_server):
    srv = room_server
    room, mediator, party = await setup_room(srv, lobby=False)
    m = await srv.join(mediator)
    p = await srv.join(party)
    answer = await p.call("set_muted", {"track": "audio", "muted": True})
    assert answer["participant"]["muted"]["audio"] is True
    answer = await m.call(
        "request_unmute", {"participant_id": party["invite_id"], "track": "video"}
    )
    assert answer["error"] == "not_muted"
    await p.call("set_muted", {"track": "audio", "muted": False})
    assert (await m.call("mute", {"participant_id": party["invite_id"]}))["ok"] is True
    update = await m.wait_for(
        "participant_updated", lambda d: d["participant"]["muted_by_mediator"]
    )
    assert update["participant"]["muted"]["audio"] is True
    # The party cannot unmute until asked; when asked, the party decides.
    answer = await p.call("set_muted", {"track": "audio", "muted": False})
    assert answer["error"] == "muted_by_mediator"
    await m.call("request_unmute", {"participant_id": party["invite_id"]})
    await p.wait_for("unmute_requested")
    snapshot = await srv.room(room["id"])
    me = next(x for x in snapshot["participants"] if x["id"] == party["invite_id"])
    assert me["muted"]["audio"] is True  # asking does not unmute
    answer = await p.call("set_muted", {"track": "audio", "muted": False})
    assert answer["ok"] is True and answer["participant"]["muted"]["audio"] is False


async def test_remove_revokes_the_invite(room_server):
    srv = room_server
    _room, mediator, party = await setup_room(srv, lobby=False)
    m = await srv.join(mediator)
    p = await srv.join(party)
    assert (await m.call("remove", {"participant_id": mediator["invite_id"]}))["error"] == (
        "cannot_remove_self"
    )
    assert (await m.call("remove", {"participant_id": party["invite_id"]}))["ok"] is True
    assert (await p.wait_for("closed"))["reason"] == "removed"
    left = await m.wait_for("participant_left")
    assert left == {"participant_id": party["invite_id"], "reason": "removed"}
    await assert_refused(srv, {"token": party["token"]}, "token_revoked")
    assert (await m.call("remove", {"participant_id": party["invite_id"]}))["error"] == "not_found"


async def test_lock_stops_new_joins(room_server):
    srv = room_server
    room, mediator, party = await setup_room(srv, lobby=False)
    late = await srv.create_invite(room["id"], "expert", "迟到的专家")
    m = await srv.join(mediator)
    p = await srv.join(party)
    assert (await m.call("lock", {"locked": True}))["room"]["locked"] is True
    assert (await p.wait_for("room_updated"))["room"]["locked"] is True
    await assert_refused(srv, {"token": late["token"]}, "room_locked")
    # Someone already admitted may come back (a dropped connection), and mediators always can.
    await p.close()
    await srv.join(party)
    await m.close()
    await srv.join(mediator)
    m2 = srv.clients[-1]
    assert (await m2.call("lock", {"locked": False}))["ok"] is True
    await srv.join(late)


async def test_room_full(room_server):
    srv = room_server
    room, mediator, party = await setup_room(srv, lobby=True, max_participants=2)
    extra = await srv.create_invite(room["id"], "party", "第三人")
    observer = await srv.create_invite(room["id"], "observer", "旁听")
    m = await srv.join(mediator)
    await srv.join(party)
    await srv.join(extra)
    await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 2)
    assert (await m.call("admit", {"participant_id": party["invite_id"]}))["ok"] is True
    assert (await m.call("admit", {"participant_id": extra["invite_id"]}))["error"] == "room_full"
    await assert_refused(srv, {"token": observer["token"]}, "room_full")


async def test_end_room_disconnects_everyone_and_kills_links(room_server):
    srv = room_server
    room, mediator, party = await setup_room(srv)
    m = await srv.join(mediator)
    p = await srv.join(party)
    assert (await m.call("end_room", {}))["ok"] is True
    for client in (m, p):
        assert (await client.wait_for("closed"))["reason"] == "room_ended"
        await asyncio.wait_for(client.disconnected.wait(), 5)
    await assert_refused(srv, {"token": mediator["token"]}, "room_ended")
    snapshot = await srv.room(room["id"])
    assert snapshot["status"] == "ended" and snapshot["participants"] == []
    status, body = await srv.admin(
        "POST", f"/api/rooms/{room['id']}/invites", json={"role": "party", "name": "x"}
    )
    assert (status, body["error"]) == (410, "room_ended")


async def test_delete_room_over_rest(room_server):
    srv = room_server
    room, _mediator, party = await setup_room(srv, lobby=False)
    p = await srv.join(party)
    status, body = await srv.request("DELETE", f"/api/rooms/{room['id']}", party["token"])
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await srv.admin("DELETE", f"/api/rooms/{room['id']}")
    assert status == 200 and body["status"] == "ended"
    assert (await p.wait_for("closed"))["reason"] == "room_ended"
    status, body = await srv.admin("DELETE", f"/api/rooms/{room['id']}")
    assert (status, body["error"]) == (410, "room_ended")


async def test_leave(room_server):
    srv = room_server
    _room, mediator, party = await setup_room(srv, lobby=False)
    m = await srv.join(mediator)
    p = await srv.join(party)
    assert (await p.call("leave", {}))["ok"] is True
    assert (await p.wait_for("closed"))["reason"] == "left"
    left = await m.wait_for("participant_left")
    assert left["reason"] == "left"
    await srv.join(party)  # leaving does not burn the link


# -- bad input -------------------------------------------------------------------------------
BAD_PAYLOADS = [
    ("mute", ["not an object"], "bad_request"),
    ("mute", [[1, 2, 3]], "bad_request"),
    ("mute", [{}], "bad_request"),
    ("mute", [{"participant_id": 12345678}], "bad_request"),
    ("mute", [{"participant_id": "../../etc/passwd"}], "bad_request"),
    ("mute", [{"participant_id": "x" * 22, "track": "smell"}], "bad_request"),
    ("lock", [{"locked": "yes"}], "bad_request"),
    ("lock", [{"locked": 1}], "bad_request"),
    ("lock", [{"locked": True, "extra": 1}], "bad_request"),
    ("lock", [{"locked": True}, {"locked": False}], "bad_request"),
    ("lock", [{"locked": True, "padding": "x" * 20000}], "payload_too_large"),
    ("set_muted", [{"track": "audio", "muted": None}], "bad_request"),
    ("hack_the_planet", [{}], "unknown_event"),
    ("connect", [{}], "unknown_event"),
    ("disconnect", [{}], "unknown_event"),
    ("disconnect", ["client namespace disconnect"], "unknown_event"),
]


@pytest.mark.parametrize(
    ("event", "args", "code"),
    BAD_PAYLOADS,
    ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(BAD_PAYLOADS)],
)
async def test_invalid_payloads_refused_state_unchanged(room_server, event, args, code):
    srv = room_server
    room, mediator, party = await setup_room(srv, lobby=False)
    m = await srv.join(mediator)
    await srv.join(party)
    before = await srv.room(room["id"])
    answer = await m.call(event, *args)
    assert answer["ok"] is False and answer["error"] == code, answer
    assert answer["message"]
    assert await srv.room(room["id"]) == before
    assert m.sio.connected
    assert (await m.call("raise_hand", {"raised": True}))["ok"] is True


async def test_every_event_has_one_handler_installed_through_the_gateway(live_server):
    """Every event with a schema and roles is handled, by exactly one feature."""
    signalling = live_server.state.signalling
    assert signalling.events == frozenset(EVENTS) == frozenset(PERMISSIONS)

    async def handler(request):
        return {}

    with pytest.raises(ValueError, match="already has a handler"):
        signalling.add_handler("mute", handler)
    with pytest.raises(ValueError, match="no payload schema"):
        signalling.add_handler("hack_the_planet", handler)


async def test_bad_connect_auth(room_server):
    srv = room_server
    room, _, party = await setup_room(srv)
    before = await srv.room(room["id"])
    await assert_refused(srv, "just-a-string", "bad_request")
    await assert_refused(srv, {"token": party["token"], "name": ""}, "bad_request")
    await assert_refused(srv, {"token": party["token"], "name": "x" * 65}, "bad_request")
    await assert_refused(srv, {"token": party["token"], "evil": True}, "bad_request")
    await assert_refused(srv, {"token": 42}, "bad_request")
    assert await srv.room(room["id"]) == before


async def test_malformed_socketio_packets_leave_connection_and_room_healthy(room_server):
    """Raw Engine.IO/socket.io frames that no well-behaved client would send."""
    import json

    import aiohttp

    srv = room_server
    room, mediator, _ = await setup_room(srv, lobby=False)
    before = await srv.room(room["id"])
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            srv.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        )
        assert (await ws.receive()).data.startswith("0{")
        await ws.send_str("40" + json.dumps({"token": mediator["token"]}))
        assert (await ws.receive()).data.startswith("40{")
        for junk in [
            '42["mute",{"participant_id":',
            "4garbage",
            '42{"a":1}',
            "42[]",
            "43",
            "42" + "[" * 5000,
        ]:
            await ws.send_str(junk)
        await ws.send_str("421[1,2]")  # an event named by a number, with an ack id
        await ws.send_str('422["lock",{"locked":true}]')
        acks = {}
        while len(acks) < 2:
            message = await asyncio.wait_for(ws.receive(), 5)
            if message.data.startswith("43"):
                ack_id = message.data[2]
                acks[ack_id] = json.loads(message.data[3:])[0]
        assert acks["1"]["error"] == "unknown_event"
        assert acks["2"]["ok"] is True
        after = await srv.room(room["id"])
        await ws.close()
    assert after["locked"] is True and after["status"] == "open"
    assert [p["id"] for p in after["participants"]] == [mediator["invite_id"]]
    assert after["invites"] == before["invites"]


async def test_broken_engineio_frames_close_only_that_connection(room_server):
    import aiohttp

    srv = room_server
    room, mediator, party = await setup_room(srv, lobby=False)
    m = await srv.join(mediator)
    async with aiohttp.ClientSession() as session:
        for junk in ["\x00\xff", "", "9"]:
            ws = await session.ws_connect(
                srv.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
            )
            await ws.receive()
            await ws.send_str(junk)
            await ws.close()
    assert (await m.call("raise_hand", {"raised": True}))["ok"] is True
    assert (await srv.room(room["id"]))["participant_count"] == 1
    await srv.join(party)
