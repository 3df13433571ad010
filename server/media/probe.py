"""The network check of the device check page: a short-lived peer connection that answers
a browser's offer with a data channel that echoes, so the browser learns whether ICE
reaches the media plane (through TURN where the server configures it) and the round trip.

A probe is made by `MediaPlane.new_connection`, as every media connection is, so it
gathers the same candidates on the same addresses and ports, its answer announces them
the same way (`rewrite_candidates`), and the browser's candidates are screened the same
way (server/media/ice.py). Least privilege: a probe carries no media and belongs to no
room (an offer with an audio or video section is refused); it echoes only short messages,
and only so many; an invite holds at most one probe (a new one closes the earlier),
starts at most `RATE_BURST` then one per `1 / RATE` seconds; the node holds at most
`max_open` at once; and every probe is closed after `lifetime` seconds whatever happens.
Probes are named by their invite's id, never by its token (docs/PROTOCOL.md, "Network
check").
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from tiaojie.server.errors import TiaojieError
from tiaojie.server.media import sdp as sdp_input
from tiaojie.server.media.ice import RemoteCandidates, rewrite_candidates, screen_candidates
from tiaojie.server.media.sfu import MediaPlane, require_candidates
from tiaojie.server.model import new_id
from tiaojie.server.ratelimit import RateLimit

log = logging.getLogger(__name__)

#: Seconds a probe lives: long enough for ICE through TURN and a few round trips.
LIFETIME = 20.0
#: Probes open at once on this node.
MAX_OPEN = 20
#: Probes one invite may start: a burst, then one every 1 / RATE seconds.
RATE_BURST = 5
RATE = 1 / 10
#: What a probe echoes: messages of at most ECHO_BYTES, at most ECHO_MESSAGES of them.
ECHO_BYTES = 256
ECHO_MESSAGES = 100


@dataclass(eq=False)
class Probe:
    """One network check: its connection, whose invite started it, and when it ends."""

    id: str
    invite_id: str
    pc: RTCPeerConnection
    echoed: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None


class Probes:
    """The open probes of this node."""

    def __init__(
        self,
        plane: MediaPlane,
        *,
        max_open: int = MAX_OPEN,
        lifetime: float = LIFETIME,
        limit: RateLimit | None = None,
    ) -> None:
        self.plane = plane
        self.max_open = max_open
        self.lifetime = lifetime
        self._limit = limit or RateLimit("network checks", RATE, RATE_BURST)
        self._open: dict[str, Probe] = {}
        self._by_invite: dict[str, Probe] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def open_count(self) -> int:
        return len(self._open)

    def by_invite(self, invite_id: str) -> Probe | None:
        return self._by_invite.get(invite_id)

    def ice_servers(self, invite_id: str) -> list[dict[str, Any]]:
        """What the invite's holder gets in `room_state`: the static ICE servers and their
        own TURN login (a participant's id is their invite's)."""
        return self.plane.ice.servers_for(invite_id)

    async def open(self, invite_id: str, offer: str) -> tuple[Probe, str]:
        """A probe answering `offer` for the holder of invite `invite_id`, and its answer.

        Refused before anything is made: `rate_limited` (429), `bad_sdp` (an offer that
        cannot be read, or asks for media), `probe_busy` (503, the node's cap); and, the
        connection closed again, `media_ports_exhausted` (503, no free `--rtc-ports`)."""
        self._limit.take(invite_id)
        description = sdp_input.parse(offer, "offer")
        if any(media.kind != "application" for media in description.media):
            raise TiaojieError("bad_sdp", "A network check offers a data channel and no media.")
        earlier = self._by_invite.get(invite_id)
        if earlier is not None:
            await self.close(earlier)
        if len(self._open) >= self.max_open:
            raise TiaojieError(
                "probe_busy",
                "Too many network checks are running; try again in a moment.",
                503,
                headers={"Retry-After": str(int(self.lifetime))},
            )
        offer, dropped = screen_candidates(offer, self.plane.ice, RemoteCandidates())
        if dropped:
            log.info(
                "network check of invite %s: remote candidates dropped: %s", invite_id, dropped
            )
        probe = Probe(new_id(), invite_id, self.plane.new_connection())
        self._open[probe.id] = probe
        self._by_invite[invite_id] = probe
        probe.timer = asyncio.get_running_loop().call_later(self.lifetime, self._close_later, probe)
        self._wire(probe)
        pc = probe.pc
        try:
            with sdp_input.applying("offer"):
                await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
            require_candidates(pc.localDescription.sdp)  # a full --rtc-ports range: 503
        except BaseException:
            await self.close(probe)
            raise
        log.info("network check %s of invite %s opened", probe.id, invite_id)
        return probe, rewrite_candidates(pc.localDescription.sdp, self.plane.ice)

    def _wire(self, probe: Probe) -> None:
        pc = probe.pc

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                if len(message) > ECHO_BYTES or probe.echoed >= ECHO_MESSAGES:
                    return
                probe.echoed += 1
                channel.send(message)

            channel.on("close", lambda: self._close_later(probe))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._close_later(probe)

    def _close_later(self, probe: Probe) -> None:
        if probe.closed.is_set() or probe.id not in self._open:
            return
        task = asyncio.ensure_future(self.close(probe))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self, probe: Probe) -> None:
        """End `probe` (idempotent): its timer, its connection, its place in the cap."""
        if self._open.pop(probe.id, None) is None:
            return
        if self._by_invite.get(probe.invite_id) is probe:
            del self._by_invite[probe.invite_id]
        if probe.timer is not None:
            probe.timer.cancel()
        try:
            await probe.pc.close()
        except Exception as error:  # a half-applied offer: aiortc cannot always close it
            log.info("closing network check %s: %s: %s", probe.id, type(error).__name__, error)
        probe.closed.set()
        log.info("network check %s of invite %s closed", probe.id, probe.invite_id)

    async def close_all(self) -> None:
        for probe in list(self._open.values()):
            await self.close(probe)
