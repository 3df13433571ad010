"""Answering as a browser that cannot decode some codecs does: the m-sections of a
subscriber offer whose codecs the client cannot decode are rejected (port 0, no
transport), as Firefox without OpenH264 answers an H264-only video section."""

from __future__ import annotations

from collections.abc import Collection

from aiortc.sdp import SessionDescription

_NOT_MEDIA = {"rtx", "red", "ulpfec", "flexfec-03"}


def undecodable_mids(offer: str, decodes: Collection[str]) -> list[str]:
    """The mids of `offer` none of whose media codecs is in `decodes` (mime types)."""
    wanted = {mime.lower() for mime in decodes}
    mids = []
    for media in SessionDescription.parse(offer).media:
        codecs = [c.mimeType.lower() for c in media.rtp.codecs]
        real = [c for c in codecs if c.split("/")[-1] not in _NOT_MEDIA]
        if real and not set(real) & wanted:
            mids.append(media.rtp.muxId)
    return mids


def reject_sections(answer: str, mids: Collection[str]) -> str:
    """`answer` with the sections of `mids` rejected the way a browser writes it."""
    if not mids:
        return answer
    head, *sections = answer.split("\r\nm=")
    lines = []
    for line in head.split("\r\n"):
        if line.startswith("a=group:BUNDLE "):
            kept = [mid for mid in line.split()[1:] if mid not in mids]
            line = " ".join(["a=group:BUNDLE", *kept])
        lines.append(line)
    out = ["\r\n".join(lines)]
    for section in sections:
        mid = next((a[6:] for a in section.split("\r\n") if a.startswith("a=mid:")), None)
        if mid in mids:
            kind = section.split(" ", 1)[0]
            section = (
                f"{kind} 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\na=mid:{mid}"
            )
        out.append(section)
    text = "\r\nm=".join(out)
    return text if text.endswith("\r\n") else text + "\r\n"
