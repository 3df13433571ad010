"""CongestionGuard (server/media/congestion.py): what it pauses and resumes, and when.

The guard is fed receiver reports as a subscriber's browser sends them; a clock we move
stands for the time between them. The browser test that shows it on a real slow link is
tests/test_network_impaired.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tiaojie.server.media import congestion
from tiaojie.server.media.congestion import CongestionGuard, LoopLag, RateMeter

BASE_RTT = 0.15


@dataclass(eq=False)
class Video:
    name: str
    screen: bool = False
    rate: float = 500_000.0
    paused: bool = False

    def bitrate(self, now: float) -> float:
        return self.rate


class Link:
    """A subscriber with some video subscriptions, and the guard watching its reports."""

    def __init__(self, *videos: Video, loop_lag: float = 0.0) -> None:
        self.videos = list(videos)
        self.now = 1000.0
        self.events: list[tuple[str, str]] = []
        self.counts: dict[str, tuple[int, float]] = {}  # kind -> (sent, lost)
        self.guard = CongestionGuard(
            lambda: [v for v in self.videos if not v.paused],
            self._pause,
            self._resume,
            clock=lambda: self.now,
            loop_lag=lambda: loop_lag,
        )

    def _pause(self, video: object) -> None:
        assert isinstance(video, Video)
        video.paused = True
        self.events.append(("pause", video.name))

    def _resume(self, video: object) -> None:
        assert isinstance(video, Video)
        video.paused = False
        self.events.append(("resume", video.name))

    def reports(self, seconds: float, *, rtt: float = BASE_RTT, lost: float = 0.0) -> None:
        """Reports as a browser sends them for `seconds` while `lost` of the packets are
        lost: about video every 0.25 s (a stream of 200 packets a second), about audio
        every 5 s (50 a second)."""
        end = self.now + seconds - 1e-9
        while self.now < end:
            self.now += 0.25
            self.report("video", 50, lost, rtt)
            if round(self.now * 4) % 20 == 0:
                self.report("audio", 250, lost, rtt)

    def report(self, kind: str, packets: int, lost: float, rtt: float) -> None:
        sent, missing = self.counts.get(kind, (0, 0.0))
        sent, missing = sent + packets, missing + packets * lost
        self.counts[kind] = (sent, missing)
        self.guard.report(kind, kind, int(missing), sent, rtt)


def test_a_filling_queue_that_drops_pauses_video_one_step_at_a_time() -> None:
    link = Link(Video("camera", rate=300_000), Video("big", rate=900_000))
    link.reports(5)  # a calm link sets the base round trip
    assert link.events == []
    # the queue fills and overflows: the round trip grows by 0.6 s, packets are lost
    while not link.events:
        link.reports(0.25, rtt=BASE_RTT + 0.6, lost=0.2)
    assert link.events == [("pause", "big")]  # the largest first
    # once every round trip of a window is long, and that lasted SUSTAIN_S
    assert link.now == 1005 + 0.25 + congestion.RTT_WINDOW_S + congestion.SUSTAIN_S
    link.reports(congestion.STEP_S - 0.25, rtt=BASE_RTT + 0.6, lost=0.2)
    assert link.events == [("pause", "big")]  # one step, then time for the queue to drain
    link.reports(0.25, rtt=BASE_RTT + 0.6, lost=0.2)
    assert link.events == [("pause", "big"), ("pause", "camera")]
    link.reports(10, rtt=BASE_RTT + 0.6, lost=0.2)
    assert len(link.events) == 2  # nothing left to pause: audio is never touched


def test_cameras_are_paused_before_a_screen_share() -> None:
    link = Link(Video("screen", screen=True, rate=2_000_000), Video("camera", rate=200_000))
    link.reports(3)
    link.reports(3, rtt=BASE_RTT + 0.5, lost=0.1)
    assert link.events == [("pause", "camera")]


def test_random_loss_or_a_slow_cpu_alone_pause_nothing() -> None:
    link = Link(Video("camera"))
    link.reports(3)
    # a lossy radio link: 7 % lost, no queue
    link.reports(30, lost=0.07)
    link.reports(3)
    # a starved CPU: the round trip grows by over a second, nothing is lost
    link.reports(30, rtt=BASE_RTT + 1.2)
    assert link.events == []
    # a burst of a second is not congestion
    link.reports(1, rtt=BASE_RTT + 0.8, lost=0.5)
    link.reports(3)
    assert link.events == []


def test_heavy_audio_loss_alone_pauses_video() -> None:
    link = Link(Video("camera"))
    link.reports(3)
    link.reports(12, lost=0.3)  # a queue with no room to delay: tail drops only
    assert link.events == [("pause", "camera")]


def test_probes_back_off_while_the_link_stays_slow_and_reset_once_it_recovers() -> None:
    link = Link(Video("camera"))
    link.reports(3)
    link.reports(3, rtt=BASE_RTT + 0.6, lost=0.2)
    assert link.events == [("pause", "camera")]
    # while the queue drains (a long round trip, nothing lost), nothing is resumed
    link.reports(congestion.HOLD_S + 1, rtt=BASE_RTT + 0.5)
    assert link.events[-1] == ("pause", "camera")
    # calm while paused: resumed after HOLD_S (a probe)
    link.reports(congestion.HOLD_S - 1)
    assert link.events[-1] == ("pause", "camera")
    link.reports(1.5)
    assert link.events[-1] == ("resume", "camera")
    # the probe congests the link again: paused, and the next probe waits twice as long
    link.reports(3, rtt=BASE_RTT + 0.6, lost=0.2)
    assert link.events[-1] == ("pause", "camera")
    assert link.guard.hold == 2 * congestion.HOLD_S
    link.reports(congestion.HOLD_S + 1)
    assert link.events[-1] == ("pause", "camera")
    # (settled once the loss window has forgotten the lost packets)
    link.reports(congestion.HOLD_S + congestion.LOSS_WINDOW_S)
    assert link.events[-1] == ("resume", "camera")
    # this time the link took it: the next congestion starts from HOLD_S again
    link.reports(congestion.PROBE_S + 1)
    assert link.guard.hold == congestion.HOLD_S
    assert link.events.count(("resume", "camera")) == 2


def test_the_base_round_trip_follows_a_route_change() -> None:
    link = Link(Video("camera"))
    link.reports(3, rtt=0.02)
    # the route changes to a longer one, lossy at first: taken for an overflowing queue
    link.reports(10, rtt=0.5, lost=0.08)
    assert link.events == [("pause", "camera")]
    # the loss goes back to a radio link's few per cent; once the window has forgotten
    # the old route, 0.5 s is the base, the link is settled, the camera comes back
    link.reports(congestion.BASE_WINDOW_S + congestion.MAX_HOLD_S, rtt=0.5, lost=0.03)
    assert link.guard.queue_delay == 0.0
    assert link.events[-1] == ("resume", "camera") and not link.videos[0].paused


def test_rate_meter_counts_the_last_seconds() -> None:
    meter = RateMeter(seconds=2)
    for tenth in range(30):  # 1000 bytes every 0.1 s for 3 s
        meter.add(1000, 100.0 + tenth / 10)
    assert meter.rate(102.95) == 2 * 10 * 1000 * 8 / 2
    assert meter.rate(110.0) == 0.0


def test_a_busy_server_is_not_taken_for_a_slow_link() -> None:
    # reports read 0.5 s late by a busy event loop, with a lossy link: no queue
    busy = Link(Video("camera"), loop_lag=0.5)
    busy.reports(3)
    busy.reports(10, rtt=BASE_RTT + 0.5, lost=0.07)
    assert busy.events == []
    # the same reports on a server that reads them in time: a queue that overflows
    idle = Link(Video("camera"))
    idle.reports(3)
    idle.reports(10, rtt=BASE_RTT + 0.5, lost=0.07)
    assert idle.events == [("pause", "camera")]


async def test_loop_lag_sees_a_blocked_event_loop() -> None:
    lag = LoopLag()
    lag.start()
    try:
        await asyncio.sleep(3 * LoopLag.TICK_S)
        # a loop busy for a second and more: every tick late
        for _ in range(25):
            time.sleep(0.1)  # noqa: ASYNC251 - the blocked loop is what is measured
            await asyncio.sleep(0)
        assert lag.recent() >= 0.05
    finally:
        lag.stop()
