"""SDP from clients: read once, before aiortc uses it, so any malformed line is the
sender's `bad_sdp` error and never an exception inside the media plane.

aiortc's parser answers a bad line with whatever the line makes it raise (`a=setup:bogus`
is a KeyError, a short `a=rtpmap` an IndexError, a bad `c=` an AssertionError), and
`setRemoteDescription` raises ValueError for a description it cannot use, and for one
that passes its checks but not its use, AttributeError or OperationError from deep
inside; `applying` turns all of them into the sender's `bad_sdp`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Collection, Iterator

from aiortc import RTCDtlsFingerprint, RTCDtlsParameters, RTCIceParameters
from aiortc.sdp import GroupDescription, SessionDescription

from tiaojie.server.errors import TiaojieError

log = logging.getLogger(__name__)


def bad_sdp(kind: str, error: BaseException) -> TiaojieError:
    """The sender's error for an `kind` ("offer", "answer") aiortc could not read or use."""
    detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
    return TiaojieError("bad_sdp", f"The {kind} could not be used: {detail}")


def parse(sdp: str, kind: str) -> SessionDescription:
    """`sdp` parsed, with at least one media section, or `bad_sdp`."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception as error:  # the parser's errors are the sender's (module docstring)
        log.info("refused an SDP %s: %s: %s", kind, type(error).__name__, str(error)[:120])
        raise bad_sdp(kind, error) from None
    if not description.media:
        raise TiaojieError("bad_sdp", f"The {kind} has no media section.")
    for media in description.media:
        if media.port == 0:  # a rejected section carries no transport
            continue
        # aiortc asserts on these later, in a task of its own (a traceback, no answer)
        if media.dtls is None or not media.dtls.fingerprints:
            raise TiaojieError("bad_sdp", f"A media section of the {kind} has no DTLS fingerprint.")
        if media.ice is None or not (media.ice.usernameFragment and media.ice.password):
            raise TiaojieError("bad_sdp", f"A media section of the {kind} has no ICE credentials.")
    return description


@contextlib.contextmanager
def applying(kind: str) -> Iterator[None]:
    """Around aiortc using a client's `kind` ("offer", "answer"): whatever it raises is
    `bad_sdp`, logged as one line."""
    try:
        yield
    except TiaojieError:
        raise
    except Exception as error:  # aiortc's errors on a client's description: module docstring
        log.info("aiortc refused an SDP %s: %s: %s", kind, type(error).__name__, str(error)[:120])
        raise bad_sdp(kind, error) from None


def video_codecs(description: SessionDescription) -> dict[str, list[str]]:
    """The video codecs (mime types, no RTX/FEC) of each video m-section, by mid, in the
    sender's order: what a publisher could send instead (a backup codec)."""
    return {
        media.rtp.muxId: [
            c.mimeType
            for c in media.rtp.codecs
            if c.mimeType.split("/")[-1].lower() not in ("rtx", "red", "ulpfec", "flexfec-03")
        ]
        for media in description.media
        if media.kind == "video" and media.rtp.muxId
    }


#: Why a subscriber cannot receive a publication (`unavailable` in docs/PROTOCOL.md).
CODEC_UNSUPPORTED = "codec_unsupported"


def rejected_mids(answer: str) -> list[str]:
    """The mids an answer rejects (port 0: e.g. a browser that decodes none of the codecs)."""
    return [m.rtp.muxId for m in SessionDescription.parse(answer).media if m.port == 0]


def accept_rejected(answer: str, offer: str, idle: Collection[str] = ()) -> tuple[str, list[str]]:
    """`answer` made usable by aiortc, and the mids it rejects (port 0) or that are `idle`.

    A browser answers an m-section it cannot decode (Firefox without OpenH264, Chromium
    without proprietary codecs, offered H264 only) with port 0 and no ICE or DTLS
    attributes; aiortc has no notion of a rejected section and refuses the whole answer
    ("ICE username fragment or password is missing"). Each such section, and each of
    `idle` (rejected earlier; `reject_in_offer` offers it as rejected), becomes an
    inactive one on the bundle's transport, with the offer's codecs: nothing flows on it,
    and the rest of the connection works.
    """
    description = SessionDescription.parse(answer)
    offered = SessionDescription.parse(offer).media
    by_mid = {m.rtp.muxId: m for m in offered}
    rejected = []
    for index, media in enumerate(description.media):
        if not media.rtp.muxId and index < len(offered):  # a=mid is optional when rejected
            media.rtp.muxId = offered[index].rtp.muxId
        if media.port == 0 or media.rtp.muxId in idle:
            rejected.append(media)
    if not rejected:
        return answer, []
    live = next((m for m in description.media if m not in rejected), None)
    for media in description.media:
        if media.rtcp_mux and media.rtcp_port is None:
            # aiortc writes a=rtcp-mux only with an a=rtcp line, which Firefox leaves out:
            # without one the rewritten answer would lose its RTCP mux and be refused
            media.rtcp_port, media.rtcp_host = 9, "0.0.0.0"
    for media in rejected:
        template = by_mid.get(media.rtp.muxId)
        if template is not None:
            media.rtp.codecs = copy.deepcopy(template.rtp.codecs)
            media.fmt = [c.payloadType for c in media.rtp.codecs]
        media.rtp.headerExtensions = []
        media.port = 9
        media.direction = "inactive"
        media.host = media.host or "0.0.0.0"
        # aiortc writes a=rtcp-mux only with an a=rtcp line
        media.rtcp_port, media.rtcp_host, media.rtcp_mux = 9, "0.0.0.0", True
        media.ssrc, media.ssrc_group, media.msid = [], [], None
        media.ice_candidates, media.ice_candidates_complete = [], False
        if live is not None:
            media.ice, media.dtls = copy.deepcopy(live.ice), copy.deepcopy(live.dtls)
        else:  # nothing accepted: no transport at all, ICE just never connects
            media.ice = RTCIceParameters(usernameFragment="idle", password="idle" * 6)
            media.dtls = RTCDtlsParameters(
                fingerprints=[RTCDtlsFingerprint("sha-256", ":".join(["00"] * 32))],
                role="client",
            )
    # aiortc's max-bundle transport is its first transceiver's: the bundle must stay
    # tagged with the offer's first mid, even when that section is the rejected one (a
    # different tag makes aiortc stop that transport as a bundled-away one)
    description.group = [g for g in description.group if g.semantic != "BUNDLE"]
    description.group.append(GroupDescription("BUNDLE", [m.rtp.muxId for m in offered]))
    return str(description), [m.rtp.muxId for m in rejected]


def reject_in_offer(offer: str, mids: Collection[str]) -> str:
    """`offer` with `mids` rejected (port 0, out of the bundle), as a browser expects an
    m-section it rejected to stay rejected in later offers."""
    if not mids:
        return offer
    description = SessionDescription.parse(offer)
    for media in description.media:
        if media.rtp.muxId in mids:
            media.port = 0
            media.direction = "inactive"
            media.ice_candidates, media.ice_candidates_complete = [], False
    for group in description.group:
        if group.semantic == "BUNDLE":
            group.items = [mid for mid in group.items if mid not in mids]
    return str(description)
