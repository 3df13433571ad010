"""Two server nodes sharing one real redis-server: signalling on either node reaches the room."""

from __future__ import annotations

import asyncio

from tests.conftest import start_server


async def test_admit_across_nodes(redis_url, tmp_path):
    import redis.asyncio

    r = redis.asyncio.Redis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    # Both nodes share the token secret (TIAOJIE_SECRET_KEY in production).
    node_a = await start_server(tmp_path / "a", redis_url, secret_key="shared-secret")
    node_b = await start_server(tmp_path / "b", redis_url, secret_key="shared-secret")
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
