"""SDP from clients: read once, before aiortc uses it, so any malformed line is the
sender's `bad_sdp` error and never an exception inside the media plane.

aiortc's parser answers a bad line with whatever the line makes it raise (`a=setup:bogus`
is a KeyError, a short `a=rtpmap` an IndexError, a bad `c=` an AssertionError), and
`setRemoteDescription` raises ValueError for a description it cannot use.
"""

from __future__ import annotations

import logging

from aiortc.sdp import SessionDescription

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
    return description
