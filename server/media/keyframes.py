"""Keyframe detection on encoded frames, as aiortc's depayloaders hand them over."""

from __future__ import annotations

H264_IDR = 5
H264_SPS = 7


def h264_nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex-B access unit (start codes 00 00 01 / 00 00 00 01)."""
    types = []
    i = data.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(data):
        types.append(data[i + 3] & 0x1F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return types


def is_keyframe(codec: str, data: bytes) -> bool:
    """True for frames a decoder can start from. Audio frames always are."""
    name = codec.lower()
    if name == "h264":
        return H264_IDR in h264_nal_types(data)
    if name == "vp8":
        return bool(data) and data[0] & 0x01 == 0
    return True
