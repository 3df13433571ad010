"""What the media plane did since the process started, for /metrics (server/metrics.py).

Plain integers bumped on the forwarding path (one addition per frame); the metrics
endpoint reads them when scraped. They only grow, as Prometheus counters must.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("audio", "video")


def _by_kind() -> dict[str, int]:
    return dict.fromkeys(KINDS, 0)


@dataclass
class MediaCounters:
    #: frames (and their bytes) handed to subscribers' senders
    forwarded_frames: dict[str, int] = field(default_factory=_by_kind)
    forwarded_bytes: dict[str, int] = field(default_factory=_by_kind)
    #: frames dropped because a subscriber's queue was full or video waited for a keyframe
    queue_drops: dict[str, int] = field(default_factory=_by_kind)
    #: PLI/FIR received from subscribers, and PLIs sent to publishers
    keyframe_requests_received: int = 0
    keyframe_requests_sent: int = 0
    #: sequence numbers subscribers asked to have retransmitted (NACK)
    nacked_packets: int = 0
    #: video subscriptions paused because their subscriber's link was congested, and
    #: resumed (server/media/congestion.py)
    video_pauses: int = 0
    video_resumes: int = 0
