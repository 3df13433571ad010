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
import logging
from collections.abc import Iterator

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
