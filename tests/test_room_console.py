"""What the mediator's console needs from the server, over real socket.io connections on
SQLite and PostgreSQL: a party's side given on the invite and shown wherever the person
is, `admit_all` for the lobby, and `agreement_prefill` (the editor's proposal before the
parties have come in)."""

from __future__ import annotations

from tests.support.signal_client import SignalClient


async def lobby_of(client: SignalClient, n: int) -> list[dict]:
    update = await client.wait_for("lobby_updated", lambda d: len(d["lobby"]) == n)
    return list(update["lobby"])


# -- a party's side ----------------------------------------------------------------------------
async def test_the_side_given_on_the_invite_is_the_persons_everywhere(room_server):
    srv = room_server
    room = await srv.create_room(lobby=True)
    mediator = await srv.create_invite(room["id"], "mediator", "王调解员")
    applicant = await srv.create_invite(room["id"], "party", "王五", side="applicant")
    respondent = await srv.create_invite(room["id"], "party", "李四", side="respondent")
    assert (applicant["side"], respondent["side"]) == ("applicant", "respondent")
    status, me = await srv.request("GET", "/api/me", applicant["token"])
    assert status == 200 and me["invite"]["side"] == "applicant"
    listed = {i["name"]: i["side"] for i in (await srv.room(room["id"]))["invites"]}
    assert listed == {"王调解员": None, "王五": "applicant", "李四": "respondent"}

    m = await srv.join(mediator)
    a = await srv.join(applicant)
    welcome = await a.wait_for("welcome")
    assert welcome["participant"]["side"] == "applicant"
    await srv.join(respondent)
    lobby = await lobby_of(m, 2)
    assert {p["name"]: p["side"] for p in lobby} == {"王五": "applicant", "李四": "respondent"}
    assert (await m.call("admit", {"participant_id": applicant["invite_id"]}))["ok"] is True
    joined = await m.wait_for("participant_joined")
    assert joined["participant"]["side"] == "applicant"
    state = await a.wait_for("room_state")
    assert state["self"]["side"] == "applicant"
    assert {p["role"]: p["side"] for p in state["participants"]} == {
        "mediator": None,
        "party": "applicant",
    }


async def test_only_a_party_has_a_side_and_only_applicant_or_respondent(room_server):
    srv = room_server
    room = await srv.create_room()
    before = await srv.room(room["id"])
    for body in (
        {"role": "party", "name": "王五", "side": "plaintiff"},
        {"role": "party", "name": "王五", "side": ""},
        {"role": "party", "name": "王五", "side": None},
    ):
        status, answer = await srv.admin("POST", f"/api/rooms/{room['id']}/invites", json=body)
        assert (status, answer["error"]) == (400, "bad_request"), answer
    assert await srv.room(room["id"]) == before
    # another role has no side: one given is left out
    expert = await srv.create_invite(room["id"], "expert", "赵律师", side="applicant")
    assert (expert["role"], expert["side"]) == ("expert", None)
    status, me = await srv.request("GET", "/api/me", expert["token"])
    assert me["invite"]["side"] is None


# -- admit all -------------------------------------------------------------------------------
async def test_admit_all_lets_everyone_waiting_in_at_once(room_server):
    srv = room_server
    room = await srv.create_room(lobby=True)
    mediator = await srv.create_invite(room["id"], "mediator", "王调解员")
    invites = [
        await srv.create_invite(room["id"], "party", "王五", side="applicant"),
        await srv.create_invite(room["id"], "party", "李四", side="respondent"),
        await srv.create_invite(room["id"], "expert", "赵律师"),
    ]
    m = await srv.join(mediator)
    waiting = [await srv.join(invite) for invite in invites]
    await lobby_of(m, 3)

    # Nobody but a mediator may (a party once inside, too).
    answer = await m.call("admit", {"participant_id": invites[0]["invite_id"]})
    assert answer["ok"] is True
    await waiting[0].wait_for("room_state")
    refused = await waiting[0].call("admit_all", {})
    assert (refused["ok"], refused["error"]) == (False, "forbidden")
    assert len((await srv.room(room["id"]))["participants"]) == 4
    assert (await srv.room(room["id"]))["lobby_count"] == 2
    # A waiting person cannot either (the lobby only leaves).
    assert (await waiting[1].call("admit_all", {}))["error"] == "not_joined"

    answer = await m.call("admit_all", {})
    assert answer["ok"] is True and answer["waiting"] == 0
    assert [p["name"] for p in answer["admitted"]] == ["李四", "赵律师"]
    for client in waiting[1:]:
        await client.wait_for("admitted")
        state = await client.wait_for("room_state")
        assert state["self"]["status"] == "joined"
    assert await lobby_of(m, 0) == []
    after = await srv.room(room["id"])
    assert (after["participant_count"], after["lobby_count"]) == (4, 0)
    # Nobody left waiting: nothing to do, and that is not an error.
    again = await m.call("admit_all", {})
    assert (again["ok"], again["admitted"], again["waiting"]) == (True, [], 0)


async def test_admit_all_stops_at_the_rooms_size(room_server):
    srv = room_server
    room = await srv.create_room(lobby=True, max_participants=3)
    mediator = await srv.create_invite(room["id"], "mediator", "王调解员")
    names = ["甲", "乙", "丙"]
    invites = [await srv.create_invite(room["id"], "party", name) for name in names]
    m = await srv.join(mediator)
    for n, invite in enumerate(invites, 1):  # one after the other: first come, first in
        await srv.join(invite)
        await lobby_of(m, n)

    answer = await m.call("admit_all", {})
    assert answer["ok"] is True
    assert [p["name"] for p in answer["admitted"]] == ["甲", "乙"]
    assert answer["waiting"] == 1
    await m.wait_for("lobby_updated", lambda d: [p["name"] for p in d["lobby"]] == ["丙"])
    full = await m.call("admit_all", {})
    assert (full["ok"], full["error"]) == (False, "room_full")
    assert (await srv.room(room["id"]))["lobby_count"] == 1


# -- the agreement editor's proposal -----------------------------------------------------------
async def test_prefill_comes_from_the_invites_before_anyone_arrives(room_server):
    srv = room_server
    room = await srv.create_room(lobby=True)
    mediator = await srv.create_invite(room["id"], "mediator", "张调解员")
    # invited in the "wrong" order, and one party without a side
    respondent = await srv.create_invite(room["id"], "party", "李四", side="respondent")
    applicant = await srv.create_invite(room["id"], "party", "王五", side="applicant")
    third = await srv.create_invite(room["id"], "party", "赵六")
    gone = await srv.create_invite(room["id"], "party", "撤销人", side="applicant")
    await srv.admin("DELETE", f"/api/rooms/{room['id']}/invites/{gone['invite_id']}")
    came = await srv.create_invite(room["id"], "expert", "孙律师")
    await srv.create_invite(room["id"], "expert", "未到专家")

    m = await srv.join(mediator)
    await m.wait_for("room_state")
    answer = await m.call("agreement_prefill", {})
    assert answer["ok"] is True, answer
    proposal = answer["prefill"]
    assert proposal["parties"] == [
        {"name": "王五", "role": "applicant", "participant_id": applicant["invite_id"]},
        {"name": "李四", "role": "respondent", "participant_id": respondent["invite_id"]},
        {"name": "赵六", "role": "respondent", "participant_id": third["invite_id"]},
    ]
    assert proposal["mediator"] == "张调解员"
    assert proposal["experts"] == []  # invited is not present

    # The expert comes in (admitted from the lobby) and leaves again: they were present.
    e = await srv.join(came)
    await lobby_of(m, 1)
    assert (await m.call("admit", {"participant_id": came["invite_id"]}))["ok"] is True
    await e.wait_for("room_state")
    assert (await m.call("agreement_prefill", {}))["prefill"]["experts"] == ["孙律师"]
    await e.close()
    await m.wait_for("participant_left")
    proposal = (await m.call("agreement_prefill", {}))["prefill"]
    assert proposal["experts"] == ["孙律师"]

    # The proposal is a valid draft: the party lines are assigned to their invites.
    draft = {**proposal, "case_number": "（2025）京0105民调1号"}
    saved = await m.call("agreement_draft", draft)
    assert saved["ok"] is True, saved
    state = await m.wait_for("agreement_state")
    assert [s["participant_id"] for s in state["signers"][:3]] == [
        applicant["invite_id"],
        respondent["invite_id"],
        third["invite_id"],
    ]
    assert "孙律师" in state["text"] and "到场专家：无" not in state["text"]


async def test_prefill_is_the_mediators_only(room_server):
    srv = room_server
    room = await srv.create_room(lobby=False)
    await srv.create_invite(room["id"], "mediator", "张调解员")
    for role in ("party", "expert", "observer"):
        invite = await srv.create_invite(room["id"], role, f"某{role}")
        client = await srv.join(invite)
        await client.wait_for("room_state")
        answer = await client.call("agreement_prefill", {})
        assert (answer["ok"], answer["error"]) == (False, "forbidden"), role
