"""Codec preferences: which of aiortc's codecs a transceiver offers, in order.

H264 with packetization-mode=1 is preferred for video because recordings remux it into MP4
without transcoding (DESIGN.md); VP8 is accepted for forwarding. Opus for audio. RTX follows
the chosen video codec so retransmissions keep working.
"""

from __future__ import annotations

from typing import Any

from aiortc import RTCRtpSender

#: What our own participants (the Python client, the recorder) publish.
PREFERRED = {"video": "video/H264", "audio": "audio/opus"}


def codec_preferences(kind: str, mime_type: str) -> list[Any]:
    """aiortc's capabilities of `mime_type` (single-NAL-unit H264 left out), then RTX."""
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [
        c
        for c in codecs
        if c.mimeType.lower() == mime_type.lower()
        and str(c.parameters.get("packetization-mode", "1")) == "1"
    ]
    rtx = [c for c in codecs if c.mimeType.lower() == f"{kind}/rtx"]
    return chosen + rtx


def h264_first(kind: str) -> list[Any]:
    """The preferences our own publishers use: H264 video, Opus audio."""
    return codec_preferences(kind, PREFERRED[kind])
