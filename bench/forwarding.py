"""Forwarding benchmark: this SFU (pass-through) against a transcoding baseline, one run.

    .venv/bin/python bench/forwarding.py [--rooms 3] [--seconds 20] [--planes packets,frames]
        [--no-baseline]

Synthetic participants (client.RoomClient publishing a pre-encoded 640x480 H264
~750 kbit/s + Opus file) fill rooms of 4: each publishes audio+video and subscribes to
the other three, so a room forwards 12 audio+video streams. The server runs as its own
process pinned to CPU 0, the load generator pinned to CPU 1. Printed:

* server CPU per forwarded audio+video stream, for both modes at the same load (1 room),
  and their ratio;
* for the pass-through server at --rooms rooms: CPU per stream, forwarding delay p50/p95
  (publisher hands a frame to its RTP sender -> subscriber has reassembled it; both in the
  load generator process, matched by frame content), loss, and how many rooms of 4 one
  core would carry;
* each pass-through media plane of --planes (`--media-plane packets`: RTP packets
  rewritten; `frames`: frames re-packetized per subscriber) at 1 and --rooms rooms, in the
  same run, and the ratio of their CPU per stream; the server's RSS at the end of each.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import api, server_process  # noqa: E402

START_CODE = re.compile(rb"\x00\x00\x00\x01|\x00\x00\x01")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def frame_key(kind: str, data: bytes) -> bytes:
    """Content key that survives repacketization (start code lengths may change)."""
    if kind == "video":
        data = b"".join(START_CODE.split(data))
    return hashlib.blake2b(data, digest_size=12).digest()


# -- load generator (runs in its own process) ------------------------------------------------
async def generate(links: list[list[str]], media: Path, warmup: float, seconds: float) -> dict:
    from tiaojie.client.media_file import FileSource
    from tiaojie.client.session import RoomClient

    sent: dict[tuple[str, str, bytes], list[float]] = {}
    delays: list[float] = []
    received = {"video": 0, "audio": 0}
    expected = {"video": 0, "audio": 0}
    clients: list[RoomClient] = []
    sources: list[FileSource] = []
    measuring = False

    def record_send(owner: str, track) -> None:
        original = track.recv

        async def recv():
            packet = await original()
            key = (owner, track.kind, frame_key(track.kind, bytes(packet)))
            sent.setdefault(key, []).append(time.monotonic())
            if measuring:
                expected[track.kind] += 3  # three subscribers in a room of 4
            return packet

        track.recv = recv

    def on_packet(sub, packet) -> None:
        if not measuring:
            return
        now = time.monotonic()
        received[sub.kind] += 1
        times = sent.get((sub.participant_id, sub.kind, frame_key(sub.kind, bytes(packet))))
        if times:
            earlier = [t for t in times if t <= now]
            if earlier:
                delays.append(now - earlier[-1])

    for room in links:
        for link in room:
            client = RoomClient(link)
            await client.join()
            clients.append(client)
    for client in clients:
        source = FileSource(media)
        owner = client.room_state["self"]["id"]
        record_send(owner, source.video)
        record_send(owner, source.audio)
        await client.publish(source)
        sources.append(source)

    def hook() -> None:
        for client in clients:
            for sub in client.subscriptions.values():
                if on_packet not in sub.on_packet:
                    sub.on_packet.append(on_packet)

    deadline = time.monotonic() + warmup
    while time.monotonic() < deadline:
        hook()
        await asyncio.sleep(0.2)
    hook()
    publishers = [c.publisher for c in clients if c.publisher is not None]
    before = await packets_sent(publishers)
    print("MEASURE", flush=True)  # the parent starts reading server CPU now
    measuring = True
    await asyncio.sleep(seconds)
    measuring = False
    print("DONE", flush=True)
    packets_in = await packets_sent(publishers) - before
    for source in sources:
        await source.stop()
    for client in clients:
        await client.close()
    return measured(delays, received, expected, packets_in)


async def packets_sent(connections: list) -> int:
    """RTP packets the publishers' senders have sent so far (their outbound-rtp stats):
    what the server receives."""
    total = 0
    for pc in connections:
        for sender in pc.getSenders():
            if sender.transport is None:
                continue
            for stats in (await sender.getStats()).values():
                if stats.type == "outbound-rtp":
                    total += stats.packetsSent
    return total


def measured(delays: list[float], received: dict, expected: dict, packets_in: int) -> dict:
    """One side's figures from its matched delays and its packet counts (Tiaojie's load
    generator and Janus's alike)."""
    delays.sort()
    return {
        "packets_in": packets_in,
        "delay_p50_ms": 1000 * statistics.median(delays) if delays else None,
        "delay_p95_ms": 1000 * delays[int(0.95 * (len(delays) - 1))] if delays else None,
        "matched": len(delays),
        # clamped: frames in flight at the window's edges can make it slightly negative
        "loss_video": max(0.0, 1 - received["video"] / expected["video"])
        if expected["video"]
        else None,
        "loss_audio": max(0.0, 1 - received["audio"] / expected["audio"])
        if expected["audio"]
        else None,
        "delivered": received["video"] + received["audio"],
        "received": received,
    }


async def generate_janus(url: str, rooms: int, media: Path, warmup: float, seconds: float) -> dict:
    """The same load against Janus's VideoRoom (bench/janus_peer.py): rooms of 4, each
    publishing the file and subscribing to the other three over one connection."""
    import aiohttp
    from aiortc import RTCRtpSender

    from bench.janus_peer import JanusSession, publish, subscribe
    from tiaojie.client.media_file import FileSource
    from tiaojie.rtc import aiortc_internals

    sent: dict[tuple[str, str, bytes], list[float]] = {}
    delays: list[float] = []
    received = {"video": 0, "audio": 0}
    expected = {"video": 0, "audio": 0}
    measuring = False

    def prefer_h264(pc) -> None:
        caps = RTCRtpSender.getCapabilities("video").codecs
        h264 = [
            c
            for c in caps
            if c.mimeType == "video/H264"
            and c.parameters.get("packetization-mode") == "1"
            and c.parameters.get("profile-level-id") == "42e01f"
        ]
        rtx = [c for c in caps if c.mimeType == "video/rtx"]
        for t in pc.getTransceivers():
            if t.kind == "video":
                t.setCodecPreferences(h264 + rtx)

    def record_send(owner: str, track) -> None:
        original = track.recv

        async def recv():
            packet = await original()
            key = (owner, track.kind, frame_key(track.kind, bytes(packet)))
            sent.setdefault(key, []).append(time.monotonic())
            if measuring:
                expected[track.kind] += 3
            return packet

        track.recv = recv

    def on_track(owner_of: dict[int, str]):
        def attach(track, receiver, feed: int) -> None:
            kind = track.kind
            aiortc_internals.make_passthrough(receiver)

            def on_packet(packet) -> None:
                if not measuring:
                    return
                now = time.monotonic()
                received[kind] += 1
                times = sent.get((owner_of.get(feed, ""), kind, frame_key(kind, bytes(packet))))
                if times:
                    earlier = [t for t in times if t <= now]
                    if earlier:
                        delays.append(now - earlier[-1])

            aiortc_internals.deliver_directly(receiver, on_packet)

        return attach

    connections, sources, sessions = [], [], []
    async with aiohttp.ClientSession() as http:
        for room in range(1, rooms + 1):
            feeds: dict[int, str] = {}
            for i in range(4):
                session = JanusSession(http, url)
                await session.start()
                sessions.append(session)
                source = FileSource(media)
                owner = f"{room}-{i}"
                record_send(owner, source.video)
                record_send(owner, source.audio)
                pc, feed = await publish(
                    session, room, owner, [source.video, source.audio], prefer_h264
                )
                feeds[feed] = owner
                connections.append(pc)
                sources.append(source)
                source.start()
            for session, feed in zip(sessions[-4:], list(feeds), strict=True):
                others = [f for f in feeds if f != feed]
                connections.append(await subscribe(session, room, others, on_track(feeds)))
        await asyncio.sleep(warmup)
        before = await packets_sent(connections)
        print("MEASURE", flush=True)
        measuring = True
        await asyncio.sleep(seconds)
        measuring = False
        print("DONE", flush=True)
        packets_in = await packets_sent(connections) - before
        for source in sources:
            await source.stop()
        for pc in connections:
            await pc.close()
        for session in sessions:
            await session.close()
    return measured(delays, received, expected, packets_in)


# -- orchestration ------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_case(
    transcode: bool,
    rooms: int,
    media: Path,
    seconds: float,
    plane: str = "packets",
    rtc_ports: str | None = None,
) -> dict:
    options = ["--transcode"] if transcode else ["--media-plane", plane]
    if rtc_ports:
        options += ["--rtc-ports", rtc_ports]
    with server_process(*options, cpu=0) as (server, base):
        links = []
        for r in range(rooms):
            room = api(base, "/api/rooms", {"title": f"bench {r}", "lobby": False})
            links.append(
                [
                    api(base, f"/api/rooms/{room['id']}/invites", {"role": role, "name": f"p{i}"})[
                        "url"
                    ]
                    for i, role in enumerate(["mediator", "party", "party", "expert"])
                ]
            )
        spec = {"links": links, "media": str(media), "seconds": seconds}
        mode = "transcode" if transcode else plane
        return measure(server.pid, spec, rooms, seconds, mode)


def run_janus_case(rooms: int, media: Path, seconds: float) -> dict:
    """The same load against Janus (bench/janus_peer.py), in its namespace on CPU 0."""
    from bench.janus_peer import janus_server

    with janus_server(rooms, cpu=0) as (process, url):
        spec = {"janus": url, "rooms": rooms, "media": str(media), "seconds": seconds}
        return measure(process.pid, spec, rooms, seconds, "janus")


def measure(pid: int, spec: dict, rooms: int, seconds: float, mode: str) -> dict:
    """Run the load generator on CPU 1 and read the server's CPU over its window."""
    generator = subprocess.Popen(
        [sys.executable, __file__, "--generate", json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
    )
    os.sched_setaffinity(generator.pid, {1})
    assert generator.stdout is not None
    cpu_start = wall_start = cpu = wall = rss = 0.0
    result: dict = {}
    for line in generator.stdout:
        if line.startswith("MEASURE"):
            cpu_start, wall_start = cpu_seconds(pid), time.monotonic()
        elif line.startswith("DONE"):
            cpu = cpu_seconds(pid) - cpu_start
            wall = time.monotonic() - wall_start
            rss = rss_mb(pid)
        elif line.startswith("{"):
            result = json.loads(line)
    generator.wait(timeout=60)
    streams = rooms * 4 * 3
    received = result.get("received", {"video": 0, "audio": 0})
    result.update(
        {
            "mode": mode,
            "rss_mb": rss,
            "rooms": rooms,
            "streams": streams,
            "server_cpu_core": cpu / max(wall, 1e-9),
            "cpu_per_stream_pct": 100 * cpu / max(wall, 1e-9) / streams,
            # per frame actually delivered: fair when a saturated server drops frames
            "cpu_us_per_frame": 1e6 * cpu / max(result.get("delivered", 0), 1),
            # in + out: each packet a publisher sends comes in once and leaves three times
            # (a room of 4; valid rounds lose nothing)
            "cpu_us_per_packet": 1e6 * cpu / max(4 * result.get("packets_in", 0), 1),
            "video_fps_per_subscription": received["video"] / seconds / streams,
            "audio_pps_per_subscription": received["audio"] / seconds / streams,
        }
    )
    return result


def describe(r: dict) -> str:
    delay = (
        f"delay p50 {r['delay_p50_ms']:.1f} ms p95 {r['delay_p95_ms']:.1f} ms"
        if r.get("delay_p95_ms") is not None
        else "delay n/a (re-encoded)"
    )
    return (
        f"{r['mode']:>12}, {r['rooms']} room(s) of 4 = {r['streams']} forwarded a+v "
        f"streams: server {100 * r['server_cpu_core']:.1f}% of a core, "
        f"{r['cpu_per_stream_pct']:.2f}% per stream; {delay}; "
        f"loss video {100 * (r['loss_video'] or 0):.1f}% audio "
        f"{100 * (r['loss_audio'] or 0):.1f}%; per subscription "
        f"{r['video_fps_per_subscription']:.1f} frames/s, "
        f"{r['audio_pps_per_subscription']:.1f} audio packets/s; "
        f"{r['cpu_us_per_frame']:.0f} us CPU per delivered frame, "
        f"{r['cpu_us_per_packet']:.1f} us per RTP packet handled (in + out); "
        f"RSS {r['rss_mb']:.0f} MB"
    )


def compare_with_janus(
    rooms: int, media: Path, seconds: float, rtc_ports: str | None = None
) -> None:
    """Alternate Janus and Tiaojie (packets) rounds at 1 and `rooms` rooms."""
    for count in sorted({1, rooms}):
        janus = run_janus_case(count, media, seconds)
        print(describe(janus), f"(load average {os.getloadavg()[0]:.1f})", flush=True)
        ours = run_case(False, count, media, seconds, "packets", rtc_ports)
        print(describe(ours), f"(load average {os.getloadavg()[0]:.1f})", flush=True)
        print(
            f"{count} room(s): CPU per forwarded a+v stream, Tiaojie / Janus: "
            f"{ours['cpu_per_stream_pct'] / max(janus['cpu_per_stream_pct'], 1e-9):.2f}x "
            "(goal <= 1.0x)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--planes",
        default="packets,frames",
        help="pass-through media planes to measure, comma-separated (packets, frames)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the transcoding baseline")
    parser.add_argument(
        "--peer",
        choices=("janus",),
        help="compare with Janus (Debian's janus, VideoRoom) instead: alternating rounds",
    )
    parser.add_argument(
        "--rtc-ports",
        help="the server's --rtc-ports (one port, e.g. 40000: single-port mode, where the "
        "copies of a packet leave one socket in one sendmmsg)",
    )
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        spec = json.loads(args.generate)
        if "janus" in spec:
            result = asyncio.run(
                generate_janus(
                    spec["janus"], spec["rooms"], Path(spec["media"]), 6, spec["seconds"]
                )
            )
        else:
            result = asyncio.run(generate(spec["links"], Path(spec["media"]), 6, spec["seconds"]))
        print(json.dumps(result), flush=True)
        return

    from tests.support.testmedia import make_test_mp4

    media = make_test_mp4(Path(tempfile.mkdtemp()) / "bench.mp4", seconds=10)
    print(f"media: {media} (640x480 H264 ~750 kbit/s + Opus), {args.seconds:.0f} s per case")
    if args.peer == "janus":
        compare_with_janus(args.rooms, media, args.seconds, args.rtc_ports)
        return
    planes = [p for p in args.planes.split(",") if p]
    baseline = None if args.no_baseline else run_case(True, 1, media, args.seconds)
    results: dict[str, list[dict]] = {}
    for plane in planes:
        one = run_case(False, 1, media, args.seconds, plane)
        loaded = run_case(False, args.rooms, media, args.seconds, plane) if args.rooms > 1 else one
        results[plane] = [one, loaded] if loaded is not one else [one]
    for r in ([baseline] if baseline else []) + [r for rs in results.values() for r in rs]:
        print(describe(r))
    first = results[planes[0]]
    if baseline is not None:
        ratio = baseline["cpu_us_per_frame"] / first[0]["cpu_us_per_frame"]
        print(
            f"CPU per delivered frame, transcode / {planes[0]}: {ratio:.1f}x (goal >= 8x; per "
            f"stream {baseline['cpu_per_stream_pct'] / first[0]['cpu_per_stream_pct']:.1f}x, "
            "but the baseline saturates its core and drops frames)"
        )
    if len(planes) > 1:
        for i, case in enumerate(first):
            other = results[planes[1]][i]
            print(
                f"{case['rooms']} room(s): CPU per stream {planes[1]} / {planes[0]}: "
                f"{other['cpu_per_stream_pct'] / case['cpu_per_stream_pct']:.2f}x"
            )
    loaded = first[-1]
    per_room = loaded["cpu_per_stream_pct"] * 12
    print(
        f"{planes[0]} at {loaded['rooms']} rooms: {loaded['cpu_per_stream_pct']:.2f}% of a "
        f"core per stream (goal <= 1%), p95 delay {loaded['delay_p95_ms']:.1f} ms "
        f"(goal < 20 ms); one core carries ~{100 / per_room:.0f} rooms of 4"
    )


if __name__ == "__main__":
    main()
