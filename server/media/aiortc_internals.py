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
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

from server.media.keyframes import is_keyframe

MAX_PENDING_PACKETS = 1024


class InternalsChanged(RuntimeError):
    """aiortc no longer has the private attribute we rely on: re-check this module."""


def _require(obj: object, name: str) -> Any:
    if not hasattr(obj, name):
        raise InternalsChanged(f"{type(obj).__name__} has no {name}: aiortc changed")
    return getattr(obj, name)


def _seq_after(a: int, b: int) -> bool:
    """True if RTP sequence number a comes after b (mod 2^16)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class FrameAssembler:
    """Stands in for aiortc's JitterBuffer: `add(packet) -> (pli_needed, frame | None)`.

    Audio: every packet is a frame (Opus), late ones are dropped. Video: packets collect
    until the one with the marker bit; the frame goes out at once if it is complete
    (contiguous sequence numbers back to the previous frame's end). A frame that can
    never complete (lost packets not retransmitted) is dropped and a PLI requested.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.media_ssrc: int | None = None
        self._packets: dict[int, RtpPacket] = {}
        self._next: int | None = None  # first sequence number of the next frame

    @property
    def capacity(self) -> int:  # aiortc reads it in places
        return MAX_PENDING_PACKETS

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.media_ssrc = packet.ssrc
        seq = packet.sequence_number
        if self._next is not None and _seq_after(self._next, seq):
            return False, None  # older than what we already handed over
        data = packet._data  # type: ignore[attr-defined]  # set by aiortc's depayloader
        if self.kind == "audio":
            self._next = (seq + 1) & 0xFFFF
            return False, JitterFrame(data=data, timestamp=packet.timestamp)
        self._packets[seq] = packet
        if self._next is None:
            self._next = seq
        if len(self._packets) > MAX_PENDING_PACKETS:
            self._packets.clear()
            self._next = None
            return True, None
        if not packet.marker:
            return False, self._complete_older()
        return self._finish(seq, packet.timestamp)

    def _finish(self, end: int, timestamp: int) -> tuple[bool, JitterFrame | None]:
        assert self._next is not None
        seqs = []
        seq = self._next
        while True:
            found = self._packets.get(seq)
            if found is None:
                break
            seqs.append(seq)
            if seq == end:
                break
            seq = (seq + 1) & 0xFFFF
        pli = False
        if (
            not seqs
            or seqs[-1] != end
            or any(self._packets[s].timestamp != timestamp for s in seqs)
        ):
            # A gap, or an older unfinished frame: find where this frame starts.
            seqs = self._frame_back_from(end, timestamp)
            if seqs is None:
                return False, None  # wait for retransmissions
            pli = True  # older frames were skipped: the decoder needs a keyframe
        frame = JitterFrame(
            data=b"".join(self._packets[s]._data for s in seqs),  # type: ignore[attr-defined]
            timestamp=timestamp,
        )
        self._drop_through(end)
        return pli, frame

    def _frame_back_from(self, end: int, timestamp: int) -> list[int] | None:
        seqs = [end]
        seq = end
        while True:
            seq = (seq - 1) & 0xFFFF
            found = self._packets.get(seq)
            if found is None:
                return None
            if found.timestamp != timestamp:
                return list(reversed(seqs))
            seqs.append(seq)

    def _complete_older(self) -> None:
        return None

    def _drop_through(self, end: int) -> None:
        self._next = (end + 1) & 0xFFFF
        for seq in list(self._packets):
            if not _seq_after(seq, end):
                del self._packets[seq]

    def remove(self, count: int) -> None:  # JitterBuffer API, unused by the receiver
        self._packets.clear()


class PassthroughQueue:
    """Stands in for the receiver's decoder queue: encoded frame -> av.Packet on the track.

    aiortc's decoder thread still starts and blocks in `get()` until the receiver stops.
    """

    def __init__(self, track_queue: Any, kind: str) -> None:
        self._track_queue = track_queue
        self._kind = kind
        self._stopped = threading.Event()

    def put(self, item: tuple[Any, JitterFrame] | None) -> None:
        if item is None:  # the receiver is stopping: let the decoder thread end
            self._stopped.set()
            return
        codec, frame = item
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = frame.timestamp
        packet.time_base = Fraction(1, codec.clockRate)
        packet.is_keyframe = is_keyframe(codec.name, frame.data)
        self._track_queue.put_nowait(packet)

    def get(self) -> None:
        self._stopped.wait()
        return None  # the decoder thread then ends the track


def make_passthrough(receiver: RTCRtpReceiver) -> FrameAssembler:
    """Make `receiver` hand over av.Packets instead of decoded frames.

    Call it when the track event fires, before the receiver starts (aiortc starts it
    from a task scheduled after setRemoteDescription).
    """
    if _require(receiver, "_RTCRtpReceiver__started"):
        raise InternalsChanged("the receiver already started: too late for pass-through")
    _require(receiver, "_RTCRtpReceiver__jitter_buffer")
    _require(receiver, "_RTCRtpReceiver__decoder_queue")
    kind = _require(receiver, "_RTCRtpReceiver__kind")
    track_queue = _require(receiver.track, "_queue")
    assembler = FrameAssembler(kind)
    receiver._RTCRtpReceiver__jitter_buffer = assembler  # type: ignore[attr-defined]
    receiver._RTCRtpReceiver__decoder_queue = PassthroughQueue(  # type: ignore[attr-defined]
        track_queue, kind
    )
    return assembler


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the remote publisher for a keyframe (addressed to the media SSRC, not RTX)."""
    await _require(receiver, "_send_rtcp_pli")(media_ssrc)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` when the remote side of `sender` sends a PLI or FIR."""
    _require(sender, "_send_keyframe")
    sender._send_keyframe = callback  # type: ignore[method-assign]
