"""Synthetic test media: an H264 + Opus MP4 made with PyAV (no camera, no network)."""

from __future__ import annotations

import array
import math
from fractions import Fraction
from pathlib import Path

import av


def _fill(plane: av.video.plane.VideoPlane, data: bytes, width: int) -> None:
    """Copy tightly packed rows into a plane whose rows may be padded."""
    if plane.line_size == width:
        plane.update(data)
        return
    pad = bytes(plane.line_size - width)
    plane.update(b"".join(data[r : r + width] + pad for r in range(0, len(data), width)))


def make_test_mp4(
    path: Path,
    seconds: float = 4.0,
    width: int = 640,
    height: int = 480,
    fps: int = 20,
    bitrate: int = 750_000,
    keyframe_interval_s: float = 2.0,
) -> Path:
    """Write a moving test pattern (H264 constrained baseline) with a 440 Hz tone (Opus)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = bitrate
        video.codec_context.gop_size = int(fps * keyframe_interval_s)
        video.options = {
            "profile": "baseline",
            "tune": "zerolatency",
            "preset": "veryfast",
            "x264-params": "keyint={0}:min-keyint={0}:scenecut=0:repeat-headers=1".format(
                int(fps * keyframe_interval_s)
            ),
        }
        audio = container.add_stream("libopus", rate=48000)
        audio.layout = "mono"
        audio.bit_rate = 32000
        frames = int(seconds * fps)
        for i in range(frames):
            shift = (i * 8) % 256
            row = bytes((x + shift) % 256 for x in range(width))
            luma = b"".join(row[(y * 2) % 256 :] + row[: (y * 2) % 256] for y in range(height))
            frame = av.VideoFrame(width, height, "yuv420p")
            _fill(frame.planes[0], luma, width)
            _fill(frame.planes[1], bytes([90 + i % 64]) * (width * height // 4), width // 2)
            _fill(frame.planes[2], bytes([160]) * (width * height // 4), width // 2)
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        samples = 960
        for i in range(int(seconds * 48000 / samples)):
            tone = array.array(
                "h",
                (
                    int(0.3 * 32767 * math.sin(2 * math.pi * 440 * (n + i * samples) / 48000))
                    for n in range(samples)
                ),
            )
            frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
            frame.planes[0].update(tone.tobytes())
            frame.sample_rate = 48000
            frame.pts = i * samples
            frame.time_base = Fraction(1, 48000)
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


def subscription_packets(path: Path) -> list[tuple[str, av.Packet]]:
    """An MP4's packets as a subscription delivers them: (kind, av.Packet) in pts order
    across tracks, Annex-B H264 at 1/90000 and Opus at 1/48000, without durations (as
    from RTP)."""
    out: list[tuple[float, str, av.Packet]] = []
    with av.open(str(path)) as container:
        annexb = av.BitStreamFilterContext("h264_mp4toannexb", container.streams.video[0])
        for packet in container.demux():
            if packet.pts is None or packet.size == 0:
                continue
            kind = packet.stream.type
            for p in annexb.filter(packet) if kind == "video" else [packet]:
                assert p.time_base is not None and p.pts is not None
                seconds = float(p.pts * p.time_base)
                clock = 90000 if kind == "video" else 48000
                copy = av.Packet(bytes(p))
                copy.pts = copy.dts = int(seconds * clock)
                copy.time_base = Fraction(1, clock)
                copy.is_keyframe = p.is_keyframe
                out.append((seconds, kind, copy))
    out.sort(key=lambda item: item[0])
    return [(kind, p) for _, kind, p in out]
