"""A room's node lost (kill -9) or drained, with real processes: two `tiaojie serve`
processes sharing one real redis-server and one real PostgreSQL (the durable store
several nodes need).

Node b drains, so the room two bots join through b's links is placed on a; b opens
again. With media flowing and a recording running on a:

- kill -9 of a: its lease lapses after the node TTL, b places the room on itself and
  marks a's connections away (a third bot, whose link names a, has nowhere to go: its
  seat shows `reconnecting`), both other bots (reconnecting through their links' node,
  b) receive each other's frames again in their seats; the recording a ran is sealed
  `disconnected` by its recorder and verifies, and b records the room in a new recording
  that follows it (naming the last chain entry a published, keeping the consents),
  records both bots, and verifies with the link checked.
- `tiaojie drain` of a (its API): the room moves to b at once, a seals its recording
  `drained`, b starts one that follows it (naming the seal), and the bots, sent by a to
  b, receive each other's frames there in their seats. Then SIGTERM of b (a open again)
  moves the room back to a the same way before b stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
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
    events_so_far,
    fragments_so_far,
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


async def recorded(folder: Path, count: int = 2, fragments: int = 2) -> None:
    """Wait until `count` segments of the recording have `fragments` fragments chained."""

    def enough() -> bool:
        names = [e["segment"] for e in events_so_far(folder, "segment_started")]
        return len(names) >= count and all(fragments_so_far(folder, s) >= fragments for s in names)

    await eventually(enough, timeout=LOADED, what=f"{count} segments recorded in {folder.name}")


def started_event(folder: Path) -> dict[str, Any]:
    return next(
        e["event"]
        for e in chain(folder)
        if e["type"] == "event" and e["event"]["kind"] == "recording_started"
    )


@dataclass
class Cluster:
    """Nodes a and b, a room on a with two publishing bots (links naming b), recorded."""

    a: ServeProcess
    b: ServeProcess
    r: redis.asyncio.Redis
    room_id: str
    clients: list[RoomClient]
    a_id: str
    b_id: str
    recording_id: str
    folder: Path
    seats: set[str]
    sources: list[FileSource] = field(default_factory=list)


@contextlib.asynccontextmanager
async def room_recorded_on_a(
    redis_url: str, postgres: Any, tmp_path: Path, monkeypatch: Any, *, third: bool = False
) -> AsyncIterator[Cluster]:
    """Two nodes, the room on a, bots 王 (mediator) and 李 (party, consenting) exchanging
    media through links naming b, a recording of them on a; `third`: also 张, whose link
    names a, in the room without media."""
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
        people = [("mediator", "王", b), ("party", "李", b)] + ([("party", "张", a)] * third)
        for role, name, node in people:
            status, invite = await api(
                a, "POST", f"/api/rooms/{rid}/invites", {"role": role, "name": name}
            )
            assert status == 201
            clients.append(RoomClient(node.url + invite["url"][invite["url"].index("/join") :]))
        x, y = clients[:2]
        for client in clients:
            await client.join()
            assert client.base_url == a.url
        assert x.redirects == y.redirects == 1
        status, _ = await api(b, "POST", "/api/node/drain", {"draining": False})
        assert status == 200
        _, a_node = await api(a, "GET", "/api/node")
        _, b_node = await api(b, "GET", "/api/node")
        assert await r.get(lease_key(rid)) == a_node["id"]
        assert 0 < await r.pttl(lease_key(rid)) <= NODE_TTL * 1000  # it lapses by itself
        for client in (x, y):
            sources.append(FileSource(media))
            await client.publish(sources[-1])
        await until(receives(x, y), "王 receiving 李's frames on a", timeout=LOADED)
        await until(receives(y, x), "李 receiving 王's frames on a", timeout=LOADED)

        status, started = await api(a, "POST", f"/api/rooms/{rid}/recording")
        assert status == 201, started
        recording_id = started["id"]
        await y.call("recording_consent", {"recording_id": recording_id, "accepted": True})
        folder = tmp_path / "a" / "data" / "recordings" / recording_id
        await recorded(folder)
        yield Cluster(
            a=a,
            b=b,
            r=r,
            room_id=rid,
            clients=clients,
            a_id=a_node["id"],
            b_id=b_node["id"],
            recording_id=recording_id,
            folder=folder,
            seats={c.room_state["self"]["id"] for c in (x, y)},
            sources=sources,
        )
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


async def moved_to_b(c: Cluster) -> None:
    """The room is placed on b, both publishing bots are back there in their seats and
    receive each other's frames."""
    x, y = c.clients[:2]

    async def placed_on_b() -> bool:
        return await c.r.get(lease_key(c.room_id)) == c.b_id

    await until(placed_on_b, "the room placed on b", timeout=NODE_TTL * 10)

    async def back_on_b() -> bool:
        return all(client.reconnects >= 1 and client.base_url == c.b.url for client in (x, y))

    await until(back_on_b, "both bots back in the room on b", timeout=40)
    assert {client.room_state["self"]["id"] for client in (x, y)} == c.seats
    await until(receives(x, y), "王 receiving 李's frames on b", timeout=LOADED)
    await until(receives(y, x), "李 receiving 王's frames on b", timeout=LOADED)


async def following_recording(c: Cluster, reason: str) -> tuple[str, Path]:
    """b records the room in a new recording that follows a's, with 李's consent kept,
    records both bots; stopped, it verifies with its link to a's checked."""
    y = c.clients[1]
    status, kept = await api(c.b, "GET", f"/api/rooms/{c.room_id}/recording")
    assert status == 200, kept
    recording = kept["recording"]
    assert recording is not None, "no recording follows the one of node a"
    assert recording["id"] != c.recording_id and recording["follows"] == c.recording_id
    y_id = y.room_state["self"]["id"]
    assert recording["consents"][y_id]["accepted"] is True, "李's consent was not kept"
    # 李's page is not asked again: its own answer comes with the room state on b
    assert y.room_state["recording"]["consents"][y_id]["accepted"] is True
    folder = c.b.log_path.parent / "data" / "recordings" / recording["id"]
    await recorded(folder)
    follows = started_event(folder)["follows"]
    assert follows["recording_id"] == c.recording_id and follows["reason"] == reason
    assert follows["node"] == c.a_id
    status, _ = await api(c.b, "DELETE", f"/api/rooms/{c.room_id}/recording")
    assert status == 200
    assert chain(folder)[-1]["type"] == "seal"
    b_data = c.b.log_path.parent / "data"
    result = await asyncio.to_thread(verify, folder, b_data, "--previous", str(c.folder), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["follows"]["link"] == "verified"
    return recording["id"], folder


async def test_kill_9_of_the_rooms_node_moves_the_room_and_loses_nothing(
    redis_url, postgres, tmp_path, monkeypatch
):
    async with room_recorded_on_a(redis_url, postgres, tmp_path, monkeypatch, third=True) as c:
        z_id = c.clients[2].room_state["self"]["id"]
        c.a.process.kill()  # kill -9
        c.a.process.wait()

        async def placed_on_b() -> bool:
            return await c.r.get(lease_key(c.room_id)) == c.b_id

        await until(placed_on_b, "the room placed on b", timeout=NODE_TTL * 10)
        assert not await c.r.exists(node_key(c.a_id)), "the killed node is still in the registry"

        async def z_away() -> bool:
            # 张's link names the dead node: b shows the seat a held as reconnecting
            _, room = await api(c.b, "GET", f"/api/rooms/{c.room_id}")
            return any(
                p["id"] == z_id and p["presence"] == "reconnecting" for p in room["participants"]
            )

        await until(z_away, "the dead node's connection away on b", timeout=20)
        await moved_to_b(c)

        # The recorder outlives its node for its reconnect window, then seals.
        await eventually(
            lambda: not _recorder_pids(c.recording_id), timeout=40, what="the recorder's end"
        )
        entries = chain(c.folder)
        assert entries[-1]["type"] == "seal" and entries[-1]["reason"] == "disconnected"
        a_data = c.folder.parent.parent
        result = await asyncio.to_thread(verify, c.folder, a_data)
        assert result.returncode == 0, result.stdout + result.stderr

        # Nothing durable was only on a: the room and its invites answer on b.
        status, kept = await api(c.b, "GET", f"/api/rooms/{c.room_id}")
        assert status == 200, kept
        assert kept["title"] == "节点被杀"
        people = {i["name"]: i for i in kept["invites"] if i["role"] != "recorder"}
        assert sorted(people) == ["张", "李", "王"]
        assert not any(i["revoked"] for i in people.values())
        recorders = [p for p in kept["participants"] if p["role"] == "recorder"]
        assert c.seats <= {p["id"] for p in kept["participants"]}
        assert len(recorders) <= 1, "the dead recorder's seat"
        # b records the room again, in a recording linked to the lost one
        _, folder = await following_recording(c, "node_lost")
        assert started_event(folder)["follows"]["seen"]["seq"] >= 1


async def test_draining_the_rooms_node_moves_the_room_and_its_recording(
    redis_url, postgres, tmp_path, monkeypatch
):
    async with room_recorded_on_a(redis_url, postgres, tmp_path, monkeypatch) as c:
        status, node = await api(c.a, "POST", "/api/node/drain", {"draining": True})
        assert status == 200, node
        assert node["draining"] is True and node["moved_rooms"] == 1
        assert await c.r.get(lease_key(c.room_id)) == c.b_id
        # a sealed its recording, saying where the room went, before it answered
        entries = chain(c.folder)
        assert entries[-1]["type"] == "seal" and entries[-1]["reason"] == "drained"
        handover = [e for e in entries if e.get("event", {}).get("kind") == "recording_handover"]
        assert handover and handover[0]["event"]["to_node"] == c.b_id
        await moved_to_b(c)
        _, folder = await following_recording(c, "drained")
        assert started_event(folder)["follows"]["seal"]["hash"] == entries[-1]["hash"]

        # SIGTERM of b drains it first: the room goes back to a, open again, and the
        # bots, reconnecting to b (still answering), are sent there into their seats.
        status, _ = await api(c.a, "POST", "/api/node/drain", {"draining": False})
        assert status == 200
        c.b.process.send_signal(signal.SIGTERM)

        async def back_on_a() -> bool:
            return await c.r.get(lease_key(c.room_id)) == c.a_id and all(
                client.reconnects >= 2 and client.base_url == c.a.url for client in c.clients
            )

        await until(back_on_a, "the room and both bots back on a", timeout=40)
        assert {client.room_state["self"]["id"] for client in c.clients} == c.seats
        assert await asyncio.to_thread(c.b.process.wait, 30) == 0
