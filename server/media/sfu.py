"""The selective forwarding unit: Publications in, Subscriptions out, nothing decoded.

Per participant (a Peer) two RTCPeerConnections, as LiveKit does: the publisher
connection, offered by the client with its camera/microphone/screen, and the subscriber
connection, offered by the server with everyone else's publications and renegotiated as
they come and go. Subscriber transceivers are slots that get reused for new publications
of the same kind and codec, so the SDP does not grow without end.

The media plane forwards RTP packets (a publication's receiver is tapped, each packet is
rewritten and sent to every slot forwarding it: server/media/forwarding.py), or with
`media_plane="frames"` assembled frames that each subscriber's sender packetizes again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from tiaojie.rtc import aiortc_internals
from tiaojie.rtc.codecs import PREFERRED, codec_preferences
from tiaojie.rtc.keyframes import packet_starts_keyframe
from tiaojie.server.errors import TiaojieError, bad_request
from tiaojie.server.media import sdp as sdp_input
from tiaojie.server.media.congestion import CongestionGuard, LoopLag, Pausable, RateMeter
from tiaojie.server.media.counters import MediaCounters
from tiaojie.server.media.forwarding import ForwardTrack
from tiaojie.server.media.ice import (
    IceSettings,
    RemoteCandidates,
    rewrite_candidates,
    screen_candidates,
)
from tiaojie.server.media.rules import OPEN, ForwardingRules
from tiaojie.server.model import new_id

log = logging.getLogger(__name__)

#: The video codecs the pass-through forwards (rtc/aiortc_internals.py assembles them).
FORWARDED_VIDEO = ("video/H264", "video/VP8")
SOURCES = {"camera": "video", "screen": "video", "microphone": "audio"}
PLI_INTERVAL = 0.5  # at most one keyframe request per publication this often (seconds)
#: What the media plane forwards: RTP packets (rewritten), or frames (re-packetized).
MEDIA_PLANES = ("packets", "frames")
ANSWER_TIMEOUT = 10.0

Send = Callable[[str, str, dict[str, Any]], Awaitable[None]]  # (to, event, payload)
#: Resolved once a subscriber answer is applied: what its sender cannot receive.
Applied = asyncio.Future[list[dict[str, Any]]]

_background: set[asyncio.Future[Any]] = set()


def _spawn(work: Awaitable[Any]) -> None:
    """Run `work` in the background, keeping a reference until it is done."""
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


@dataclass(eq=False)
class Publication:
    """One published track of a participant, fanned out to subscriber slots."""

    id: str
    participant_id: str
    kind: str
    source: str
    mid: str
    codec: str  # mime type, e.g. video/H264
    track: MediaStreamTrack
    receiver: RTCRtpReceiver
    #: The frames media plane's assembler; None in transcode mode (the benchmark
    #: baseline, where frames are decoded) and on the packets media plane
    assembler: aiortc_internals.FrameAssembler | None
    #: The packets media plane: the receiver hands over its RTP packets here
    tap: aiortc_internals.PacketTap | None = None
    muted: bool = False
    #: A second encoding of the publication with this id, in another codec, published
    #: while some subscriber cannot decode the first (a backup codec): never announced,
    #: offered only to those subscribers.
    backup_of: str | None = None
    #: The video codecs (mime types) the publisher offered on this mid, best first.
    offered: tuple[str, ...] = ()
    slots: set[Slot] = field(default_factory=set)
    received: int = 0
    counters: MediaCounters = field(default_factory=MediaCounters)
    #: what the publisher sends, for choosing which video to pause first
    meter: RateMeter = field(default_factory=RateMeter)
    _task: asyncio.Task[None] | None = None
    _last_pli: float = 0.0
    _pli_later: asyncio.TimerHandle | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "participant_id": self.participant_id,
            "kind": self.kind,
            "source": self.source,
            "codec": self.codec,
            "muted": self.muted,
        }

    def start(self) -> None:
        if self.tap is not None:
            self.tap.deliver = self._forward
        elif self.assembler is not None:  # transcode mode: MediaRelay reads the track
            self._task = asyncio.ensure_future(self._fan_out())

    def _forward(self, packet: RtpPacket) -> None:
        """The packets media plane: one RTP packet from the publisher to every slot.

        When every slot forwarding it runs a Route (rtc/_fastpath.c), the tap is armed
        with them until their next check: the publisher's next packets are then forwarded
        by the C receive step (rtc/_ingress.c) without coming here, and any change to the
        forwarding (mute, a slot attached, detached, withheld or paused, the stop)
        disarms it (`changed`)."""
        tap = self.tap
        video = self.kind == "video"
        now = time.monotonic()
        if tap is not None and tap.sink is not None:
            self._count_native(tap, now)
        if packet.marker or not video:
            self.received += 1  # frames, as on the frames media plane
        if self.muted:
            return
        payload = packet.payload
        keyframe = True
        if video:
            self.meter.add(len(payload), now)
            keyframe = packet_starts_keyframe(self.codec, payload)
        ntp = aiortc_internals.ntp_now()
        routed = []  # subscriptions whose run is under way in C (ForwardTrack.route)
        track = None
        until = now + 1.0
        every_slot_routed = True
        for slot in self.slots:
            if slot.forwarding:
                track = slot.track
                if track.route_until > now or track.still_routed(now):
                    routed.append(track.route)
                    until = min(until, track.route_until)
                else:
                    every_slot_routed = False
                    track.forward(packet, keyframe, ntp, now)
        if routed and track is not None:
            track.forward_through(routed, packet, ntp, now)
            if every_slot_routed and tap is not None:
                tap.arm(routed, until, self._recheck)

    def _recheck(self, now: float) -> float | None:
        """The C receive step's deadline passed (every ROUTE_CHECK_S): until when it may go
        on with the same Routes (their checks, as `_forward` does them), or None. Also
        takes its counters."""
        tap = self.tap
        if tap is not None:
            self._count_native(tap, now)
        until = now + 1.0
        for slot in self.slots:
            if slot.forwarding:
                track = slot.track
                if not (track.route_until > now or track.still_routed(now)):
                    return None
                until = min(until, track.route_until)
        return until

    def _count_native(self, tap: aiortc_internals.PacketTap, now: float) -> None:
        """Add what the C receive step forwarded since the last packet seen here."""
        frames_in, video_bytes, frames_out, bytes_out = tap.drain()
        if frames_in:
            self.received += frames_in
        if video_bytes:
            self.meter.add(video_bytes, now)
        if frames_out or bytes_out:
            self.counters.forwarded_frames[self.kind] += frames_out
            self.counters.forwarded_bytes[self.kind] += bytes_out

    def changed(self) -> None:
        """What this publication is forwarded to (or whether) changed: its next packet
        takes Python's path, which decides again."""
        if self.tap is not None:
            self.tap.disarm()

    async def _fan_out(self) -> None:
        while True:
            try:
                # the pass-through receiver yields encoded packets (rtc.aiortc_internals)
                packet = cast(av.Packet, await self.track.recv())
            except MediaStreamError:
                return
            self.received += 1
            if self.muted:
                continue
            if self.kind == "video":
                self.meter.add(packet.size, time.monotonic())
            for slot in self.slots:
                if slot.forwarding:
                    slot.track.push(packet)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (video only): at most one PLI per PLI_INTERVAL;
        a request inside the interval is sent at its end, not dropped (a subscriber that
        resumes, after a caucus or a screen, asks once and would otherwise wait for ever)."""
        source = self.tap or self.assembler
        ssrc = source.media_ssrc if source is not None else None
        if self.kind != "video" or ssrc is None:
            return
        wait = self._last_pli + PLI_INTERVAL - time.monotonic()
        if wait > 0:
            if self._pli_later is None:
                self._pli_later = asyncio.get_running_loop().call_later(wait, self._pli_due)
            return
        self._last_pli = time.monotonic()
        self.counters.keyframe_requests_sent += 1
        _spawn(aiortc_internals.send_pli(self.receiver, ssrc))

    def _pli_due(self) -> None:
        self._pli_later = None
        self.request_keyframe()

    async def stop(self) -> None:
        if self.tap is not None:
            self.tap.deliver = None
            self.tap.disarm()
            if self.tap.sink is not None:
                self._count_native(self.tap, time.monotonic())
        if self._pli_later is not None:
            self._pli_later.cancel()
            self._pli_later = None
        for slot in list(self.slots):
            slot.detach()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@dataclass(eq=False)
class Slot:
    """A subscriber transceiver and the ForwardTrack it sends: one Subscription at a time."""

    transceiver: RTCRtpTransceiver
    track: ForwardTrack
    kind: str
    codec: str
    publication: Publication | None = None
    #: The room's ForwardingRules do not let its subscriber receive the publication now
    #: (a caucus, screening): nothing is pushed, nothing is renegotiated.
    withheld: bool = False
    #: The subscriber's answer rejected this m-section (it decodes none of its codecs):
    #: inactive for good, never reused, offered as rejected from then on.
    rejected: bool = False
    #: Paused because its subscriber's link is congested (server/media/congestion.py):
    #: nothing is pushed until it is resumed, at a keyframe.
    paused: bool = False

    @property
    def forwarding(self) -> bool:
        return self.publication is not None and not self.withheld and not self.paused

    @property
    def screen(self) -> bool:
        return self.publication is not None and self.publication.source == "screen"

    def bitrate(self, now: float) -> float:
        return self.publication.meter.rate(now) if self.publication is not None else 0.0

    def pause(self, paused: bool) -> None:
        """Stop or resume feeding this slot for its subscriber's link; resuming waits for
        a fresh keyframe."""
        if paused == self.paused:
            return
        self.paused = paused
        if self.publication is not None:
            self.publication.changed()
        self.track.switch_source()
        if not paused and self.publication is not None and not self.withheld:
            self.publication.request_keyframe()

    def reject(self) -> None:
        """Idle this slot for good (see `rejected`)."""
        self.detach()
        self.rejected = True
        self.transceiver.direction = "inactive"

    def withhold(self, withheld: bool) -> None:
        """Stop or resume feeding this slot; resuming waits for a fresh keyframe."""
        if withheld == self.withheld:
            return
        self.withheld = withheld
        if self.publication is not None:
            self.publication.changed()
        self.track.switch_source()  # drops what is queued; video restarts at a keyframe
        if not withheld and self.publication is not None:
            self.publication.request_keyframe()

    def attach(self, publication: Publication, relay: MediaRelay | None = None) -> None:
        self.detach()
        self.track.switch_source()
        self.publication = publication
        publication.slots.add(self)
        publication.changed()
        if relay is not None:  # transcode mode: decode once, encode per subscriber
            self.transceiver.sender.replaceTrack(relay.subscribe(publication.track))

    def detach(self) -> None:
        self.paused = False
        if self.publication is not None:
            self.publication.slots.discard(self)
            self.publication.changed()
            self.publication = None
            self.track.switch_source()
            if self.transceiver.sender.track is not self.track:
                self.transceiver.sender.replaceTrack(self.track)

    def keyframe_needed(self) -> None:
        if self.publication is not None:
            self.publication.request_keyframe()


#: A track the publisher connection announced: its receiver's track, and what forwards it
#: (the frames plane's assembler or the packets plane's tap; neither when transcoding).
_Incoming = tuple[
    MediaStreamTrack, aiortc_internals.FrameAssembler | None, aiortc_internals.PacketTap | None
]


class Peer:
    """The media of one participant: publisher and subscriber connections."""

    def __init__(
        self, room: MediaRoom, participant_id: str, sid: str, adaptive: bool = True
    ) -> None:
        self.room = room
        self.participant_id = participant_id
        self.sid = sid
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None
        #: The remote candidates each connection's ICE may check (server/media/ice.py).
        self.publisher_candidates = RemoteCandidates()
        self.subscriber_candidates = RemoteCandidates()
        self.publications: dict[str, Publication] = {}  # by mid
        self.slots: list[Slot] = []
        #: Publications this participant cannot receive, by id: {publication_id,
        #: participant_id, kind, source, codec, reason} (`unavailable` in PROTOCOL.md).
        self.unavailable: dict[str, dict[str, Any]] = {}
        #: Codecs this participant's answers rejected: never offered to them again.
        self.cannot_decode: set[str] = set()
        #: Sources this publisher was asked a backup codec for (`backup_codec`).
        self.backups_asked: set[str] = set()
        self._negotiating = asyncio.Lock()
        self._dirty = False
        #: False until the participant has their room_state (start_peer): a client drops
        #: subscriber offers that come earlier, so they wait.
        self.started = False
        #: `first_offer` waits here for the first subscriber offer (None: nothing offered)
        self._first_offer: asyncio.Future[dict[str, Any] | None] | None = None
        #: the client's answer, and a future the negotiation resolves once it is applied
        self._answer: asyncio.Future[tuple[RTCSessionDescription, Applied]] | None = None
        self._incoming: dict[str, _Incoming] = {}
        self.closed = False
        #: the client's answer was refused after aiortc began applying it
        self.unusable = False
        #: muted by the participant or the mediator: nothing of that kind is forwarded
        self.muted = {"audio": False, "video": False}
        #: pauses video when this participant's link is congested; None for the recorder,
        #: whose evidence must be whole (it sits next to the server)
        self.guard = (
            CongestionGuard(
                self._forwarding_video,
                self._pause,
                self._resume,
                name=participant_id,
                loop_lag=room.plane.loop_lag.recent,
            )
            if adaptive
            else None
        )

    # -- publishing ------------------------------------------------------------------------
    async def publish(self, sdp: str, tracks: list[dict[str, Any]]) -> str:
        sources = [(t["source"], bool(t.get("backup"))) for t in tracks]
        if len(set(sources)) != len(sources):
            raise bad_request("At most one track per source, and one backup of it.")
        offered = sdp_input.video_codecs(sdp_input.parse(sdp, "offer"))
        sdp = self._screened(sdp, self.publisher_candidates)
        if self.publisher is None:
            self.publisher = self.room.plane.new_connection()
            self.publisher.on("track", self._on_track)
        publisher = self.publisher
        wanted = {t["mid"]: t["source"] for t in tracks}
        backups = {t["mid"] for t in tracks if t.get("backup")}
        try:
            with sdp_input.applying("offer"):
                await publisher.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            transceivers = {t.mid: t for t in publisher.getTransceivers()}
            for mid, source in wanted.items():
                transceiver = transceivers.get(mid)
                if transceiver is None or transceiver.kind != SOURCES[source]:
                    raise bad_request(f"mid {mid!r} is not a {SOURCES[source]} track of the offer.")
            with sdp_input.applying("offer"):
                await publisher.setLocalDescription(await publisher.createAnswer())
            require_candidates(publisher.localDescription.sdp)
        except TiaojieError:
            if not self.publications and self.publisher is publisher:
                # nothing published on it yet: the next offer starts on a fresh connection
                self.publisher = None
                self._incoming.clear()
                await _close_quietly(publisher)
            raise
        answer = publisher.localDescription.sdp
        codecs = _first_codecs(answer)
        added, removed = [], []
        for mid, publication in list(self.publications.items()):
            backup = publication.backup_of is not None
            if (
                wanted.get(mid) != publication.source
                or _inactive(transceivers[mid])
                or (mid in backups) != backup
            ):
                removed.append(self.publications.pop(mid))
        gone = {p.id for p in removed}
        for mid, publication in list(self.publications.items()):  # a backup of nothing
            if publication.backup_of in gone:
                removed.append(self.publications.pop(mid))
        # primaries first: a backup names the publication it backs up
        for mid, source in sorted(wanted.items(), key=lambda item: item[0] in backups):
            if mid in self.publications or _inactive(transceivers[mid]) or mid not in codecs:
                continue
            backup_of = None
            if mid in backups:
                primary = self.publication_of(source)
                if (
                    primary is None
                    or primary.codec == codecs[mid]
                    or source not in self.backups_asked
                ):
                    continue  # nothing to back up, no other codec, or not asked for
                backup_of = primary.id
            track, assembler, tap = self._incoming[mid]
            publication = Publication(
                id=new_id(),
                participant_id=self.participant_id,
                kind=SOURCES[source],
                source=source,
                mid=mid,
                codec=codecs[mid],
                track=track,
                receiver=transceivers[mid].receiver,
                assembler=assembler,
                tap=tap,
                muted=source != "screen" and self.muted[SOURCES[source]],
                backup_of=backup_of,
                offered=tuple(offered.get(mid, ())),
                counters=self.room.plane.counters,
            )
            publication.start()
            self.publications[mid] = publication
            added.append(publication)
        for publication in removed:
            await publication.stop()
        await self.room.publications_changed(added, removed)
        return rewrite_candidates(answer, self.room.plane.ice)

    def publication_of(self, source: str) -> Publication | None:
        """This participant's (primary) publication of `source`, if any."""
        for publication in self.publications.values():
            if publication.source == source and publication.backup_of is None:
                return publication
        return None

    async def want_backup(self, publication: Publication, cannot_decode: set[str]) -> None:
        """A subscriber cannot decode `publication`: ask this publisher for a backup
        encoding in a codec it offered and that subscriber decodes (once per source)."""
        codec = next(
            (
                c
                for c in publication.offered
                if c in FORWARDED_VIDEO and c != publication.codec and c not in cannot_decode
            ),
            None,
        )
        if codec is None or publication.source in self.backups_asked or self.closed:
            return
        if not self.room.needs_backup(publication):  # they left before we got here
            return
        if any(p.backup_of == publication.id for p in self.publications.values()):
            return
        self.backups_asked.add(publication.source)
        log.info(
            "asking %s for a %s backup of their %s", self.participant_id, codec, publication.source
        )
        await self.room.plane.send(
            self.sid, "backup_codec", {"source": publication.source, "codec": codec}
        )

    async def stop_backups(self) -> None:
        """Stop each backup this publisher was asked for that nobody needs any more (those
        who could not decode the primary left): drop it and tell the publisher
        (`backup_codec` with codec null)."""
        for source in sorted(self.backups_asked):
            primary = self.publication_of(source)
            if self.closed or (primary is not None and self.room.needs_backup(primary)):
                continue
            self.backups_asked.discard(source)
            dropped = [
                self.publications.pop(mid)
                for mid, p in list(self.publications.items())
                if p.source == source and p.backup_of is not None
            ]
            for publication in dropped:
                await publication.stop()
            log.info("%s's %s backup is needed no more: stopped", self.participant_id, source)
            await self.room.plane.send(self.sid, "backup_codec", {"source": source, "codec": None})
            if dropped:
                await self.room.publications_changed([], dropped)

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.publisher is not None
        for transceiver in self.publisher.getTransceivers():
            if transceiver.receiver.track is track and transceiver.mid is not None:
                assembler, tap = None, None
                if self.room.plane.packets:
                    tap = aiortc_internals.tap_packets(transceiver.receiver)
                elif not self.room.plane.transcode:
                    assembler = aiortc_internals.make_passthrough(transceiver.receiver)
                self._incoming[transceiver.mid] = (track, assembler, tap)

    # -- subscribing -----------------------------------------------------------------------
    def start(self) -> None:
        """The client is ready for subscriber offers: send what is published (once)."""
        if self.started:
            return
        self.started = True
        if self._dirty or self.room.publications():
            self.renegotiate()

    async def first_offer(self) -> dict[str, Any] | None:
        """Start before the participant has their room_state and return the first
        subscriber offer instead of sending it: it goes in that room_state (no message of
        its own, nothing waits for it). None when nothing is offered."""
        if self.started or not self.room.publications():
            return None
        self._first_offer = asyncio.get_running_loop().create_future()
        self.start()
        return await self._first_offer

    def renegotiate(self) -> None:
        """Bring the subscriber connection up to date (coalesces concurrent requests)."""
        self._dirty = True
        if self.started and not self._negotiating.locked():
            _spawn(self._negotiate_loop())

    async def _negotiate_loop(self) -> None:
        try:
            await self._negotiate_until_clean()
        finally:
            first, self._first_offer = self._first_offer, None
            if first is not None and not first.done():
                first.set_result(None)  # nothing was offered

    async def _negotiate_until_clean(self) -> None:
        async with self._negotiating:
            while self._dirty and not self.closed and not self.unusable:
                self._dirty = False
                try:
                    await self._negotiate()
                except InvalidStateError:
                    return  # closed while negotiating
                except (TimeoutError, TiaojieError) as error:
                    log.warning(
                        "subscriber negotiation with %s failed: %s", self.participant_id, error
                    )
                    return
                except Exception:
                    log.exception("subscriber negotiation with %s failed", self.participant_id)
                    return

    async def _negotiate(self) -> None:
        published = [p for p in self.room.publications() if p.participant_id != self.participant_id]
        backups = {p.backup_of: p for p in published if p.backup_of is not None}
        wanted, self.unavailable = [], {}
        for publication in published:
            if publication.backup_of is not None:
                continue
            if publication.codec not in self.cannot_decode:
                wanted.append(publication)
                continue
            backup = backups.get(publication.id)
            if backup is not None and backup.codec not in self.cannot_decode:
                wanted.append(backup)
                continue
            self.unavailable[publication.id] = _unavailable(publication)
            _spawn(self.room.want_backup(publication, self.cannot_decode))
        if self.subscriber is None:
            if not wanted:
                return
            self.subscriber = self.room.plane.new_connection()
            # The first m-section tags the bundle; a browser that rejects it (a codec it
            # cannot decode) cannot set up the rest (Chromium: "Failed to setup RTCP
            # mux"). Opus, which every browser decodes, goes first: a free audio slot.
            self._new_slot("audio", PREFERRED["audio"])
        current = {slot.publication.id: slot for slot in self.slots if slot.publication}
        wanted_ids = {p.id for p in wanted}
        for publication_id, slot in current.items():
            if publication_id not in wanted_ids:
                slot.detach()
        new: list[Slot] = []
        for publication in wanted:
            if publication.id in current:
                continue
            slot = self._free_slot(publication) or self._new_slot(
                publication.kind, publication.codec
            )
            slot.withheld = not self.room.rules.allows(
                self.participant_id, publication.participant_id, publication.kind
            )
            slot.attach(publication, self.room.plane.relay)
            new.append(slot)
            if not slot.withheld:
                # now, not once answered: the keyframe comes while the answer, ICE and
                # DTLS are under way, and is held until the connection can send it
                slot.keyframe_needed()
        offer = await self.subscriber.createOffer()
        await self.subscriber.setLocalDescription(offer)
        require_candidates(self.subscriber.localDescription.sdp)
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        offered = self.subscriber.localDescription.sdp
        idle = {slot.transceiver.mid or "" for slot in self.slots if slot.rejected}
        await self._send_offer(
            self.sid,
            "subscriber_offer",
            {
                "sdp": sdp_input.reject_in_offer(
                    rewrite_candidates(offered, self.room.plane.ice), idle
                ),
                "type": "offer",
                "tracks": [
                    {
                        "mid": slot.transceiver.mid,
                        "publication_id": slot.publication.id,
                        "participant_id": slot.publication.participant_id,
                        "kind": slot.kind,
                        "source": slot.publication.source,
                        "codec": slot.publication.codec,
                    }
                    for slot in self.slots
                    if slot.publication is not None
                ],
                "unavailable": list(self.unavailable.values()),
            },
        )
        answer, applied = await asyncio.wait_for(self._answer, ANSWER_TIMEOUT)
        try:
            with sdp_input.applying("answer"):
                sdp, rejected = sdp_input.accept_rejected(answer.sdp, offered, idle)
                await self.subscriber.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        except TiaojieError as refused:
            if self.closed or self.subscriber.signalingState == "closed":
                # closed while the answer was on its way: not the client's answer's fault
                _settle(applied, TiaojieError("no_media", "The subscriber connection closed.", 409))
                raise InvalidStateError("closed while its answer was applied") from None
            # aiortc may have applied part of it: this connection is not renegotiated
            # again (the participant gets a fresh one by reconnecting)
            self.unusable = True
            _settle(applied, refused)
            raise
        except BaseException:
            _settle(applied, TiaojieError("no_media", "The subscriber connection closed.", 409))
            raise
        self._rejected(rejected)
        _settle(applied, result=list(self.unavailable.values()))
        for slot in new:
            if not slot.track.has_keyframe:  # asked for at the offer: a second is not needed
                slot.keyframe_needed()

    async def _send_offer(self, sid: str, event: str, message: dict[str, Any]) -> None:
        """Send a subscriber offer, or hand the first one to `first_offer` (room_state)."""
        first, self._first_offer = self._first_offer, None
        if first is not None and not first.done():
            first.set_result(message)
        else:
            await self.room.plane.send(sid, event, message)

    def _rejected(self, mids: list[str]) -> None:
        """The answer rejected these m-sections: their publications are `unavailable`."""
        for slot in self.slots:
            if slot.transceiver.mid not in mids or slot.rejected:
                continue
            publication = slot.publication
            slot.reject()
            if publication is None:
                continue
            self.cannot_decode.add(publication.codec)
            log.info(
                "%s cannot receive %s's %s (%s): the answer rejected it",
                self.participant_id,
                publication.participant_id,
                publication.source,
                publication.codec,
            )
            primary = publication
            if publication.backup_of is not None:  # the backup too: report the primary
                primary = self.room.publication(publication.backup_of) or publication
            self.unavailable[primary.id] = _unavailable(primary)
            _spawn(self.room.want_backup(primary, self.cannot_decode))

    def _free_slot(self, publication: Publication) -> Slot | None:
        for slot in self.slots:
            if slot.publication is None and not slot.rejected and slot.codec == publication.codec:
                return slot
        return None

    def _new_slot(self, kind: str, codec: str) -> Slot:
        assert self.subscriber is not None
        counters = self.room.plane.counters
        track = ForwardTrack(kind, counters=counters)
        transceiver = self.subscriber.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(codec_preferences(kind, codec))
        slot = Slot(transceiver, track, kind, codec)
        track.on_keyframe_needed = slot.keyframe_needed
        if self.room.plane.packets:
            track.use_packets(aiortc_internals.PacketSender(transceiver.sender), codec)

            def started() -> None:
                # the connection can send: the keyframe held for it (asked for with the
                # offer) goes now, not with the publisher's next packet
                if slot.forwarding:
                    track.send_held()

            aiortc_internals.when_sending(transceiver.sender, started)

        def keyframe_requested() -> None:
            counters.keyframe_requests_received += 1
            if not slot.paused:  # a paused slot asks for one when it resumes
                slot.keyframe_needed()

        def nacked(count: int) -> bool:
            counters.nacked_packets += count
            return not slot.paused  # a paused slot's link has no room for them

        aiortc_internals.on_keyframe_request(transceiver.sender, keyframe_requested)
        aiortc_internals.on_nack(transceiver.sender, nacked)
        guard = self.guard
        if guard is not None:

            def reported(report: aiortc_internals.ReceiverReport) -> None:
                if slot.publication is not None:
                    guard.report(slot, kind, report.lost, report.highest, report.rtt)

            aiortc_internals.on_receiver_report(transceiver.sender, reported)
        self.slots.append(slot)
        return slot

    # -- congestion --------------------------------------------------------------------------
    def _forwarding_video(self) -> list[Pausable]:
        return [s for s in self.slots if s.kind == "video" and s.forwarding]

    def _pause(self, subscription: Pausable) -> None:
        slot = cast(Slot, subscription)
        self._paused_changed(slot, True)

    def _resume(self, subscription: Pausable) -> None:
        slot = cast(Slot, subscription)
        if slot.paused:  # not detached meanwhile
            self._paused_changed(slot, False)

    def _paused_changed(self, slot: Slot, paused: bool) -> None:
        publication = slot.publication
        if publication is None or self.closed:
            return
        slot.pause(paused)
        counters = self.room.plane.counters
        if paused:
            counters.video_pauses += 1
        else:
            counters.video_resumes += 1
        guard = self.guard
        log.info(
            "%s %s's %s for %s (queueing delay %.0f ms, loss %.1f %%, audio %.1f %%)",
            "paused" if paused else "resumed",
            publication.participant_id,
            publication.source,
            self.participant_id,
            (guard.queue_delay if guard else 0) * 1000,
            (guard.loss if guard else 0) * 100,
            (guard.audio_loss if guard else 0) * 100,
        )
        _spawn(
            self.room.plane.send(
                self.sid,
                "video_paused" if paused else "video_resumed",
                {
                    "publication_id": publication.id,
                    "participant_id": publication.participant_id,
                    "source": publication.source,
                    "reason": "network",
                },
            )
        )

    async def answer(self, sdp: str) -> list[dict[str, Any]]:
        """Apply the client's answer to the waiting subscriber offer (`bad_sdp` if it
        cannot be read or used; the connection then waits for the next offer); what the
        participant cannot receive (`unavailable`), once applied."""
        if self._answer is None or self._answer.done():
            raise TiaojieError(
                "unexpected_answer", "No subscriber offer is waiting for an answer.", 409
            )
        sdp_input.parse(sdp, "answer")
        sdp = self._screened(sdp, self.subscriber_candidates)
        applied: Applied = asyncio.get_running_loop().create_future()
        self._answer.set_result((RTCSessionDescription(sdp, "answer"), applied))
        try:
            return await asyncio.wait_for(applied, ANSWER_TIMEOUT)
        except TimeoutError:
            raise TiaojieError("no_media", "The answer was not applied in time.", 409) from None

    def _screened(self, sdp: str, seen: RemoteCandidates) -> str:
        """`sdp` without the remote candidates our ICE must not check (one log line)."""
        sdp, dropped = screen_candidates(sdp, self.room.plane.ice, seen)
        if dropped:
            log.info("remote ICE candidates of %s dropped: %s", self.participant_id, dropped)
        return sdp

    # -- teardown --------------------------------------------------------------------------
    async def close(self) -> list[Publication]:
        self.closed = True
        gone = list(self.publications.values())
        self.publications.clear()
        for publication in gone:
            await publication.stop()
        for slot in self.slots:
            slot.detach()
            slot.track.stop()
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
        for pc in (self.publisher, self.subscriber):
            if pc is not None:
                await _close_quietly(pc)
        return gone


class MediaRoom:
    def __init__(self, plane: MediaPlane, room_id: str) -> None:
        self.plane = plane
        self.id = room_id
        self.peers: dict[str, Peer] = {}
        self.rules: ForwardingRules = OPEN

    def apply_rules(self, rules: ForwardingRules) -> None:
        """Withhold or resume every subscription the rules now forbid or allow."""
        self.rules = rules
        for peer in self.peers.values():
            for slot in peer.slots:
                publication = slot.publication
                if publication is not None:
                    allowed = rules.allows(
                        peer.participant_id, publication.participant_id, publication.kind
                    )
                    slot.withhold(not allowed)

    def publications(self) -> list[Publication]:
        return [p for peer in self.peers.values() for p in peer.publications.values()]

    def publication(self, publication_id: str) -> Publication | None:
        return next((p for p in self.publications() if p.id == publication_id), None)

    async def want_backup(self, publication: Publication, cannot_decode: set[str]) -> None:
        """Some subscriber cannot decode `publication`: ask its publisher for a backup."""
        peer = self.peers.get(publication.participant_id)
        if peer is not None:
            await peer.want_backup(publication, cannot_decode)

    def needs_backup(self, publication: Publication) -> bool:
        """Whether someone else here cannot decode `publication` (its backup is wanted)."""
        return any(
            publication.codec in peer.cannot_decode
            for peer in self.peers.values()
            if peer.participant_id != publication.participant_id
        )

    async def stop_backups(self) -> None:
        """Someone left: stop the backups nobody here needs any more."""
        for peer in list(self.peers.values()):
            await peer.stop_backups()

    async def publications_changed(
        self, added: list[Publication], removed: list[Publication]
    ) -> None:
        for publication in removed:
            if publication.backup_of is not None:  # backups are never announced
                continue
            await self.plane.broadcast(
                self.id,
                "publication_removed",
                {"publication_id": publication.id, "participant_id": publication.participant_id},
            )
        for publication in added:
            if publication.backup_of is not None:
                continue
            await self.plane.broadcast(
                self.id, "publication_added", {"publication": publication.public()}
            )
        for peer in self.peers.values():
            if any(p.participant_id != peer.participant_id for p in added + removed):
                peer.renegotiate()


class MediaPlane:
    """All media rooms of this node."""

    def __init__(
        self,
        ice: IceSettings,
        send: Send,
        broadcast: Send,
        transcode: bool = False,
        media_plane: str = "packets",
    ) -> None:
        if media_plane not in MEDIA_PLANES:
            raise ValueError(f"media_plane must be one of {MEDIA_PLANES}")
        self.ice = ice
        self.send = send
        self.broadcast = broadcast
        #: Baseline for benchmarks: decode and re-encode, as aiortc's MediaRelay examples do.
        self.transcode = transcode
        #: Forward RTP packets (rewritten) rather than frames (re-packetized per subscriber)
        self.packets = media_plane == "packets" and not transcode
        self.relay = MediaRelay() if transcode else None
        self.rooms: dict[str, MediaRoom] = {}
        self.counters = MediaCounters()
        #: pause video for subscribers whose link is congested (server/media/congestion.py);
        #: bench/network.py turns it off to compare
        self.pause_video = True
        self.loop_lag = LoopLag()

    def new_connection(self) -> RTCPeerConnection:
        # The server gathers host candidates only (announced as --announce-ip): the STUN
        # and TURN servers are for clients behind NAT, as with any SFU.
        # max-bundle: with aiortc's default ("balanced") a second m-line of one kind gets a
        # transport of its own that is never connected, and its sender never starts.
        return RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )

    def _room(self, room_id: str) -> MediaRoom:
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = MediaRoom(self, room_id)
        return room

    def peer(self, room_id: str, participant_id: str) -> Peer:
        room = self.rooms.get(room_id)
        peer = room.peers.get(participant_id) if room else None
        if peer is None:
            raise TiaojieError("no_media", "Enter the room before sending media.", 409)
        return peer

    async def add_peer(
        self,
        room_id: str,
        participant_id: str,
        sid: str,
        muted: dict[str, bool],
        rules: ForwardingRules | None = None,
        adaptive: bool = True,
    ) -> None:
        """A participant is entering the room (a reconnect replaces their earlier media);
        `rules`, the room's ForwardingRules as stored, apply before anything is sent;
        `adaptive`: their video is paused when their link is congested (not the
        recorder's). Nothing is sent to them until `start_peer`."""
        await self.remove_peer(room_id, participant_id)
        room = self._room(room_id)
        if rules is not None:
            room.apply_rules(rules)
        peer = room.peers[participant_id] = Peer(
            room, participant_id, sid, adaptive and self.pause_video
        )
        self.loop_lag.start()
        peer.muted.update(muted)

    def start_peer(self, room_id: str, participant_id: str) -> None:
        """The participant has their room_state: offer them what is published."""
        room = self.rooms.get(room_id)
        peer = room.peers.get(participant_id) if room else None
        if peer is not None:
            peer.start()

    async def remove_peer(self, room_id: str, participant_id: str) -> None:
        room = self.rooms.get(room_id)
        if room is None or participant_id not in room.peers:
            return
        peer = room.peers.pop(participant_id)
        gone = await peer.close()
        await room.publications_changed([], gone)
        if peer.cannot_decode:  # a backup may be needed no more
            await room.stop_backups()
        if not room.peers and self.rooms.get(room_id) is room:
            del self.rooms[room_id]

    async def close_room(self, room_id: str) -> None:
        room = self.rooms.pop(room_id, None)
        if room is not None:
            for peer in list(room.peers.values()):
                await peer.close()

    def publications(self, room_id: str) -> list[dict[str, Any]]:
        room = self.rooms.get(room_id)
        return [p.public() for p in room.publications() if p.backup_of is None] if room else []

    async def set_muted(self, room_id: str, participant_id: str, kind: str, muted: bool) -> None:
        """Stop (or resume) forwarding a participant's microphone or camera."""
        room = self.rooms.get(room_id)
        peer = room.peers.get(participant_id) if room else None
        if peer is None:
            return
        peer.muted[kind] = muted
        source = "microphone" if kind == "audio" else "camera"
        for publication in peer.publications.values():
            if publication.source == source and publication.muted != muted:
                publication.muted = muted
                publication.changed()
                if not muted:
                    for slot in publication.slots:
                        slot.track.switch_source()
                    publication.request_keyframe()
                if publication.backup_of is not None:
                    continue
                await self.broadcast(
                    room_id, "publication_updated", {"publication": publication.public()}
                )

    def set_rules(self, room_id: str, rules: ForwardingRules) -> None:
        """The room's caucuses or screening changed: forward accordingly, from now on."""
        room = self.rooms.get(room_id)
        if room is not None:
            room.apply_rules(rules)

    async def close(self) -> None:
        self.loop_lag.stop()
        for room_id in list(self.rooms):
            await self.close_room(room_id)
        if self.ice.ports is not None and self.ice.ports.single:
            aiortc_internals.close_shared_ports()

    def stats(self) -> dict[str, Any]:
        return {
            room.id: {
                pid: {
                    "publications": {p.source: p.received for p in peer.publications.values()},
                    "slots": [(s.kind, s.track.forwarded, s.track.dropped) for s in peer.slots],
                    "withheld": sum(s.withheld for s in peer.slots),
                    "paused": sum(s.paused for s in peer.slots),
                }
                for pid, peer in room.peers.items()
            }
            for room in self.rooms.values()
        }


async def _close_quietly(pc: RTCPeerConnection) -> None:
    """Close `pc`; aiortc cannot always close one a bad description left half set up."""
    try:
        await pc.close()
    except Exception as error:
        log.info("closing a peer connection failed: %s: %s", type(error).__name__, error)


def _settle(
    applied: Applied,
    error: BaseException | None = None,
    result: list[dict[str, Any]] | None = None,
) -> None:
    """Tell the `subscriber_answer` waiting on `applied` how its answer went."""
    if applied.done():  # its sender stopped waiting
        return
    if error is None:
        applied.set_result(result or [])
    else:
        applied.set_exception(error)


def _unavailable(publication: Publication) -> dict[str, Any]:
    """`publication` as an entry of `unavailable` (docs/PROTOCOL.md)."""
    return {
        "publication_id": publication.id,
        "participant_id": publication.participant_id,
        "kind": publication.kind,
        "source": publication.source,
        "codec": publication.codec,
        "reason": sdp_input.CODEC_UNSUPPORTED,
    }


def _inactive(transceiver: RTCRtpTransceiver) -> bool:
    return transceiver.direction == "inactive" or transceiver.currentDirection in (
        "inactive",
        "sendonly",
    )


def _first_codecs(sdp: str) -> dict[str, str]:
    """The negotiated (first) codec of each m-line, by mid."""
    description = SessionDescription.parse(sdp)
    return {
        m.rtp.muxId: m.rtp.codecs[0].mimeType
        for m in description.media
        if m.rtp.codecs and m.rtp.muxId
    }


def require_candidates(sdp: str) -> None:
    """A description without one candidate of ours cannot connect: say why (the one
    cause here is a full --rtc-ports range; rtc/ports.py has logged it)."""
    if "a=candidate:" not in sdp:
        raise TiaojieError(
            "media_ports_exhausted",
            "The server has no free media port right now; try again in a minute.",
            503,
        )
