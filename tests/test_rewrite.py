"""The packet media plane's pure code, byte by byte: rtc/rewrite.py (sequence numbers,
timestamps and VP8 picture IDs across wrap-around and source changes, the header bytes)
and rtc/keyframes.py on RTP payloads (H264 single NAL, STAP-A, FU-A; VP8 descriptor).
Then garbage: none of it may raise on a malformed packet."""

from __future__ import annotations

import struct

from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from tiaojie.rtc.keyframes import (
    h264_packet_starts_keyframe,
    packet_starts_keyframe,
    vp8_packet_starts_keyframe,
    vp8_payload_offset,
)
from tiaojie.rtc.rewrite import (
    StreamMapping,
    abs_send_time,
    extension_block,
    extension_element,
    rtp_header,
    seq_after,
    vp8_picture_id,
    with_vp8_picture_id,
)

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


# -- sequence numbers and timestamps -------------------------------------------------------


def test_sequence_numbers_wrap_around_within_a_run():
    mapping = StreamMapping(90000, seq_origin=65534, ts_origin=2**32 - 3000)
    out = [mapping.map(seq, 1000 + 3000 * (seq // 2), 0.0) for seq in range(100, 106)]
    assert [o[0] for o in out if o] == [65534, 65535, 0, 1, 2, 3]
    # timestamps keep their spacing, modulo 2^32
    assert [o[1] for o in out if o] == [2**32 - 3000, 2**32 - 3000, 0, 0, 3000, 3000]


def test_input_wrap_around_maps_continuously():
    mapping = StreamMapping(48000, seq_origin=10, ts_origin=0)
    seqs = [65533, 65534, 65535, 0, 1]
    out = [mapping.map(seq, (2**32 - 960 * 2 + 960 * i) % 2**32, 0.0) for i, seq in enumerate(seqs)]
    assert [o[0] for o in out if o] == [10, 11, 12, 13, 14]
    assert [o[1] for o in out if o] == [0, 960, 1920, 2880, 3840]


def test_reordered_and_retransmitted_packets_keep_their_place_and_gap():
    mapping = StreamMapping(90000, seq_origin=500, ts_origin=0)
    assert mapping.map(1000, 0, 0.0) == (500, 0)
    assert mapping.map(1003, 3000, 0.0) == (503, 3000)  # 1001, 1002 missing: a gap
    assert mapping.last_seq == 503
    assert mapping.map(1001, 0, 0.1) == (501, 0)  # repaired later: same place
    assert mapping.last_seq == 503  # not the newest
    assert mapping.map(999, 0, 0.1) is None  # before the run started: refused


def test_timestamps_continue_across_a_publication_change():
    mapping = StreamMapping(90000, seq_origin=100, ts_origin=50_000)
    for i in range(5):  # source A: 30 fps
        mapping.map(7000 + i, 1_000_000 + 3000 * i, 10.0 + i / 30)
    last_seq, last_ts = mapping.last_seq, mapping.last_ts
    assert (last_seq, last_ts) == (104, 50_000 + 12_000)
    mapping.restart()  # another publication in the same slot, 0.5 s later
    first = mapping.map(40_000, 123, 10.0 + 4 / 30 + 0.5)
    assert first == (105, last_ts + 45_000)  # seq + 1; ts + 0.5 s at 90 kHz
    assert mapping.map(40_001, 123 + 3000, 11.0) == (106, last_ts + 48_000)
    # a late packet from before the new run's first one is refused
    assert mapping.map(39_999, 123 - 3000, 11.0) is None


def test_restart_after_dropped_packets_leaves_no_gap():
    mapping = StreamMapping(90000, seq_origin=65535, ts_origin=2**32 - 1)
    assert mapping.map(10, 0, 0.0) == (65535, 2**32 - 1)
    # packets 11..99 dropped (a pause, a wait for a keyframe): no gap for the subscriber
    mapping.restart()
    assert mapping.map(100, 270_000, 0.0) == (0, 0)  # ts moves by at least 1, wraps


def test_long_runs_keep_accepting_packets_past_half_the_sequence_space():
    mapping = StreamMapping(90000, seq_origin=0, ts_origin=0)
    for i in range(70_000):
        assert mapping.map(i & 0xFFFF, i * 10, 0.0) is not None
    assert mapping.last_seq == (70_000 - 1) & 0xFFFF
    assert seq_after(0, 65535) and not seq_after(65535, 0) and not seq_after(5, 5)


def test_vp8_picture_ids_continue_across_a_change_and_wrap():
    mapping = StreamMapping(90000, 0, 0)
    assert [mapping.map_picture_id(p, 15) for p in (32766, 32767, 0)] == [0, 1, 2]
    mapping.restart()
    assert mapping.map_picture_id(500, 15) == 3
    assert mapping.map_picture_id(501, 15) == 4
    mapping.restart()
    assert mapping.map_picture_id(9, 7) == 5  # a 7-bit source: wraps at 128


# -- header bytes --------------------------------------------------------------------------


def test_header_bytes_and_extensions_parse_back_with_aiortc():
    elements = extension_element(3, b"7") + extension_element(4, abs_send_time(0x12345678 << 20))
    block = extension_block(elements)
    assert block[:2] == b"\xbe\xde" and len(block) % 4 == 0
    header = rtp_header(1, 102, 0xABCD, 0xDEADBEEF, 0x01020304, block)
    assert header[:12] == bytes.fromhex("90 e6 ab cd de ad be ef 01 02 03 04")
    assert rtp_header(0, 111, 1, 2, 3) == bytes.fromhex("80 6f 00 01 00 00 00 02 00 00 00 03")

    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=3, uri=MID_URI),
                RTCRtpHeaderExtensionParameters(id=4, uri=ABS_URI),
            ]
        )
    )
    packet = RtpPacket.parse(header + b"payload", extensions)
    assert (packet.marker, packet.payload_type, packet.sequence_number) == (1, 102, 0xABCD)
    assert (packet.timestamp, packet.ssrc, packet.payload) == (0xDEADBEEF, 0x01020304, b"payload")
    assert packet.extensions.mid == "7"
    assert packet.extensions.abs_send_time == ((0x12345678 << 20) >> 14) & 0xFFFFFF
    assert extension_block(b"") == b"" and extension_element(15, b"x") == b""


def test_vp8_picture_id_is_found_and_replaced():
    descriptor = VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=0x1234)
    payload = bytes(descriptor) + b"\x10\x02\x00"
    assert vp8_picture_id(payload) == (0x1234, 15, 2)
    replaced = with_vp8_picture_id(payload, 0x0042, 15, 2)
    parsed, rest = VpxPayloadDescriptor.parse(replaced)
    assert parsed.picture_id == 0x0042 and rest == b"\x10\x02\x00"
    short = bytes([0x90, 0x80, 0x05, 0x00])  # 7-bit picture ID 5
    assert vp8_picture_id(short) == (5, 7, 2)
    assert with_vp8_picture_id(short, 130, 7, 2) == bytes([0x90, 0x80, 0x02, 0x00])
    assert vp8_picture_id(b"\x10\x00") is None  # no X: no picture ID


# -- keyframes on packets ------------------------------------------------------------------

SPS = bytes([0x67, 0x42, 0xC0, 0x1F])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR_FIRST = bytes([0x65, 0x88]) + bytes(1500)  # first_mb_in_slice 0: first bit set
IDR_LATER = bytes([0x65, 0x41]) + bytes(1500)  # a later slice of the same picture
P_SLICE = bytes([0x41, 0x9A]) + bytes(40)


def test_h264_single_nal_units():
    assert h264_packet_starts_keyframe(SPS)
    assert h264_packet_starts_keyframe(IDR_FIRST[:100])
    assert not h264_packet_starts_keyframe(IDR_LATER[:100])
    assert not h264_packet_starts_keyframe(PPS)
    assert not h264_packet_starts_keyframe(P_SLICE)
    assert not h264_packet_starts_keyframe(b"")


def test_h264_stap_a_and_fu_a_as_aiortc_packetizes_them():
    keyframe = H264Encoder._packetize([SPS, PPS, IDR_FIRST])
    assert keyframe[0][0] & 0x1F == 24  # STAP-A (SPS, PPS)
    assert all(p[0] & 0x1F == 28 for p in keyframe[1:])  # FU-A fragments of the IDR
    # the STAP-A with the SPS starts it; so could the IDR's first fragment (SPS known)
    assert [h264_packet_starts_keyframe(p) for p in keyframe] == [True, True] + [False] * (
        len(keyframe) - 2
    )
    alone = H264Encoder._packetize([IDR_FIRST])  # no SPS in front: the FU-A start counts
    assert [h264_packet_starts_keyframe(p) for p in alone] == [True] + [False] * (len(alone) - 1)
    later = H264Encoder._packetize([IDR_LATER])
    assert not any(h264_packet_starts_keyframe(p) for p in later)
    inter = H264Encoder._packetize([P_SLICE, P_SLICE])  # a STAP-A of P slices
    assert inter[0][0] & 0x1F == 24 and not h264_packet_starts_keyframe(inter[0])
    stap_with_idr = (
        bytes([0x18]) + struct.pack("!H", 4) + PPS + struct.pack("!H", 3) + b"\x65\x88\x00"
    )
    assert h264_packet_starts_keyframe(stap_with_idr)
    assert not h264_packet_starts_keyframe(bytes([0x18, 0x00, 0x09]) + SPS)  # size overruns
    assert packet_starts_keyframe("video/H264", keyframe[0])
    assert packet_starts_keyframe("audio/opus", b"")


def test_vp8_descriptor_keyframe_detection():
    def packet(start: bool, pid: int, keyframe: bool, **fields: int) -> bytes:
        descriptor = VpxPayloadDescriptor(partition_start=int(start), partition_id=pid, **fields)
        return bytes(descriptor) + bytes([0x10 if keyframe else 0x11, 0x02, 0x00])

    for fields in ({}, {"picture_id": 17}, {"picture_id": 300, "tl0picidx": 4}):
        assert vp8_packet_starts_keyframe(packet(True, 0, True, **fields)), fields
        assert not vp8_packet_starts_keyframe(packet(True, 0, False, **fields)), fields
        assert not vp8_packet_starts_keyframe(packet(False, 0, True, **fields)), fields
        assert not vp8_packet_starts_keyframe(packet(True, 1, True, **fields)), fields
    # T/K byte (temporal layers): skipped over
    with_tid = bytes([0x90, 0x20, 0x40, 0x10, 0x02])
    assert vp8_payload_offset(with_tid) == 3 and vp8_packet_starts_keyframe(with_tid)
    assert vp8_payload_offset(b"\x90") is None and not vp8_packet_starts_keyframe(b"\x90\x80")
    assert packet_starts_keyframe("video/VP8", packet(True, 0, True, picture_id=5))


# -- malformed packets ---------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(payload=st.binary(max_size=64), seq=st.integers(0, 0xFFFF), ts=st.integers(0, 2**32 - 1))
def test_malformed_payloads_never_raise(payload: bytes, seq: int, ts: int) -> None:
    for codec in ("video/H264", "video/VP8", "audio/opus"):
        assert isinstance(packet_starts_keyframe(codec, payload), bool)
    vp8_payload_offset(payload)
    found = vp8_picture_id(payload)
    if found is not None:
        picture_id, bits, offset = found
        out = with_vp8_picture_id(payload, picture_id + 1, bits, offset)
        assert len(out) == len(payload)
        assert vp8_picture_id(out) == ((picture_id + 1) % (1 << bits), bits, offset)
    mapping = StreamMapping(90000, seq, ts)
    for i, byte in enumerate(payload):
        if byte & 1:
            mapping.restart()
        mapped = mapping.map((seq + byte * 257) & 0xFFFF, (ts + byte * i) & 0xFFFFFFFF, i)
        assert mapped is None or (0 <= mapped[0] <= 0xFFFF and 0 <= mapped[1] < 2**32)
        mapping.map_picture_id(byte, 7 + 8 * (byte & 1))
    header = rtp_header(seq & 1, ts & 0x7F, seq, ts, ts, extension_block(payload[:16]))
    assert len(header) % 4 == 0
