"""What the media plane did since the process started, for /metrics (server/metrics.py).

Plain integers bumped on the forwarding path (one addition per frame); the metrics
endpoint reads them when scraped. They only grow, as Prometheus counters must.

Forwarded packets (packet plane) are not bumped per packet: each subscription's track
counts its own (Python's sends plus its rtc/_fastpath.c Route's `forwarded`), so the
running ones are summed when scraped and an ended one adds its count once, when it
stops (`forwarded_packets_now`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

KINDS = ("audio", "video")


def _by_kind() -> dict[str, int]:
    return dict.fromkeys(KINDS, 0)


class CountsPackets(Protocol):
    """A packet-plane subscription's track (server/media/forwarding.py ForwardTrack)."""

    kind: str

    @property
    def forwarded(self) -> int: ...


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
    #: packets sent to subscribers by the subscriptions that ended; the running ones
    #: (`sending`) are read when scraped
    forwarded_packets: dict[str, int] = field(default_factory=_by_kind)
    sending: set[CountsPackets] = field(default_factory=set)

    def started_sending(self, track: CountsPackets) -> None:
        """A packet-plane subscription is counted from now on (until `stopped_sending`)."""
        self.sending.add(track)

    def stopped_sending(self, track: CountsPackets) -> None:
        """Keep what an ended subscription sent (once, however often it is stopped)."""
        if track in self.sending:
            self.sending.discard(track)
            self.forwarded_packets[track.kind] += track.forwarded

    def forwarded_packets_now(self) -> dict[str, int]:
        """Packets forwarded to subscribers since the start, by kind: the ended
        subscriptions' and what the running ones have sent so far."""
        total = dict(self.forwarded_packets)
        for track in self.sending:
            total[track.kind] += track.forwarded
        return total
