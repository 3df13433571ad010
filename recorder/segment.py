"""One participant connection's media as one fragmented MP4, remuxed (no transcoding).

`SegmentWriter` takes the `av.Packet`s a subscription delivers (H264 Annex-B with in-band
SPS/PPS at 1/90000, Opus at 1/48000) and muxes them with PyAV into an fMP4
(`frag_keyframe+empty_moov+default_base_moof`, ~1 s fragments). The muxer writes into a
file-like `_BoxSink` that cuts the byte stream at box boundaries: the init segment
(everything before the first `moof`: ftyp + moov) and then each fragment (`moof` + its
`mdat`) is appended to the file on disk, fsynced, and reported as
`on_chunk(kind, offset, data)` so the recorder can hash-chain exactly what was written.

Codec set-up:
* H264: a codec-less mux stream; PyAV (>= 17) runs `extract_extradata` on the first packet,
  which is a keyframe carrying SPS/PPS, and the MP4 muxer turns that Annex-B extradata
  into `avcC` and converts the Annex-B packets to length-prefixed NAL units. The frame
  size comes from decoding that first keyframe.
* Opus: an (unused, never fed) libopus encoder stream supplies the OpusHead; `channels`
  defaults to 2 as WebRTC negotiates `opus/48000/2` (mono packets decode fine).

Timestamps: each track starts at 0 at its first written packet (plus an optional
per-track `start_offsets` in seconds, e.g. from an RTCP sender report mapping). Video
starts at the first keyframe; audio packets before it are dropped, so both tracks start
together to within one audio packet. dts = pts (WebRTC H264 has no B-frames); packets
whose pts does not advance are dropped. Each packet is held until the next one of its
track arrives so its duration is known exactly; close() writes the last ones.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path

import av

from tiaojie.archive import ebml

ChunkCallback = Callable[[str, int, bytes], None]
CLOCKS = {"video": 90000, "audio": 48000}
TIME_BASES = {kind: Fraction(1, clock) for kind, clock in CLOCKS.items()}
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+skip_trailer"
#: The container of a segment by its video codec (audio-only segments are MP4).
CONTAINERS = {"h264": "mp4", "vp8": "webm"}
#: A segment file's extension by container.
EXTENSIONS = {"mp4": ".mp4", "webm": ".webm"}


class _BoxSink(io.RawIOBase):
    """A write-only, non-seekable stream that emits whole top-level MP4 boxes (or, for
    WebM, the header before the first Cluster, then each Cluster) as chunks."""

    def __init__(
        self, file: io.BufferedWriter, on_chunk: ChunkCallback | None, webm: bool = False
    ) -> None:
        super().__init__()
        self._webm = webm
        self._file = file
        self._on_chunk = on_chunk
        self._buf = bytearray()  # bytes written by the muxer, not yet emitted
        self._scan = 0  # index in _buf up to which whole boxes have been parsed
        self._offset = 0  # file offset of _buf[0]
        self._init_done = False
        self._in_fragment = False  # a moof was parsed whose mdat has not been
        self.chunks = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data)
        self._buf += view
        self._parse()
        return view.nbytes

    def _parse(self) -> None:
        if self._webm:
            self._parse_webm()
            return
        while len(self._buf) - self._scan >= 8:
            size, kind = struct.unpack_from(">I4s", self._buf, self._scan)
            if size == 1:
                if len(self._buf) - self._scan < 16:
                    return
                (size,) = struct.unpack_from(">Q", self._buf, self._scan + 8)
            if size < 8:
                raise ValueError(f"unsupported MP4 box size {size} ({kind!r})")
            if len(self._buf) - self._scan < size:
                return
            if kind == b"moof":
                if not self._init_done:
                    self._emit("init", self._scan)
                    self._init_done = True
                self._in_fragment = True
            self._scan += size
            if kind == b"mdat" and self._in_fragment:
                self._emit("fragment", self._scan)
                self._in_fragment = False

    def _parse_webm(self) -> None:
        while True:
            header = ebml.element_header(self._buf, self._scan)
            if header is None:
                return
            element, header_length, size = header
            if element == ebml.SEGMENT_ID:  # its children follow: read them one by one
                self._scan += header_length
                continue
            if size < 0:
                raise ValueError(f"WebM element {element:#x} of unknown size")
            if len(self._buf) - self._scan < header_length + size:
                return
            if element == ebml.CLUSTER_ID and not self._init_done:
                self._emit("init", self._scan)
                self._init_done = True
            self._scan += header_length + size
            if element == ebml.CLUSTER_ID:
                self._emit("fragment", self._scan)

    def _emit(self, kind: str, end: int) -> None:
        if end == 0:
            return
        data = bytes(self._buf[:end])
        del self._buf[:end]
        self._scan -= end
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        offset = self._offset
        self._offset += len(data)
        self.chunks += 1
        if self._on_chunk is not None:
            self._on_chunk(kind, offset, data)

    def finish(self) -> None:
        """Emit what is left: a lone init segment, or boxes after the last fragment."""
        if self._scan != len(self._buf):
            raise ValueError(f"{len(self._buf) - self._scan} bytes of an incomplete MP4 box")
        self._emit("fragment" if self._init_done else "init", self._scan)
        self._init_done = True


def _frame_size(keyframe: bytes, codec: str = "h264") -> tuple[int, int]:
    """Width and height of a keyframe: VP8 from its header, an Annex-B H264 keyframe
    with SPS/PPS by decoding it."""
    if codec == "vp8":  # RFC 6386 9.1: 3-byte frame tag, start code, 14-bit sizes
        if len(keyframe) < 10 or keyframe[3:6] != b"\x9d\x01\x2a":
            return 0, 0
        width, height = struct.unpack_from("<HH", keyframe, 6)
        return width & 0x3FFF, height & 0x3FFF
    decoder = av.CodecContext.create("h264", "r")
    try:
        frames = decoder.decode(av.Packet(keyframe)) + decoder.decode(None)
    except av.FFmpegError:
        return 0, 0
    for frame in frames:
        if isinstance(frame, av.VideoFrame):
            return frame.width, frame.height
    return 0, 0


class SegmentWriter:
    """Writes one fMP4 segment file from encoded packets; see the module docstring."""

    def __init__(
        self,
        path: Path,
        on_chunk: ChunkCallback | None = None,
        *,
        video: bool = True,
        audio: bool = True,
        audio_channels: int = 2,
        fragment_seconds: float = 1.0,
        start_offsets: Mapping[str, float] | None = None,
        video_codec: str = "h264",
    ) -> None:
        if not (video or audio):
            raise ValueError("a segment needs a video or an audio track")
        self.path = path
        self.has_video = video
        self.has_audio = audio
        self.audio_channels = audio_channels
        self.dropped = 0  # packets dropped: before the first keyframe, or pts not advancing
        self._offsets = {k: round(v * CLOCKS[k]) for k, v in (start_offsets or {}).items()}
        self._file = open(path, "xb")  # noqa: SIM115 - closed in close(); never overwrite
        if video_codec not in CONTAINERS:
            raise ValueError(f"cannot record {video_codec} video")
        #: "h264" in fragmented MP4; "vp8" in WebM (ffmpeg's MP4 muxer has no VP8)
        self.video_codec = video_codec
        self.container_format = CONTAINERS[video_codec] if video else "mp4"
        webm = self.container_format == "webm"
        self._sink = _BoxSink(self._file, on_chunk, webm=webm)
        if webm:  # live: no seeking back; one Cluster per fragment_seconds
            self._options = {
                "live": "1",
                "cluster_time_limit": str(int(fragment_seconds * 1000)),
                "flush_packets": "1",
            }
        else:
            self._options = {
                "movflags": MOVFLAGS,
                "frag_duration": str(int(fragment_seconds * 1_000_000)),
                "flush_packets": "1",
            }
        self._container: av.container.OutputContainer | None = None
        self._streams: dict[str, av.stream.Stream] = {}
        self._origin: dict[str, int] = {}  # first pts of each track (input units)
        self._held: dict[str, av.Packet] = {}  # last packet per track, awaiting duration
        self._last_duration: dict[str, int] = {}
        self._closed = False

    @property
    def started(self) -> bool:
        return self._container is not None

    def set_start(self, kind: str, seconds: float) -> None:
        """Where track `kind` starts on the segment's timeline; before its first packet."""
        if kind in self._origin:
            raise ValueError(f"the {kind} track has already started")
        self._offsets[kind] = round(max(0.0, seconds) * CLOCKS[kind])

    def write(self, kind: str, packet: av.Packet) -> None:
        """Add one encoded packet of track `kind` ("video" or "audio")."""
        if self._closed:
            raise ValueError("segment is closed")
        if kind not in CLOCKS or not (self.has_video if kind == "video" else self.has_audio):
            raise ValueError(f"no {kind} track in this segment")
        if packet.pts is None or packet.time_base is None or packet.size == 0:
            self.dropped += 1
            return
        if self._container is None:
            if self.has_video and not (kind == "video" and packet.is_keyframe):
                self.dropped += 1
                return
            self._open(bytes(packet) if kind == "video" else None)
        clock = CLOCKS[kind]
        base = packet.time_base
        if base.numerator == 1 and base.denominator == clock:
            pts = packet.pts  # the usual case: integer maths, no Fraction per packet
        else:
            pts = int(packet.pts * base * clock)
        origin = self._origin.setdefault(kind, pts)
        pts = pts - origin + self._offsets.get(kind, 0)
        held = self._held.get(kind)
        if held is not None:
            assert held.pts is not None
            if pts <= held.pts:
                self.dropped += 1
                return
            self._mux(kind, held, pts - held.pts)
        out = av.Packet(bytes(packet))
        out.pts = out.dts = pts
        out.time_base = TIME_BASES[kind]
        out.is_keyframe = bool(packet.is_keyframe) or kind == "audio"
        self._held[kind] = out

    def _open(self, keyframe: bytes | None) -> None:
        container = av.open(self._sink, "w", format=self.container_format, options=self._options)
        if keyframe is not None:
            width, height = _frame_size(keyframe, self.video_codec)
            self._streams["video"] = container.add_mux_stream(
                self.video_codec,
                width=width,
                height=height,
                time_base=Fraction(1, CLOCKS["video"]),
            )
        if self.has_audio:
            opus = container.add_stream("libopus", rate=CLOCKS["audio"])
            opus.layout = "stereo" if self.audio_channels == 2 else "mono"
            self._streams["audio"] = opus
        self._container = container

    def _mux(self, kind: str, packet: av.Packet, duration: int) -> None:
        assert self._container is not None
        packet.duration = duration
        packet.stream = self._streams[kind]
        self._last_duration[kind] = duration
        self._container.mux(packet)

    def close(self) -> None:
        """Write the held packets, flush the last fragment and close the file."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._container is not None:
                for kind, held in self._held.items():
                    default = 3000 if kind == "video" else 960
                    self._mux(kind, held, self._last_duration.get(kind, default))
                self._held.clear()
                self._container.close()
            self._sink.finish()
        finally:
            self._file.close()

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
