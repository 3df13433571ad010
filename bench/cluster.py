"""Cluster benchmark: rooms placed over three nodes, against the same rooms on one node,
and a node killed under its rooms, in one run.

    .venv/bin/python bench/cluster.py [--rooms 6] [--record] [--node-ttl 5]

Three `tiaojie serve` processes share one redis-server and one PostgreSQL (the durable
store several nodes need; tests/support/postgres.py's layout with fsync on). Each room has
a mediator and two parties, synthetic participants (client.RoomClient) publishing a
640x480 H264 + Opus test file, plus the recorder with --record. Everyone joins through
node 1's address: placement redirects them to the room's node. The load generator is
this process (all participants on one event loop). Printed:

* rooms per node;
* time from opening the link to the first remote video frame, p50/p95, with the rooms
  placed over three nodes and with the same rooms all on node 1 (nodes 2 and 3
  draining), and their ratio;
* kill -9 of the non-entry node hosting most rooms: the time until every participant of
  its rooms receives the others' video again (their clients reconnect through node 1,
  which places the rooms again once the dead node's leases lapse after --node-ttl).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cases import postgres  # noqa: E402
from bench.common import ADMIN, api, server_process  # noqa: E402
from tests.support.waiting import eventually  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Any:
    """A redis-server on a free port without persistence: its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="tiaojie-bench-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def get(base: str, path: str) -> Any:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {ADMIN}"})
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


def invite(entry: str, room_id: str, role: str, name: str) -> str:
    link = api(entry, f"/api/rooms/{room_id}/invites", {"role": role, "name": name})["url"]
    return str(link if link.startswith("http") else entry + link)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Bot:
    """One synthetic participant: its link, client, and when it first saw remote video."""

    def __init__(self, room_id: str, link: str, media: Path) -> None:
        from tiaojie.client.media_file import FileSource
        from tiaojie.client.session import RoomClient

        self.room_id = room_id
        self.client = RoomClient(link)
        self.source = FileSource(media)
        self.opened = 0.0

    @property
    def id(self) -> str:
        assert self.client.room_state is not None
        return str(self.client.room_state["self"]["id"])

    def first_video_from(self, others: list[str]) -> float | None:
        """When video of every one of `others` had arrived (monotonic), None if not yet."""
        times = []
        for participant in others:
            subs = self.client.subscriptions_of(participant)
            video = subs.get("camera")
            if video is None or video.first_at is None:
                return None
            times.append(video.first_at)
        return max(times)

    async def close(self) -> None:
        await self.source.stop()
        await self.client.close()


def everyone_sees(bots: list[Bot]) -> bool:
    """Each bot of a room has video from every other."""
    return all(
        bot.first_video_from([b.id for b in bots if b is not bot]) is not None for bot in bots
    )


async def fill_rooms(entry: str, rooms: int, media: Path, record: bool) -> list[list[Bot]]:
    """`rooms` rooms of a mediator and two parties joined through `entry`, one room after
    the other (the earlier ones keep running); each bot's link-to-first-remote-video."""
    placed: list[list[Bot]] = []
    for index in range(rooms):
        room = api(entry, "/api/rooms", {"title": f"bench {index}", "lobby": False})
        bots = [
            Bot(room["id"], invite(entry, room["id"], role, name), media)
            for role, name in (("mediator", "调解员"), ("party", "甲"), ("party", "乙"))
        ]

        async def enter(bot: Bot) -> None:
            bot.opened = time.monotonic()
            await bot.client.join(wait=60)
            await bot.client.publish(bot.source)

        await asyncio.gather(*(enter(b) for b in bots))
        await eventually(partial(everyone_sees, bots), timeout=60, what="video in the room")
        if record:
            api(entry, f"/api/rooms/{room['id']}/recording", {})
        placed.append(bots)
    return placed


def link_to_frame_ms(rooms: list[list[Bot]]) -> list[float]:
    out = []
    for bots in rooms:
        for bot in bots:
            others = [b.id for b in bots if b is not bot]
            first = bot.first_video_from(others)
            assert first is not None
            out.append(1000 * (first - bot.opened))
    return out


async def scenario(nodes: list[str], redis_url: str, args: argparse.Namespace) -> None:
    import redis

    from tests.support.testmedia import make_test_mp4
    from tiaojie.server.cluster.placement import lease_key

    media = make_test_mp4(Path(tempfile.mkdtemp()) / "bench.mp4", seconds=10)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    ids = {get(url, "/api/node")["id"]: url for url in nodes}
    entry = nodes[0]

    # The same rooms on one node: nodes 2 and 3 drain.
    for url in nodes[1:]:
        api(url, "/api/node/drain", {"draining": True})
    alone = await fill_rooms(entry, args.rooms, media, args.record)
    one_node = link_to_frame_ms(alone)
    for bots in alone:
        for bot in bots:
            await bot.close()
    for url in nodes[1:]:
        api(url, "/api/node/drain", {"draining": False})

    # Placed over three nodes.
    spread = await fill_rooms(entry, args.rooms, media, args.record)
    three_nodes = link_to_frame_ms(spread)
    host_of = []
    for bots in spread:
        host_of.append(ids[r.get(lease_key(bots[0].room_id))])
    print(f"{args.rooms} rooms of {4 if args.record else 3} through node 1 ({entry}):")
    for number, url in enumerate(nodes, 1):
        print(f"  node {number}: {host_of.count(url)} rooms")
    print(
        "link -> first remote video frame: "
        f"one node p50 {statistics.median(one_node):.0f} ms p95 "
        f"{percentile(one_node, 0.95):.0f} ms; three nodes p50 "
        f"{statistics.median(three_nodes):.0f} ms p95 {percentile(three_nodes, 0.95):.0f} ms; "
        f"ratio three/one p50 {statistics.median(three_nodes) / statistics.median(one_node):.2f}"
        f" p95 {percentile(three_nodes, 0.95) / percentile(one_node, 0.95):.2f}"
    )

    # kill -9 the non-entry node hosting most rooms.
    victim = max(nodes[1:], key=host_of.count)
    hit = [bots for bots, url in zip(spread, host_of, strict=True) if url == victim]
    if not hit:
        print("kill -9: no room on nodes 2 or 3; skipped")
    else:
        pid = next(p for p, url in args.pids.items() if url == victim)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()

        def back() -> bool:
            for bots in hit:
                for bot in bots:
                    if bot.client.reconnects < 1:
                        return False
                    if bot.first_video_from([b.id for b in bots if b is not bot]) is None:
                        return False
            return True

        await eventually(back, timeout=120, what="everyone of the killed node's rooms seeing again")
        last = max(
            bot.first_video_from([b.id for b in bots if b is not bot]) or 0
            for bots in hit
            for bot in bots
        )
        moved = [ids[r.get(lease_key(bots[0].room_id))] for bots in hit]
        print(
            f"kill -9 of node {nodes.index(victim) + 1} ({len(hit)} rooms, "
            f"{3 * len(hit)} participants, --node-ttl {args.node_ttl:g}): everyone receives "
            f"video again after {last - killed:.1f} s (rooms now on node(s) "
            f"{sorted({nodes.index(u) + 1 for u in moved})})"
        )
    for bots in spread:
        for bot in bots:
            await bot.close()
    r.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=6)
    parser.add_argument("--record", action="store_true", help="a recorder in every room")
    parser.add_argument("--node-ttl", type=float, default=5.0)
    args = parser.parse_args()
    os.environ["TIAOJIE_SECRET_KEY"] = "bench-cluster-shared-secret-key"
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(postgres())
        redis_url = stack.enter_context(redis_server())
        options = ("--database", database, "--redis", redis_url, "--node-ttl", str(args.node_ttl))
        nodes: list[str] = []
        args.pids = {}
        for _ in range(3):  # one after the other: the first migrates the database
            process, url = stack.enter_context(server_process(*options))
            nodes.append(url)
            args.pids[process.pid] = url
        print(f"3 nodes, one redis-server, one PostgreSQL; node TTL {args.node_ttl:g} s")
        asyncio.run(scenario(nodes, redis_url, args))


if __name__ == "__main__":
    main()
