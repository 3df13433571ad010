"""Recording benchmark (issue #4): our remuxing recorder and verifier, against baselines.

    .venv/bin/python bench/recording.py [--publishers 2] [--seconds 20] [--verify-mb 200]

One run, three measurements:

* **Recorder CPU.** A `tiaojie serve` process (pinned to CPU 0) and N synthetic publishers
  (client.RoomClient + FileSource: a pre-encoded 640x480 H264 ~750 kbit/s + Opus file, one
  process, also on CPU 0) in one room. Recording is started through the REST API; the
  recorder process the server launches (`python -m server record ...`) is pinned to CPU 1
  and its CPU time (utime + stime from /proc, all threads) is read over a --seconds
  window. Baseline, same room, same input, afterwards: a transcoding recorder in its own
  process on CPU 1, a RoomClient that does not make its receivers pass-through (aiortc
  decodes as for any subscriber) and feeds each publisher's tracks to aiortc's
  MediaRecorder (one MP4 per publisher: libx264 + aac, aiortc's defaults). Printed: CPU
  per recorded audio+video stream (% of a core) for both, their ratio (goal >= 20x, issue
  #15), user / system time, and the bytes each writes per second.
* **Verifier throughput** (bench/recording_verify.py's recording and timing): a sealed
  synthetic Recording of --verify-mb MB (test media remuxed by SegmentWriter into 4
  Segments, chained and checkpointed as the recorder does); page cache warm, best of 3,
  `sha256sum` over its segment files against tiaojie.archive.verify.verify_recording over the
  folder. Printed: MB/s of each and the ratio (goal >= 0.8x); `openssl dgst -sha256`
  (SHA-256 with the CPU's SHA extensions, which coreutils' sha256sum does not use) for
  reference.

Figures, not assertions: the numbers move with whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ADMIN, api, server_process  # noqa: E402
from bench.forwarding import cpu_seconds  # noqa: E402

WARMUP_S = 5.0  # after the recorder has opened every segment / the baseline started
VIDEO_FPS = 20  # of tests.support.testmedia.make_test_mp4's default file
AUDIO_FPS = 50  # 20 ms Opus packets
VERIFY_RUNS = 3


# -- helpers ----------------------------------------------------------------------------------
def api_delete(base: str, path: str) -> dict:
    request = urllib.request.Request(
        base + path, method="DELETE", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    return json.loads(urllib.request.urlopen(request, timeout=60).read())


def pin(pid: int, cpu: int | None) -> None:
    """Pin every thread of `pid` (and threads it starts later) to `cpu`."""
    if cpu is None:
        return
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), {cpu})


def find_process(*needles: str, timeout: float = 15) -> tuple[int, list[str]]:
    """The pid and argv of the process whose command line holds all `needles`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            if all(any(n in a for a in argv) for n in needles):
                return int(entry), argv
        time.sleep(0.1)
    raise RuntimeError(f"no process with {needles} in its command line")


def cpu_split(pid: int) -> tuple[float, float]:
    """utime and stime of `pid` (all threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def wakeups(pid: int) -> int:
    """Voluntary context switches of `pid`'s main thread: how often it slept and woke."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def child(mode: str, spec: dict, cpu: int | None) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, __file__, f"--{mode}", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    pin(process.pid, cpu)
    return process


def wait_for_line(process: subprocess.Popen, prefix: str) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"{process.args[2]} ended before printing {prefix}")


def tell(process: subprocess.Popen, line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


async def stdin_lines():
    """Lines from the parent, read without blocking the event loop."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield line.strip()


# -- child process: the publishers ------------------------------------------------------------
async def publish(links: list[str], media: Path) -> None:
    from tiaojie.client.media_file import FileSource
    from tiaojie.client.session import RoomClient

    clients, sources = [], []
    for i, link in enumerate(links):
        client = RoomClient(link, name=f"publisher {i}")
        await client.join()
        source = FileSource(media)
        await client.publish(source)
        clients.append(client)
        sources.append(source)
    print("READY", flush=True)

    async def watch() -> None:
        while True:
            await asyncio.sleep(1)
            for i, client in enumerate(clients):
                if client.closed_reason is not None:
                    print(f"publisher {i} left the room: {client.closed_reason}", file=sys.stderr)
                    client.closed_reason = None

    watcher = asyncio.ensure_future(watch())
    async for _ in stdin_lines():
        pass  # until the parent closes our stdin
    watcher.cancel()
    for source in sources:
        await source.stop()
    for client in clients:
        await client.close()


# -- child process: the transcoding baseline ---------------------------------------------------
async def transcode(link: str, folder: Path, publishers: int) -> None:
    from aiortc.contrib.media import MediaRecorder

    from tiaojie.client.session import RoomClient

    class TranscodingClient(RoomClient):
        """A subscriber as aiortc makes it: receivers decode; MediaRecorder re-encodes.

        aiortc 1.16's MediaRecorder sets the video size from the first video frame, but
        the MP4 header (which opens every encoder) is written at the first packet muxed:
        an audio frame first makes the video task fail ("Cannot change width after codec
        is open"). So each publisher's audio is dropped until its first video frame has
        been decoded, as our recorder drops audio before the first keyframe.
        """

        def __init__(self) -> None:
            super().__init__(link, name="transcoding baseline")
            self.tracks: dict[str, dict[str, object]] = {}  # participant -> kind -> track
            self.video_started: dict[str, asyncio.Event] = {}
            self.recorders: dict[str, MediaRecorder] = {}
            self.frames = {"video": 0, "audio": 0}  # decoded frames handed to MediaRecorder
            self.all_started = asyncio.Event()

        def _on_track(self, track) -> None:  # instead of make_passthrough + _consume
            assert self.subscriber is not None
            for transceiver in self.subscriber.getTransceivers():
                if transceiver.receiver.track is not track or transceiver.mid is None:
                    continue
                sub = self.subscriptions.get(transceiver.mid)
                if sub is None:
                    continue
                started = self.video_started.setdefault(sub.participant_id, asyncio.Event())
                self._wrap(track, started)
                tracks = self.tracks.setdefault(sub.participant_id, {})
                tracks[track.kind] = track
                if len(tracks) == 2 and sub.participant_id not in self.recorders:
                    recorder = MediaRecorder(str(folder / f"{sub.participant_id}.mp4"))
                    for t in tracks.values():
                        recorder.addTrack(t)
                    self.recorders[sub.participant_id] = recorder
                    self._spawn(recorder.start())
                    if len(self.recorders) >= publishers:
                        self.all_started.set()

        def _wrap(self, track, video_started: asyncio.Event) -> None:
            original = track.recv

            async def recv():
                while True:
                    frame = await original()
                    if track.kind == "video":
                        video_started.set()
                    elif not video_started.is_set():
                        continue
                    self.frames[track.kind] += 1
                    return frame

            track.recv = recv

    client = TranscodingClient()
    await client.join()
    await asyncio.wait_for(client.all_started.wait(), 30)
    print("READY", flush=True)
    mark = dict(client.frames)
    async for line in stdin_lines():
        if line == "MARK":
            mark = dict(client.frames)
        elif line == "STOP":
            frames = {k: v - mark[k] for k, v in client.frames.items()}
            print(json.dumps({"frames": frames}), flush=True)
            break
    for recorder in client.recorders.values():
        await recorder.stop()
    await client.close()


# -- the recorder-CPU measurements -------------------------------------------------------------
def measure(pid: int, folder: Path, seconds: float, profile: Path | None = None) -> dict:
    cpu0, bytes0, wall0 = cpu_seconds(pid), tree_bytes(folder), time.monotonic()
    user0, system0 = cpu_split(pid)
    wakeups0 = wakeups(pid)
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "-p",
                str(pid),
                "-d",
                str(int(seconds)),
                "--nonblocking",
                "--gil",  # samples holding the GIL: CPU, not time waiting in select/fsync
                "-r",
                "1000",
                "-f",
                "raw",
                "-o",
                str(profile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    time.sleep(seconds)
    if not Path(f"/proc/{pid}").exists():
        raise RuntimeError(f"process {pid} exited during the measurement (a crash? see its log)")
    user, system = cpu_split(pid)
    woke = wakeups(pid) - wakeups0
    cpu, written, wall = (
        cpu_seconds(pid) - cpu0,
        tree_bytes(folder) - bytes0,
        time.monotonic() - wall0,
    )
    if spy is not None:
        spy.wait(timeout=60)
    return {
        "cpu": cpu,
        "wall": wall,
        "bytes": written,
        "user": user - user0,
        "system": system - system0,
        "wakeups": woke,
    }


def record_ours(
    base: str, room_id: str, publishers: int, seconds: float, cpu: int | None, profile: Path | None
) -> dict:
    recording = api(base, f"/api/rooms/{room_id}/recording", {})
    pid, argv = find_process("record", recording["id"])
    pin(pid, cpu)
    folder = Path(argv[argv.index("--dir") + 1])
    deadline = time.monotonic() + 60  # a loaded machine can take many seconds to start it
    while time.monotonic() < deadline:  # every publisher's segment has its init segment
        opened = [p for p in (folder / "segments").glob("*.mp4") if p.stat().st_size > 0]
        if len(opened) >= publishers:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"the recorder opened {len(opened)} of {publishers} segments")
    time.sleep(WARMUP_S)
    pin(pid, cpu)  # threads started since
    result = measure(pid, folder, seconds, profile)
    api_delete(base, f"/api/rooms/{room_id}/recording")
    for _ in range(300):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    from tiaojie.archive.verify import verify_recording

    report = verify_recording(folder)
    result.update(
        mode="ours (remux + hash chain)",
        pid=pid,
        folder=str(folder),
        streams=publishers,
        authentic=report.authentic,
        problems=[p.describe() for p in report.problems][:3],
    )
    return result


def record_transcoding(link: str, publishers: int, seconds: float, cpu: int | None) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="tiaojie-bench-mediarecorder-"))
    process = child("transcode", {"link": link, "dir": str(folder), "n": publishers}, cpu)
    try:
        wait_for_line(process, "READY")
        time.sleep(WARMUP_S)
        pin(process.pid, cpu)
        tell(process, "MARK")
        result = measure(process.pid, folder, seconds)
        tell(process, "STOP")
        result.update(json.loads(wait_for_line(process, "{")))
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)
    result.update(mode="aiortc MediaRecorder (decode + x264/aac)", streams=publishers)
    return result


# -- the verifier measurement ------------------------------------------------------------------
def best_wall(run, runs: int = VERIFY_RUNS) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def verifier_throughput(megabytes: float) -> dict:
    """bench/recording_verify.py's synthetic Recording and timing, and for reference the
    throughput of `openssl dgst -sha256` (SHA-256 with the CPU's SHA extensions)."""
    from bench.recording_verify import measure, write_recording

    base = Path(tempfile.mkdtemp(prefix="tiaojie-bench-verify-"))
    try:
        made = time.monotonic()
        folder = write_recording(base, megabytes, 4)
        made = time.monotonic() - made
        result = measure(folder, VERIFY_RUNS)  # warms the page cache first
        files = sorted(str(p) for p in (folder / "segments").glob("*.mp4"))
        result["entries"] = sum(1 for _ in (folder / "chain.jsonl").open())
        result["made_s"] = made

        if shutil.which("openssl"):
            argv = ["openssl", "dgst", "-sha256", *files]
            wall = best_wall(lambda: subprocess.run(argv, check=True, stdout=subprocess.DEVNULL))
            result["openssl_mb_s"] = result["megabytes"] / wall
        return result
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- orchestration -----------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--verify-mb", type=float, default=200, help="synthetic recording size")
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of our recorder")
    parser.add_argument(
        "--ours-only",
        action="store_true",
        help="measure our recorder alone (no baseline, no verifier): for profiling",
    )
    parser.add_argument("--publish", help=argparse.SUPPRESS)
    parser.add_argument("--transcode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        spec = json.loads(args.publish)
        asyncio.run(publish(spec["links"], Path(spec["media"])))
        return
    if args.transcode:
        spec = json.loads(args.transcode)
        asyncio.run(transcode(spec["link"], Path(spec["dir"]), spec["n"]))
        return

    from tests.support.testmedia import make_test_mp4

    started = time.monotonic()
    two = (os.cpu_count() or 1) >= 2
    server_cpu, recorder_cpu = (0, 1) if two else (None, None)
    media = make_test_mp4(Path(tempfile.mkdtemp()) / "bench.mp4", seconds=10)
    print(
        f"media: {media} (640x480 H264 ~750 kbit/s + Opus); {args.publishers} publishers, "
        f"{args.seconds:.0f} s windows; server + publishers on CPU {server_cpu}, the recorder "
        f"under test on CPU {recorder_cpu}",
        flush=True,
    )
    with server_process(cpu=server_cpu) as (_, base):
        room = api(base, "/api/rooms", {"title": "recording bench", "lobby": False})
        invite = f"/api/rooms/{room['id']}/invites"
        links = [
            api(base, invite, {"role": "party", "name": f"p{i}"})["url"]
            for i in range(args.publishers)
        ]
        observer = api(base, invite, {"role": "observer", "name": "transcoder"})["url"]
        publishers = child("publish", {"links": links, "media": str(media)}, server_cpu)
        try:
            wait_for_line(publishers, "READY")
            time.sleep(2)
            ours = record_ours(
                base, room["id"], args.publishers, args.seconds, recorder_cpu, args.profile
            )
            print(f"measured our recorder ({ours['folder']})", flush=True)
            if args.ours_only:
                print(
                    f"ours: {100 * ours['cpu'] / ours['wall'] / args.publishers:.2f} % per "
                    f"stream (user {ours['user']:.2f} s, system {ours['system']:.2f} s in "
                    f"{ours['wall']:.0f} s), {ours['wakeups'] / ours['wall']:.0f} wake-ups/s, "
                    f"{ours['bytes'] / ours['wall'] / 1000:.0f} kB/s, "
                    f"{'authentic' if ours['authentic'] else 'NOT authentic'}"
                )
                shutil.rmtree(media.parent, ignore_errors=True)
                return
            baseline = record_transcoding(observer, args.publishers, args.seconds, recorder_cpu)
            print("measured the transcoding baseline", flush=True)
        finally:
            if publishers.stdin is not None:
                publishers.stdin.close()
            try:
                publishers.wait(timeout=30)
            except subprocess.TimeoutExpired:
                publishers.kill()
    shutil.rmtree(media.parent, ignore_errors=True)
    print("measuring the verifier", flush=True)
    verify = verifier_throughput(args.verify_mb)

    rows = []
    for r in (ours, baseline):
        per_stream = 100 * r["cpu"] / r["wall"] / r["streams"]
        r["per_stream_pct"] = per_stream
        rows.append(
            f"| {r['mode']} | {100 * r['cpu'] / r['wall']:.1f} % | {per_stream:.2f} % | "
            f"{100 * r['user'] / r['wall']:.1f} % / {100 * r['system'] / r['wall']:.1f} % | "
            f"{r['bytes'] / r['wall'] / 1000:.0f} kB/s |"
        )
    ratio = baseline["per_stream_pct"] / ours["per_stream_pct"]
    expected = args.seconds * args.publishers
    frames = baseline.get("frames", {})
    print()
    print(f"Recorder CPU, {args.publishers} recorded audio+video streams, {args.seconds:.0f} s:")
    print(
        "| recorder | process CPU (of a core) | CPU per a+v stream | user / system "
        "| bytes written |"
    )
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"MediaRecorder / ours: {ratio:.1f}x less CPU per stream (goal >= 20x, issue #15). "
        f"The baseline took {frames.get('video', 0) / expected:.1f} video and "
        f"{frames.get('audio', 0) / expected:.1f} audio frames/s per stream off its decoders "
        f"(input {VIDEO_FPS} and {AUDIO_FPS}), so it "
        + (
            "kept up."
            if frames.get("video", 0) >= 0.9 * VIDEO_FPS * expected
            else "fell behind (saturated)."
        )
    )
    print(
        f"Our recording verifies: {'authentic' if ours['authentic'] else 'NOT authentic'}"
        + (f" ({'; '.join(ours['problems'])})" if ours["problems"] else "")
    )
    print()
    print(
        f"Verifier (bench/recording_verify.py): synthetic sealed recording, "
        f"{verify['megabytes']:.0f} MB in {verify['files']:.0f} segment files, "
        f"{verify['entries']} chain entries (written in {verify['made_s']:.0f} s), page cache "
        f"warm, best of {VERIFY_RUNS}:"
    )
    print("| reader | throughput | vs sha256sum (goal >= 0.8x) |")
    print("|---|---|---|")
    print(f"| sha256sum (coreutils, one process) | {verify['sha256sum_mb_s']:.0f} MB/s | 1 |")
    print(
        f"| verify_recording (threads) | {verify['verifier_mb_s']:.0f} MB/s | "
        f"{verify['ratio']:.2f}x |"
    )
    print(
        f"| verify_recording (one thread) | {verify['verifier_1_thread_mb_s']:.0f} MB/s | "
        f"{verify['ratio_1_thread']:.2f}x |"
    )
    if "openssl_mb_s" in verify:
        print(
            f"| for reference: openssl dgst -sha256 (SHA extensions) | "
            f"{verify['openssl_mb_s']:.0f} MB/s | "
            f"{verify['openssl_mb_s'] / verify['sha256sum_mb_s']:.2f}x |"
        )
    print(f"whole run {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
