"""A subscriber's link: pause its video before its audio suffers.

The SFU forwards what publishers send; a subscriber on a slow link (a phone on a weak
mobile signal) cannot take it all, and its audio waits in the same full queue as the
video and is dropped with it. The subscriber's receiver reports (RTCP RR: Chromium sends
several a second for video, one every few seconds for audio) say how it goes: the round
trip grows while a queue on the way fills, and packets are lost once it overflows.
`CongestionGuard` reads them, as LiveKit's stream allocator pauses video layers when the
estimate falls short (audio is never paused):

* queueing delay: the smallest round trip of the last RTT_WINDOW_S over the smallest of
  the last BASE_WINDOW_S, less the shortest lag of this server's event loop in the last
  RTT_WINDOW_S (`LoopLag`: a report read late looks like a long round trip; a loop
  that was late all the time made every report look that much longer). Taking the
  smallest of a second ignores the spikes a starved CPU adds to single measurements; a
  filling queue delays every packet, the smallest too;
* loss: packets lost over packets expected, from the reports' running counts, over the
  last LOSS_WINDOW_S (every stream) and AUDIO_WINDOW_S (audio alone): per time, not per
  report, however often reports come;
* congested: a queueing delay above QUEUE_DELAY_S while more than LOSS is lost (the queue
  overflows), or more than AUDIO_LOSS of the audio lost alone (a queue too small to
  delay), for SUSTAIN_S. A round trip that grows with nothing lost is not acted on,
  however long: it is what a busy server measures too (the round trip includes the
  time its event loop takes to read the report; a loaded test machine showed over a
  second on loopback), and nothing is lost then that pausing would save;
* congested, and no pause in the last STEP_S: pause one more video subscription (cameras
  before screens, the largest bitrate first);
* settled (no queueing delay above QUEUE_DELAY_S, no loss above LOSS or AUDIO_LOSS) for
  `hold` seconds with something paused: resume the one paused last (a probe). Congestion
  within PROBE_S of a probe pauses it again at once and doubles `hold` (HOLD_S up to
  MAX_HOLD_S); a probe that lasts brings `hold` back to HOLD_S.

Random loss (a lossy radio link without a queue) raises neither signal much: pausing
video would not help the audio then, and the guard leaves it alone below AUDIO_LOSS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Protocol

log = logging.getLogger(__name__)

#: Queueing delay (see above) that, with loss, means a queue is overflowing.
QUEUE_DELAY_S = 0.2
#: Lost packets over expected ones (every stream, after retransmissions) that, with a
#: queueing delay, means the queue overflows: above what a radio link loses at random.
LOSS = 0.05
#: Audio lost over expected that random loss alone rarely reaches (radio links lose a
#: few per cent; a 10 % link, rare, may see its video paused for nothing).
AUDIO_LOSS = 0.10
RTT_WINDOW_S = 1.0
BASE_WINDOW_S = 60.0
LOSS_WINDOW_S = 2.0
#: Chromium reports on audio every 5 s or so: the window holds two reports.
AUDIO_WINDOW_S = 11.0
#: Congested this long before acting (one report can be a burst).
SUSTAIN_S = 1.0
#: At most one pause this often: the queue needs that long to drain after one.
STEP_S = 2.0
#: Calm this long before the first probe; doubled by each failed probe, up to MAX_HOLD_S.
HOLD_S = 10.0
MAX_HOLD_S = 120.0
#: Congestion this soon after a probe means the probe failed.
PROBE_S = 5.0


class Pausable(Protocol):
    """A video subscription the guard may pause (server/media/sfu.py Slot)."""

    @property
    def screen(self) -> bool: ...

    def bitrate(self, now: float) -> float: ...


class RateMeter:
    """Bits per second over the last few seconds (one-second buckets)."""

    def __init__(self, seconds: int = 3) -> None:
        self.seconds = seconds
        self._buckets: deque[tuple[int, int]] = deque()  # (second, bytes)

    def add(self, size: int, now: float) -> None:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1] = (second, self._buckets[-1][1] + size)
        else:
            self._buckets.append((second, size))
            while self._buckets and self._buckets[0][0] <= second - self.seconds:
                self._buckets.popleft()

    def rate(self, now: float) -> float:
        since = int(now) - self.seconds
        return sum(size for second, size in self._buckets if second > since) * 8 / self.seconds


class WindowMin:
    """The smallest value added in the last `seconds` (a monotonic deque)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._values: deque[tuple[float, float]] = deque()  # (at, value), increasing value

    def add(self, value: float, now: float) -> float:
        while self._values and self._values[-1][1] >= value:
            self._values.pop()
        self._values.append((now, value))
        return self.min(now)

    def min(self, now: float) -> float:
        while self._values and self._values[0][0] < now - self.seconds:
            self._values.popleft()
        return self._values[0][1] if self._values else 0.0


class LossWindow:
    """Packets lost over packets expected in the last `seconds`, from running counts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deltas: deque[tuple[float, int, int]] = deque()  # (at, lost, expected)

    def add(self, lost: int, expected: int, now: float) -> None:
        if expected > 0:
            self._deltas.append((now, lost, expected))

    def ratio(self, now: float) -> float:
        while self._deltas and self._deltas[0][0] < now - self.seconds:
            self._deltas.popleft()
        expected = sum(d[2] for d in self._deltas)
        return sum(d[1] for d in self._deltas) / expected if expected else 0.0


class LoopLag:
    """How late this event loop runs a callback, sampled every TICK_S: a busy server
    reads receiver reports late, and that time would count as queueing delay."""

    TICK_S = 0.05

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lags = WindowMin(RTT_WINDOW_S)
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        if self._handle is None:
            self._schedule()

    def _schedule(self) -> None:
        self._due = self.clock() + self.TICK_S
        self._handle = asyncio.get_running_loop().call_later(self.TICK_S, self._tick)

    def _tick(self) -> None:
        now = self.clock()
        self._lags.add(max(0.0, now - self._due), now)
        self._schedule()

    def recent(self) -> float:
        """The shortest lag of the last RTT_WINDOW_S (seconds): what every report read
        in that time was at least late by, as the smallest round trip is taken."""
        return self._lags.min(self.clock())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class CongestionGuard:
    """Reads one subscriber connection's receiver reports and pauses or resumes its video
    subscriptions through `pause` and `resume`; `active` lists the video subscriptions
    that are forwarding now (not paused, not withheld)."""

    def __init__(
        self,
        active: Callable[[], list[Pausable]],
        pause: Callable[[Pausable], None],
        resume: Callable[[Pausable], None],
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
        loop_lag: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.name = name  # whose link, for the debug log
        self.loop_lag = loop_lag
        self.active = active
        self._pause = pause
        self._resume = resume
        self.clock = clock
        #: paused by this guard, oldest first
        self.paused: list[Pausable] = []
        self.hold = HOLD_S
        #: the last figures (for the log and the tests)
        self.queue_delay = 0.0
        self.loss = 0.0
        self.audio_loss = 0.0
        self._counts: dict[Hashable, tuple[int, int]] = {}  # stream -> (lost, highest)
        self._loss = LossWindow(LOSS_WINDOW_S)
        self._audio_loss = LossWindow(AUDIO_WINDOW_S)
        self._recent_rtt = WindowMin(RTT_WINDOW_S)
        self._base_rtt = WindowMin(BASE_WINDOW_S)
        self._congested_since: float | None = None
        self._last_pause = float("-inf")
        self._last_congested = float("-inf")
        self._last_unsettled = float("-inf")
        self._probe_at: float | None = None

    def report(
        self, stream: Hashable, kind: str, lost: int, highest: int, rtt: float | None
    ) -> None:
        """A receiver report block about one of this connection's streams: its running
        count of lost packets, its highest sequence number (extended), the round trip."""
        now = self.clock()
        before = self._counts.get(stream)
        self._counts[stream] = (lost, highest)
        if before is not None:
            expected = highest - before[1]
            if 0 < expected < 1 << 15:  # else a restarted or reordered stream
                missing = min(max(lost - before[0], 0), expected)
                self._loss.add(missing, expected, now)
                if kind == "audio":
                    self._audio_loss.add(missing, expected, now)
        if rtt is not None:
            recent, base = self._recent_rtt.add(rtt, now), self._base_rtt.add(rtt, now)
            self.queue_delay = max(0.0, recent - base - self.loop_lag())
        self.loss = self._loss.ratio(now)
        self.audio_loss = self._audio_loss.ratio(now)
        congested = (
            self.queue_delay > QUEUE_DELAY_S and self.loss > LOSS
        ) or self.audio_loss > AUDIO_LOSS
        if log.isEnabledFor(logging.DEBUG):  # several reports a second per subscriber
            self._log_report(kind, rtt)
        if self.queue_delay > QUEUE_DELAY_S or self.loss > LOSS or self.audio_loss > AUDIO_LOSS:
            self._last_unsettled = now
        if not congested:
            self._congested_since = None
            self._calm(now)
            return
        if self._congested_since is None:
            self._congested_since = now
        if now - self._congested_since >= SUSTAIN_S:
            self._last_congested = now
            self._congested(now)

    def forget(self, subscription: Pausable) -> None:
        """`subscription` ended (or was withheld): nothing to resume."""
        if subscription in self.paused:
            self.paused.remove(subscription)

    def _congested(self, now: float) -> None:
        failed_probe = self._probe_at is not None and now - self._probe_at <= PROBE_S
        if failed_probe:
            self.hold = min(self.hold * 2, MAX_HOLD_S)
        self._probe_at = None
        if now - self._last_pause < STEP_S and not failed_probe:
            return
        candidates = self.active()
        if not candidates:
            return
        # cameras before screens (a shared document matters more), the largest first
        victim = max(candidates, key=lambda s: (not s.screen, s.bitrate(now)))
        self.paused.append(victim)
        self._last_pause = now
        self._pause(victim)

    def _calm(self, now: float) -> None:
        if self._probe_at is not None and now - self._probe_at > PROBE_S:
            self.hold = HOLD_S  # the probe lasted
            self._probe_at = None
        if not self.paused:
            return
        if now - max(self._last_unsettled, self._last_pause) < self.hold:
            return
        subscription = self.paused.pop()
        self._probe_at = now
        self._resume(subscription)

    def _log_report(self, kind: str, rtt: float | None) -> None:
        log.debug(
            "%s %s report: rtt %s, queueing delay %.3f, loss %.3f, audio loss %.3f",
            self.name,
            kind,
            "-" if rtt is None else f"{rtt:.3f}",
            self.queue_delay,
            self.loss,
            self.audio_loss,
        )
