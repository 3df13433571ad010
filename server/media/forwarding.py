"""Forwarding to one subscription: a ForwardTrack per subscriber slot, keyframe-aware.

Two media planes (docs/decisions.md): packets (the default) rewrite and send each RTP
packet as it arrives (`ForwardTrack.forward`, through rtc.aiortc_internals.PacketSender);
frames (`--media-plane frames`) queue assembled frames that aiortc's sender packetizes
again (`push`/`recv`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from tiaojie.rtc.aiortc_internals import PacketSender, forward_routes, ntp_now
from tiaojie.rtc.rewrite import StreamMapping, vp8_picture_id, with_vp8_picture_id
from tiaojie.server.media.counters import MediaCounters

#: Queue bounds: about 1.5 s of video at 20-30 fps, 1 s of 20 ms Opus frames.
MAX_QUEUED = {"video": 40, "audio": 50}
#: Packet mode: packets held from a keyframe on until the subscriber can receive them
#: (about as long as MAX_QUEUED frames).
MAX_HELD = {"video": 400, "audio": 50}
CLOCK_RATES = {"video": 90000, "audio": 48000}
#: Packet mode: how long a running Route (rtc/_fastpath.c) sends before Python checks its
#: subscriber's connection again (a new ICE pair or SRTP session takes the stream back).
ROUTE_CHECK_S = 0.1


class ForwardTrack(MediaStreamTrack):
    """What an RTCRtpSender sends to one subscriber: encoded packets from a publication.

    `push` never blocks the publisher. When the queue is full (a slow subscriber), video
    drops everything queued and waits for the next keyframe; audio drops its oldest frame.
    Video also waits for a keyframe at the start and after `switch_source`. Each wait
    calls `on_keyframe_needed` once, at its first dropped frame (the caller rate-limits
    the PLIs it sends). Timestamps are rebased when the source changes (a reused
    transceiver), so the subscriber always sees them move forward.

    In packet mode (`use_packets`) nothing is queued: `forward` rewrites each RTP packet
    (rtc/rewrite.py StreamMapping: sequence numbers and timestamps continue across source
    changes and dropped packets, VP8 picture IDs too) and sends it at once; video waits
    for a packet that starts a keyframe just as frames do, and `recv` never returns.
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
        self._forwarded = 0
        self._queue: deque[av.Packet] = deque()
        self._ready = asyncio.Event()
        self._waiting_keyframe = kind == "video"
        self._asked_keyframe = False  # on_keyframe_needed called during this wait
        self._max = MAX_QUEUED[kind]
        self._offset = 0  # added to source pts
        self._last_out: int | None = None
        self._rebase = False
        self.sender: PacketSender | None = None
        self._mapping: StreamMapping | None = None
        self._vp8 = False
        self._held: list[RtpPacket] = []
        #: The steady state in C (rtc/_fastpath.c Route): once a run is under way, the
        #: publication hands this subscription's packets to `route` without calling
        #: `forward`, until `route_until` (monotonic time) passes or the run ends.
        self.route: Any = None
        self.route_until = 0.0

    @property
    def forwarded(self) -> int:
        """Packets (frames on the frames plane) sent to the subscriber, by either path."""
        route = self.route
        return self._forwarded + (route.forwarded if route is not None else 0)

    @forwarded.setter
    def forwarded(self, value: int) -> None:
        route = self.route
        self._forwarded = value - (route.forwarded if route is not None else 0)

    def use_packets(self, sender: PacketSender, codec: str) -> None:
        """Packet mode: `forward` sends rewritten RTP packets through `sender`."""
        self.sender = sender
        self._vp8 = codec.lower() == "video/vp8"
        # VP8's picture IDs are rewritten in Python: no Route for it
        self.route = None if self._vp8 else sender.route
        # like aiortc's sender: a random start, the sequence in its lower half (SRTP)
        self._mapping = StreamMapping(
            CLOCK_RATES[self.kind], random.randrange(1 << 15), random.randrange(1 << 32)
        )
        self.counters.started_sending(self)  # its packets, read when scraped (counters.py)

    @property
    def has_keyframe(self) -> bool:
        """A keyframe waits here for the subscriber's connection, or one went (or is
        queued) already since the last wait began: asking the publisher for another is
        not needed. Always true for audio."""
        return not self._waiting_keyframe or bool(self._held)

    def send_held(self) -> None:
        """Packet mode: the subscriber's connection can send now, so what is held for it
        (from a keyframe on) goes at once rather than with the publisher's next packet."""
        sender = self.sender
        if not self._held or sender is None or self.readyState != "live" or not sender.ready():
            return
        held, self._held = self._held, []
        ntp, now = ntp_now(), time.monotonic()
        for packet in held:
            self._start_or_send(packet, ntp, now)

    def switch_source(self) -> None:
        """The next packets come from another publication: rebase, wait for a keyframe."""
        self._take_back()
        self._drop(len(self._queue))
        self._queue.clear()
        self._drop(len(self._held))
        self._held.clear()
        self._rebase = self._last_out is not None
        if self._mapping is not None:
            self._mapping.restart()
        self._wait_keyframe()

    def still_routed(self, now: float) -> bool:
        """Packet mode, the Route's check is due (ROUTE_CHECK_S): True when its run may go
        on (the packet joins the publication's one batch for all running Routes, instead
        of a call and a system call of its own), else the stream is taken back."""
        route, sender = self.route, self.sender
        if route is None or not route.active or sender is None or self.readyState != "live":
            return False
        if sender.aimed():
            self.route_until = now + ROUTE_CHECK_S
            return True
        self._take_back()
        return False

    def forward(self, packet: RtpPacket, keyframe: bool, ntp: int, now: float) -> None:
        """Packet mode: rewrite `packet` for this subscriber and send it. `keyframe`: it
        starts a keyframe (always for audio); `ntp` and `now`: the time, as a 64-bit NTP
        time and on the monotonic clock.

        Until the subscriber's connection can send, the packets from the last keyframe
        on are held (at most MAX_HELD), as the frames plane's queue holds frames: a
        publisher that cannot answer keyframe requests (a file) would otherwise make a
        new subscriber wait a whole keyframe interval."""
        sender = self.sender
        if sender is None or self.readyState != "live":
            return
        route = self.route
        if route is not None and route.active:  # its check is due (ROUTE_CHECK_S)
            if sender.aimed():
                self.route_until = now + ROUTE_CHECK_S
                self.forward_through([route], packet, ntp, now)
                return
            self._take_back()
        if self._waiting_keyframe:
            if not sender.ready():
                if keyframe and not (
                    self._held and self._held[0].timestamp == packet.timestamp
                ):  # a new keyframe (not the next NAL unit of the one held)
                    self._drop(len(self._held))
                    self._held = [packet]
                elif self._held and len(self._held) < MAX_HELD[self.kind]:
                    self._held.append(packet)
                else:
                    self._drop(1)
                return
            if self._held:
                held, self._held = self._held, []
                keyframe = True
                for earlier in held:
                    self._start_or_send(earlier, ntp, now)
            if not keyframe:
                self._drop_waiting()
                return
        self._start_or_send(packet, ntp, now)

    def _start_or_send(self, packet: RtpPacket, ntp: int, now: float) -> None:
        """Send `packet`; if video waits for a keyframe, `packet` is one: end the wait."""
        mapping, sender = self._mapping, self.sender
        if mapping is None or sender is None:
            return
        if self._waiting_keyframe:
            self._waiting_keyframe = False
            mapping.restart()  # continue right after what was sent before the wait
        mapped = mapping.map(packet.sequence_number, packet.timestamp, now)
        if mapped is None:  # from before the keyframe (or the source) we started at
            self._drop(1)
            return
        payload = packet.payload
        if self._vp8:
            found = vp8_picture_id(payload)
            if found is not None:
                picture_id, bits, offset = found
                payload = with_vp8_picture_id(
                    payload, mapping.map_picture_id(picture_id, bits), bits, offset
                )
        seq, ts = mapped
        level = packet.extensions.audio_level
        if sender.send(packet.marker, seq, ts, payload, ntp, level, seq == mapping.last_seq):
            self._forwarded += 1
            if packet.marker or self.kind == "audio":
                self.counters.forwarded_frames[self.kind] += 1
            self.counters.forwarded_bytes[self.kind] += len(payload)
            route = self.route
            if route is not None and sender.aim_route():
                # the run is under way: the Route carries on from this packet
                route.start(*mapping.running_state())
                self.route_until = now + ROUTE_CHECK_S

    def forward_through(self, routes: list[Any], packet: RtpPacket, ntp: int, now: float) -> None:
        """Packet mode: send `packet` through the running Routes of several
        subscriptions at once (rtc/_fastpath.c: one call, one sendmmsg per socket),
        counting it as `forward` does."""
        frame = bool(packet.marker) or self.kind == "audio"
        mapped = forward_routes(routes, packet, ntp, now, frame)
        if frame:
            self.counters.forwarded_frames[self.kind] += mapped
        self.counters.forwarded_bytes[self.kind] += mapped * len(packet.payload)

    def _take_back(self) -> None:
        """End the Route's run: the Python mapping continues where it stopped."""
        route, mapping = self.route, self._mapping
        self.route_until = 0.0
        if route is not None and route.active and mapping is not None:
            mapping.resume(*route.stop())

    def _wait_keyframe(self) -> None:
        self._take_back()
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
        self._take_back()
        self.counters.stopped_sending(self)
        super().stop()
        self._ready.set()


def _shifted(packet: av.Packet, offset: int) -> av.Packet:
    """A copy with moved timestamps (the original is shared with other subscribers)."""
    copy = av.Packet(bytes(packet))
    copy.pts = copy.dts = (packet.pts or 0) + offset
    copy.time_base = packet.time_base
    copy.is_keyframe = packet.is_keyframe
    return copy
