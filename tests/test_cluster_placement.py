"""Several nodes for real: two in-process nodes, one real redis-server, one shared
database. A room's media lives on one node (a lease in Redis); a participant whose link
names the other node is sent there (`redirect`), so everyone of a room exchanges media;
a recording started through the other node runs on the room's node; a draining node
gets no new room; a vanished node's leases lapse and the room is placed again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio

from tests.conftest import LiveServer, start_server
from tests.support.testmedia import make_test_mp4
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient
from tiaojie.server.cluster.placement import lease_key
from tiaojie.server.cluster.registry import node_key

SHARED_SECRET = "shared-secret-of-the-two-test-nodes"
#: Short, so a vanished node is gone within seconds (the lease test only: all nodes and
#: clients share one event loop here, which a media test can keep busy for a second).
NODE_TTL = 1.5


async def two_nodes(
    tmp_path: Path, redis_url: str, node_ttl: float = 10.0, **options: Any
) -> list[LiveServer]:
    """Nodes a and b on one SQLite database and one (emptied) Redis."""
    r = redis.asyncio.Redis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    return [
        await start_server(
            tmp_path / name,
            redis_url,
            secret_key=SHARED_SECRET,
            database_url=database,
            node_ttl=node_ttl,
            **options,
        )
        for name in ("a", "b")
    ]


async def close(*nodes: LiveServer) -> None:
    for node in nodes:
        await node.close()
        await node.server.close()


def via(node: LiveServer, link: str) -> str:
    """The same invite link, naming `node`."""
    return node.url + link[link.index("/join") :]


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)
    return result


def receives(client: RoomClient, of: RoomClient) -> Callable[[], Awaitable[bool]]:
    """Frames (not only presence): a keyframe and more of `of`'s camera, and its sound."""

    async def check() -> bool:
        assert of.room_state is not None
        got = client.subscriptions_of(of.room_state["self"]["id"])
        camera, microphone = got.get("camera"), got.get("microphone")
        return bool(
            camera
            and camera.keyframes >= 1
            and camera.packets >= 10
            and microphone
            and microphone.packets >= 10
        )

    return check


async def test_one_room_through_two_nodes_is_on_one_node(redis_url, tmp_path):
    """Two bots join by links naming different nodes: one is redirected, both end up on
    the room's node and receive each other's frames. A recording started through the
    other node runs on the room's node, records both, and verifies."""
    from tests.test_recording import verify
    from tiaojie.archive.chain import read_entries

    a, b = await two_nodes(tmp_path, redis_url)
    sources: list[FileSource] = []
    clients: list[RoomClient] = []
    try:
        room = await a.create_room(title="跨节点媒体", lobby=False)
        invite_x = await a.create_invite(room["id"], "mediator", "王")
        invite_y = await a.create_invite(room["id"], "party", "李")
        x = RoomClient(via(a, invite_x["url"]))
        y = RoomClient(via(b, invite_y["url"]))
        clients += [x, y]
        await x.join()
        await y.join()
        assert x.base_url == y.base_url, "the two participants are on different nodes"
        assert x.redirects + y.redirects == 1
        host, other = (a, b) if x.base_url == a.url else (b, a)
        r = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        assert await r.get(lease_key(room["id"])) == host.state.cluster.id
        await r.aclose()
        assert room["id"] in host.state.media.rooms
        assert room["id"] not in other.state.media.rooms

        for client in (x, y):
            source = FileSource(make_test_mp4(tmp_path / "m.mp4", seconds=3))
            sources.append(source)
            await client.publish(source)
        await until(receives(x, y), "王 receiving 李's frames")
        await until(receives(y, x), "李 receiving 王's frames")

        # The recording, asked of the node without the room: runs on the room's node.
        status, started = await other.admin("POST", f"/api/rooms/{room['id']}/recording")
        assert status == 201, started
        assert room["id"] in host.state.recordings.processes
        assert not other.state.recordings.processes
        media_room = host.state.media.rooms[room["id"]]

        async def recorder_receives() -> bool:
            recorder = [
                p
                for p in media_room.peers.values()
                if p.participant_id not in (x.room_state["self"]["id"], y.room_state["self"]["id"])
            ]
            return bool(recorder) and sum(s.publication is not None for s in recorder[0].slots) >= 4

        await until(recorder_receives, "the recorder receiving both participants")
        status, _ = await other.admin("DELETE", f"/api/rooms/{room['id']}/recording")
        assert status == 200
        await until(
            lambda: asyncio.sleep(0, not host.state.recordings.processes), "the recorder's end"
        )
        folder = tmp_path / host.state.settings.data_dir.name / "recordings" / started["id"]
        entries, _ = read_entries(folder / "chain.jsonl")
        assert entries[-1]["type"] == "seal"
        result = await asyncio.to_thread(verify, folder, host.state.settings.data_dir)
        assert result.returncode == 0, result.stdout
    finally:
        for source in sources:
            await source.stop()
        for client in clients:
            await client.close()
        await close(a, b)


async def test_draining_node_gets_no_room_and_vanished_node_loses_its_leases(redis_url, tmp_path):
    """Node a drains: a room first joined through a is placed on b. Then b stops beating
    (as a killed or cut-off node): its registry record and its lease lapse, and the next
    participant, joining through b's address, is placed on a."""
    a, b = await two_nodes(tmp_path, redis_url, NODE_TTL)
    r = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    clients: list[RoomClient] = []
    try:
        status, node = await a.admin("POST", "/api/node/drain", json={"draining": True})
        assert status == 200 and node["draining"] is True
        room = await a.create_room(title="排空", lobby=False)
        first = RoomClient(via(a, (await a.create_invite(room["id"], "mediator", "王"))["url"]))
        clients.append(first)
        await first.join()
        assert first.base_url == b.url and first.redirects == 1
        assert await r.get(lease_key(room["id"])) == b.state.cluster.id
        status, _ = await a.admin("POST", "/api/node/drain", json={"draining": False})
        assert status == 200

        # b vanishes from Redis's view: no more heartbeats, no more renewals.
        b.state.cluster._beating.cancel()
        b_id = b.state.cluster.id

        async def gone() -> bool:
            return not await r.exists(node_key(b_id), lease_key(room["id"]))

        await until(gone, "b's record and lease to lapse", timeout=NODE_TTL * 4)
        second = RoomClient(via(b, (await a.create_invite(room["id"], "party", "李"))["url"]))
        clients.append(second)
        await second.join()
        assert second.base_url == a.url and second.redirects == 1
        assert await r.get(lease_key(room["id"])) == a.state.cluster.id
    finally:
        for client in clients:
            await client.close()
        await r.aclose()
        await close(a, b)


async def test_a_stopped_nodes_room_moves_to_another_node(redis_url, tmp_path):
    """Both bots' links name node b, which drains: the room goes to a, where they
    exchange media. Node a stops (its leases given up, its connections closed): the bots
    reconnect through their links' node, b places the room again on itself, and the
    media flows there again, in the same seats."""
    a, b = await two_nodes(tmp_path, redis_url)
    sources: list[FileSource] = []
    clients: list[RoomClient] = []
    a_running = True
    try:
        await b.admin("POST", "/api/node/drain", json={"draining": True})
        room = await a.create_room(title="节点停止", lobby=False)
        for role, name in (("mediator", "王"), ("party", "李")):
            clients.append(
                RoomClient(via(b, (await a.create_invite(room["id"], role, name))["url"]))
            )
        x, y = clients
        for client in clients:
            await client.join()
            assert client.base_url == a.url
        await b.admin("POST", "/api/node/drain", json={"draining": False})
        for client in clients:
            source = FileSource(make_test_mp4(tmp_path / "m.mp4", seconds=3))
            sources.append(source)
            await client.publish(source)
        await until(receives(x, y), "王 receiving 李's frames on a")
        seats = {c.room_state["self"]["id"] for c in clients}

        await a.close()
        await a.server.close()
        a_running = False

        async def moved() -> bool:
            return all(c.reconnects >= 1 and c.base_url == b.url for c in clients)

        await until(moved, "both bots back in the room on node b", timeout=30)
        assert {c.room_state["self"]["id"] for c in clients} == seats
        await until(receives(x, y), "王 receiving 李's frames on b")
        await until(receives(y, x), "李 receiving 王's frames on b")
        assert room["id"] in b.state.media.rooms
    finally:
        for source in sources:
            await source.stop()
        for client in clients:
            await client.close()
        await close(*([a, b] if a_running else [b]))
