"""FrameAssembler (the receiver's jitter buffer replacement), PassthroughQueue, ForwardTrack."""

from __future__ import annotations

import asyncio
import itertools
from fractions import Fraction

import av
import pytest
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from tiaojie.rtc.aiortc_internals import (
    MAX_PENDING_PACKETS,
    AssembledFrame,
    FrameAssembler,
    FrameBatch,
    PassthroughQueue,
)
from tiaojie.server.media.forwarding import MAX_QUEUED, ForwardTrack

SSRC = 0x1234


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rtp(seq: int, ts: int, data: bytes, marker: bool = False, ssrc: int = SSRC) -> RtpPacket:
    packet = RtpPacket(
        payload_type=102, marker=int(marker), sequence_number=seq & 0xFFFF, timestamp=ts, ssrc=ssrc
    )
    packet._data = data  # what aiortc's depayloader sets
    return packet


def frame(first_seq: int, ts: int, count: int, tag: str) -> list[RtpPacket]:
    """A frame of `count` packets; the last one carries the marker bit."""
    return [
        rtp(first_seq + i, ts, f"{tag}{i};".encode(), marker=i == count - 1) for i in range(count)
    ]


def data(packets: list[RtpPacket]) -> bytes:
    return b"".join(p._data for p in packets)


def video(clock: Clock | None = None) -> FrameAssembler:
    return FrameAssembler("video", clock=clock or Clock())


def push_all(assembler: FrameAssembler, packets: list[RtpPacket]) -> list[AssembledFrame]:
    out: list[AssembledFrame] = []
    for packet in packets:
        pli, frames = assembler.push(packet)
        assert not pli, f"unexpected PLI at {packet}"
        out.extend(frames)
    return out


# -- FrameAssembler: video ---------------------------------------------------------------


def test_in_order_frames_go_out_at_their_marker_packet():
    assembler = video()
    frames = [frame(10 + 3 * i, 3000 * i, 3, f"f{i}") for i in range(4)]
    for packets in frames:
        for packet in packets[:-1]:
            assert assembler.push(packet) == (False, [])  # not complete yet
        pli, out = assembler.push(packets[-1])
        assert not pli and len(out) == 1
        assert out[0].data == data(packets) and out[0].timestamp == packets[0].timestamp
    assert assembler.pending == 0 and assembler.frames_out == 4 and assembler.losses == 0
    assert assembler.media_ssrc == SSRC


def test_single_packet_frames():
    assembler = video()
    out = push_all(assembler, [rtp(500 + i, 90 * i, bytes([i]), marker=True) for i in range(5)])
    assert [f.data for f in out] == [bytes([i]) for i in range(5)]


def test_reordered_packets_within_a_frame():
    assembler = video()
    a = frame(10, 0, 4, "a")
    assert push_all(assembler, [a[0], a[3], a[2]]) == []  # marker came before 11 and 12
    out = push_all(assembler, [a[1]])
    assert [f.data for f in out] == [data(a)]


def test_reordering_across_frames_hands_over_in_order_at_once():
    assembler = video()
    a, b = frame(10, 0, 3, "a"), frame(13, 3000, 2, "b")
    # 11 is late: b is complete before a, but must not overtake it.
    assert push_all(assembler, [a[0], a[2], b[0], b[1]]) == []
    pli, batch = assembler.add(a[1])  # aiortc's API: one object per packet
    assert not pli and isinstance(batch, FrameBatch)
    assert [f.data for f in batch.frames] == [data(a), data(b)]
    assert [f.timestamp for f in batch.frames] == [0, 3000]
    assert batch.data == data(a)  # a JitterFrame for whoever reads it as one


def test_first_packets_reordered_first_frame_is_whole():
    assembler = video()
    a = frame(10, 0, 3, "a")
    out = push_all(assembler, [a[1], a[0], a[2]])
    assert [f.data for f in out] == [data(a)]


def test_lost_packet_then_retransmission_within_wait():
    clock = Clock()
    assembler = video(clock)
    a, b, c = frame(10, 0, 3, "a"), frame(13, 3000, 3, "b"), frame(16, 6000, 3, "c")
    assert push_all(assembler, [a[0], a[2], *b]) == []  # 11 lost: b waits behind a
    clock.now += assembler.max_wait * 0.8  # NACK -> RTX takes about a round trip
    assert push_all(assembler, [c[0]]) == []
    out = push_all(assembler, [a[1]])  # the RTX (aiortc unwraps it to the media SSRC)
    assert [f.data for f in out] == [data(a), data(b)]
    assert [f.data for f in push_all(assembler, c[1:])] == [data(c)]
    assert assembler.losses == 0


def test_unrecoverable_loss_drops_the_frame_asks_pli_and_delivers_the_next():
    clock = Clock()
    assembler = video(clock)
    a, b, c = frame(10, 0, 3, "a"), frame(13, 3000, 3, "b"), frame(16, 6000, 2, "c")
    assert push_all(assembler, [a[0], a[2], *b]) == []  # 11 never comes
    clock.now += assembler.max_wait + 0.01
    pli, out = assembler.push(c[0])
    assert pli, "a frame was given up: the decoder needs a keyframe"
    assert [f.data for f in out] == [data(b)]  # complete, and 12 (a's marker) proves its start
    assert assembler.losses == 1
    # The late retransmission of 11 is useless now: dropped, no PLI, nothing handed over.
    assert assembler.push(a[1]) == (False, [])
    assert [f.data for f in push_all(assembler, c[1:])] == [data(c)]
    assert assembler.pending == 0


def test_lost_marker_packet_also_loses_the_frame_whose_start_is_unknown():
    clock = Clock()
    assembler = video(clock)
    a, b, c = frame(10, 0, 3, "a"), frame(13, 3000, 2, "b"), frame(15, 6000, 2, "c")
    # 12 (a's marker) is lost: 13 could be b's first packet or not, so b cannot go out.
    assert push_all(assembler, [a[0], a[1], *b]) == []
    clock.now += 1
    pli, out = assembler.push(c[0])
    assert pli and out == []
    assert [f.data for f in push_all(assembler, [c[1]])] == [data(c)]  # 14's marker: start


def test_timestamp_change_ends_a_frame_without_marker():
    assembler = video()
    a = frame(10, 0, 2, "a")
    a[1].marker = 0  # some senders
    b = frame(12, 3000, 2, "b")
    out = push_all(assembler, [*a, *b])
    assert [f.data for f in out] == [data(a), data(b)]


def test_sequence_number_wraparound():
    assembler = video()
    a = frame(65533, 0, 4, "a")  # 65533 65534 65535 0
    b = frame(1, 3000, 3, "b")  # 1 2 3
    c = frame(4, 6000, 2, "c")
    # with reordering across the wrap
    out = push_all(assembler, [a[0], a[1], a[3], a[2], b[1], b[0], b[2], *c])
    assert [f.data for f in out] == [data(a), data(b), data(c)]
    assert [p.sequence_number for p in a] == [65533, 65534, 65535, 0]


def test_loss_and_retransmission_across_wraparound():
    clock = Clock()
    assembler = video(clock)
    a, b = frame(65534, 0, 3, "a"), frame(1, 3000, 2, "b")
    assert push_all(assembler, [a[0], a[2], *b]) == []  # 65535 missing
    out = push_all(assembler, [a[1]])
    assert [f.data for f in out] == [data(a), data(b)]
    clock.now += 10
    c = frame(3, 6000, 2, "c")
    assert [f.data for f in push_all(assembler, c)] == [data(c)]


def test_unrecoverable_loss_across_wraparound():
    clock = Clock()
    assembler = video(clock)
    a, b, c = frame(65533, 0, 3, "a"), frame(0, 3000, 2, "b"), frame(2, 6000, 2, "c")
    assert push_all(assembler, [a[0], a[2], *b]) == []  # 65534 never comes
    clock.now += 1
    pli, out = assembler.push(c[0])
    assert pli and [f.data for f in out] == [data(b)]
    assert [f.data for f in push_all(assembler, [c[1]])] == [data(c)]


def test_duplicates_are_ignored():
    assembler = video()
    a, b = frame(10, 0, 3, "a"), frame(13, 3000, 2, "b")
    out = push_all(assembler, [a[0], a[0], a[1], a[1], a[2]])
    assert [f.data for f in out] == [data(a)]
    # duplicates of handed-over packets (e.g. an RTX racing the original): no frame, no PLI
    assert push_all(assembler, [a[2], a[0]]) == []
    assert [f.data for f in push_all(assembler, [b[0], b[0], b[1], b[1]])] == [data(b)]
    assert assembler.frames_out == 2


def test_padding_only_packets_make_no_frames():
    assembler = video()
    a = frame(10, 0, 2, "a")
    padding = [rtp(12, 0, b""), rtp(13, 0, b"")]  # Chrome: previous frame's timestamp
    b = frame(14, 3000, 2, "b")
    out = push_all(assembler, [*a, *padding, *b])
    assert [f.data for f in out] == [data(a), data(b)]


@pytest.mark.parametrize("start", [10, 65000])
def test_pending_packets_are_bounded_even_without_time_passing(start):
    clock = Clock()  # never advances: only the bound can give up on the gap
    assembler = video(clock)
    push_all(assembler, frame(start, 0, 2, "a"))
    seq, ts, plis, out = start + 3, 3000, 0, []  # start + 2 is lost for good
    for i in range(1500):
        for packet in frame(seq, ts, 2, f"x{i}-"):
            pli, frames = assembler.push(packet)
            plis += pli
            out.extend(frames)
            assert assembler.pending <= MAX_PENDING_PACKETS
        seq, ts = seq + 2, ts + 3000
    assert plis == 1 and assembler.losses == 1
    # Everything after the loss except the frame containing 12's successor got through.
    assert out[0].data.startswith(b"x1-") and out[-1].data.startswith(b"x1499-")
    assert len(out) == 1499 and assembler.pending == 0


def test_new_ssrc_restarts_the_stream():
    assembler = video()
    push_all(assembler, frame(10, 0, 2, "a"))
    b = [
        rtp(p.sequence_number, p.timestamp, p._data, p.marker, ssrc=99) for p in frame(7, 5, 2, "b")
    ]
    assert [f.data for f in push_all(assembler, b)] == [data(b)]
    assert assembler.media_ssrc == 99


def test_far_backwards_sequence_is_a_restart_not_a_late_packet():
    assembler = video()
    push_all(assembler, frame(40000, 0, 2, "a"))
    b = frame(30000, 9000, 2, "b")
    pli, out = assembler.push(b[0])
    assert pli and out == []
    assert [f.data for f in push_all(assembler, [b[1]])] == [data(b)]


# -- FrameAssembler: audio ---------------------------------------------------------------


def test_audio_every_packet_is_a_frame_late_and_duplicates_dropped():
    assembler = FrameAssembler("audio")
    packets = [rtp(65534 + i, 960 * i, bytes([i])) for i in range(5)]  # wraps after 65535
    out = push_all(assembler, packets[:2])
    out += push_all(assembler, [packets[3]])  # 0 skipped: it is not waited for
    out += push_all(assembler, [packets[2], packets[3], packets[1]])  # late, dup, dup
    out += push_all(assembler, [packets[4]])
    assert [f.data for f in out] == [b"\x00", b"\x01", b"\x03", b"\x04"]
    assert [f.timestamp for f in out] == [0, 960, 2880, 3840]


# -- PassthroughQueue --------------------------------------------------------------------


def test_passthrough_queue_makes_av_packets_with_unwrapped_timestamps():
    track_queue: asyncio.Queue[av.Packet] = asyncio.Queue()
    passthrough = PassthroughQueue(track_queue, "video")
    codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
    idr = b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x00\x01\x68\xce\x00\x00\x01\x65\x88"
    delta = b"\x00\x00\x00\x01\x41\x9a"
    stamps = [2**32 - 3000, 0, 3000]  # the RTP timestamp wraps
    batch = FrameBatch([AssembledFrame(idr, stamps[0]), AssembledFrame(delta, stamps[1])])
    batch.timestamp = 123  # aiortc overwrites it with its own mapping: ignored
    passthrough.put((codec, batch))
    passthrough.put((codec, FrameBatch([AssembledFrame(delta, stamps[2])])))
    packets = [track_queue.get_nowait() for _ in range(3)]
    assert [bytes(p) for p in packets] == [idr, delta, delta]
    assert [p.pts for p in packets] == [0, 3000, 6000]
    assert all(p.time_base == Fraction(1, 90000) for p in packets)
    assert [p.is_keyframe for p in packets] == [True, False, False]
    assert track_queue.empty()


# -- ForwardTrack ------------------------------------------------------------------------


def packet(pts: int, key: bool = False, payload: bytes = b"x") -> av.Packet:
    p = av.Packet(payload)
    p.pts = p.dts = pts
    p.time_base = Fraction(1, 90000)
    p.is_keyframe = key
    return p


async def test_video_waits_for_a_keyframe_and_asks_once():
    asked: list[int] = []
    track = ForwardTrack("video", lambda: asked.append(1))
    for i in range(5):
        track.push(packet(i * 3000))
    assert asked == [1] and track.dropped == 5
    track.push(packet(15000, key=True))
    track.push(packet(18000))
    assert [(await track.recv()).pts for _ in range(2)] == [15000, 18000]
    assert asked == [1] and track.forwarded == 2


async def test_slow_video_subscriber_drops_to_next_keyframe():
    asked: list[int] = []
    track = ForwardTrack("video", lambda: asked.append(1))
    limit = MAX_QUEUED["video"]
    track.push(packet(0, key=True))
    for i in range(1, 1000):  # the subscriber never reads; push must not block or grow
        track.push(packet(i * 3000))
        assert len(track._queue) <= limit
    assert asked == [1], "one keyframe request for the overflow"
    assert track.dropped == 1000  # the queued ones at the overflow, then all non-keyframes
    track.push(packet(3_000_000, key=True))
    track.push(packet(3_003_000))
    first = await track.recv()
    assert first.is_keyframe and first.pts == 3_000_000
    assert (await track.recv()).pts == 3_003_000
    assert track.dropped == 1000 and track.forwarded == 2


async def test_overflow_on_a_keyframe_keeps_the_keyframe():
    asked: list[int] = []
    track = ForwardTrack("video", lambda: asked.append(1))
    for i in range(MAX_QUEUED["video"]):
        track.push(packet(i, key=i == 0))
    track.push(packet(999, key=True))
    assert asked == [] and len(track._queue) == 1
    assert (await track.recv()).pts == 999


async def test_slow_audio_subscriber_drops_oldest():
    track = ForwardTrack("audio")
    limit = MAX_QUEUED["audio"]
    for i in range(limit + 30):
        track.push(packet(i * 960, key=True))
    assert len(track._queue) == limit and track.dropped == 30
    got = [(await track.recv()).pts for _ in range(limit)]
    assert got == [i * 960 for i in range(30, limit + 30)]


async def test_recv_waits_for_push():
    track = ForwardTrack("audio")
    waiter = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    track.push(packet(7, key=True))
    assert (await asyncio.wait_for(waiter, 1)).pts == 7


@pytest.mark.parametrize("kind", ["video", "audio"])
async def test_switch_source_rebases_timestamps_monotonic(kind):
    track = ForwardTrack(kind)
    step = 3000 if kind == "video" else 960
    for i in range(5):
        track.push(packet(50_000 + i * step, key=True))
    out = [(await track.recv()).pts for _ in range(3)]
    track.switch_source()  # two queued packets of the old source are dropped
    assert track.dropped == 2
    original = [packet(10 + i * step, key=i == 0) for i in range(4)]  # far behind
    for p in original:
        track.push(p)
    out += [(await track.recv()).pts for _ in range(4)]
    assert [b - a for a, b in itertools.pairwise(out)] == [step] * 6, out
    assert [p.pts for p in original] == [10 + i * step for i in range(4)]  # shared: untouched
    track.switch_source()  # and again, back above the last one sent
    track.push(packet(0, key=True))
    assert (await track.recv()).pts > out[-1]


async def test_video_switch_source_waits_for_keyframe():
    asked: list[int] = []
    track = ForwardTrack("video", lambda: asked.append(1))
    track.push(packet(0, key=True))
    await track.recv()
    track.switch_source()
    track.push(packet(5))
    assert asked == [1] and track.dropped == 1
    track.push(packet(6, key=True))
    assert (await track.recv()).is_keyframe


async def test_stopped_track_ends_and_ignores_pushes():
    track = ForwardTrack("audio")
    waiter = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(waiter, 1)
    track.push(packet(1, key=True))
    assert len(track._queue) == 0
