"""recorder.segment: packets as a subscription delivers them -> one fMP4, chunk by chunk."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import av
import pytest

from tests.support.testmedia import make_test_mp4, subscription_packets
from tiaojie.recorder.segment import SegmentWriter

SECONDS = 3.0


@pytest.fixture(scope="module")
def packets(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, av.Packet]]:
    """Test media as the client delivers it: Annex-B H264 at 1/90000, Opus at 1/48000,
    in pts order across tracks, without packet durations (as from RTP)."""
    src = make_test_mp4(tmp_path_factory.mktemp("media") / "in.mp4", seconds=SECONDS)
    return subscription_packets(src)


def write_segment(
    path: Path, packets: list[tuple[str, av.Packet]], audio: bool = True
) -> list[tuple[str, int, bytes]]:
    chunks: list[tuple[str, int, bytes]] = []
    with SegmentWriter(path, lambda *chunk: chunks.append(chunk), audio=audio) as writer:
        for kind, packet in packets:
            if audio or kind == "video":
                writer.write(kind, packet)
    return chunks


def probe(path: Path) -> dict:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stderr == ""
    return json.loads(result.stdout)


def decode_errors(path: Path) -> str:
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    return result.stdout + result.stderr


def box_types(data: bytes) -> list[bytes]:
    types, pos = [], 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert size >= 8
        types.append(kind)
        pos += size
    assert pos == len(data)
    return types


def check_chunks(path: Path, chunks: list[tuple[str, int, bytes]]) -> None:
    data = path.read_bytes()
    assert b"".join(c[2] for c in chunks) == data
    offset = 0
    for _, chunk_offset, chunk in chunks:
        assert chunk_offset == offset
        offset += len(chunk)
    assert chunks[0][0] == "init"
    assert box_types(chunks[0][2]) == [b"ftyp", b"moov"]
    for kind, _, chunk in chunks[1:]:
        assert kind == "fragment"
        assert box_types(chunk) == [b"moof", b"mdat"]
    assert 2 <= len(chunks) - 1 <= 5  # ~1 fragment per second of media


def test_audio_and_video(tmp_path: Path, packets: list[tuple[str, av.Packet]]) -> None:
    path = tmp_path / "seg.mp4"
    chunks = write_segment(path, packets)
    check_chunks(path, chunks)
    info = probe(path)
    streams = {s["codec_type"]: s for s in info["streams"]}
    video, audio = streams["video"], streams["audio"]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 640, 480)
    assert audio["codec_name"] == "opus"
    assert abs(float(info["format"]["duration"]) - SECONDS) < 0.5
    for stream in (video, audio):
        assert abs(float(stream["duration"]) - SECONDS) < 0.5
    assert decode_errors(path) == ""


def test_video_only(tmp_path: Path, packets: list[tuple[str, av.Packet]]) -> None:
    path = tmp_path / "video.mp4"
    chunks = write_segment(path, packets, audio=False)
    check_chunks(path, chunks)
    info = probe(path)
    assert [s["codec_name"] for s in info["streams"]] == ["h264"]
    assert abs(float(info["format"]["duration"]) - SECONDS) < 0.5
    assert decode_errors(path) == ""


def test_starts_on_keyframe(tmp_path: Path, packets: list[tuple[str, av.Packet]]) -> None:
    """Packets before the first keyframe (here: the first GOP's) are dropped."""
    keyframes = [i for i, (k, p) in enumerate(packets) if k == "video" and p.is_keyframe]
    assert len(keyframes) >= 2
    path = tmp_path / "late.mp4"
    chunks: list[tuple[str, int, bytes]] = []
    with SegmentWriter(path, lambda *chunk: chunks.append(chunk)) as writer:
        for kind, packet in packets[keyframes[0] + 1 :]:
            writer.write(kind, packet)
        assert writer.dropped > 0
    assert b"".join(c[2] for c in chunks) == path.read_bytes()
    info = probe(path)
    assert {s["codec_name"] for s in info["streams"]} == {"h264", "opus"}
    assert float(info["format"]["duration"]) < SECONDS - 0.5
    assert decode_errors(path) == ""


def test_vp8_goes_into_webm_cut_at_clusters_as_the_verifier_cuts_it(tmp_path: Path) -> None:
    """A VP8 segment is WebM: init before the first Cluster, one chunk per Cluster, the
    same parts (and hashes) the verifier finds; a truncated file ends in an incomplete part."""
    import hashlib
    from fractions import Fraction

    from tiaojie.archive.verify.boxes import split_segment

    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, 90000), 20
    encoder.options = {"g": "20"}
    frames = []
    for i in range(60):
        frame = av.VideoFrame(320, 240, "yuv420p")
        frame.pts, frame.time_base = i * 4500, encoder.time_base
        frames += encoder.encode(frame)
    frames += encoder.encode(None)
    chunks: list[tuple[str, int, bytes]] = []
    path = tmp_path / "0001-p-camera.webm"
    with SegmentWriter(
        path, lambda k, o, d: chunks.append((k, o, d)), audio=False, video_codec="vp8"
    ) as writer:
        for i, packet in enumerate(frames):
            packet.pts, packet.time_base = i * 4500, Fraction(1, 90000)
            writer.write("video", packet)
    assert [k for k, _, _ in chunks][:2] == ["init", "fragment"] and len(chunks) >= 3
    parts = split_segment(path)
    assert [(p.kind, p.offset, p.length, p.sha256) for p in parts] == [
        (k, o, len(d), hashlib.sha256(d).hexdigest()) for k, o, d in chunks
    ]
    stream = probe(path)["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("vp8", 320, 240)
    assert decode_errors(path) == ""
    path.write_bytes(path.read_bytes()[:-100])
    assert not split_segment(path)[-1].complete
