"""Keyframe detection: on encoded frames as aiortc's depayloaders hand them over, and on
RTP payloads as the packet forwarding path sees them."""

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


# -- on RTP payloads, as the forwarding path sees them (no depayloading) --------------------

H264_STAP_A = 24
H264_FU_A = 28
#: A forwarded video stream may start at a packet carrying one of these (RFC 6184): an
#: IDR slice, or the sequence parameter set that precedes one.
_H264_STARTS = (H264_IDR, H264_SPS)


def _h264_starts(nal: bytes) -> bool:
    """An SPS, or the first slice (first_mb_in_slice 0, the slice header's first bit set)
    of an IDR picture: `nal` is a NAL unit (or an FU-A's first fragment, FU header first)."""
    nal_type = nal[0] & 0x1F
    if nal_type == H264_SPS:
        return True
    return nal_type == H264_IDR and len(nal) > 1 and nal[1] & 0x80 != 0


def h264_packet_starts_keyframe(payload: bytes) -> bool:
    """True if an H264 RTP payload (RFC 6184) begins a keyframe: a single NAL unit that is
    an SPS or an IDR picture's first slice, a STAP-A aggregating one, or the first
    fragment (FU-A, S bit) of such a slice. Later slices of a picture do not count: a
    subscriber starting there would miss the first."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type == H264_STAP_A:
        pos = 1
        while pos + 2 < len(payload):
            size = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if size == 0 or pos + size > len(payload):
                return False  # malformed
            if _h264_starts(payload[pos : pos + size]):
                return True
            pos += size
        return False
    if nal_type == H264_FU_A:
        # the FU header stands where the NAL header would: start bit and the NAL type
        return len(payload) >= 2 and payload[1] & 0x80 != 0 and _h264_starts(payload[1:])
    return _h264_starts(payload)


def vp8_payload_offset(payload: bytes) -> int | None:
    """Where the VP8 data begins after the payload descriptor (RFC 7741), or None if
    the descriptor is malformed."""
    if not payload:
        return None
    pos = 1
    if payload[0] & 0x80:  # X: an extension byte with I, L, T, K
        if len(payload) < 2:
            return None
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture ID, 7 or 15 bits (M)
            if len(payload) <= pos:
                return None
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    return pos if pos < len(payload) else None


def vp8_packet_starts_keyframe(payload: bytes) -> bool:
    """True if a VP8 RTP payload begins a keyframe: the start of partition 0 (S set, PID
    0) whose frame tag has the P (inter frame) bit clear."""
    if not payload or payload[0] & 0x17 != 0x10:  # S=1, PID=0
        return False
    offset = vp8_payload_offset(payload)
    return offset is not None and payload[offset] & 0x01 == 0


def packet_starts_keyframe(codec: str, payload: bytes) -> bool:
    """True for RTP payloads a subscriber may start decoding at (`codec`: "H264" or a mime
    type such as "video/VP8"). Audio: every one."""
    name = codec.lower().rpartition("/")[2]
    if name == "h264":
        return h264_packet_starts_keyframe(payload)
    if name == "vp8":
        return vp8_packet_starts_keyframe(payload)
    return True
