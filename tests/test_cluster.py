"""Two server nodes sharing one database (SQLite file, PostgreSQL) and one real redis-server:
signalling on either node reaches the room."""

from __future__ import annotations

import asyncio

from tests.conftest import start_server

#: TIAOJIE_SECRET_KEY in production; weak ones are refused (at least 22 characters).
SHARED_SECRET = "shared-secret-of-the-two-test-nodes"


async def test_admit_across_nodes(redis_url, database_url, tmp_path):
    import redis.asyncio

    r = redis.asyncio.Redis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    # Both nodes share the token secret (TIAOJIE_SECRET_KEY in production).
    node_a = await start_server(
        tmp_path / "a", redis_url, secret_key=SHARED_SECRET, database_url=database_url
    )
    node_b = await start_server(
        tmp_path / "b", redis_url, secret_key=SHARED_SECRET, database_url=database_url
    )
    try:
        room = await node_a.create_room(title="跨节点")
        mediator = await node_a.create_invite(room["id"], "mediator", "王")
        party = await node_a.create_invite(room["id"], "party", "李")
        assert (await node_b.room(room["id"]))["id"] == room["id"]
        m = await node_b.join(mediator)
        p = await node_a.join(party)
        lobby = await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 1)
        assert lobby["lobby"][0]["id"] == party["invite_id"]
        assert (await m.call("admit", {"participant_id": party["invite_id"]}))["ok"] is True
        await p.wait_for("admitted")
        state = await p.wait_for("room_state")
        assert {x["role"] for x in state["participants"]} == {"mediator", "party"}
        await m.call("mute", {"participant_id": party["invite_id"]})
        await p.wait_for("participant_updated", lambda d: d["participant"]["muted"]["audio"])
        # Removing from node B closes the connection held by node A.
        await m.call("remove", {"participant_id": party["invite_id"]})
        assert (await p.wait_for("closed"))["reason"] == "removed"
        await asyncio.wait_for(p.disconnected.wait(), 5)
    finally:
        for node in (node_a, node_b):
            await node.close()
            await node.server.close()


async def test_recording_across_nodes(redis_url, database_url, tmp_path):
    """Started through node A, the recording runs on the room's node (placement: the
    node both participants were sent to); moderation is chained; the other node stops
    it, the recorder seals and leaves, and the archive verifies."""
    import redis.asyncio

    from tests.test_recording import verify
    from tiaojie.archive.chain import read_entries

    r = redis.asyncio.Redis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    node_a = await start_server(
        tmp_path / "a", redis_url, secret_key=SHARED_SECRET, database_url=database_url
    )
    node_b = await start_server(
        tmp_path / "b", redis_url, secret_key=SHARED_SECRET, database_url=database_url
    )
    try:
        room = await node_a.create_room(title="跨节点录制", lobby=False)
        mediator = await node_b.join(await node_a.create_invite(room["id"], "mediator", "王"))
        party_invite = await node_a.create_invite(room["id"], "party", "李")
        party = await node_b.join(party_invite)
        await party.wait_for("room_state")
        status, started = await node_a.admin("POST", f"/api/rooms/{room['id']}/recording")
        assert status == 201
        runner, other = (node_a, node_b) if node_a.state.recordings.processes else (node_b, node_a)
        assert room["id"] in runner.state.recordings.processes
        assert room["id"] in runner.state.media.rooms
        await party.wait_for(
            "participant_joined", lambda d: d["participant"]["role"] == "recorder", 20
        )
        muted = await mediator.call(
            "mute", {"participant_id": party_invite["invite_id"], "track": "audio"}
        )
        assert muted["ok"]
        folder = runner.state.settings.data_dir / "recordings" / started["id"]

        def kinds() -> list[str]:
            entries, _ = read_entries(folder / "chain.jsonl")
            return [e["event"]["kind"] for e in entries if e["type"] == "event"]

        for _ in range(100):
            if "mute" in kinds():
                break
            await asyncio.sleep(0.1)
        assert "mute" in kinds()
        status, _ = await other.admin("DELETE", f"/api/rooms/{room['id']}/recording")
        assert status == 200
        for _ in range(150):
            if not runner.state.recordings.processes:
                break
            await asyncio.sleep(0.1)
        assert not runner.state.recordings.processes, "the recorder did not finish"
        entries, _ = read_entries(folder / "chain.jsonl")
        assert entries[-1]["type"] == "seal"
        result = await asyncio.to_thread(verify, folder, runner.state.settings.data_dir)
        assert result.returncode == 0, result.stdout
    finally:
        for node in (node_a, node_b):
            await node.close()
            await node.server.close()
