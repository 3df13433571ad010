"""Forwarding encoded frames: one ForwardTrack per subscription, bounded, keyframe-aware."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tiaojie.server.media.counters import MediaCounters

#: Queue bounds: about 1.5 s of video at 20-30 fps, 1 s of 20 ms Opus frames.
MAX_QUEUED = {"video": 40, "audio": 50}


class ForwardTrack(MediaStreamTrack):
    """What an RTCRtpSender sends to one subscriber: encoded packets from a publication.

    `push` never blocks the publisher. When the queue is full (a slow subscriber), video
    drops everything queued and waits for the next keyframe; audio drops its oldest frame.
    Video also waits for a keyframe at the start and after `switch_source`. Each wait
    calls `on_keyframe_needed` once, at its first dropped frame (the caller rate-limits
    the PLIs it sends). Timestamps are rebased when the source changes (a reused
    transceiver), so the subscriber always sees them move forward.
    """

    def __init__(
        self,
        kind: str,
        on_keyframe_needed: Callable[[], None] | None = None,
        counters: MediaCounters | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.counters = counters or MediaCounters()
        self.on_keyframe_needed = on_keyframe_needed
        self.dropped = 0
        self.forwarded = 0
        self._queue: deque[av.Packet] = deque()
        self._ready = asyncio.Event()
        self._waiting_keyframe = kind == "video"
        self._asked_keyframe = False  # on_keyframe_needed called during this wait
        self._max = MAX_QUEUED[kind]
        self._offset = 0  # added to source pts
        self._last_out: int | None = None
        self._rebase = False

    def switch_source(self) -> None:
        """The next packets come from another publication: rebase, wait for a keyframe."""
        self._drop(len(self._queue))
        self._queue.clear()
        self._rebase = self._last_out is not None
        self._wait_keyframe()

    def _wait_keyframe(self) -> None:
        if self.kind == "video":
            self._waiting_keyframe = True
            self._asked_keyframe = False

    def _drop_waiting(self) -> None:
        """A video frame dropped while waiting for a keyframe: ask for one, once."""
        self._drop(1)
        if not self._asked_keyframe:
            self._asked_keyframe = True
            if self.on_keyframe_needed is not None:
                self.on_keyframe_needed()

    def push(self, packet: av.Packet) -> None:
        if self.readyState != "live":
            return
        if self._waiting_keyframe:
            if not packet.is_keyframe:
                self._drop_waiting()
                return
            self._waiting_keyframe = False
        if len(self._queue) >= self._max:
            if self.kind == "video":
                # Frames depend on the ones before: drop them all, restart at a keyframe.
                self._drop(len(self._queue))
                self._queue.clear()
                if not packet.is_keyframe:
                    self._wait_keyframe()
                    self._drop_waiting()
                    return
            else:
                self._queue.popleft()
                self._drop(1)
        if self._rebase and self._last_out is not None and packet.pts is not None:
            step = 3000 if self.kind == "video" else 960
            self._offset = self._last_out + step - packet.pts
            self._rebase = False
        if self._offset:
            packet = _shifted(packet, self._offset)
        self._queue.append(packet)
        self._ready.set()

    async def recv(self) -> av.Packet:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        packet = self._queue.popleft()
        self._last_out = packet.pts
        self.forwarded += 1
        self.counters.forwarded_frames[self.kind] += 1
        self.counters.forwarded_bytes[self.kind] += packet.size
        return packet

    def _drop(self, count: int) -> None:
        self.dropped += count
        self.counters.queue_drops[self.kind] += count

    def stop(self) -> None:
        super().stop()
        self._ready.set()


def _shifted(packet: av.Packet, offset: int) -> av.Packet:
    """A copy with moved timestamps (the original is shared with other subscribers)."""
    copy = av.Packet(bytes(packet))
    copy.pts = copy.dts = (packet.pts or 0) + offset
    copy.time_base = packet.time_base
    copy.is_keyframe = packet.is_keyframe
    return copy
