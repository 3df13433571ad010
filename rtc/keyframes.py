"""Keyframe detection on encoded frames, as aiortc's depayloaders hand them over."""

from __future__ import annotations

from collections.abc import Iterator

H264_IDR = 5
H264_SPS = 7
H264_PPS = 8
#: NAL unit types that carry slices of a picture (coded slice ... IDR slice).
H264_VCL = range(1, 6)


def _h264_nal_headers(data: bytes) -> Iterator[int]:
    """The first byte of each NAL unit of an Annex-B access unit.

    Start codes are 00 00 01 or 00 00 00 01 (the latter contains the former, so searching
    for 00 00 01 finds both); emulation prevention keeps them out of NAL payloads.
    """
    i = data.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(data):
        yield data[i + 3]
        i = data.find(b"\x00\x00\x01", i + 3)


def h264_nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex-B access unit (start codes 00 00 01 / 00 00 00 01)."""
    return [header & 0x1F for header in _h264_nal_headers(data)]


def is_keyframe(codec: str, data: bytes) -> bool:
    """True for frames a decoder can start from. Audio frames always are.

    H264: the access unit's slices are IDR slices (NAL type 5); all slices of a picture
    have the same type, so the first slice decides. VP8: the frame tag's P bit is clear.
    """
    name = codec.lower()
    if name == "h264":
        for header in _h264_nal_headers(data):
            nal_type = header & 0x1F
            if nal_type in H264_VCL:
                return nal_type == H264_IDR
        return False
    if name == "vp8":
        return bool(data) and data[0] & 0x01 == 0
    return True
