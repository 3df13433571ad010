"""Keyframe detection on encoded frames: synthetic H264/VP8 and real encoder output."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from tiaojie.rtc.keyframes import h264_nal_types, is_keyframe

SC4 = b"\x00\x00\x00\x01"
SC3 = b"\x00\x00\x01"
SPS = b"\x67\x42\xc0\x1f\xda\x02\x80"
PPS = b"\x68\xce\x3c\x80"
SEI = b"\x06\x05\x10\xaa"
IDR = b"\x65\x88\x84\x00\x33\xff"
NON_IDR = b"\x41\x9a\x21\x6c\x41"
AUD = b"\x09\xf0"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (SC4 + SPS + SC4 + PPS + SC4 + IDR, True),  # what aiortc's depayloader makes
        (SC3 + SPS + SC3 + PPS + SC3 + IDR, True),  # 3-byte start codes
        (SC4 + SPS + SC3 + PPS + SC4 + SEI + SC3 + IDR, True),  # mixed
        (SC4 + IDR, True),
        (SC4 + IDR + SC4 + IDR, True),  # two slices
        (SC4 + NON_IDR, False),
        (SC3 + AUD + SC3 + NON_IDR, False),
        (SC4 + NON_IDR + SC4 + NON_IDR, False),
        (SC4 + SPS + SC4 + PPS, False),  # parameter sets alone are no picture
        (SC4 + SEI, False),
        (b"", False),
        (SC4, False),
    ],
)
def test_h264(data, expected):
    assert is_keyframe("H264", data) is expected
    assert is_keyframe("h264", data) is expected


def test_h264_nal_types_both_start_code_lengths():
    assert h264_nal_types(SC4 + SPS + SC3 + PPS + SC4 + IDR) == [7, 8, 5]
    assert h264_nal_types(SC3 + NON_IDR) == [1]


def test_vp8_frame_tag():
    assert is_keyframe("VP8", b"\x10\x02\x00\x9d\x01\x2a") is True  # P bit clear
    assert is_keyframe("VP8", b"\x11\x02\x00") is False
    assert is_keyframe("vp8", b"\x31") is False
    assert is_keyframe("VP8", b"") is False


def test_audio_is_always_a_keyframe():
    assert is_keyframe("opus", b"\xfc\xff\xfe") is True


def _encode(codec: str, count: int, gop: int, **options: str) -> list[av.Packet]:
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = 160, 120, "yuv420p"
    context.time_base = Fraction(1, 30)
    context.gop_size = gop
    context.options = options
    packets = []
    for i in range(count):
        frame = av.VideoFrame(160, 120, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes((i * 7 + j) % 251 for j in range(plane.buffer_size)))
        frame.pts = i
        packets.extend(context.encode(frame))
    packets.extend(context.encode(None))
    return packets


def test_real_h264_encoder_output():
    packets = _encode(
        "libx264",
        12,
        5,
        profile="baseline",
        tune="zerolatency",
        **{"x264-params": "keyint=5:min-keyint=5:scenecut=0:repeat-headers=1"},
    )
    flags = [is_keyframe("h264", bytes(p)) for p in packets]
    assert flags == [p.is_keyframe for p in packets]  # the encoder's own flag
    assert flags[0] and flags.count(True) == 3 and not all(flags)


def test_real_vp8_encoder_output():
    packets = _encode("libvpx", 12, 5, deadline="realtime", **{"auto-alt-ref": "0"})
    flags = [is_keyframe("VP8", bytes(p)) for p in packets]
    assert flags == [p.is_keyframe for p in packets]
    assert flags[0] and 2 <= flags.count(True) < len(flags)
