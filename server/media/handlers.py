"""The media plane in signalling: `publish`, `subscriber_answer` and `ice_candidate`, and
a Peer for every participant from entering the room to leaving it (server/media/sfu.py)."""

from __future__ import annotations

import logging
from typing import Any

from aiortc.sdp import candidate_from_sdp

from tiaojie.server.errors import TiaojieError, bad_request
from tiaojie.server.media.ice import screen_candidates
from tiaojie.server.media.sfu import MediaPlane
from tiaojie.server.model import Participant, Room
from tiaojie.server.ratelimit import RateLimit
from tiaojie.server.roles import Role
from tiaojie.server.separation import forwarding_rules
from tiaojie.server.signalling import CloseReason, Request, Signalling

#: Offers one participant may publish: a burst (camera, microphone, screen, retries),
#: then PUBLISH_RATE a second.
PUBLISH_BURST = 20
PUBLISH_RATE = 2.0

log = logging.getLogger(__name__)


class MediaHandlers:
    """Installs the media plane's events and presence hooks on signalling."""

    def __init__(self, signalling: Signalling, media: MediaPlane) -> None:
        self.signalling = signalling
        self.media = media
        self._publish_limit = RateLimit("offers", PUBLISH_RATE, PUBLISH_BURST)
        #: the first subscriber offer of a participant entering, by connection (sid), until
        #: it goes into their room_state
        self._first_offers: dict[str, dict[str, Any]] = {}

    def install(self) -> None:
        sig = self.signalling
        sig.add_handler("publish", self._publish)
        sig.add_handler("subscriber_answer", self._subscriber_answer)
        sig.add_handler("ice_candidate", self._ice_candidate)
        sig.add_room_state("publications", self._publications)
        sig.add_room_state("subscriber_offer", self._subscriber_offer)
        sig.on_entering(self._entering)
        sig.on_enter(self._entered)
        sig.on_away(self._away)
        sig.on_leave(self._left)
        sig.on_room_ended(self.media.close_room)

    def _publications(self, room: Room, participant: Participant) -> list[dict[str, Any]]:
        return self.media.publications(room.id)

    def _subscriber_offer(self, room: Room, participant: Participant) -> dict[str, Any] | None:
        return self._first_offers.pop(participant.sid, None)

    async def _entering(self, room_id: str, participant: Participant) -> None:
        # before room_state: a client publishes as soon as it has it
        muted = {"audio": participant.muted_audio, "video": participant.muted_video}
        # the room's caucuses and screening apply before anything is forwarded
        room = await self.signalling.store.require(room_id)
        rules = forwarding_rules(room)
        await self.media.add_peer(
            room_id,
            participant.id,
            participant.sid,
            muted,
            rules,
            adaptive=participant.role != Role.RECORDER,
        )
        # the subscriber offer goes in room_state: the client answers it on arrival
        offer = await self.media.peer(room_id, participant.id).first_offer()
        if offer is not None:
            self._first_offers[participant.sid] = offer

    async def _entered(self, room_id: str, participant: Participant) -> None:
        # after room_state: a client drops subscriber offers that come before it (a peer
        # whose first offer went in room_state has started already)
        self._first_offers.pop(participant.sid, None)
        self.media.start_peer(room_id, participant.id)

    async def _away(self, room_id: str, participant: Participant) -> None:
        # aiortc has no ICE restart: the peer connections are over; a reconnect makes new
        # ones (on_enter), and the others' subscriptions to what they published end now.
        self._first_offers.pop(participant.sid, None)
        await self.media.remove_peer(room_id, participant.id)

    async def _left(self, room_id: str, participant: Participant, reason: CloseReason) -> None:
        self._first_offers.pop(participant.sid, None)
        await self.media.remove_peer(room_id, participant.id)

    async def _publish(self, request: Request) -> dict[str, Any]:
        await self.signalling.check(request)
        # each offer is parsed, applied and answered, and renegotiates every subscriber
        self._publish_limit.take((request.room_id, request.participant_id))
        peer = self.media.peer(request.room_id, request.participant_id)
        answer = await peer.publish(request.payload["sdp"], request.payload["tracks"])
        return {"sdp": answer, "type": "answer"}

    async def _subscriber_answer(self, request: Request) -> dict[str, Any]:
        await self.signalling.check(request)
        peer = self.media.peer(request.room_id, request.participant_id)
        return {"unavailable": await peer.answer(request.payload["sdp"])}

    async def _ice_candidate(self, request: Request) -> dict[str, Any]:
        """Trickle ICE: a candidate the browser gathered after sending its offer or answer
        (which it sends at once), screened as those in an SDP are (server/media/ice.py).
        The browser sends them once that description is acknowledged, so it is applied."""
        await self.signalling.check(request)
        peer = self.media.peer(request.room_id, request.participant_id)
        subscriber = request.payload["connection"] == "subscriber"
        pc = peer.subscriber if subscriber else peer.publisher
        if pc is None or pc.remoteDescription is None:
            raise TiaojieError("no_media", "That connection has no description yet.", 409)
        line = request.payload["candidate"]
        seen = peer.subscriber_candidates if subscriber else peer.publisher_candidates
        _, dropped = screen_candidates(f"a={line}\r\n", peer.room.plane.ice, seen)
        if dropped:
            log.info("remote ICE candidate of %s dropped: %s", request.participant_id, dropped)
            return {"added": False}
        try:
            candidate = candidate_from_sdp(line.removeprefix("candidate:").strip())
        except (ValueError, IndexError):
            raise bad_request("The candidate cannot be read.") from None
        # max-bundle: the first m-section's transport carries everything
        candidate.sdpMid = request.payload.get("sdpMid")
        candidate.sdpMLineIndex = 0
        await pc.addIceCandidate(candidate)
        return {"added": True}
