"""kill -9 of a room's node, with real processes: two `tiaojie serve` processes sharing one
real redis-server and one real PostgreSQL (the durable store several nodes need).

Node b drains, so the room two bots join through b's links is placed on a; b opens again.
With media flowing and a recording running on a, a is killed with SIGKILL. Its lease
lapses after the node TTL, b places the room on itself, both bots (reconnecting through
their links' node, b) receive each other's frames again, the recording a ran is sealed
`disconnected` by its recorder and verifies, b takes it off the room (and its recorder's
seat), and the room and its invites answer on b.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import aiohttp
import redis.asyncio

from tests.support.serve import ServeProcess
from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tests.test_cluster_placement import receives, until
from tests.test_recording import (
    _recorder_pids,
    chain,
    fragments_chained,
    segments_started,
    verify,
)
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient
from tiaojie.server.cluster.placement import lease_key
from tiaojie.server.cluster.registry import node_key

ADMIN = "admin-token-of-the-kill-test-nodes"
SECRET = "secret-key-shared-by-the-kill-test-nodes"
#: Seconds a killed node is still believed: short, so the test waits little.
NODE_TTL = 2.0
#: Seconds to wait for media on this shared 2-core machine (four processes and a recorder).
LOADED = 40


async def api(node: ServeProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, node.url + path, json=body, headers={"Authorization": f"Bearer {ADMIN}"}
        ) as response,
    ):
        return response.status, await response.json()


async def test_kill_9_of_the_rooms_node_moves_the_room_and_loses_nothing(
    redis_url, postgres, tmp_path, monkeypatch
):
    r = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    await r.flushdb()
    database = postgres.url(await postgres.create_database())
    monkeypatch.setenv("TIAOJIE_SECRET_KEY", SECRET)
    options = ("--database", database, "--redis", redis_url, "--node-ttl", str(NODE_TTL))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a = ServeProcess(tmp_path / "a" / "data", ADMIN, *options)
    b = ServeProcess(tmp_path / "b" / "data", ADMIN, *options)
    media = make_test_mp4(tmp_path / "m.mp4", seconds=3, keyframe_interval_s=0.5)
    sources: list[FileSource] = []
    clients: list[RoomClient] = []
    recording_id = ""
    try:
        status, _ = await api(b, "POST", "/api/node/drain", {"draining": True})
        assert status == 200
        status, room = await api(a, "POST", "/api/rooms", {"title": "节点被杀", "lobby": False})
        assert status == 201
        rid = room["id"]
        for role, name in (("mediator", "王"), ("party", "李")):
            status, invite = await api(
                a, "POST", f"/api/rooms/{rid}/invites", {"role": role, "name": name}
            )
            assert status == 201
            clients.append(RoomClient(b.url + invite["url"][invite["url"].index("/join") :]))
        x, y = clients
        for client in clients:
            await client.join()
            assert client.base_url == a.url and client.redirects == 1
        status, _ = await api(b, "POST", "/api/node/drain", {"draining": False})
        assert status == 200
        _, a_node = await api(a, "GET", "/api/node")
        _, b_node = await api(b, "GET", "/api/node")
        a_id, b_id = a_node["id"], b_node["id"]
        assert await r.get(lease_key(rid)) == a_id
        assert 0 < await r.pttl(lease_key(rid)) <= NODE_TTL * 1000  # it lapses by itself
        for client in clients:
            sources.append(FileSource(media))
            await client.publish(sources[-1])
        await until(receives(x, y), "王 receiving 李's frames on a", timeout=LOADED)
        await until(receives(y, x), "李 receiving 王's frames on a", timeout=LOADED)
        seats = {c.room_state["self"]["id"] for c in clients}

        status, started = await api(a, "POST", f"/api/rooms/{rid}/recording")
        assert status == 201, started
        recording_id = started["id"]
        folder = tmp_path / "a" / "data" / "recordings" / recording_id
        await fragments_chained(folder, await segments_started(folder, 2), 2)

        a.process.kill()  # kill -9
        a.process.wait()

        async def placed_on_b() -> bool:
            return await r.get(lease_key(rid)) == b_id

        await until(placed_on_b, "the room placed on b", timeout=NODE_TTL * 10)
        assert not await r.exists(node_key(a_id)), "the killed node is still in the registry"

        async def back_on_b() -> bool:
            return all(c.reconnects >= 1 and c.base_url == b.url for c in clients)

        await until(back_on_b, "both bots back in the room on b", timeout=40)
        assert {c.room_state["self"]["id"] for c in clients} == seats
        await until(receives(x, y), "王 receiving 李's frames on b", timeout=LOADED)
        await until(receives(y, x), "李 receiving 王's frames on b", timeout=LOADED)

        # The recorder outlives its node for its reconnect window, then seals.
        await eventually(
            lambda: not _recorder_pids(recording_id), timeout=40, what="the recorder's end"
        )
        entries = chain(folder)
        assert entries[-1]["type"] == "seal" and entries[-1]["reason"] == "disconnected"
        result = await asyncio.to_thread(verify, folder, tmp_path / "a" / "data")
        assert result.returncode == 0, result.stdout + result.stderr

        # Nothing durable was only on a: the room and its invites answer on b.
        status, kept = await api(b, "GET", f"/api/rooms/{rid}")
        assert status == 200, kept
        assert kept["title"] == "节点被杀"
        people = {i["name"]: i for i in kept["invites"] if i["role"] != "recorder"}
        assert sorted(people) == ["李", "王"]
        assert not any(i["revoked"] for i in people.values())
        assert {p["id"] for p in kept["participants"]} == seats, "the dead recorder's seat"
        # b took the dead node's recording off the room: the mediator can start a new one.
        assert kept["recording"] is None
    finally:
        for source in sources:
            await source.stop()
        for client in clients:
            await client.close()
        await r.aclose()
        if a.process.poll() is None:
            a.process.kill()
        b.stop()
        for pid in _recorder_pids(recording_id) if recording_id else []:
            os.kill(pid, signal.SIGKILL)
        for node in (a, b):  # shown by pytest when the test failed
            print(f"--- node {node.url}\n{node.log()[-4000:]}")
