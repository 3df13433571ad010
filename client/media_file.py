"""Publish a pre-encoded file (H264 + Opus, e.g. an MP4) without decoding it.

Demuxed packets become `av.Packet`s on two MediaStreamTracks, paced in real time and
looped; aiortc's RTCRtpSender only repacketizes them. H264 is converted to Annex-B
(what aiortc's packetizer splits on) with the h264_mp4toannexb bitstream filter.

A backup encoding (docs/PROTOCOL.md `backup_codec`): while the server asks for one, the
same video packets are also decoded, on a DecodedTrack whose frames aiortc's own encoder
(VP8) encodes; nothing is decoded otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from fractions import Fraction
from pathlib import Path

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)


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


#: Encoded frames a DecodedTrack holds for its decoder; beyond, it drops them all and
#: starts again at the next keyframe (the encoder is not keeping up: spare the CPU).
DECODE_QUEUE = 10


class DecodedTrack(MediaStreamTrack):
    """The file's video as decoded frames, for an encoder of aiortc's own (a backup codec).

    Fed the Annex-B packets FileSource sends, while `decoding`; each is decoded in
    aiortc's executor (as its encoders run), from a keyframe on. Between backups the
    track stays, idle: its sender waits in `recv` and costs nothing.
    """

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue(DECODE_QUEUE)
        self.decoding = False
        self.decoded = 0
        self._decoder: av.VideoCodecContext | None = None
        self._keyframe = False  # one arrived since (re)starting: decoding may begin

    def start(self) -> None:
        """Decode what is fed from here on (from the next keyframe)."""
        self._drop()
        self._decoder = None
        self.decoding = True

    def pause(self) -> None:
        """Decode nothing more; the decoder and whatever waits are let go."""
        self.decoding = False
        self._drop()

    def feed(self, packet: av.Packet) -> None:
        if not self.decoding:
            return
        self._keyframe = self._keyframe or bool(packet.is_keyframe)
        if not self._keyframe:
            return
        assert packet.pts is not None
        try:
            self.queue.put_nowait((bytes(packet), packet.pts))
        except asyncio.QueueFull:
            self._drop()

    def end(self) -> None:
        """The file ended: `recv` raises once what was fed has gone."""
        self.decoding = False
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    def _drop(self) -> None:
        while not self.queue.empty():
            if self.queue.get_nowait() is None:  # the end stays
                self.queue.put_nowait(None)
                break
        self._keyframe = False

    async def recv(self) -> av.VideoFrame:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.queue.get()
            if item is None:
                self.stop()
                raise MediaStreamError
            if self._decoder is None:
                self._decoder = av.CodecContext.create("h264", "r")
            try:
                frames = await loop.run_in_executor(None, _decode, self._decoder, *item)
            except av.FFmpegError as error:
                log.warning("backup encoding: could not decode the camera: %s", error)
                self._decoder = None
                self._keyframe = False
                continue
            if frames and self.decoding:
                self.decoded += 1
                return frames[-1]


def _decode(decoder: av.VideoCodecContext, data: bytes, pts: int) -> list[av.VideoFrame]:
    """Decode one Annex-B packet (pts in 1/90000 s) into frames on the same clock."""
    packet = av.Packet(data)
    packet.pts = packet.dts = pts
    packet.time_base = VIDEO_CLOCK
    frames = decoder.decode(packet)
    for frame in frames:
        frame.pts = pts
        frame.time_base = VIDEO_CLOCK
    return frames


VIDEO_CLOCK = Fraction(1, 90000)


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
        #: Also fed the video packets while a backup encoding is asked for (`decode_into`).
        self.decoded: DecodedTrack | None = None
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

    def decode_into(self, track: DecodedTrack | None) -> None:
        """Decode the video into `track` from now on (a backup encoding); None: stop."""
        if self.decoded is not None and self.decoded is not track:
            self.decoded.pause()
        self.decoded = track
        if track is not None:
            track.start()

    async def stop(self) -> None:
        self.decode_into(None)
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
        if self.decoded is not None:
            self.decoded.end()

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
                    if kind == "video" and self.decoded is not None:
                        self.decoded.feed(p)
        return last
