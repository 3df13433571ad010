"""Every use of aiortc's private internals, in one place (aiortc is pinned in pyproject).

aiortc decodes all received media. A selective forwarding unit must not, so for a
receiver we make pass-through:

* its jitter buffer becomes a FrameAssembler that hands a frame over as soon as its last
  packet (RTP marker bit) arrives, instead of waiting for the next frame's first packet
  (video, +1 frame of delay) or prefetching 4 packets (audio, +80 ms);
* its decoder queue becomes a PassthroughQueue that turns each encoded frame into an
  `av.Packet` on the track's queue: no decoder, no thread hop. `RTCRtpSender` accepts
  `av.Packet`s and only repacketizes them.

A sender's keyframe requests (PLI/FIR from a subscriber) would only set a flag for
aiortc's encoder, which a forwarded track does not use; `on_keyframe_request` routes them
to a callback. tests/test_aiortc_internals.py fails loudly when any of this moves.

What aiortc 1.16.0's `RTCRtpReceiver._handle_rtp_packet` does with them, per packet: it
unwraps RTX (so the packet carries the media SSRC), sends NACKs for gaps, sets
`packet._data` to the depayloaded bytes (H264: Annex-B), then calls
`pli, frame = jitter_buffer.add(packet)`, sends a PLI to `packet.ssrc` if asked, and puts
`(codec, frame)` on the decoder queue after overwriting `frame.timestamp` with its own
mapping. One call hands over at most one object, so FrameAssembler returns a FrameBatch
(every frame completed by that packet) and PassthroughQueue unwraps the frames' RTP
timestamps itself.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import queue
import socket
import struct
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RTP_HISTORY_SIZE,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)

from tiaojie.rtc.keyframes import is_keyframe
from tiaojie.rtc.ports import PortRange
from tiaojie.rtc.rewrite import abs_send_time, extension_block, extension_element, rtp_header

log = logging.getLogger(__name__)

#: The aiortc release this module was checked against (pyproject pins it).
AIORTC_VERSION = "1.16.0"

#: Video: at most this many sequence numbers between the oldest packet still wanted and the
#: newest one; beyond, the oldest gap is given up. A forward jump this large is a restart.
MAX_PENDING_PACKETS = 1024
#: A packet this far behind the newest is a restarted stream, not a late one.
MAX_MISORDER = 3000
#: Before anything was handed over, a packet at most this far before the first one seen
#: is taken as the real start of the first frame (the first packets came reordered).
MAX_START_REORDER = 64
#: Video: how long a missing packet may hold up the frames behind it (NACK -> RTX takes
#: about one round trip) before its frame is given up and a keyframe requested.
MAX_WAIT_S = 0.25


class InternalsChanged(RuntimeError):
    """aiortc no longer has the private attribute we rely on: re-check this module."""


_SOURCES: dict[tuple[Any, Any], str] = {}


def _source(obj: Any) -> str:
    """`inspect.getsource(obj)`, read once per process: the checks below run per receiver
    or per connection, and reading a source file took 1-11 ms each time (on a join's path)."""
    key = (obj, inspect.getsource)  # a test that replaces getsource gets its answer
    if key not in _SOURCES:
        _SOURCES[key] = inspect.getsource(obj)
    return _SOURCES[key]


def _require(obj: object, name: str) -> Any:
    if not hasattr(obj, name):
        raise InternalsChanged(f"{type(obj).__name__} has no {name}: aiortc changed")
    return getattr(obj, name)


def _seq_after(a: int, b: int) -> bool:
    """True if RTP sequence number a comes after b (mod 2^16)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def _seq_add(a: int, delta: int) -> int:
    return (a + delta) & 0xFFFF


def _seq_span(first: int, last: int) -> int:
    """How many sequence numbers from first to last, both included (0 if last < first)."""
    return 0 if _seq_after(first, last) else ((last - first) & 0xFFFF) + 1


class AssembledFrame(JitterFrame):
    """An encoded frame and its RTP timestamp."""


class FrameBatch(JitterFrame):
    """The frames one packet completed (a retransmission can complete several).

    aiortc overwrites the `timestamp` of what the jitter buffer returns, i.e. of the batch,
    not of the frames in it: PassthroughQueue reads theirs.
    """

    def __init__(self, frames: list[AssembledFrame]) -> None:
        super().__init__(data=frames[0].data, timestamp=frames[0].timestamp)
        self.frames = frames


class FrameAssembler:
    """Stands in for aiortc's JitterBuffer: `add(packet) -> (pli_needed, FrameBatch | None)`.

    `push(packet) -> (pli_needed, [frames])` is the same without aiortc's one-object limit.
    Frames come out in sequence-number order, each as soon as it is complete.

    Audio: every packet is a frame (Opus); packets older than the last one handed over
    (late or duplicate) are dropped.

    Video: a frame is the packets from a known frame start up to the one with the marker
    bit (or up to a change of RTP timestamp), with no sequence number missing. A known
    frame start is the packet after a handed-over frame, or a packet whose predecessor
    carries the marker bit or another timestamp. A missing packet holds up the frames
    behind it until it arrives (NACK -> RTX) or for `max_wait` seconds; then the frames it
    belongs to are given up, a PLI is requested, and the next complete frame with a known
    start goes out. The very first packet seen is assumed to start a frame (the sender's
    first frame is its keyframe) unless an earlier one arrives before anything goes out.
    """

    def __init__(
        self,
        kind: str,
        *,
        max_wait: float = MAX_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.max_wait = max_wait
        self.media_ssrc: int | None = None
        #: frames handed over, and losses given up on (each asked for a keyframe)
        self.frames_out = 0
        self.losses = 0
        self._clock = clock
        self._packets: dict[int, RtpPacket] = {}
        self._missing: dict[int, float] = {}  # sequence number -> when found missing
        self._floor: int | None = None  # nothing before it is wanted any more
        self._at_start = False  # _floor is the first packet of a frame
        self._assumed = False  # ... only assumed: the first packet of the stream
        self._highest: int | None = None
        self._scan: int | None = None  # [_floor, _scan) checked: one timestamp, no marker

    @property
    def capacity(self) -> int:  # JitterBuffer API
        return MAX_PENDING_PACKETS

    @property
    def pending(self) -> int:
        return len(self._packets)

    def add(self, packet: RtpPacket) -> tuple[bool, FrameBatch | None]:
        """aiortc's JitterBuffer API."""
        pli, frames = self.push(packet)
        return pli, FrameBatch(frames) if frames else None

    def remove(self, count: int) -> None:  # JitterBuffer API, unused by the receiver
        self._reset()

    def push(self, packet: RtpPacket) -> tuple[bool, list[AssembledFrame]]:
        pli = False
        if self.media_ssrc is not None and packet.ssrc != self.media_ssrc:
            self._reset()  # a new stream
        self.media_ssrc = packet.ssrc
        if self.kind == "audio":
            return False, self._push_audio(packet)
        seq = packet.sequence_number
        now = self._clock()
        if self._highest is None or self._floor is None:
            self._begin(seq, assumed=True)
        elif _seq_after(seq, self._highest):
            jump = (seq - self._highest) & 0xFFFF
            if jump >= MAX_PENDING_PACKETS:
                self._reset()  # a discontinuity: wait for a frame start we can prove
                self._begin(seq, assumed=False)
                pli = self._lost()
            else:
                for missing in range(1, jump):
                    self._missing[_seq_add(self._highest, missing)] = now
                self._highest = seq
        elif seq == self._floor or _seq_after(seq, self._floor):
            self._missing.pop(seq, None)  # a reordered or retransmitted packet
            if seq in self._packets:
                return False, []  # duplicate
        else:  # before the floor
            back = (self._floor - seq) & 0xFFFF
            if self._assumed and back <= MAX_START_REORDER:
                for missing in range(1, back):  # the first frame starts earlier
                    self._missing[_seq_add(seq, missing)] = now
                self._floor = seq
                self._scan = None
            elif ((self._highest - seq) & 0xFFFF) > MAX_MISORDER:
                self._reset()  # the sequence restarted
                self._begin(seq, assumed=True)
                pli = self._lost()
            else:
                return False, []  # late or duplicate: its frame is gone
        self._packets[seq] = packet
        more_pli, frames = self._drain(now)
        return pli or more_pli, frames

    def _lost(self) -> bool:
        self.losses += 1
        return True  # ask for a keyframe

    # -- audio ---------------------------------------------------------------------------

    def _push_audio(self, packet: RtpPacket) -> list[AssembledFrame]:
        seq = packet.sequence_number
        if (
            self._floor is not None
            and _seq_after(self._floor, seq)
            and ((self._floor - seq) & 0xFFFF) <= MAX_MISORDER
        ):
            return []  # late or duplicate (further back: the sequence restarted)
        self._floor = _seq_add(seq, 1)
        data: bytes = packet._data  # type: ignore[attr-defined]  # set by aiortc's depayloader
        if not data:
            return []
        self.frames_out += 1
        return [AssembledFrame(data=data, timestamp=packet.timestamp)]

    # -- video ---------------------------------------------------------------------------

    def _reset(self) -> None:
        self._packets.clear()
        self._missing.clear()
        self._floor = self._highest = self._scan = None
        self._at_start = self._assumed = False

    def _begin(self, seq: int, *, assumed: bool) -> None:
        self._floor = self._highest = seq
        self._at_start = self._assumed = assumed
        self._scan = None

    def _drain(self, now: float) -> tuple[bool, list[AssembledFrame]]:
        pli = False
        frames: list[AssembledFrame] = []
        while True:
            assert self._floor is not None and self._highest is not None
            if not self._at_start:
                start = self._find_start()
                if start is None:
                    self._trim()
                    break
                self._drop_before(start)
                self._at_start = True
            done, blocked = self._take_frame()
            if done is not None:
                if done.data:  # padding-only packets make empty "frames"
                    frames.append(done)
                    self.frames_out += 1
                continue
            if blocked is None:
                break  # the frame's later packets have not come yet
            waited = now - self._missing.get(blocked, now)
            if waited < self.max_wait and _seq_span(self._floor, self._highest) < (
                MAX_PENDING_PACKETS
            ):
                break  # wait for the retransmission
            # Give up: the frame(s) with the missing packet can never be handed over.
            pli = self._lost()
            self._drop_before(_seq_add(blocked, 1))
            self._at_start = False
        return pli, frames

    def _take_frame(self) -> tuple[AssembledFrame | None, int | None]:
        """The frame at the floor if complete, else (None, first missing seq or None)."""
        assert self._floor is not None and self._highest is not None
        first = self._packets.get(self._floor)
        if first is None:
            return None, self._blocked_at(self._floor)
        timestamp = first.timestamp
        seq = self._floor if self._scan is None else self._scan
        while True:
            packet = self._packets.get(seq)
            if packet is None:
                self._scan = seq
                return None, self._blocked_at(seq)
            if packet.timestamp != timestamp:
                return self._hand_over(_seq_add(seq, -1), timestamp), None
            if packet.marker:
                return self._hand_over(seq, timestamp), None
            seq = _seq_add(seq, 1)

    def _blocked_at(self, seq: int) -> int | None:
        """seq is not here: missing if a later packet came, else simply not sent yet."""
        assert self._highest is not None
        return seq if _seq_after(self._highest, seq) else None

    def _hand_over(self, end: int, timestamp: int) -> AssembledFrame:
        assert self._floor is not None
        parts = []
        seq = self._floor
        while True:
            parts.append(self._packets.pop(seq)._data)  # type: ignore[attr-defined]
            if seq == end:
                break
            seq = _seq_add(seq, 1)
        self._floor = _seq_add(end, 1)
        self._scan = None
        self._assumed = False
        for missing in [s for s in self._missing if not _seq_after(s, end)]:
            del self._missing[missing]
        return AssembledFrame(data=b"".join(parts), timestamp=timestamp)

    def _find_start(self) -> int | None:
        """The first pending packet provably starting a frame (after the floor)."""
        assert self._floor is not None and self._highest is not None
        seq = self._floor
        previous = self._packets.get(seq)
        for _ in range(_seq_span(self._floor, self._highest) - 1):
            seq = _seq_add(seq, 1)
            packet = self._packets.get(seq)
            if (
                packet is not None
                and previous is not None
                and (previous.marker or previous.timestamp != packet.timestamp)
            ):
                return seq
            previous = packet
        return None

    def _drop_before(self, seq: int) -> None:
        """Forget every packet before seq; seq becomes the floor."""
        assert self._floor is not None and self._highest is not None
        for old in [s for s in self._packets if _seq_after(seq, s)]:
            del self._packets[old]
        for old in [s for s in self._missing if _seq_after(seq, s)]:
            del self._missing[old]
        if _seq_after(seq, self._highest):
            self._highest = _seq_add(seq, -1)
        self._floor = seq
        self._scan = None
        self._assumed = False

    def _trim(self) -> None:
        """Without a frame start, keep at most MAX_PENDING_PACKETS sequence numbers."""
        assert self._floor is not None and self._highest is not None
        if _seq_span(self._floor, self._highest) > MAX_PENDING_PACKETS:
            self._drop_before(_seq_add(self._highest, 1 - MAX_PENDING_PACKETS))


class _Unwrapper:
    """RTP timestamps (32-bit, wrapping) to a count from the stream's first one."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._value = 0

    def __call__(self, timestamp: int) -> int:
        if self._last is not None:
            delta = (timestamp - self._last) & 0xFFFFFFFF
            self._value += delta - (1 << 32) if delta >= 1 << 31 else delta
        self._last = timestamp
        return self._value


@functools.cache
def _time_base(clock_rate: int) -> Fraction:
    return Fraction(1, clock_rate)


class PassthroughQueue:
    """Stands in for the receiver's decoder queue: encoded frame -> av.Packet on the track.

    aiortc's decoder thread still starts and blocks in `get()` until the receiver stops.
    `put` runs on the event loop (from the receiver's RTP handler).
    """

    def __init__(self, track_queue: Any, kind: str) -> None:
        self._track_queue = track_queue
        self._kind = kind
        self._stopped = threading.Event()
        self._unwrap = _Unwrapper()
        #: The RTP timestamp of the first frame handed over: packet pts count from it.
        self.first_timestamp: int | None = None
        #: When set, packets go straight to this callback instead of the track's queue (no
        #: task wake-up per frame); its exceptions are logged, never raised into aiortc.
        self.deliver: Callable[[av.Packet], None] | None = None

    def put(self, item: tuple[Any, JitterFrame] | None) -> None:
        if item is None:  # the receiver is stopping: let the decoder thread end
            self._stopped.set()
            return
        codec, batch = item
        frames = batch.frames if isinstance(batch, FrameBatch) else [batch]
        for frame in frames:
            if self.first_timestamp is None:
                self.first_timestamp = frame.timestamp
            packet = av.Packet(frame.data)
            packet.pts = packet.dts = self._unwrap(frame.timestamp)
            packet.time_base = _time_base(codec.clockRate)
            packet.is_keyframe = is_keyframe(codec.name, frame.data)
            if self.deliver is None:
                self._track_queue.put_nowait(packet)
                continue
            try:
                self.deliver(packet)
            except Exception:
                log.exception("a pass-through packet consumer failed")

    def get(self) -> None:
        self._stopped.wait()
        return None  # the decoder thread then ends the track


def make_passthrough(receiver: RTCRtpReceiver) -> FrameAssembler:
    """Make `receiver` hand over av.Packets instead of decoded frames.

    Call it from the peer connection's "track" event, synchronously (before any await):
    aiortc starts the receiver from a task scheduled after setRemoteDescription, and the
    decoder thread it starts then reads the queue installed here.
    """
    if _require(receiver, "_RTCRtpReceiver__started"):
        raise RuntimeError("the receiver already started: too late for pass-through")
    jitter_buffer = _require(receiver, "_RTCRtpReceiver__jitter_buffer")
    decoder_queue = _require(receiver, "_RTCRtpReceiver__decoder_queue")
    if not isinstance(jitter_buffer, JitterBuffer) or not isinstance(decoder_queue, queue.Queue):
        raise InternalsChanged(
            f"unexpected receiver internals {type(jitter_buffer).__name__}, "
            f"{type(decoder_queue).__name__}: aiortc changed (or make_passthrough ran twice)"
        )
    kind = _require(receiver, "_RTCRtpReceiver__kind")
    track = receiver.track
    if track is None:
        raise RuntimeError("the receiver has no track yet: call from the track event")
    track_queue = _require(track, "_queue")
    assembler = FrameAssembler(kind)
    receiver._RTCRtpReceiver__jitter_buffer = assembler  # type: ignore[attr-defined]
    receiver._RTCRtpReceiver__decoder_queue = PassthroughQueue(  # type: ignore[attr-defined]
        track_queue, kind
    )
    return assembler


NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


class SenderClock:
    """Maps a pass-through receiver's packet pts to the sender's wall clock.

    The remote sender's RTCP sender reports pair an RTP timestamp with its NTP time; with
    the first RTP timestamp the PassthroughQueue saw (where pts 0 is), any packet's pts
    becomes a Unix time on the sender's clock. All tracks one sender sends share that
    clock, which is what lines up audio with video.
    """

    def __init__(self, passthrough: PassthroughQueue, clock_rate: int) -> None:
        self._passthrough = passthrough
        self.clock_rate = clock_rate
        self.report: tuple[float, int] | None = None  # (unix time, rtp timestamp)

    def on_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        if ntp_timestamp == 0:
            # aiortc's RTCRtpSender reports NTP 0 / RTP 0 until it has sent its first
            # packet: no clock at all (taken as 1900, it put tracks ~4e9 s apart)
            return
        seconds = (ntp_timestamp >> 32) + (ntp_timestamp & 0xFFFFFFFF) / (1 << 32)
        self.report = (seconds - NTP_UNIX_OFFSET, rtp_timestamp)

    def wall_time(self, pts: int) -> float | None:
        """Unix time of a packet with this pts, or None before the first sender report."""
        first = self._passthrough.first_timestamp
        if self.report is None or first is None:
            return None
        report_time, report_rtp = self.report
        delta = ((first + pts) - report_rtp) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= 1 << 32
        return report_time + delta / self.clock_rate


def sender_clock(receiver: RTCRtpReceiver, clock_rate: int) -> SenderClock:
    """Follow the sender reports reaching a pass-through receiver (see SenderClock).

    aiortc's RTP router calls `receiver._handle_rtcp_packet(packet)` for each sender
    report on the receiver's SSRC; we wrap it on the instance.
    """
    passthrough = _require(receiver, "_RTCRtpReceiver__decoder_queue")
    if not isinstance(passthrough, PassthroughQueue):
        raise RuntimeError("make the receiver pass-through first")
    clock = SenderClock(passthrough, clock_rate)
    original = _require(receiver, "_handle_rtcp_packet")

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            clock.on_report(packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp)
        await original(packet)

    receiver._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
    return clock


def deliver_directly(receiver: RTCRtpReceiver, callback: Callable[[av.Packet], None]) -> None:
    """Hand a pass-through receiver's packets to `callback` as they are assembled.

    Skips the track's queue and the task reading it (one event-loop hop per frame); the
    track's recv() then never returns a packet.
    """
    passthrough = _require(receiver, "_RTCRtpReceiver__decoder_queue")
    if not isinstance(passthrough, PassthroughQueue):
        raise RuntimeError("make the receiver pass-through first")
    passthrough.deliver = callback


def disable_bandwidth_estimation(receiver: RTCRtpReceiver) -> None:
    """Stop a video receiver estimating bandwidth and sending REMB feedback.

    For the recorder: it sits next to the server and cannot ask anyone for less; the
    estimator was 8% of its CPU.
    """
    from aiortc.rate import RemoteBitrateEstimator

    estimator = _require(receiver, "_RTCRtpReceiver__remote_bitrate_estimator")
    native = FASTPATH.BitrateEstimator if FASTPATH is not None else RemoteBitrateEstimator
    if estimator is not None and not isinstance(estimator, (RemoteBitrateEstimator, native)):
        raise InternalsChanged(f"unexpected bandwidth estimator {type(estimator).__name__}")
    receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]


def estimate_natively(receiver: RTCRtpReceiver) -> None:
    """Give a video receiver rtc/_remb.c's BitrateEstimator (aiortc's RemoteBitrateEstimator
    step for step, in C: the same REMBs, tests/test_fastpath.py) in place of aiortc's.

    aiortc's was the largest Python item per received video packet on the packet plane.
    A receiver without an estimator (audio, or one disabled) keeps none; without the C
    extension aiortc's stays.
    """
    from aiortc.rate import RemoteBitrateEstimator

    estimator = _require(receiver, "_RTCRtpReceiver__remote_bitrate_estimator")
    if estimator is None or FASTPATH is None:
        return
    if not isinstance(estimator, RemoteBitrateEstimator):
        raise InternalsChanged(f"unexpected bandwidth estimator {type(estimator).__name__}")
    receiver._RTCRtpReceiver__remote_bitrate_estimator = FASTPATH.BitrateEstimator()  # type: ignore[attr-defined]


class PacketTap:
    """A publisher's receiver made to hand over its RTP packets, one by one (packet mode).

    `deliver(packet)` gets each media packet (RTX already unwrapped, padding removed)
    synchronously from aiortc's receive task; None drops them. `media_ssrc` is the SSRC
    the publisher sends on (where PLIs go)."""

    def __init__(self) -> None:
        self.deliver: Callable[[RtpPacket], None] | None = None
        self.media_ssrc: int | None = None
        self.packets = 0
        #: rtc/_ingress.c: where the receive step forwards this receiver's packets without
        #: Python while its consumer keeps it armed (None without rtc/_fastpath.c)
        self.sink: Any = None

    def drain(self) -> tuple[int, int, int, int]:
        """What the Sink handled since the last call: (frames received, video bytes
        received, frames forwarded, bytes forwarded), for its consumer's counters; the
        packets are added to `packets` here."""
        if self.sink is None:
            return 0, 0, 0, 0
        packets, frames_in, video_bytes, frames_out, bytes_out = self.sink.take()
        self.packets += packets
        return frames_in, video_bytes, frames_out, bytes_out

    def arm(
        self, routes: list[Any], until: float, recheck: Callable[[float], float | None]
    ) -> None:
        """Forward this receiver's packets through `routes` (rtc/_fastpath.c Route) in C
        until `disarm`; at the monotonic time `until`, and at each deadline it returns
        after, `recheck(now)` says until when (None: Python's path takes over). Never
        raises into C: an exception in `recheck` disarms."""
        if self.sink is not None and self.sink.bound:

            def checked(now: float) -> float | None:
                try:
                    return recheck(now)
                except Exception:
                    log.exception("a forwarding check failed")
                    return None

            self.sink.arm(routes, until, checked)

    def disarm(self) -> None:
        """Every packet takes Python's path again (until the consumer arms it)."""
        if self.sink is not None:
            self.sink.disarm()


#: What `tap_packets` replaces: aiortc 1.16.0's per-packet receive steps, in this order.
_RECEIVE_STEPS = (
    "__remote_bitrate_estimator.add(",
    "__remote_streams[packet.ssrc].add(packet)",
    "unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)",
    "__nack_generator.add(packet)",
    "depayload(codec, packet.payload)",
    "__jitter_buffer.add(packet)",
)


def _bound_nacks(generator: Any, packet: RtpPacket, media_ssrc: int | None) -> None:
    """Keep aiortc's NackGenerator from walking a huge gap packet by packet.

    It marks every sequence number between its highest and a packet's as missing, one by
    one, and scans them all on every packet; it has one sequence space for all SSRCs. A
    packet of another SSRC (a new stream, or an authenticated publisher's garbage) or a
    jump of up to 32767 made one packet cost milliseconds, and a few thousand such froze
    the event loop (found by the fuzz test). A new SSRC starts afresh; a jump further than
    the sender's history (RTP_HISTORY_SIZE, all a NACK can recover) starts just inside it.
    """
    high = generator.max_seq
    if high is None:
        return
    if media_ssrc is not None and packet.ssrc != media_ssrc:
        generator.max_seq = None
        generator.missing.clear()
    elif RTP_HISTORY_SIZE < ((packet.sequence_number - high) & 0xFFFF) < 0x8000:
        generator.missing.clear()
        generator.max_seq = (packet.sequence_number - RTP_HISTORY_SIZE - 1) & 0xFFFF


def tap_packets(receiver: RTCRtpReceiver, *, estimate_bandwidth: bool = True) -> PacketTap:
    """Make `receiver` hand its RTP packets to a PacketTap instead of assembling and
    decoding frames.

    Replaces aiortc's `_handle_rtp_packet` on this instance with its first steps only:
    the bitrate estimate the publisher gets as REMB (unless `estimate_bandwidth` is
    False), the reception statistics its receiver reports are made of, RTX unwrapping and
    NACKs for gaps. With rtc/_fastpath.c, the estimate, the statistics and the NACK
    generator are its C ports (`estimate_natively`, Reception, Nacks), which aiortc's
    receiver reports and getStats read as they read its own. Depayloading, the jitter
    buffer and the decoder (and the per-packet "active SSRC" timestamp aiortc keeps for
    getSynchronizationSources, which nobody reads here) are skipped: packets go out as
    they came in.
    """
    from aiortc.codecs import is_rtx
    from aiortc.rtcrtpreceiver import StreamStatistics
    from aiortc.rtp import pack_remb_fci, unwrap_rtx

    source = _source(RTCRtpReceiver._handle_rtp_packet)
    missing = [step for step in _RECEIVE_STEPS if step not in source]
    if missing:
        raise InternalsChanged(f"RTCRtpReceiver._handle_rtp_packet changed: {missing}")
    codecs: dict[int, Any] = _require(receiver, "_RTCRtpReceiver__codecs")
    rtx_ssrc: dict[int, int] = _require(receiver, "_RTCRtpReceiver__rtx_ssrc")
    streams: dict[int, Any] = _require(receiver, "_RTCRtpReceiver__remote_streams")
    nack_generator = _require(receiver, "_RTCRtpReceiver__nack_generator")
    _require(receiver, "_RTCRtpReceiver__remote_bitrate_estimator")
    _require(receiver, "_RTCRtpReceiver__rtcp_ssrc")
    send_rtcp = _require(receiver, "_send_rtcp")
    send_nack = _require(receiver, "_send_rtcp_nack")
    if not estimate_bandwidth:
        disable_bandwidth_estimation(receiver)
    else:
        estimate_natively(receiver)
    tap = PacketTap()
    # rtc/_reception.c: the same statistics and NACKs, without Python per packet
    native = FASTPATH
    nacks = native.Nacks() if native is not None and nack_generator is not None else None

    def send_remb(remb: tuple[int, list[int]]) -> None:
        rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
        if rtcp_ssrc is not None:
            _spawn(
                send_rtcp(
                    RtcpPsfbPacket(
                        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
                    )
                )
            )

    def events(kind: str, value: Any) -> None:  # from rtc/_ingress.c: never raises
        try:
            if kind == "remb":
                send_remb(value)
            elif kind == "nack" and nacks is not None:
                _spawn(send_nack(value, nacks.missing()))
        except Exception:
            log.exception("an RTCP answer to a received packet failed")

    if native is not None:
        tap.sink = native.Sink(receiver.track.kind == "video", events)

    def on_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
        if not receiver._enabled:
            return
        estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator  # type: ignore[attr-defined]
        if estimator is not None and packet.extensions.abs_send_time is not None:
            remb = estimator.add(  # positional: aiortc's and rtc/_remb.c's take these
                arrival_time_ms,
                packet.extensions.abs_send_time,
                len(packet.payload) + packet.padding_size,
                packet.ssrc,
            )
            if remb is not None:
                send_remb(remb)
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        stats = streams.get(packet.ssrc)
        if native is not None:
            if stats is None:
                stats = streams[packet.ssrc] = native.Reception(codec.clockRate)
            stats.add(packet.sequence_number, packet.timestamp)
        else:
            if stats is None:
                stats = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
            stats.add(packet)
        rtx = is_rtx(codec)
        if rtx:
            original_ssrc = rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None or len(packet.payload) < 2 or apt not in codecs:
                return  # unknown, or padding only (bandwidth probing)
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
        if nacks is not None:
            if nacks.add(packet.sequence_number, packet.ssrc):
                _spawn(send_nack(packet.ssrc, nacks.missing()))
        elif nack_generator is not None:
            _bound_nacks(nack_generator, packet, tap.media_ssrc)
            if nack_generator.add(packet):
                _spawn(send_nack(packet.ssrc, sorted(nack_generator.missing)))
        tap.media_ssrc = packet.ssrc
        tap.packets += 1
        sink = tap.sink
        if (
            sink is not None
            and not rtx
            and (
                sink.ssrc != packet.ssrc
                or sink.payload_type != packet.payload_type
                or not sink.bound
            )
        ):
            _bind(sink, packet, stats, nacks, estimator, ingress)
        deliver = tap.deliver
        if deliver is not None:
            OUTBOX.dispatching = True
            try:
                deliver(packet)
            except Exception:
                log.exception("a forwarded packet's consumer failed")
            finally:
                OUTBOX.dispatching = False
                OUTBOX.flush()

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        on_rtp(packet, arrival_time_ms)

    _DIRECT_HANDLERS[receiver] = on_rtp
    ingress = receive_directly(_require(receiver, "transport"))
    if ingress is None:
        tap.sink = None
    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    return tap


def _bind(
    sink: Any, packet: RtpPacket, stats: Any, nacks: Any, estimator: Any, ingress: Any
) -> None:
    """Point `sink` at the stream `packet` belongs to (its media SSRC and payload type,
    not RTX) when the C receive step can do what `tap_packets`' on_rtp does for it: the
    statistics and NACKs are rtc/_reception.c's and the estimate is rtc/_remb.c's (or
    none). A packet the sink does not match takes Python's path."""
    native = FASTPATH
    if (
        ingress is None
        or not isinstance(stats, native.Reception)
        or not (nacks is None or isinstance(nacks, native.Nacks))
        or not (estimator is None or isinstance(estimator, native.BitrateEstimator))
    ):
        return
    sink.bind(packet.ssrc, packet.payload_type, stats, nacks, estimator)
    ingress.attach(sink)


_background: set[asyncio.Future[Any]] = set()


def _spawn(work: Any) -> None:
    """Run an RTCP send in the background (the receive path never awaits), keeping a
    reference until it is done."""
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


#: A tapped receiver's synchronous RTP handler (what `tap_packets` installs), by receiver.
_DIRECT_HANDLERS: weakref.WeakKeyDictionary[Any, Callable[[RtpPacket, int], None]] = (
    weakref.WeakKeyDictionary()
)


def _srtp_pointer(session: Any) -> int:
    """The libsrtp `srtp_t` of a pylibsrtp Session, as an integer (for _fastpath)."""
    from pylibsrtp._binding import ffi  # type: ignore[import-not-found]

    return int(ffi.cast("uintptr_t", _require(session, "_srtp")[0]))


def _load_fastpath() -> Any:
    """The C extension with libsrtp's functions handed over, or None (not built)."""
    try:
        from tiaojie.rtc import _fastpath  # type: ignore[attr-defined]
    except ImportError:
        log.warning("rtc/_fastpath.c is not built: the packet plane runs in pure Python")
        return None
    from pylibsrtp._binding import ffi, lib

    _fastpath.set_srtp(
        int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect"))),
        int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_unprotect"))),
        int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_unprotect_rtcp"))),
    )
    return _fastpath


#: rtc/_fastpath.c, or None where it was not built (the same steps then run in Python).
FASTPATH = _load_fastpath()


def _drop_malformed_stun() -> None:
    """aioice's STUN parse is guarded for ValueError only: an attribute shorter than its
    type (a 3-byte PRIORITY) raises struct.error out of `datagram_received`, a traceback
    in the log per datagram anyone can send to an ICE port (server, recorder or client).
    Such a datagram is dropped, like any other unreadable one. Process-wide, at import."""
    import aioice.ice

    protocol: Any = aioice.ice.StunProtocol
    if getattr(protocol, "_tiaojie_stun_guarded", False):
        return
    original = _require(protocol, "datagram_received")
    if "stun.parse_message(data)" not in inspect.getsource(original):
        raise InternalsChanged("aioice's StunProtocol.datagram_received changed")

    def datagram_received(self: Any, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            original(self, data, addr)
        except struct.error:
            log.debug("a malformed STUN message dropped")

    protocol.datagram_received = datagram_received
    protocol._tiaojie_stun_guarded = True
    protocol._tiaojie_aioice_datagram_received = original


_drop_malformed_stun()


def _skip_stun_parse_for_media() -> None:
    """Make aioice hand RTP/RTCP datagrams (first byte 128-191, RFC 7983) to its
    connection without first trying to parse them as STUN (a raised ValueError per
    packet); a STUN message never starts so. And read its sockets in batches
    (`_read_in_batches`). Process-wide, for the sockets made from then on."""
    import aioice.ice

    protocol: Any = aioice.ice.StunProtocol
    if getattr(protocol, "_tiaojie_media_first", False):
        return
    original = _require(protocol, "datagram_received")
    source = inspect.getsource(getattr(protocol, "_tiaojie_aioice_datagram_received", original))
    if "self.receiver.data_received(data, self.local_candidate.component)" not in source:
        raise InternalsChanged("aioice's StunProtocol.datagram_received changed")

    def datagram_received(self: Any, data: bytes, addr: tuple[Any, ...]) -> None:
        if data and 127 < data[0] < 192:
            self.receiver.data_received(data, self.local_candidate.component)
            if FASTPATH is not None:
                _learn_sender(self, addr)
            return
        original(self, data, addr)

    made = _require(protocol, "connection_made")
    lost = _require(protocol, "connection_lost")

    def connection_lost(self: Any, exc: Exception | None) -> None:
        _forget_senders(self)
        lost(self, exc)

    def connection_made(self: Any, transport: Any) -> None:
        made(self, transport)
        if FASTPATH is not None and hasattr(transport, "_read_ready"):  # its own socket
            asyncio.get_running_loop().call_soon(
                _read_in_batches, transport, self.datagram_received
            )

    protocol.datagram_received = datagram_received
    protocol.connection_made = connection_made
    protocol.connection_lost = connection_lost
    protocol._tiaojie_media_first = True


def _parse(fastpath: Any, data: bytes, extensions: Any) -> RtpPacket | None:
    """`RtpPacket.parse` with rtc/_fastpath.c's header parse and only the header
    extensions the packet plane reads (MID, abs-send-time, audio level); None where
    aiortc's would raise. One-byte extension elements are read here, others by aiortc."""
    fields = fastpath.parse(data)
    if fields is None:
        return None
    marker, payload_type, seq, ts, ssrc, start, end, x_start, x_end = fields
    packet = RtpPacket(payload_type, marker, seq, ts, ssrc, data[start:end])
    if end != len(data):
        packet.padding_size = len(data) - end
    if x_end == x_start:
        return packet
    profile = (data[x_start - 4] << 8) | data[x_start - 3]
    if profile != 0xBEDE:
        try:
            packet.extensions = extensions.get(profile, data[x_start:x_end])
        except (ValueError, struct.error):
            return None
        return packet
    ids = extensions._HeaderExtensionsMap__ids
    found = packet.extensions
    i = x_start
    while i < x_end:
        byte = data[i]
        if byte == 0:  # padding
            i += 1
            continue
        ext_id, value, i = byte >> 4, i + 1, i + 2 + (byte & 0x0F)
        if i > x_end:
            return None  # truncated (aiortc: ValueError)
        if ext_id == ids.abs_send_time:
            if i - value != 3:
                return None
            found.abs_send_time = (data[value] << 16) | (data[value + 1] << 8) | data[value + 2]
        elif ext_id == ids.audio_level:
            if i - value != 1:
                return None
            found.audio_level = (data[value] & 0x80 == 0x80, data[value] & 0x7F)
        elif ext_id == ids.mid:
            found.mid = data[value:i].decode("utf8", "replace")
    return packet


class _Rest:
    """What is left of a coroutine that suspended while `run_now` drove it: awaiting
    this resumes it where it stopped (the future it yielded first), as `await` would."""

    def __init__(self, coroutine: Any, first: Any) -> None:
        self.coroutine = coroutine
        self.first = first

    def __await__(self) -> Any:
        step = self.first
        while True:
            try:
                value = yield step
            except BaseException as error:  # thrown in by the task (cancelled)
                try:
                    step = self.coroutine.throw(error)
                except StopIteration as done:
                    return done.value
                continue
            try:
                step = self.coroutine.send(value)
            except StopIteration as done:
                return done.value


async def _finish(rest: _Rest) -> None:
    await rest


def run_now(coroutine: Any) -> None:
    """Run `coroutine` to its end now, in the caller's frame, without a task: aiortc's
    RTCP handlers are coroutines that (almost) never wait, and a task per packet was a
    loop iteration and two wake-ups each. Should it wait after all, a task finishes it
    from where it stopped. Its errors are logged, as a task's would be."""
    try:
        step = coroutine.send(None)
    except StopIteration:
        return
    except Exception:
        log.exception("an RTCP handler failed")
        return
    _spawn(_finish(_Rest(coroutine, step)))


#: The pump's table (rtc/_ingress.c): (socket, sender) keys to the Ingress of the DTLS
#: transport whose packets come from there. Filled as packets arrive (`_learn_sender`),
#: emptied as connections close.
_INGRESS_TABLE: dict[bytes, Any] = {}


def receive_directly(dtls: Any) -> Any:
    """Handle the SRTP and SRTCP packets of `dtls` in the socket's datagram callback; its
    Ingress (rtc/_ingress.c), or None without rtc/_fastpath.c.

    aioice puts every datagram on a queue that aiortc's DTLS task awaits: one task
    wake-up per packet, then unprotect, parse, route and the receiver's handler. Here an
    SRTP packet that arrives once DTLS is connected is unprotected, parsed, routed and
    handed to its tapped receiver's synchronous handler at once; an SRTCP packet is
    unprotected and aiortc's RTCP handling (parse, route, every recipient's handler) run
    at once (`run_now`). Everything else (STUN answers, DTLS), and any packet while that
    queue is not empty (the first media arrives before aiortc's task has seen DTLS
    finish), still takes aioice's queue, so packets keep their order. Once per DTLS
    transport.

    With rtc/_fastpath.c the transport also gets an Ingress, armed here whenever this
    path runs with the queue empty and disarmed whenever a datagram takes the queue or
    DTLS leaves "connected": the socket's pump (`_read_in_batches`) then unprotects and
    parses its RTP packets in C and forwards those of an armed Sink (`tap_packets`)
    without Python; the others come back to `plain` below.
    """
    from aiortc.rtcdtlstransport import State
    from aiortc.rtp import is_rtcp

    connection = _require(_require(dtls, "transport"), "_connection")
    if getattr(connection, "_tiaojie_direct", False):
        return getattr(connection, "_tiaojie_ingress", None)
    _skip_stun_parse_for_media()
    queue_it = _require(connection, "data_received")
    router = _require(dtls, "_rtp_router")
    extensions = _require(dtls, "_rtp_header_extensions_map")
    ids = _require(extensions, "_HeaderExtensionsMap__ids")
    _require(dtls, "_rx_srtp")
    _require(dtls, "_RTCDtlsTransport__rx_bytes")
    connected = State.CONNECTED
    fastpath = FASTPATH
    current: list[Any] = [None, 0]  # the rx session, its srtp_t
    waiting = _require(connection, "_queue")
    handle_rtcp = _require(dtls, "_handle_rtcp_data")

    def handle_plain(plain: bytes, arrival_ms: int) -> None:
        """An RTP packet, unprotected: parsed, routed and handed to its receiver."""
        if fastpath is not None:
            packet = _parse(fastpath, plain, extensions)
            if packet is None:
                return
        else:
            try:
                packet = RtpPacket.parse(plain, extensions)
            except (ValueError, struct.error):
                return
        receiver = router.route_rtp(packet)
        if receiver is None:
            return
        handler = _DIRECT_HANDLERS.get(receiver)
        if handler is not None:
            handler(packet, arrival_ms)
        else:
            _spawn(receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_ms))

    def plain(data: bytes, arrival_ms: int) -> None:  # from rtc/_ingress.c: never raises
        try:
            handle_plain(data, arrival_ms)
        except Exception:
            log.exception("a received packet's handler failed")

    ingress = fastpath.Ingress(plain) if fastpath is not None else None

    def data_received(data: bytes, component: int) -> None:
        session = dtls._rx_srtp
        if (
            session is None
            or dtls._state is not connected
            or not 127 < data[0] < 192
            or not waiting.empty()  # never overtake what aiortc's task has yet to read
        ):
            if ingress is not None:
                ingress.disarm()  # until this path runs again with the queue empty
            queue_it(data, component)
            return
        dtls._RTCDtlsTransport__rx_bytes += len(data)
        dtls._RTCDtlsTransport__rx_packets += 1
        if fastpath is not None:
            if current[0] is not session:
                current[0], current[1] = session, _srtp_pointer(session)
            if ingress is not None:
                received_bytes, received_packets = ingress.take()
                dtls._RTCDtlsTransport__rx_bytes += received_bytes
                dtls._RTCDtlsTransport__rx_packets += received_packets
                if not ingress.armed:
                    ingress.arm(session, current[1], ids.abs_send_time or 0, ids.audio_level or 0)
        if is_rtcp(data):
            if fastpath is not None:
                plain = fastpath.unprotect_rtcp(current[1], data)
                if plain is None:
                    return
            else:
                try:
                    plain = session.unprotect_rtcp(data)
                except Exception:  # pylibsrtp.Error
                    return
            run_now(handle_rtcp(plain))
            return
        arrival_ms = int((time.time() + NTP_UNIX_OFFSET) * 1000)  # aiortc's clock.current_ms
        if fastpath is not None:
            plain = fastpath.unprotect(current[1], data)
            if plain is None:
                return
        else:
            try:
                plain = session.unprotect(data)
            except Exception:  # pylibsrtp.Error
                return
        handle_plain(plain, arrival_ms)

    def state_changed() -> None:
        if ingress is not None and dtls._state is not connected:
            ingress.disarm()

    if ingress is not None:
        dtls.on("statechange", state_changed)
    connection.data_received = data_received
    connection._tiaojie_direct = True
    connection._tiaojie_ingress = ingress
    return ingress


def _learn_sender(protocol: Any, addr: tuple[Any, ...]) -> None:
    """After an aioice StunProtocol handled a media datagram from `addr` in Python: if its
    connection's Ingress is armed, the pump takes that sender's next packets itself."""
    ingress = getattr(protocol.receiver, "_tiaojie_ingress", None)
    if ingress is None or not ingress.armed:
        return
    keys: set[bytes] | None = getattr(protocol, "_tiaojie_keys", None)
    if keys is None:
        keys = protocol._tiaojie_keys = set()
    fd = _fd_of(protocol)
    if fd is None:
        return
    try:
        key = FASTPATH.key(fd, addr[0], addr[1])
    except ValueError:  # not a plain IPv4/IPv6 address: Python's path keeps it
        return
    if _INGRESS_TABLE.get(key) is not ingress:
        _INGRESS_TABLE[key] = ingress
        keys.add(key)


def _forget_senders(protocol: Any) -> None:
    for key in getattr(protocol, "_tiaojie_keys", ()):
        _INGRESS_TABLE.pop(key, None)
    protocol._tiaojie_keys = set()


def _fd_of(protocol: Any) -> int | None:
    """The file descriptor of the socket `protocol`'s datagrams are read from."""
    transport = protocol.transport
    if isinstance(transport, _SharedTransport):
        transport = transport.shared_transport()
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock.fileno() if sock is not None else None


class Outbox:
    """The copies of one received packet, sent together once it has been fanned out.

    `PacketSender.send` adds a copy (header and payload, the subscriber's socket, SRTP
    session and address); `flush` SRTP-protects them all and sends them with one
    sendmmsg per socket (rtc/_fastpath.c), or one by one without the extension. The tap
    flushes after each packet it delivers; a copy added outside a delivery (a test
    calling `send`) is flushed on the next turn of the event loop."""

    def __init__(self) -> None:
        self.items: list[tuple[int, int, bytes, bytes, bytes]] = []
        self.fallback: list[tuple[Any, Any, bytes]] = []  # (dtls, ICE pair, RTP packet)
        self.dispatching = False
        self.sent = 0
        self._scheduled = False

    def add(self, item: tuple[int, int, bytes, bytes, bytes]) -> None:
        self.items.append(item)
        self._later()

    def add_fallback(self, dtls: Any, pair: Any, data: bytes) -> None:
        self.fallback.append((dtls, pair, data))
        self._later()

    def _later(self) -> None:
        if not self.dispatching and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self.items:
            items, self.items = self.items, []
            self.sent += FASTPATH.send(items)
        if self.fallback:
            fallback, self.fallback = self.fallback, []
            for dtls, pair, data in fallback:
                try:
                    protected = dtls._tx_srtp.protect(data)
                except Exception:  # pylibsrtp.Error: nothing to send
                    continue
                pair.protocol.transport.sendto(protected, pair.remote_addr)
                dtls._RTCDtlsTransport__tx_bytes += len(protected)
                self.sent += 1


#: The one outbox of this process (the event loop's thread sends all media).
OUTBOX = Outbox()


def _sockaddr(address: tuple[Any, ...]) -> bytes:
    """A packed sockaddr_in / sockaddr_in6 for (host, port) (what sendmmsg takes)."""
    host, port = address[0], address[1]
    if ":" in host:
        return (
            struct.pack("=H", socket.AF_INET6)
            + struct.pack("!HL", port, 0)
            + socket.inet_pton(socket.AF_INET6, host.split("%")[0])
            + struct.pack("=L", 0)
        )
    return (
        struct.pack("=H", socket.AF_INET)
        + struct.pack("!H", port)
        + socket.inet_aton(host)
        + bytes(8)
    )


def _socket_of(transport: Any) -> Any:
    """The socket object behind an ICE pair's datagram transport (None if closed)."""
    if isinstance(transport, _SharedTransport):
        mux = transport._mux.transport
        return None if transport._closing or mux is None else mux.get_extra_info("socket")
    if transport.is_closing():
        return None
    return transport.get_extra_info("socket")


class SentPacket(RtpPacket):
    """A forwarded packet as kept in an RTCRtpSender's history: aiortc's `_retransmit`
    serializes it again (the bytes sent, as they were) or wraps it as RTX (from its
    fields). Lighter than RtpPacket: no per-packet header extensions object."""

    def __init__(
        self,
        header: bytes,
        payload_type: int,
        marker: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        payload: bytes,
        extensions: Any,
    ) -> None:
        self.version = 2
        self.header = header
        self.payload_type = payload_type
        self.marker = marker
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload
        self.extensions = extensions
        self.csrc = []
        self.padding_size = 0

    def serialize(self, extensions_map: Any = None) -> bytes:
        return self.header + self.payload


class _RouteHistory(dict[int, RtpPacket]):
    """An RTCRtpSender's RTP history (aiortc's `_retransmit` looks a NACKed packet up
    with `.get(seq % RTP_HISTORY_SIZE)`) read from its Route's NACK cache, which both
    the Python and the C path fill."""

    def __init__(self, route: Any, ssrc: int, extensions: Any) -> None:
        super().__init__()
        self._route = route
        self._ssrc = ssrc
        self._extensions = extensions

    def get(self, index: int, default: Any = None) -> Any:
        found = self._route.entry(index)
        if found is None:
            return default
        header, payload = found
        seq, ts = struct.unpack_from("!HL", header, 2)
        return SentPacket(
            header, header[1] & 0x7F, header[1] >> 7, seq, ts, self._ssrc, payload, self._extensions
        )


def _route_counter(name: str) -> property:
    return property(lambda self: getattr(self._tiaojie_route, name), lambda self, value: None)


class _RoutedSender(RTCRtpSender):
    """An RTCRtpSender whose sender-report and getStats counters (packets, octets, the
    newest packet's NTP and RTP time) are its Route's: the class of a forwarded
    subscription's sender (PacketSender sets it). Data descriptors win over the
    instance's own attributes, so aiortc's `_run_rtcp` reads these."""

    _RTCRtpSender__packet_count = _route_counter("packets")
    _RTCRtpSender__octet_count = _route_counter("octets")
    _RTCRtpSender__ntp_timestamp = _route_counter("ntp")
    _RTCRtpSender__rtp_timestamp = _route_counter("rtp")


def forward_routes(
    routes: list[Any], packet: RtpPacket, ntp: int, now: float, counts_frame: bool
) -> int:
    """Send `packet` through every active Route of `routes` (rtc/_fastpath.c); the
    number of copies mapped (sent or dropped by the kernel), as `PacketSender.send`
    counts them."""
    level = packet.extensions.audio_level
    mapped, _ = FASTPATH.forward(
        routes,
        packet.payload,
        packet.sequence_number,
        packet.timestamp,
        packet.marker,
        -1 if level is None else (0x80 if level[0] else 0) | level[1],
        ntp,
        now,
        counts_frame,
    )
    return int(mapped)


#: A packet is retransmitted at most once in this long, however often it is NACKed.
RETRANSMIT_GAP_S = 0.1


class PacketSender:
    """Drives a subscriber's RTCRtpSender in packet mode: `send` puts one rewritten RTP
    packet on its transport, SRTP-protected, synchronously.

    The sender's own encoder loop keeps waiting on its track (a ForwardTrack that yields
    nothing in packet mode). What aiortc needs to act as the stream's sender is kept up
    to date: its RTP history (so its own NACK handling retransmits, over RTX when
    negotiated) and its counters and last RTP/NTP time (so its own RTCP sender reports
    carry the right packet and octet counts and NTP/RTP mapping).
    """

    def __init__(self, sender: RTCRtpSender) -> None:
        from aiortc.rtcdtlstransport import State
        from aiortc.rtp import HeaderExtensions

        self.sender = sender
        self.ssrc: int = sender._ssrc
        #: the negotiated payload type and mid; None until aiortc starts the sender
        self.payload_type: int | None = None
        self.mid: str | None = None
        self._connected = State.CONNECTED
        self._history: dict[int, RtpPacket] = _require(sender, "_RTCRtpSender__rtp_history")
        for name in ("packet_count", "octet_count", "ntp_timestamp", "rtp_timestamp"):
            _require(sender, f"_RTCRtpSender__{name}")
        self._mid_element = b""
        self._abs_id = 0
        self._audio_level_id = 0
        self._extensions = HeaderExtensions()
        self._target: tuple[Any, Any, int, int, bytes] | None = None
        self._sent = 0
        #: rtc/_fastpath.c's Route for this subscription: its NACK cache and sender-report
        #: counters whichever path sends (see _RoutedSender); None without the extension
        self.route: Any = None
        if FASTPATH is not None:
            self.route = FASTPATH.Route(self.ssrc)
            self._history = _RouteHistory(self.route, self.ssrc, self._extensions)
            sender._RTCRtpSender__rtp_history = self._history  # type: ignore[attr-defined]
            sender._tiaojie_route = self.route  # type: ignore[attr-defined]
            sender.__class__ = _RoutedSender
        #: sequence number -> when last retransmitted (NACKs repeat what is in flight)
        self._retransmitted: dict[int, float] = {}
        self.retransmissions = 0
        # the subscriber's RTCP (receiver reports, NACKs, REMB, PLI) in the socket callback,
        # as a publisher's RTP: not through aioice's queue and aiortc's DTLS task
        receive_directly(sender.transport)
        self.nacks_ignored = 0
        original_send = sender.send
        original_rtcp = _require(sender, "_handle_rtcp_packet")

        async def handle_rtcp_packet(packet: Any) -> None:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                packet.lost = self._worth_retransmitting(packet.lost)
                if not packet.lost:
                    return
            await original_rtcp(packet)

        sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]

        async def send(parameters: Any) -> None:
            await original_send(parameters)
            self._configure(parameters)

        sender.send = send  # type: ignore[method-assign]

    def _worth_retransmitting(self, lost: list[int]) -> list[int]:
        """The NACKed sequence numbers not retransmitted in the last RETRANSMIT_GAP_S.

        A receiver (aiortc's, at least) NACKs every packet still missing whenever a new
        one goes missing, so a retransmission still on its way is asked for again; on a
        congested link answering each time multiplies the load that caused the loss
        (Janus skips a packet it retransmitted recently, too)."""
        now = time.monotonic()
        recent = self._retransmitted
        if len(recent) > 4 * RTP_HISTORY_SIZE:
            for seq in [s for s, at in recent.items() if now - at > RETRANSMIT_GAP_S]:
                del recent[seq]
        wanted = []
        for seq in lost:
            at = recent.get(seq)
            if at is not None and now - at < RETRANSMIT_GAP_S:
                self.nacks_ignored += 1
                continue
            recent[seq] = now
            wanted.append(seq)
        self.retransmissions += len(wanted)
        return wanted

    def _configure(self, parameters: Any) -> None:
        if self.payload_type is not None or not parameters.codecs:
            return
        ids: dict[str, int] = {ext.uri: ext.id for ext in parameters.headerExtensions}
        self.mid = parameters.muxId
        mid_id = ids.get("urn:ietf:params:rtp-hdrext:sdes:mid", 0)
        if self.mid and mid_id:
            self._mid_element = extension_element(mid_id, self.mid.encode())
            self._extensions.mid = self.mid
        self._abs_id = ids.get("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", 0)
        self._audio_level_id = ids.get("urn:ietf:params:rtp-hdrext:ssrc-audio-level", 0)
        self.payload_type = parameters.codecs[0].payloadType
        if self.route is not None:
            if all(0 <= i <= 14 for i in (self._abs_id, self._audio_level_id)):
                self.route.configure(
                    self.payload_type, self._mid_element, self._abs_id, self._audio_level_id
                )
            else:  # extension ids a one-byte header cannot carry: Python sends everything
                self.route = None

    @property
    def sent(self) -> int:
        """Packets sent for this subscription, by Python and by its Route."""
        return self._sent + (self.route.forwarded if self.route is not None else 0)

    def aimed(self) -> bool:
        """Whether the Route may send now: connected, to the nominated pair, with the
        session and socket it was aimed with (else Python takes the stream back)."""
        target = self._target
        dtls = self.sender.transport
        if target is None or target[2] < 0 or dtls._state is not self._connected:
            return False
        pair = dtls.transport._connection._nominated.get(1)
        return (
            pair is target[0]
            and dtls._tx_srtp is target[1]
            and not pair.protocol.transport.is_closing()
        )

    def aim_route(self) -> bool:
        """Point the Route where this sender's last packet went; False if it cannot send
        (no extension, the Python fallback path, or not connected)."""
        if self.route is None or not self.aimed():
            return False
        assert self._target is not None
        _, _, fd, srtp, address = self._target
        self.route.aim(fd, srtp, address)
        return True

    def ready(self) -> bool:
        """Whether a packet sent now would go out (negotiated, connected)."""
        if self.payload_type is None:
            return False
        dtls = self.sender.transport
        return dtls._state is self._connected and 1 in dtls.transport._connection._nominated

    def send(
        self,
        marker: int,
        seq: int,
        ts: int,
        payload: bytes,
        ntp: int,
        audio_level: tuple[bool, int] | None = None,
        newest: bool = True,
    ) -> bool:
        """Send one packet (`ntp`: now, as a 64-bit NTP time); False if it could not go
        out (not negotiated or not connected yet, or closed). `newest`: no packet after
        it was sent yet; only such a packet's timestamp goes into the sender reports'
        NTP/RTP mapping (a late or repaired one would skew it)."""
        payload_type = self.payload_type
        if payload_type is None:
            return False
        dtls = self.sender.transport
        if dtls._state is not self._connected:
            return False
        elements = self._mid_element
        if self._abs_id:
            elements += bytes(((self._abs_id << 4) | 2,)) + abs_send_time(ntp)
        if audio_level is not None and self._audio_level_id:
            voice, level = audio_level
            elements += bytes(((self._audio_level_id << 4), (0x80 if voice else 0) | level))
        header = rtp_header(marker, payload_type, seq, ts, self.ssrc, extension_block(elements))
        route = self.route
        if route is not None:  # its NACK cache and counters (see _RoutedSender)
            route.sent(seq, ts, ntp, newest, header, payload)
        else:
            self._history[seq % RTP_HISTORY_SIZE] = SentPacket(
                header, payload_type, marker, seq, ts, self.ssrc, payload, self._extensions
            )
            sender = self.sender
            if newest:
                sender._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]
                sender._RTCRtpSender__rtp_timestamp = ts  # type: ignore[attr-defined]
            sender._RTCRtpSender__octet_count += len(payload)  # type: ignore[attr-defined]
            sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return False
        session = dtls._tx_srtp
        target = self._target
        if target is None or target[0] is not pair or target[1] is not session:
            target = self._target = self._aim(pair, session)
        elif pair.protocol.transport.is_closing():
            return False
        if target[2] < 0:
            OUTBOX.add_fallback(dtls, pair, header + payload)
        else:
            OUTBOX.add((target[2], target[3], target[4], header, payload))
            # the SRTP trailer is not known before protecting: the usual 10-byte tag
            dtls._RTCDtlsTransport__tx_bytes += len(header) + len(payload) + 10  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__tx_packets += 1  # type: ignore[attr-defined]
        self._sent += 1
        return True

    def _aim(self, pair: Any, session: Any) -> tuple[Any, Any, int, int, bytes]:
        """Where this sender's copies go: (pair, session, socket fd or -1 for the Python
        path, srtp_t, packed remote address)."""
        sock = _socket_of(pair.protocol.transport) if FASTPATH is not None else None
        if sock is None:
            return (pair, session, -1, 0, b"")
        return (pair, session, sock.fileno(), _srtp_pointer(session), _sockaddr(pair.remote_addr))


def ntp_now() -> int:
    """Now as a 64-bit NTP time (what aiortc's clock.current_ntp_time returns, cheaper)."""
    return int((time.time() + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the remote publisher for a keyframe (addressed to the media SSRC, not RTX)."""
    await _require(receiver, "_send_rtcp_pli")(media_ssrc)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` when the remote side of `sender` sends a PLI or FIR."""
    _require(sender, "_send_keyframe")
    sender._send_keyframe = callback  # type: ignore[method-assign]


def on_nack(sender: RTCRtpSender, callback: Callable[[int], bool | None]) -> None:
    """Call `callback` with the number of packets each NACK for `sender` asks for; aiortc
    retransmits them unless it returns False (a paused subscription: retransmissions
    into a link that is already too slow are what starves its audio)."""
    original = _require(sender, "_handle_rtcp_packet")

    async def handle(packet: Any) -> None:
        nack = isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK
        if nack and callback(len(packet.lost)) is False:
            return
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


@dataclass(frozen=True)
class ReceiverReport:
    """What a remote receiver said about one of our streams (RTCP RR/SR report block)."""

    #: packets lost since the stream began (the receiver's count, after retransmissions)
    lost: int
    #: the highest sequence number received, extended with its wrap count
    highest: int
    #: the round trip this report measures, in seconds; None when it answers no recent
    #: sender report of ours
    rtt: float | None


def on_receiver_report(sender: RTCRtpSender, callback: Callable[[ReceiverReport], None]) -> None:
    """Call `callback` with each report block the remote side of `sender` sends about it.

    aiortc keeps one smoothed RTT (weight 0.85 on the past) and only for a report that
    answers its latest sender report: with a round trip longer than its 0.5-1.5 s report
    interval (a filling queue) it measures nothing. Here the last 16 sender reports are
    remembered, so a slow answer still counts, unsmoothed.
    """
    original = _require(sender, "_handle_rtcp_packet")
    send_rtcp = _require(sender, "_send_rtcp")
    # middle 32 bits of a sender report's NTP time -> when it was sent; None when several
    # reports carried the same time (aiortc's NTP time moves only with media sent: a
    # paused stream repeats it), so that an answer cannot tell which one it answers
    sent: dict[int, float | None] = {}

    async def sending(packets: list[Any]) -> None:
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                key = (packet.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF
                sent[key] = None if key in sent else time.time()
                while len(sent) > 16:
                    del sent[next(iter(sent))]
        await send_rtcp(packets)

    async def handle(packet: Any) -> None:
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc != sender._ssrc:
                    continue
                rtt = None
                at = sent.get(report.lsr) if report.lsr else None
                if at is not None:
                    rtt = max(0.0, time.time() - at - report.dlsr / 65536)
                callback(ReceiverReport(report.packets_lost, report.highest_sequence, rtt))
        await original(packet)

    sender._send_rtcp = sending  # type: ignore[method-assign]
    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def on_remb(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call `callback(bits_per_second)` for each receiver estimate (REMB) that names
    `sender`'s stream; aiortc only passes it to an encoder, which forwarding has not."""
    original = _require(sender, "_handle_rtcp_packet")

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate, ssrcs = 0, []
            if sender._ssrc in ssrcs:
                callback(bitrate)
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def gather_only_on(addresses: list[str] | None) -> None:
    """Make aioice gather host candidates on exactly `addresses` (None: its default).

    aioice gathers on every non-loopback interface and never on 127.0.0.1; a
    loopback-only host needs 127.0.0.1, and a host with one public address needs only
    that one. aioice looks the function up in its module at gathering time, so replacing
    the module attribute is enough. Process-wide.
    """
    import aioice.ice

    if not hasattr(aioice.ice, "_tiaojie_original_get_host_addresses"):
        original = _require(aioice.ice, "get_host_addresses")
        aioice.ice._tiaojie_original_get_host_addresses = original  # type: ignore[attr-defined]
    original = aioice.ice._tiaojie_original_get_host_addresses  # type: ignore[attr-defined]
    if addresses is None:
        aioice.ice.get_host_addresses = original
        return
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


# == Join time: ICE's end and the first packets (issue #15) ===================================
# A block of its own: it adds to the functions above and changes none of them.
#
# Measured on a new subscriber connection (a trace of the server's steps, docs/PERFORMANCE.md
# "Tenth session"): aioice nominated the pair on the first round trip, 1-3 ms after the
# browser's first check, but `Connection.connect` saw it only at the end of its 20 ms pacing
# sleep (7-20 ms later), and aiortc starts DTLS only once `connect` returns (the browser's
# ClientHello waited in the queue meanwhile);
# then "connectionstatechange" to "connected" fires inside the DTLS transport's start,
# before aiortc starts the RTP senders, so a keyframe held for the new subscriber could not
# go then and went with the publisher's next packet.

#: aioice's pacing of its connectivity checks (RFC 8445's Ta), as in its `connect`.
ICE_PACING_S = 0.02
#: The source of aioice 0.13.0's `Connection.connect` that `_connect` replaces (sha256).
_ICE_CONNECT_SHA256 = "da51be46190141ee23c03ab8d77c030b45e412b6430369790ba4665a7a7886d2"


async def _connect(self: Any) -> None:
    """aioice 0.13.0's `Connection.connect`, but its pacing sleep ends as soon as the check
    list completes or fails: the same checks at the same pace, the result at once."""
    import aioice.ice

    if not self._local_candidates_end:
        raise ConnectionError("Local candidates gathering was not performed")
    if self.remote_username is None or self.remote_password is None:
        raise ConnectionError("Remote username or password is missing")
    for remote_candidate in self._remote_candidates:
        self._pair_remote_candidate(remote_candidate)
    self.sort_check_list()
    self._unfreeze_initial()
    for early_check in self._early_checks:
        self.check_incoming(*early_check)
    self._early_checks.clear()
    self._early_checks_done = True

    result = asyncio.ensure_future(self._check_list_state.get())
    try:
        while self._check_periodic():
            await asyncio.wait([result], timeout=ICE_PACING_S)
            if result.done():
                break
        res = (await result) if self._check_list else aioice.ice.ICE_FAILED
    finally:
        result.cancel()
    for check in self._check_list:
        if check.task:
            check.task.cancel()
    if res != aioice.ice.ICE_COMPLETED:
        raise ConnectionError("ICE negotiation failed")
    self._query_consent_task = asyncio.create_task(self.query_consent())


def complete_ice_at_once() -> None:
    """Make every aioice connection of this process return from `connect` the moment its
    check list completes (`_connect`) instead of at the end of the pacing sleep it is in
    (10 ms later on average, and DTLS waits for it). Process-wide, at import."""
    import hashlib

    import aioice.ice

    connection: Any = aioice.ice.Connection
    if getattr(connection, "_tiaojie_aioice_connect", None) is not None:
        return
    original = _require(connection, "connect")
    source = inspect.getsource(original)
    if hashlib.sha256(source.encode()).hexdigest() != _ICE_CONNECT_SHA256:
        raise InternalsChanged("aioice's Connection.connect changed")
    connection._tiaojie_aioice_connect = original
    connection.connect = _connect


complete_ice_at_once()


@functools.cache
def _senders_start_after_dtls() -> None:
    """aiortc's `__connect` starts a transceiver's sender after its DTLS transport's start
    (checked once: reading the source takes a few ms)."""
    from aiortc import RTCPeerConnection

    source = inspect.getsource(_require(RTCPeerConnection, "_RTCPeerConnection__connect"))
    start = source.find("await dtlsTransport.start(")
    if start < 0 or source.find("await transceiver.sender.send(", start) < 0:
        raise InternalsChanged("aiortc no longer starts the senders once DTLS is connected")


def when_sending(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` each time aiortc starts `sender` (`RTCRtpSender.send`): its peer
    connection does so right after DTLS connects, in the same step, the first moment a
    packet can go (at "connectionstatechange" to "connected" the sender has no parameters
    yet). Wraps what is there (PacketSender's own wrapper: make that one first). An error
    of `callback` is logged: it must not stop aiortc from starting the other senders."""
    _senders_start_after_dtls()
    original = sender.send

    async def send(parameters: Any) -> None:
        await original(parameters)
        try:
            callback()
        except Exception:
            log.exception("a callback on starting an RTP sender failed")

    sender.send = send  # type: ignore[method-assign]


class _SharedTransport(asyncio.DatagramTransport):
    """One aioice StunProtocol's view of the shared socket: what it sends goes out of the
    shared port (and teaches the mux where that peer's packets belong)."""

    def __init__(self, mux: _SharedPort, protocol: Any) -> None:
        super().__init__()
        self._mux = mux
        self._protocol = protocol
        self._closing = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._closing or self._mux.transport is None:
            return
        self._mux.learn((addr[0], addr[1]), self._protocol)
        self._mux.transport.sendto(data, addr)

    def shared_transport(self) -> asyncio.DatagramTransport | None:
        return self._mux.transport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname" and self._mux.transport is not None:
            return self._mux.transport.get_extra_info("sockname")
        return default  # no "socket": the shared one's buffers are set once

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._mux.forget(self._protocol)
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


#: At most this many datagrams read per wake-up (rtc/_fastpath.c recv).
RECEIVE_BATCH = 32


def _read_in_batches(transport: Any, deliver: Callable[[bytes, tuple[Any, ...]], None]) -> None:
    """Read every datagram waiting on an asyncio datagram transport's socket per wake-up
    (a video frame arrives as a burst) with one recvmmsg (rtc/_fastpath.c pump), instead
    of asyncio's one recvfrom per turn of the event loop: the SRTP packets of an armed
    Ingress (`receive_directly`) are handled in C, `deliver(data, addr)` gets the others.
    asyncio's transport keeps sending and closing; its reader callback is replaced
    (asyncio refuses a second reader on a transport's socket). Call it after asyncio's
    own reader is in place (it is added right after the protocol's connection_made)."""
    sock = transport.get_extra_info("socket")
    if sock is None or transport.is_closing() or not transport.is_reading():
        return
    fd = sock.fileno()
    pump, table = FASTPATH.pump, _INGRESS_TABLE

    def slow(data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            deliver(data, addr)
        except Exception:
            log.exception("a datagram's handler failed")

    def readable() -> None:
        try:
            pump(fd, RECEIVE_BATCH, table, slow)
        except Exception:  # MemoryError; the handlers catch their own
            log.exception("the receive step failed")

    transport.pause_reading()
    transport._read_ready = readable
    transport.resume_reading()


class _SharedPort(asyncio.DatagramProtocol):
    """Every ICE connection of this process on one UDP port of one address (LiveKit's and
    mediasoup's WebRtcServer single port): STUN requests are routed by the USERNAME
    attribute ("<our ufrag>:<their ufrag>"), everything else (DTLS, SRTP) by the sender's
    address, learned from the STUN checks in both directions."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self._by_ufrag: dict[str, list[Any]] = {}
        self._by_address: dict[tuple[str, int], Any] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast_datagram(transport)
        if FASTPATH is not None and hasattr(transport, "_read_ready"):
            # after asyncio's own reader is in place (it is added right after this call)
            asyncio.get_running_loop().call_soon(self._read_in_batches, transport)

    def _read_in_batches(self, transport: Any) -> None:
        _read_in_batches(transport, lambda data, addr: self.datagram_received(data, addr))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for protocol in [p for ps in self._by_ufrag.values() for p in ps]:
            protocol.connection_lost(exc)
        self._by_ufrag.clear()
        self._by_address.clear()

    def attach(self, protocol: Any) -> _SharedTransport:
        ufrag = _require(protocol, "receiver").local_username
        self._by_ufrag.setdefault(ufrag, []).append(protocol)
        transport = _SharedTransport(self, protocol)
        protocol.connection_made(transport)
        return transport

    def learn(self, address: tuple[str, int], protocol: Any) -> None:
        self._by_address.setdefault(address, protocol)

    def forget(self, protocol: Any) -> None:
        _forget_senders(protocol)
        ufrag = protocol.receiver.local_username
        listed = self._by_ufrag.get(ufrag, [])
        if protocol in listed:
            listed.remove(protocol)
        if not listed:
            self._by_ufrag.pop(ufrag, None)
        for address in [a for a, p in self._by_address.items() if p is protocol]:
            del self._by_address[address]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        address = (addr[0], addr[1])
        protocol = self._by_address.get(address)
        if data[:1] < b"\x04":  # a STUN message (RFC 7983): a request names its connection
            named = self._named(data)
            if named is not None and protocol is not named:
                if protocol is not None:
                    _forget_senders(protocol)  # its Ingress no longer gets this sender's
                self._by_address[address] = protocol = named
        if protocol is not None:
            protocol.datagram_received(data, address)

    def _named(self, data: bytes) -> Any:
        import aioice.stun

        try:
            message = aioice.stun.parse_message(data)
        except (ValueError, struct.error):  # struct.error: an attribute too short
            return None
        if message.message_class != aioice.stun.Class.REQUEST:
            return None
        ours, _, theirs = str(message.attributes.get("USERNAME", "")).partition(":")
        candidates = self._by_ufrag.get(ours, [])
        if len(candidates) > 1:  # two connections drew the same 4-character ufrag
            candidates = [p for p in candidates if p.receiver.remote_username in (None, theirs)]
        return candidates[0] if candidates else None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def cast_datagram(transport: asyncio.BaseTransport) -> asyncio.DatagramTransport:
    # asyncio's selector datagram transport does not subclass DatagramTransport (3.11)
    return transport  # type: ignore[return-value]


class _BindingLoop:
    """The running loop as aioice's ICE gathering sees it: its host sockets (bound to
    port 0) are bound in the port range instead. Everything else is the real loop."""

    def __init__(self, loop: Any, ports: PortRange) -> None:
        self._loop = loop
        self._ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(
        self, protocol_factory: Any, local_addr: Any = None, **kwargs: Any
    ) -> Any:
        if local_addr is not None and local_addr[1] == 0 and self._ports.single:
            mux = await _shared_port(self._loop, self._ports, local_addr[0])
            protocol = protocol_factory()
            return mux.attach(protocol), protocol
        if local_addr is not None and local_addr[1] == 0 and not kwargs.get("sock"):
            sock = self._ports.bind(local_addr[0])
            return await self._loop.create_datagram_endpoint(protocol_factory, sock=sock, **kwargs)
        return await self._loop.create_datagram_endpoint(
            protocol_factory, local_addr=local_addr, **kwargs
        )


#: The shared ports of single-port mode, by event loop and address.
_SHARED: dict[tuple[int, str], tuple[Any, _SharedPort]] = {}


async def _shared_port(loop: Any, ports: PortRange, host: str) -> _SharedPort:
    key = (id(loop), host)
    found = _SHARED.get(key)
    if found is not None and found[0] is loop and found[1].transport is not None:
        return found[1]
    sock = ports.bind(host)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    mux = _SharedPort()
    await loop.create_datagram_endpoint(lambda: mux, sock=sock)
    _SHARED[key] = (loop, mux)
    return mux


def close_shared_ports() -> None:
    """Close the single-port sockets of this process (a server shutting down)."""
    for _, mux in list(_SHARED.values()):
        mux.close()
    _SHARED.clear()


class _AsyncioFor:
    """What aioice.ice sees as `asyncio`: the real module, but its running loop binds in
    the port range (aioice.ice.Connection.get_component_candidates binds its host
    candidates with `asyncio.get_running_loop().create_datagram_endpoint(...,
    local_addr=(address, 0))`)."""

    def __init__(self, ports: PortRange) -> None:
        self.ports = ports

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def get_running_loop(self) -> Any:
        return _BindingLoop(asyncio.get_running_loop(), self.ports)


def bind_ice_in(ports: PortRange | None) -> None:
    """Make every ICE host socket of this process bind inside `ports` (None: any port).

    aioice offers no port range; it looks `asyncio` up in its module at gathering time,
    so replacing that module attribute is enough. Process-wide.
    """
    import aioice.ice

    source = inspect.getsource(aioice.ice.Connection.get_component_candidates)
    if "get_running_loop()" not in source or "local_addr=(address, 0)" not in source:
        raise InternalsChanged("aioice no longer binds host candidates as expected")
    aioice.ice.asyncio = _AsyncioFor(ports) if ports is not None else asyncio  # type: ignore[assignment]


def ice_port_range() -> PortRange | None:
    """The range `bind_ice_in` set (None: any port)."""
    import aioice.ice

    current = aioice.ice.asyncio
    return current.ports if isinstance(current, _AsyncioFor) else None


# == Inline receive (the recorder's path, issue #15) ==========================================
# A block of its own: it adds to the functions above and changes none of them.
#
# aiortc hands every received datagram from aioice's socket callback to an asyncio.Queue;
# the DTLS transport's task wakes up for each one (a future, a task step through five
# coroutine frames), unprotects it, parses it and awaits the receiver's async handler.
# For the recorder (~130 packets/s per stream) that wake-up was about 40 % of its CPU.
# `receive_inline` does a pass-through receiver's work synchronously, in the socket
# callback itself: SRTP unprotect, RTP parse, the reception statistics its receiver
# reports are made of, RTX unwrapping, NACKs for gaps, depayloading, the FrameAssembler,
# an av.Packet per frame to a callback. DTLS records, SRTCP and packets of other
# receivers still take aiortc's path.
#
# Then the socket itself: asyncio wakes the loop for every datagram (epoll, a callback,
# one recvfrom), ~45 us of CPU each on this machine, more than all the handling above. A
# recorder needs no low latency, so once media flows its socket is read every
# READ_INTERVAL_S instead, all that has arrived at once (`_BatchedReads`).

#: How often an inline path reads its socket (seconds). Each wake-up of a process that
#: slept costs far more than handling a packet (caches gone cold), so fewer is cheaper.
#: Meanwhile the kernel keeps what arrives: a default 416 kB receive buffer holds ~180
#: datagrams of 1200 bytes, 0.1 s of ~14 recorded streams (a room of 4 records 3).
READ_INTERVAL_S = 0.1
#: At most this many datagrams per read; more waiting: read again at once.
READ_BATCH = 64
#: The receive buffer asked for (the kernel caps it at net.core.rmem_max).
READ_BUFFER_BYTES = 1 << 20

#: aiortc 1.16.0's receive steps that the inline path does instead (checked on first use).
_INLINE_RECEIVER_STEPS = (
    "__remote_streams[packet.ssrc].add(packet)",
    "unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)",
    "__nack_generator.add(packet)",
    "depayload(codec, packet.payload)",
    "__jitter_buffer.add(packet)",
)
_INLINE_TRANSPORT_STEPS = (
    "self._rx_srtp.unprotect(data)",
    "RtpPacket.parse(data, self._rtp_header_extensions_map)",
    "self._rtp_router.route_rtp(packet)",
)


class InlineReceiver:
    """A pass-through receiver's RTP handling as one synchronous call (`handle`).

    Does what aiortc's `_handle_rtp_packet` and the PassthroughQueue do for it, less what
    nobody reads here: the bitrate estimate (REMB) and the per-packet "active SSRC"
    datetime (getSynchronizationSources). RTCP it must send (NACK, PLI) goes out from a
    task, as it cannot be awaited in a socket callback.
    """

    def __init__(self, receiver: RTCRtpReceiver, deliver: Callable[[av.Packet], None]) -> None:
        from aiortc.codecs import depayload, is_rtx
        from aiortc.rtcrtpreceiver import StreamStatistics
        from aiortc.rtp import unwrap_rtx

        passthrough = _require(receiver, "_RTCRtpReceiver__decoder_queue")
        assembler = _require(receiver, "_RTCRtpReceiver__jitter_buffer")
        if not isinstance(passthrough, PassthroughQueue) or not isinstance(
            assembler, FrameAssembler
        ):
            raise RuntimeError("make the receiver pass-through first")
        self.receiver = receiver
        self.deliver = deliver
        self.passthrough = passthrough
        self.assembler = assembler
        #: packets handled, and of those the ones taken in the socket callback
        self.packets = 0
        self.tasks: set[asyncio.Task[None]] = set()
        codecs: dict[int, Any] = _require(receiver, "_RTCRtpReceiver__codecs")
        rtx_ssrc: dict[int, int] = _require(receiver, "_RTCRtpReceiver__rtx_ssrc")
        streams: dict[int, Any] = _require(receiver, "_RTCRtpReceiver__remote_streams")
        nack_generator = _require(receiver, "_RTCRtpReceiver__nack_generator")
        send_nack = _require(receiver, "_send_rtcp_nack")
        send_pli = _require(receiver, "_send_rtcp_pli")
        unwrap = passthrough._unwrap
        push = assembler.push
        # per payload type: (codec, its name, time base, the payload type it repairs if
        # RTX): codec.name splits the mime type on every call
        facts: dict[int, tuple[Any, str, Fraction, Any]] = {}

        def facts_of(payload_type: int) -> tuple[Any, str, Fraction, Any] | None:
            codec = codecs.get(payload_type)
            if codec is None:
                return None
            known = facts[payload_type] = (
                codec,
                codec.name,
                _time_base(codec.clockRate),
                codec.parameters.get("apt", -1) if is_rtx(codec) else None,  # -1: no apt
            )
            return known

        def handle(packet: RtpPacket) -> None:
            if not receiver._enabled:
                return
            known = facts.get(packet.payload_type) or facts_of(packet.payload_type)
            if known is None:
                return
            codec, name, base, apt = known
            self.packets += 1
            stats = streams.get(packet.ssrc)
            if stats is None:
                stats = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
            stats.add(packet)
            if apt is not None:  # RTX
                original_ssrc = rtx_ssrc.get(packet.ssrc)
                if original_ssrc is None or len(packet.payload) < 2 or apt not in codecs:
                    return  # unknown, or padding only (bandwidth probing)
                packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
                known = facts.get(apt) or facts_of(apt)
                if known is None:
                    return
                codec, name, base, _ = known
            if nack_generator is not None and nack_generator.add(packet):
                self._spawn(send_nack(packet.ssrc, sorted(nack_generator.missing)))
            try:
                packet._data = depayload(codec, packet.payload) if packet.payload else b""  # type: ignore[attr-defined]
            except ValueError:
                return
            pli, frames = push(packet)
            if pli:
                self._spawn(send_pli(packet.ssrc))
            for frame in frames:
                if passthrough.first_timestamp is None:
                    passthrough.first_timestamp = frame.timestamp
                out = av.Packet(frame.data)
                out.pts = out.dts = unwrap(frame.timestamp)
                out.time_base = base
                out.is_keyframe = is_keyframe(name, frame.data)
                try:
                    self.deliver(out)
                except Exception:
                    log.exception("a pass-through packet consumer failed")

        self.handle = handle

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settled(self) -> None:
        """Until the RTCP this receiver decided to send has been sent (for tests)."""
        while self.tasks:
            await asyncio.gather(*self.tasks)


class _IgnoredExtensions:
    """Stands in for the transport's HeaderExtensionsMap when parsing inline: a recorder
    reads no header extension (no REMB, no mid once the SSRC is known), so their
    elements are not parsed at all (7 % of the recorder's CPU)."""

    def get(self, extension_profile: int, extension_value: bytes) -> Any:
        from aiortc.rtp import HeaderExtensions

        return HeaderExtensions()


class _InlinePath:
    """One DTLS transport's SRTP packets for inline receivers, taken in the socket
    callback of its ICE connection (aioice's StunProtocol.datagram_received)."""

    def __init__(self, dtls: Any) -> None:
        import aiortc.rtcdtlstransport

        source = _source(aiortc.rtcdtlstransport.RTCDtlsTransport)
        missing = [step for step in _INLINE_TRANSPORT_STEPS if step not in source]
        if missing:
            raise InternalsChanged(f"RTCDtlsTransport's receive path changed: {missing}")
        self._dtls = dtls
        self._router = _require(dtls, "_rtp_router")
        _require(dtls, "_rtp_header_extensions_map")
        self._extensions: Any = _IgnoredExtensions()
        _require(dtls, "_rx_srtp")
        self._ssrc_table: dict[int, Any] = _require(self._router, "ssrc_table")
        self.receivers: dict[Any, InlineReceiver] = {}
        #: packets taken in the socket callback (the rest took aiortc's path)
        self.packets = 0

    def add(self, inline: InlineReceiver, read_interval: float | None = READ_INTERVAL_S) -> None:
        live = _require(self._router, "receivers")
        for gone in [r for r in self.receivers if r not in live]:  # stopped receivers
            del self.receivers[gone]
        self.receivers[inline.receiver] = inline
        self._hook()
        self._take_queued()
        if read_interval is not None:
            self._batch_reads(read_interval)

    def _take_queued(self) -> None:
        """Handle now what waits in aioice's queue for the inline receivers, in order:
        packets taken inline from here on must not overtake them (a NACK for each, and
        late audio is dropped). Everything else goes back into the queue as it was."""
        waiting = _require(_require(_require(self._dtls, "transport"), "_connection"), "_queue")
        items = []
        while not waiting.empty():
            items.append(waiting.get_nowait())
        for item in items:
            if item is None or not self.take(item[0]):
                waiting.put_nowait(item)

    def _batch_reads(self, interval: float) -> None:
        """Read the socket of each nominated candidate pair every `interval`, once."""
        connection = _require(_require(self._dtls, "transport"), "_connection")
        for pair in _require(connection, "_nominated").values():
            transport = pair.protocol.transport
            if isinstance(transport, _SharedTransport):  # --rtc-ports: the shared socket
                transport = transport._mux.transport
            if transport is None or getattr(transport, "_tiaojie_batched", None) is not None:
                continue
            transport._tiaojie_batched = _BatchedReads.start(transport, interval) or False

    def _hook(self) -> None:
        """Take over the datagram callback of each socket of the ICE connection, once."""
        ice = _require(self._dtls, "transport")
        connection = _require(ice, "_connection")
        for protocol in _require(connection, "_protocols"):
            if getattr(protocol, "_tiaojie_inline", None) is self:
                continue
            original = protocol.datagram_received

            def datagram_received(
                data: bytes, addr: tuple[Any, ...], original: Any = original
            ) -> None:
                if not self.take(data):
                    original(data, addr)

            protocol.datagram_received = datagram_received
            protocol._tiaojie_inline = self

    def take(self, data: bytes) -> bool:
        """Handle an SRTP packet of an inline receiver here and now; False: not one
        (DTLS, STUN, SRTCP, another receiver's, or before the DTLS handshake ended)."""
        import pylibsrtp

        if len(data) < 12 or not 127 < data[0] < 192 or 192 <= data[1] <= 208:
            return False  # not RTP (RFC 7983; aiortc's is_rtcp)
        srtp = self._dtls._rx_srtp
        if srtp is None:
            return False
        receiver = self._ssrc_table.get(int.from_bytes(data[8:12], "big"))
        inline = self.receivers.get(receiver) if receiver is not None else None
        if inline is None:
            return False
        try:
            packet = RtpPacket.parse(srtp.unprotect(data), self._extensions)
        except (pylibsrtp.Error, ValueError):
            return True  # dropped, as aiortc drops what fails to unprotect or parse
        self.packets += 1
        try:
            inline.handle(packet)
        except Exception:  # never into aioice's callback
            log.exception("inline RTP handling failed")
        return True


class _BatchedReads:
    """Reads an asyncio datagram socket on a timer instead of on every readiness: up to
    READ_BATCH datagrams each `interval`, handed to its protocol as asyncio would."""

    def __init__(self, transport: Any, interval: float) -> None:
        self._transport = transport
        self._interval = interval
        self._loop = transport._loop
        self._sock = transport._sock
        self.reads = 0
        self.datagrams = 0

    @classmethod
    def start(cls, transport: Any, interval: float) -> _BatchedReads | None:
        """Take over reading `transport`'s socket; None if it is not asyncio's selector
        datagram transport (then it stays as it is)."""
        import asyncio.selector_events
        import contextlib

        kind = getattr(asyncio.selector_events, "_SelectorDatagramTransport", None)
        if kind is None or not isinstance(transport, kind) or transport.is_closing():
            return None
        batched = cls(transport, interval)
        if not batched._loop._remove_reader(transport._sock_fd):
            return None  # nobody was reading it: leave it alone
        with contextlib.suppress(OSError):
            batched._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, READ_BUFFER_BYTES)
        batched._loop.call_soon(batched._read)
        return batched

    def _read(self) -> None:
        transport = self._transport
        if transport.is_closing():
            return  # closed: asyncio's close() found no reader to remove, and none returns
        protocol = transport.get_protocol()
        size = transport.max_size
        self.reads += 1
        for _ in range(READ_BATCH):
            try:
                data, addr = self._sock.recvfrom(size)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:
                protocol.error_received(error)
                break
            self.datagrams += 1
            try:
                protocol.datagram_received(data, addr)
            except Exception:  # asyncio would log it and read on: so do we
                log.exception("a datagram's handler failed")
        else:
            self._loop.call_soon(self._read)  # more may be waiting
            return
        self._loop.call_later(self._interval, self._read)


def _inline_path(dtls: Any) -> _InlinePath:
    path = getattr(dtls, "_tiaojie_inline", None)
    if path is None:
        path = _InlinePath(dtls)
        dtls._tiaojie_inline = path
    return path


def receive_inline(
    receiver: RTCRtpReceiver,
    deliver: Callable[[av.Packet], None],
    *,
    read_interval: float | None = READ_INTERVAL_S,
) -> InlineReceiver:
    """Hand a pass-through receiver's frames to `deliver` (as `deliver_directly` does),
    handling its RTP packets synchronously where they arrive (see this block's comment).

    Call it after `make_passthrough`, from the track event. Packets that reach aiortc's
    receive task anyway (those before the DTLS handshake ended, or before this receiver's
    first packet bound its SSRC) go through the same `handle`; the first of them hooks
    the ICE connection's sockets, and from then on the socket is read every
    `read_interval` seconds (None: on every datagram, as asyncio does).
    """
    source = _source(RTCRtpReceiver._handle_rtp_packet)
    missing = [step for step in _INLINE_RECEIVER_STEPS if step not in source]
    if missing:
        raise InternalsChanged(f"RTCRtpReceiver._handle_rtp_packet changed: {missing}")
    inline = InlineReceiver(receiver, deliver)
    deliver_directly(receiver, deliver)  # anything still put on the queue: same consumer
    attached: list[_InlinePath] = []

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        inline.handle(packet)
        if not attached:  # then the packets queued after this one, and on inline
            attached.append(_inline_path(receiver.transport))
            attached[0].add(inline, read_interval)

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    return inline


def inline_packets(receiver: RTCRtpReceiver) -> int:
    """How many packets of `receiver`'s transport were taken in the socket callback."""
    path = getattr(receiver.transport, "_tiaojie_inline", None)
    return path.packets if isinstance(path, _InlinePath) else 0
