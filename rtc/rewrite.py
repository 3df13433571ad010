"""Rewriting forwarded RTP packets: the header a subscriber sees, built from bytes.

An SFU forwards a publisher's packets to each subscriber under the subscriber's own
SSRC, payload type, sequence numbers and timestamps. `StreamMapping` keeps one
subscription's numbers continuous however its source changes (another publication in a
reused slot, a pause, packets dropped while waiting for a keyframe); `rtp_header` and
`extension_block` build the bytes; `vp8_picture_id` / `with_vp8_picture_id` keep VP8's
picture IDs continuous too (a decoder takes a jump back for old frames). Pure code, no
aiortc: the fuzz tests feed it garbage.
"""

from __future__ import annotations

import struct

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
#: A packet this many sequence numbers before the newest of the current run is dropped
#: as too late (its frame is long gone); it also bounds how far back a run's start is kept.
LATE_WINDOW = 4096

_HEADER = struct.Struct("!BBHLL")
_U16 = struct.Struct("!H")


def seq_after(a: int, b: int) -> bool:
    """True if 16-bit sequence number `a` comes after `b` (RFC 3550 wrap-around)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class StreamMapping:
    """One subscription's sequence number, timestamp (and VP8 picture ID) mapping.

    Within a run (consecutive packets of one source) an input number maps by a fixed
    offset, so reordered and retransmitted packets keep their place and a gap stays a gap
    the subscriber can NACK. `restart()` ends the run: the next mapped packet continues
    right after the last one sent (sequence + 1, timestamp + the wall time elapsed, picture
    ID + 1), whatever its source numbers are, so nothing dropped in between shows as loss.
    Packets from before the current run's first packet are refused (None).
    """

    def __init__(self, clock_rate: int, seq_origin: int, ts_origin: int) -> None:
        self.clock_rate = clock_rate
        self._seq_origin = seq_origin & 0xFFFF
        self._ts_origin = ts_origin & 0xFFFFFFFF
        self._running = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._pic_offset: int | None = None
        self._base = 0  # the earliest input sequence number of this run still accepted
        self._in_high = 0  # the newest input sequence number of this run
        #: the newest packet sent: output sequence number, timestamp, when
        self.last_seq: int | None = None
        self.last_ts = 0
        self.last_time = 0.0
        self.last_pic: int | None = None

    def restart(self) -> None:
        """The next packet starts a new run (another source, or after dropped packets)."""
        self._running = False
        self._pic_offset = None

    def map(self, seq: int, ts: int, now: float) -> tuple[int, int] | None:
        """(output sequence number, output timestamp) for an input packet, or None when
        it belongs before the current run."""
        if not self._running:
            if self.last_seq is None:
                out_seq, out_ts = self._seq_origin, self._ts_origin
            else:
                out_seq = (self.last_seq + 1) & 0xFFFF
                elapsed = max(now - self.last_time, 0.0)
                out_ts = (self.last_ts + max(1, round(elapsed * self.clock_rate))) & 0xFFFFFFFF
            self._seq_offset = (out_seq - seq) & 0xFFFF
            self._ts_offset = (out_ts - ts) & 0xFFFFFFFF
            self._base = self._in_high = seq & 0xFFFF
            self._running = True
        elif (seq - self._base) & 0xFFFF >= 0x8000:
            return None  # before the run began, or far too late
        elif seq_after(seq, self._in_high):
            self._in_high = seq
            if (seq - self._base) & 0xFFFF > LATE_WINDOW:
                self._base = (seq - LATE_WINDOW) & 0xFFFF
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (ts + self._ts_offset) & 0xFFFFFFFF
        if self.last_seq is None or seq_after(out_seq, self.last_seq):
            self.last_seq, self.last_ts, self.last_time = out_seq, out_ts, now
        return out_seq, out_ts

    def running_state(self) -> tuple[int, int, int, int, int, int, float]:
        """The current run, for a native Route to carry on (rtc/_fastpath.c `start`):
        (sequence offset, timestamp offset, base, newest input, last sent sequence,
        timestamp and time). Only while a run is under way and something was sent."""
        assert self._running and self.last_seq is not None
        return (
            self._seq_offset,
            self._ts_offset,
            self._base,
            self._in_high,
            self.last_seq,
            self.last_ts,
            self.last_time,
        )

    def resume(
        self, base: int, in_high: int, last_seq: int, last_ts: int, last_time: float
    ) -> None:
        """Take the run back from a Route (its `stop()`): same offsets, its progress."""
        self._base, self._in_high = base, in_high
        self.last_seq, self.last_ts, self.last_time = last_seq, last_ts, last_time

    def map_picture_id(self, picture_id: int, bits: int) -> int:
        """The output VP8 picture ID (15 or 7 bits) for an input one of this run."""
        mod = 1 << bits
        if self._pic_offset is None:
            out = 0 if self.last_pic is None else self.last_pic + 1
            self._pic_offset = out - picture_id
        out = (picture_id + self._pic_offset) % mod
        if self.last_pic is None or ((out - self.last_pic) % mod) < mod // 2:
            self.last_pic = out
        return out


def rtp_header(
    marker: int, payload_type: int, seq: int, ts: int, ssrc: int, extensions: bytes = b""
) -> bytes:
    """A 12-byte RTP header (version 2, no padding, no CSRC) and `extensions`, a block
    from `extension_block` (its presence sets the X bit)."""
    first = 0x90 if extensions else 0x80
    return (
        _HEADER.pack(
            first,
            ((marker & 1) << 7) | (payload_type & 0x7F),
            seq & 0xFFFF,
            ts & 0xFFFFFFFF,
            ssrc & 0xFFFFFFFF,
        )
        + extensions
    )


def extension_element(ext_id: int, value: bytes) -> bytes:
    """One RFC 8285 one-byte-header element (ids 1-14, 1-16 bytes); b"" if it cannot be."""
    if not 1 <= ext_id <= 14 or not 1 <= len(value) <= 16:
        return b""
    return bytes([(ext_id << 4) | (len(value) - 1)]) + value


def extension_block(elements: bytes) -> bytes:
    """The header extension (profile 0xBEDE) holding concatenated one-byte `elements`,
    zero-padded to 32 bits; b"" for none."""
    if not elements:
        return b""
    padding = -len(elements) % 4
    return b"\xbe\xde" + _U16.pack((len(elements) + padding) // 4) + elements + bytes(padding)


def abs_send_time(ntp: int) -> bytes:
    """The abs-send-time value (6.18 fixed-point seconds, 24 bits) of a 64-bit NTP time."""
    value = (ntp >> 14) & 0xFFFFFF
    return bytes(((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF))


def vp8_picture_id(payload: bytes) -> tuple[int, int, int] | None:
    """(picture ID, its bits: 7 or 15, its offset in `payload`) from a VP8 payload
    descriptor (RFC 7741), or None when it has none or is malformed."""
    if len(payload) < 3 or not payload[0] & 0x80:  # no X: no extension byte
        return None
    if not payload[1] & 0x80:  # no I: no picture ID
        return None
    if payload[2] & 0x80:  # M: 15 bits
        if len(payload) < 4:
            return None
        return ((payload[2] & 0x7F) << 8) | payload[3], 15, 2
    return payload[2] & 0x7F, 7, 2


def with_vp8_picture_id(payload: bytes, picture_id: int, bits: int, offset: int) -> bytes:
    """`payload` with its picture ID (as found by `vp8_picture_id`) replaced."""
    if bits == 15:
        value = bytes((0x80 | ((picture_id >> 8) & 0x7F), picture_id & 0xFF))
        return payload[:offset] + value + payload[offset + 2 :]
    return payload[:offset] + bytes((picture_id & 0x7F,)) + payload[offset + 1 :]
