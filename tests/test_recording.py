"""Recording a real session: Python-client publishers, the real recorder process, ffprobe.

The server launches `tiaojie record` as a child process; these tests check what lands in
the archive with independent tools (ffprobe, ffmpeg) and the verifier's command line.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tiaojie.archive.chain import read_entries
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient

FFPROBE = shutil.which("ffprobe")


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    # keyframes every 0.5 s: a FileSource cannot answer keyframe requests
    return make_test_mp4(
        tmp_path_factory.mktemp("media") / "av.mp4", seconds=4, keyframe_interval_s=0.5
    )


async def join(live_server, room, role, name) -> RoomClient:
    invite = await live_server.create_invite(room["id"], role, name)
    client = RoomClient(invite["url"])
    client.invite = invite
    await client.join()
    return client


def probe(path: Path) -> dict:
    assert FFPROBE, "ffprobe is missing: run `make test`, which installs ffmpeg"
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def decode_errors(path: Path) -> str:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    return out.stdout + out.stderr


def verify(directory: Path, data_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tiaojie",
            "verify",
            str(directory),
            "--trust",
            str(data_dir / "keys" / "recorder_ed25519.pub.pem"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def chain(directory: Path) -> list[dict]:
    entries, problems = read_entries(directory / "chain.jsonl")
    assert not problems
    return entries


def events(directory: Path, kind: str) -> list[dict]:
    return [
        e["event"] for e in chain(directory) if e["type"] == "event" and e["event"]["kind"] == kind
    ]


async def start_recording(live_server, room_id: str) -> tuple[str, Path]:
    status, body = await live_server.admin("POST", f"/api/rooms/{room_id}/recording")
    assert status == 201, body
    directory = live_server.state.settings.data_dir / "recordings" / body["id"]
    return body["id"], directory


def chained_so_far(directory: Path) -> list[dict]:
    """The chain as the running recorder has written it (its last line may be half-written)."""
    try:
        entries, _ = read_entries(directory / "chain.jsonl")
    except FileNotFoundError:
        return []
    return entries


def events_so_far(directory: Path, kind: str) -> list[dict]:
    return [
        e["event"]
        for e in chained_so_far(directory)
        if e["type"] == "event" and e["event"]["kind"] == kind
    ]


def fragments_so_far(directory: Path, segment: str) -> int:
    return sum(
        e["type"] == "fragment" and e["segment"] == segment for e in chained_so_far(directory)
    )


async def segments_started(directory: Path, count: int) -> list[str]:
    """Wait until `count` segments have started; their names."""
    await eventually(
        lambda: len(events_so_far(directory, "segment_started")) >= count,
        timeout=20,
        what=f"{count} segments started",
    )
    return [e["segment"] for e in events_so_far(directory, "segment_started")]


async def fragments_chained(directory: Path, segments: list[str], count: int) -> None:
    """Wait until each segment has `count` fragments in the chain (test media: ~0.5 s each,
    a fragment per keyframe)."""
    await eventually(
        lambda: all(fragments_so_far(directory, s) >= count for s in segments),
        timeout=20,
        what=f"{count} fragments of {segments}",
    )


async def test_a_session_is_recorded_as_verifiable_fmp4_per_participant(
    live_server, test_mp4, tmp_path
):
    room = await live_server.create_room(lobby=False)
    mediator = await join(live_server, room, "mediator", "调解员")
    party = await join(live_server, room, "party", "申请人")
    sources = [FileSource(test_mp4), FileSource(test_mp4)]
    try:
        await mediator.publish(sources[0])
        await party.publish(sources[1])
        recording_id, directory = await start_recording(live_server, room["id"])

        # the recorder is a participant everyone sees
        for _ in range(100):
            people = (await live_server.room(room["id"]))["participants"]
            if any(p["role"] == "recorder" for p in people):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the recorder did not join")
        assert (await live_server.room(room["id"]))["recording"] == recording_id
        segments = await segments_started(directory, 2)
        await fragments_chained(directory, segments, 4)  # about 2 s of each
        party_left = time.time()
        await party.leave()
        party_gone = time.time()
        # The party's segment ends; the mediator's goes on about 2 s more (the two ends
        # must be told apart, at 0.5 s tolerance).
        (party_segment,) = (s for s in segments if f"-{party.invite['invite_id']}-" in s)
        (mediator_segment,) = (s for s in segments if s != party_segment)
        at_leave = fragments_so_far(directory, mediator_segment)
        await eventually(
            lambda: any(
                e["segment"] == party_segment for e in events_so_far(directory, "segment_ended")
            ),
            what="the party's segment ended",
        )
        await fragments_chained(directory, [mediator_segment], at_leave + 4)
        stopped = time.time()
        status, body = await live_server.admin("DELETE", f"/api/rooms/{room['id']}/recording")
        stop_answered = time.time()
        assert status == 200, body
        assert body["id"] == recording_id
    finally:
        for source in sources:
            await source.stop()
        await mediator.close()
        await party.close()

    summary = json.loads((directory / "recording.json").read_text())
    assert summary["status"] == "sealed"
    entries = chain(directory)
    assert entries[-1]["type"] == "seal"
    started = {e["segment"]: e for e in events(directory, "segment_started")}
    assert len(started) == 2
    # each end lies between the request and its answer (seconds apart on a loaded machine)
    ends = {"party": (party_left, party_gone), "mediator": (stopped, stop_answered)}
    ids = {mediator.invite["invite_id"]: "mediator", party.invite["invite_id"]: "party"}
    for name, event in started.items():
        path = directory / name
        info = await asyncio.to_thread(probe, path)
        codecs = sorted(s["codec_name"] for s in info["streams"])
        assert codecs == ["h264", "opus"], (name, codecs)
        duration = float(info["format"]["duration"])
        earliest, latest = (end - event["start"] for end in ends[ids[event["participant_id"]]])
        assert earliest - 0.5 <= duration <= latest + 0.5, (name, duration, earliest, latest)
        assert await asyncio.to_thread(decode_errors, path) == ""
        starts = {s["codec_type"]: float(s["start_time"]) for s in info["streams"]}
        assert abs(starts["video"] - starts["audio"]) <= 0.1, starts
    # the room's events are in the chain
    joined = {e["participant_id"] for e in events(directory, "joined")}
    left = {e["participant_id"] for e in events(directory, "left")}
    assert party.invite["invite_id"] in left
    assert not joined or joined <= set(ids)
    result = await asyncio.to_thread(verify, directory, live_server.state.settings.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_kill_9_of_the_recorder_is_a_signed_gap_and_recording_goes_on(live_server, test_mp4):
    room = await live_server.create_room(lobby=False)
    mediator = await join(live_server, room, "mediator", "调解员")
    source = FileSource(test_mp4)
    try:
        await mediator.publish(source)
        _, directory = await start_recording(live_server, room["id"])
        await fragments_chained(directory, await segments_started(directory, 1), 2)
        proc = live_server.state.recordings.processes[room["id"]]
        killed_pid = proc.process.pid
        os.kill(killed_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        await eventually(
            lambda: proc.process.pid != killed_pid and proc.process.returncode is None,
            timeout=5,
            what="the recorder restarted",
        )
        assert time.monotonic() - killed_at < 2.0
        # the same chain goes on, in a new segment
        second = (await segments_started(directory, 2))[1:]
        await fragments_chained(directory, second, 2)
        status, body = await live_server.admin("DELETE", f"/api/rooms/{room['id']}/recording")
        assert status == 200, body
    finally:
        await source.stop()
        await mediator.close()

    entries = chain(directory)
    gaps = [e for e in entries if e["type"] == "gap"]
    assert len(gaps) == 1 and gaps[0]["signature"]
    assert gaps[0]["previous_exit"] == "killed by SIGKILL"  # the gap says why
    assert entries[-1]["type"] == "seal"
    fragments_after = [e for e in entries[gaps[0]["seq"] :] if e["type"] == "fragment"]
    assert len(fragments_after) >= 2
    result = await asyncio.to_thread(
        verify, directory, live_server.state.settings.data_dir, "--json"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["gaps"], report


def _recorder_pids(recording_id: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            # its own id (a recorder that follows it names it in --follows)
            if (
                b"record\x00" in cmdline
                and b"--recording-id\x00%s\x00" % recording_id.encode() in cmdline
            ):
                pids.append(int(entry.name))
    return pids


def test_a_server_crash_leaves_every_finished_fragment_verifiable(tmp_path, test_mp4):
    """kill -9 of the server: the recorder notices, seals what it has, and it verifies."""
    from tests.conftest import free_port
    from tests.support.server_process import wait_healthy
    from tests.test_cli import TIAOJIE, _post

    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    admin = "admin-token-for-the-crash-test"
    with (tmp_path / "server.log").open("w") as log:
        server = subprocess.Popen(
            [TIAOJIE, "serve", "--data", str(data), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TIAOJIE_ADMIN_TOKEN": admin},
        )
    recording_id = ""
    try:
        wait_healthy(url, server)
        room = _post(f"{url}/api/rooms", admin, b'{"title": "t", "lobby": false}')
        invite = _post(
            f"{url}/api/rooms/{room['id']}/invites", admin, b'{"role": "mediator", "name": "m"}'
        )

        async def scenario() -> str:
            client = RoomClient(invite["url"])
            source = FileSource(test_mp4)
            try:
                await client.join()
                await client.publish(source)
                started = _post(f"{url}/api/rooms/{room['id']}/recording", admin, b"")
                directory = data / "recordings" / started["id"]
                segments = await segments_started(directory, 1)
                await fragments_chained(directory, segments, 2)
                server.kill()  # kill -9
                for _ in range(200):
                    if not _recorder_pids(started["id"]):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the recorder did not finish after the server died")
                return started["id"]
            finally:
                await source.stop()
                await client.close()

        recording_id = asyncio.run(scenario())
    finally:
        if server.poll() is None:
            server.kill()
        for pid in _recorder_pids(recording_id) if recording_id else []:
            os.kill(pid, signal.SIGKILL)
    directory = data / "recordings" / recording_id
    entries = chain(directory)
    assert entries[-1]["type"] == "seal" and entries[-1]["reason"] == "disconnected"
    fragments = [e for e in entries if e["type"] == "fragment"]
    assert len(fragments) >= 2
    result = verify(directory, data)
    assert result.returncode == 0, result.stdout + result.stderr


async def _drain(track) -> None:
    while True:
        await track.queue.get()


async def test_a_screen_share_is_its_own_segment(live_server, test_mp4):
    room = await live_server.create_room(lobby=False)
    mediator = await join(live_server, room, "mediator", "调解员")
    camera, screen = FileSource(test_mp4), FileSource(test_mp4)
    drain = None
    try:
        await mediator.publish(camera, screen=screen.video)
        screen.start()
        # a screen share has no sound: drop the second file's audio
        drain = asyncio.ensure_future(_drain(screen.audio))
        _, directory = await start_recording(live_server, room["id"])
        segments = await segments_started(directory, 2)
        await fragments_chained(directory, segments, 2)
        status, _ = await live_server.admin("DELETE", f"/api/rooms/{room['id']}/recording")
        assert status == 200
    finally:
        if drain is not None:
            drain.cancel()
        await camera.stop()
        await screen.stop()
        await mediator.close()
    started = events(directory, "segment_started")
    by_source = {e["source"]: e for e in started}
    assert set(by_source) == {"camera", "screen"}
    assert by_source["screen"]["tracks"] == ["video"]
    for source, codecs in (("camera", ["h264", "opus"]), ("screen", ["h264"])):
        path = directory / by_source[source]["segment"]
        assert (
            sorted(s["codec_name"] for s in (await asyncio.to_thread(probe, path))["streams"])
            == codecs
        )
        assert await asyncio.to_thread(decode_errors, path) == ""
    result = await asyncio.to_thread(verify, directory, live_server.state.settings.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_a_vp8_camera_is_recorded_in_webm(live_server, test_mp4):
    """A VP8 camera (an Android phone without an H264 encoder, Firefox) is recorded with
    its sound in a WebM segment, hash-chained and cut at its Clusters as an MP4 is at its
    fragments: ffprobe and ffmpeg read it, the verifier accepts it, nothing is noted as
    not recorded."""
    from aiortc import RTCRtpSender, RTCSessionDescription, VideoStreamTrack

    from tiaojie.rtc.codecs import h264_first

    room = await live_server.create_room(lobby=False)
    mediator = await join(live_server, room, "mediator", "调解员")
    source = FileSource(test_mp4)
    drain = asyncio.ensure_future(_drain(source.video))
    try:
        pc = mediator.publisher = mediator._connection()
        video = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        video.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
        )
        audio = pc.addTransceiver(source.audio, direction="sendonly")
        audio.setCodecPreferences(h264_first("audio"))
        await pc.setLocalDescription(await pc.createOffer())
        tracks = [
            {"mid": video.mid, "source": "camera"},
            {"mid": audio.mid, "source": "microphone"},
        ]
        answer = await mediator.call(
            "publish", {"sdp": pc.localDescription.sdp, "type": "offer", "tracks": tracks}
        )
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        source.start()
        _, directory = await start_recording(live_server, room["id"])
        segments = await segments_started(directory, 1)
        await fragments_chained(directory, segments, 2)
        status, _ = await live_server.admin("DELETE", f"/api/rooms/{room['id']}/recording")
        assert status == 200
    finally:
        drain.cancel()
        await source.stop()
        await mediator.close()
    assert events(directory, "not_recorded") == []
    (started,) = events(directory, "segment_started")
    assert started["tracks"] == ["audio", "video"]
    assert started["segment"].endswith("-camera.webm"), started["segment"]
    path = directory / started["segment"]
    assert sorted(s["codec_name"] for s in (await asyncio.to_thread(probe, path))["streams"]) == [
        "opus",
        "vp8",
    ]
    assert await asyncio.to_thread(decode_errors, path) == ""
    result = await asyncio.to_thread(verify, directory, live_server.state.settings.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_an_unrecordable_codec_is_noted_once_when_offered(tmp_path):
    """`not_recorded` is written when the publication is offered to the recorder (a track
    whose first packet never comes is in the chain too), once per publication."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tiaojie.archive.layout import new_recording_id
    from tiaojie.client.session import Subscription
    from tiaojie.recorder.session import Recorder

    recorder = Recorder(
        "http://127.0.0.1:9/join#token=unused",
        tmp_path,
        new_recording_id(),
        Ed25519PrivateKey.generate(),
    )
    av1 = Subscription("1", "pub_av1", "p_x", "video", "camera", "video/AV1")
    recorder.client.on_subscription[0](av1)
    recorder.client.on_subscription[0](av1)
    recorder.client.on_subscription[0](
        Subscription("2", "pub_vp8", "p_x", "video", "camera", "video/VP8")
    )
    (noted,) = events(tmp_path, "not_recorded")
    assert (noted["publication_id"], noted["codec"]) == ("pub_av1", "video/AV1")
