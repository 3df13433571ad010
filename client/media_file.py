"""Publish a pre-encoded file (H264 + Opus, e.g. an MP4) without decoding it.

Demuxed packets become `av.Packet`s on two MediaStreamTracks, paced in real time and
looped; aiortc's RTCRtpSender only repacketizes them. H264 is converted to Annex-B
(what aiortc's packetizer splits on) with the h264_mp4toannexb bitstream filter.
"""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from pathlib import Path

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class PacketTrack(MediaStreamTrack):
    """A track fed with encoded av.Packets by a FileSource."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[av.Packet | None] = asyncio.Queue(maxsize=50)
        self.sent = 0

    async def recv(self) -> av.Packet:
        packet = await self.queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        self.sent += 1
        return packet


#: A source this far behind its schedule (the sender was not taking packets, e.g. while
#: ICE connected on a busy machine) skips ahead instead of sending the backlog in a burst:
#: a camera does not make up for lost time either, and a burst would make media time run
#: ahead of the wall clock.
MAX_LAG_S = 0.25


class FileSource:
    """Reads a media file and plays its H264/Opus packets in real time on two tracks."""

    def __init__(self, path: Path, loop: bool = True) -> None:
        self.path = path
        self.loop = loop
        self.video = PacketTrack("video")
        self.audio = PacketTrack("audio")
        self._task: asyncio.Task[None] | None = None
        #: wall-clock time each packet was handed to a track: (kind, pts seconds, time)
        self.on_packet: list[tuple[str, float, float]] | None = None
        with av.open(str(path)) as probe:
            kinds = {s.type: s.codec_context.name for s in probe.streams}
        if kinds.get("video") not in (None, "h264") or kinds.get("audio") not in (None, "opus"):
            raise ValueError(f"{path}: need H264 video and Opus audio, found {kinds}")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        offset = 0.0  # seconds added to pts on each loop
        self._start = time.monotonic()
        while True:
            duration = await self._play_once(offset)
            if not self.loop:
                break
            offset += duration
        for track in (self.video, self.audio):
            await track.queue.put(None)

    async def _play_once(self, offset: float) -> float:
        last = 0.0
        with av.open(str(self.path)) as container:
            streams = [s for s in container.streams if s.type in ("video", "audio")]
            annexb = None
            for stream in streams:
                if stream.type == "video":
                    annexb = av.BitStreamFilterContext("h264_mp4toannexb", stream)
            for packet in container.demux(streams):
                if packet.pts is None or packet.size == 0:
                    continue
                kind = packet.stream.type
                out = annexb.filter(packet) if kind == "video" and annexb else [packet]
                for p in out:
                    assert p.time_base is not None and p.pts is not None
                    seconds = float(p.pts * p.time_base) + offset
                    last = max(
                        last, float(p.pts * p.time_base) + float((p.duration or 0) * p.time_base)
                    )
                    delay = self._start + seconds - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    elif delay < -MAX_LAG_S:
                        self._start -= delay  # behind: carry on from now, no burst
                    clock = 90000 if kind == "video" else 48000
                    p.pts = p.dts = int(seconds * clock)
                    p.time_base = Fraction(1, clock)
                    if self.on_packet is not None:
                        self.on_packet.append((kind, seconds, time.monotonic()))
                    track = self.video if kind == "video" else self.audio
                    await track.queue.put(p)
        return last
