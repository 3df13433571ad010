"""A Tiaojie participant in Python: join by link, publish encoded media, subscribe.

It speaks docs/PROTOCOL.md exactly as a browser does (socket.io + two
RTCPeerConnections) and never decodes: received tracks are made pass-through, so what
arrives are the encoded `av.Packet`s the publisher sent. The recorder, the load
generator, `tiaojie bot` and many tests build on it.

Several nodes: a node that does not host the room's media refuses the connection with
`redirect` and the URL of the one that does; the client connects there with the same
link (`base_url` follows it).

Reconnection (docs/PROTOCOL.md, "Reconnecting"): when the connection breaks (not when
the server closes it with `closed`), the client connects again with the same link, with
backoff, for up to `reconnect_for` seconds; the server kept its seat, so `room_state`
follows, and the client makes new peer connections, publishes the same media again and
receives the others again. `closed_reason` is set only when it gives up (`disconnected`)
or is refused.

Backup codec (docs/PROTOCOL.md `backup_codec`): the camera is offered in H264 then VP8;
when the server asks for a backup in VP8 (someone cannot decode H264), the client decodes
the file and sends the camera a second time through aiortc's VP8 encoder, on a second
transceiver added by renegotiation, until told to stop (client/backup.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import socketio
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tiaojie.client.backup import SOURCES as BACKUP_SOURCES
from tiaojie.client.backup import CameraBackup, encodable
from tiaojie.client.media_file import FileSource
from tiaojie.client.rejecting import reject_sections, undecodable_mids
from tiaojie.rtc import aiortc_internals
from tiaojie.rtc.codecs import codec_preferences, h264_first

log = logging.getLogger(__name__)


def _verb(codec: str | None) -> str:
    return "start" if codec else "stop"


class JoinRefused(Exception):
    def __init__(self, code: str, message: str, url: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        #: `redirect`: the node that hosts the room's media.
        self.url = url


#: Redirects one connection attempt follows (docs/PROTOCOL.md, "Several nodes").
MAX_REDIRECTS = 3


def parse_link(link: str) -> tuple[str, str]:
    """(server base URL, token) from an invite link `https://host/join#token=...`."""
    parts = urlsplit(link)
    token = parse_qs(parts.fragment).get("token", [""])[0]
    if parts.scheme not in ("http", "https") or not parts.netloc or not token:
        raise ValueError(f"not an invite link: {link.split('#')[0]}#...")
    return f"{parts.scheme}://{parts.netloc}", token


@dataclass
class Subscription:
    """A track we receive: which publication it carries and what has arrived."""

    mid: str
    publication_id: str
    participant_id: str
    kind: str
    source: str
    codec: str = ""  # mime type, e.g. video/H264
    packets: int = 0
    bytes: int = 0
    keyframes: int = 0
    first_at: float | None = None
    last_at: float | None = None
    on_packet: list[Callable[[Subscription, av.Packet], None]] = field(default_factory=list)


#: How long a client tries to get back after its connection broke: the server's default
#: reconnect grace (server/signalling.py); the seat is gone after it anyway.
RECONNECT_FOR_S = 30.0
#: Waits between attempts: 0.5 s doubling to this.
RECONNECT_DELAY_MAX_S = 3.0


class RoomClient:
    def __init__(
        self,
        link: str,
        name: str | None = None,
        *,
        bandwidth_estimation: bool = True,
        direct_delivery: bool = False,
        reconnect_for: float = RECONNECT_FOR_S,
        relay_only: bool = False,
        decodes: set[str] | None = None,
        backups: bool = True,
    ) -> None:
        self.base_url, self._token = parse_link(link)
        #: The node the link names: where a reconnect turns when the node the client was
        #: sent to does not answer (it died; the link's node places the room again).
        self.entry_url = self.base_url
        #: True: media only through the TURN servers the room hands out (as a browser
        #: with iceTransportPolicy "relay"), never a direct path.
        self.relay_only = relay_only
        self.name = name
        #: The codecs (mime types) this client accepts; None: all of aiortc's. Offered
        #: sections with none of them are rejected, as a browser that cannot decode them
        #: does (client/rejecting.py).
        self.decodes = decodes
        #: True: the camera is offered in VP8 after H264, and sent a second time in VP8
        #: (decoded, then encoded here) while the server asks for it (`backup_codec`);
        #: False: H264 only, and a subscriber that cannot decode it gets no picture.
        self.backups = backups
        self.backup = CameraBackup()
        #: The publisher connection's primary transceivers, by source.
        self._tracks: list[tuple[str, RTCRtpTransceiver]] = []
        #: One publisher negotiation at a time (publishing, a backup started or stopped).
        self._publishing = asyncio.Lock()
        #: What the server says this client cannot receive (the last answer's ack).
        self.unavailable: list[dict[str, Any]] = []
        #: False for a receiver next to the server (the recorder): no REMB feedback.
        self.bandwidth_estimation = bandwidth_estimation
        #: True: on_packet callbacks run as frames are assembled, not from a task per
        #: track, and RTP packets are handled in the socket callback, not by aiortc's
        #: receive task (no event-loop hop per packet or frame; the recorder uses it).
        self.direct_delivery = direct_delivery
        #: Seconds to keep reconnecting after the connection broke; 0: never.
        self.reconnect_for = reconnect_for
        #: Times the client came back after a broken connection.
        self.reconnects = 0
        #: Times a node sent the client to the node hosting the room (several nodes).
        self.redirects = 0
        #: What `publish` published, to publish again after a reconnect.
        self._published: tuple[FileSource, MediaStreamTrack | None] | None = None
        self._leaving = False
        self._reconnecting: asyncio.Task[None] | None = None
        self._entered = asyncio.Event()
        self.sio = socketio.AsyncClient(reconnection=False)
        self.welcome: dict[str, Any] | None = None
        self.room_state: dict[str, Any] | None = None
        self.closed_reason: str | None = None
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None
        self.subscriptions: dict[str, Subscription] = {}  # by mid
        #: Per mid: the server's sender reports, mapping packet pts to its wall clock.
        self.clocks: dict[str, aiortc_internals.SenderClock] = {}
        self._assemblers: dict[str, aiortc_internals.FrameAssembler] = {}
        #: Called with each new Subscription (before its first packet).
        self.on_subscription: list[Callable[[Subscription], None]] = []
        #: Called when the connection broke (before reconnecting: every subscription is
        #: over) and when the client is back in the room (True).
        self.on_reconnect: list[Callable[[bool], None]] = []
        self.ice_servers: list[dict[str, Any]] = []
        self._in_room = asyncio.Event()
        self._closed = asyncio.Event()
        self._offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        #: Answers the server's subscriber offers in turn; started anew on a reconnect.
        self._answering: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refusal: Any = None
        self.sio.on("welcome", self._on_welcome)
        self.sio.on("room_state", self._on_room_state)
        self.sio.on("closed", self._on_closed)
        self.sio.on("subscriber_offer", self._on_subscriber_offer)
        self.sio.on("backup_codec", self._on_backup_codec)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)

    # -- joining ---------------------------------------------------------------------------
    async def _connect(self) -> None:
        """Connect, following `redirect`s to the node that hosts the room's media: the
        same token there; later reconnects go there too."""
        for _ in range(MAX_REDIRECTS):
            try:
                await self._connect_once()
                return
            except JoinRefused as refused:
                if refused.code != "redirect" or not refused.url:
                    raise
                log.info("the room is served by %s: connecting there", refused.url)
                self.base_url = refused.url.rstrip("/")
                self.redirects += 1
        await self._connect_once()

    async def _connect_once(self) -> None:
        auth: dict[str, Any] = {"token": self._token}
        if self.name:
            auth["name"] = self.name
        self._refusal = None
        try:
            await self.sio.connect(
                self.base_url, auth=auth, transports=["websocket"], wait_timeout=10
            )
        except socketio.exceptions.ConnectionError:
            for _ in range(10):  # the refusal's data may follow the error (a busy loop)
                if self._refusal is not None:
                    break
                await asyncio.sleep(0.05)
            data = self._refusal or {}
            data = data.get("data", data) if isinstance(data, dict) else {}
            raise JoinRefused(
                data.get("error", "connect_failed"),
                data.get("message", "could not connect"),
                data.get("url"),
            ) from None

    async def join(self, wait: float = 15) -> dict[str, Any]:
        """Connect; returns once in the room (after the lobby, if there is one)."""
        await self._connect()
        self._answer_anew()
        await asyncio.wait(
            [
                asyncio.ensure_future(self._in_room.wait()),
                asyncio.ensure_future(self._closed.wait()),
            ],
            timeout=wait,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if self.closed_reason is not None:
            raise JoinRefused(self.closed_reason, "closed before entering the room")
        if not self._in_room.is_set():
            raise TimeoutError("not admitted in time")
        assert self.room_state is not None
        return self.room_state

    async def _on_welcome(self, data: dict[str, Any]) -> None:
        self.welcome = data

    async def _on_room_state(self, data: dict[str, Any]) -> None:
        self.room_state = data
        self.ice_servers = data.get("ice_servers", [])
        if data.get("subscriber_offer"):  # the first offer comes in room_state
            await self._offers.put(data["subscriber_offer"])
        self._in_room.set()
        self._entered.set()

    async def _on_closed(self, data: dict[str, Any]) -> None:
        self.closed_reason = data.get("reason", "closed")
        self._closed.set()

    async def _on_connect_error(self, data: Any) -> None:
        self._refusal = data

    async def _on_disconnect(self, *args: Any) -> None:
        broken = self.closed_reason is None and not self._leaving
        if broken and self.reconnect_for > 0 and self._in_room.is_set():
            if self._reconnecting is None or self._reconnecting.done():
                self._reconnecting = asyncio.ensure_future(self._reconnect())
            return
        if self.closed_reason is None:
            self.closed_reason = "disconnected"
        self._closed.set()

    async def _reconnect(self) -> None:
        """Back to our seat: connect again with the same link (with backoff), then new peer
        connections: publish what we published, answer the server's subscriber offer."""
        deadline = time.monotonic() + self.reconnect_for
        self._answer_anew()
        await self._close_connections()
        self._tell_reconnect(back=False)
        delay = 0.5
        while not self._leaving:
            self._entered.clear()
            try:
                await self._transport_closed()
                await self._connect()
                await asyncio.wait_for(self._entered.wait(), 10)
            except JoinRefused as refused:
                if refused.code != "connect_failed":  # refused for good (revoked, ended)
                    self.closed_reason = refused.code
                    self._closed.set()
                    return
                self._back_to_entry()
            except Exception as error:  # any other failed attempt: try again, never stop
                log.warning("reconnecting: %r", error)
                with contextlib.suppress(Exception):
                    await self.sio.disconnect()
                self._back_to_entry()
            else:
                log.info("reconnected to the room")
                self.reconnects += 1
                self._tell_reconnect(back=True)
                if self._published is not None:
                    await self.publish(*self._published)
                return
            if time.monotonic() + delay > deadline:
                break
            await asyncio.sleep(delay)  # backoff between attempts
            delay = min(delay * 2, RECONNECT_DELAY_MAX_S)
        if self.closed_reason is None:
            self.closed_reason = "disconnected"
        self._closed.set()

    def _back_to_entry(self) -> None:
        """The node we were sent to does not answer: try the link's node next, which
        sends us to wherever the room is now (several nodes; its node may have died)."""
        if self.base_url != self.entry_url:
            log.info("%s does not answer: trying the link's node %s", self.base_url, self.entry_url)
            self.base_url = self.entry_url

    async def _transport_closed(self) -> None:
        """Wait (a few seconds at most) until the broken connection's Engine.IO client has
        finished closing: a server that closes us itself (a node shutting down sends
        Engine.IO CLOSE) calls our disconnect handler while it is still closing, and
        connecting then fails with "Client is not in a disconnected state"."""
        for _ in range(100):
            if self.sio.eio.state == "disconnected":
                return
            await asyncio.sleep(0.05)
        await self.sio.eio.disconnect(abort=True)

    def _tell_reconnect(self, back: bool) -> None:
        for callback in self.on_reconnect:
            try:
                callback(back)
            except Exception:  # a listener's failure must not stop the reconnect
                log.exception("on_reconnect listener failed")

    async def _close_connections(self) -> None:
        """Forget the peer connections of a connection that broke (the server closed its
        side; aiortc has no ICE restart)."""
        publisher, subscriber = self.publisher, self.subscriber
        self.publisher = self.subscriber = None
        self.backup.forget(self._published[0] if self._published else None)
        self.subscriptions = {}
        self.clocks = {}
        self._assemblers = {}
        for pc in (publisher, subscriber):
            if pc is not None:  # closing may wait on a transport that is gone: bounded
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pc.close(), 2)

    async def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = await self.sio.call(event, payload, timeout=15)
        if not answer.get("ok"):
            raise JoinRefused(answer.get("error", "error"), answer.get("message", ""))
        return answer

    def _connection(self) -> RTCPeerConnection:
        servers = [RTCIceServer(**s) for s in self.ice_servers]
        # An empty list means no ICE servers; None would make aiortc use Google's STUN.
        policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
        return RTCPeerConnection(
            RTCConfiguration(
                iceServers=servers,
                iceTransportPolicy=policy,
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
            )
        )

    # -- publishing ------------------------------------------------------------------------
    async def publish(self, source: FileSource, screen: MediaStreamTrack | None = None) -> None:
        """Publish the file's video (camera) and audio (microphone) without decoding; then
        a backup of the camera if the server asked for one already."""
        async with self._publishing:
            self._published = (source, screen)
            self.backup.forget(source, asked=False)  # of an earlier connection, if any
            self.publisher = self._connection()
            video = self.publisher.addTransceiver(source.video, direction="sendonly")
            camera = h264_first("video")
            if self.backups:  # what the server may ask a backup in (after H264: not sent)
                camera += codec_preferences("video", "video/VP8")
            video.setCodecPreferences(camera)
            audio = self.publisher.addTransceiver(source.audio, direction="sendonly")
            audio.setCodecPreferences(h264_first("audio"))
            self._tracks = [("camera", video), ("microphone", audio)]
            if screen is not None:
                shared = self.publisher.addTransceiver(screen, direction="sendonly")
                shared.setCodecPreferences(h264_first("video"))
                self._tracks.append(("screen", shared))
            await self._offer()
            source.start()
        if not self.backup.settled():
            await self._sync_backup()

    async def _offer(self) -> None:
        """Offer the publisher connection as it is now; apply the server's answer."""
        publisher = self.publisher
        assert publisher is not None
        await publisher.setLocalDescription(await publisher.createOffer())
        tracks = [{"mid": t.mid, "source": s} for s, t in self._tracks]
        answer = await self.call(
            "publish",
            {
                "sdp": publisher.localDescription.sdp,
                "type": "offer",
                "tracks": tracks + self.backup.published(),
            },
        )
        await publisher.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    # -- backup codec ----------------------------------------------------------------------
    async def _on_backup_codec(self, data: dict[str, Any]) -> None:
        """The server asks for a backup of a source in a codec (or to stop it: null)."""
        if not isinstance(data, dict):
            log.warning("a backup_codec that is not an object: %.80r", data)
            return
        source, codec = data.get("source"), data.get("codec")
        if codec is not None and not self.backups:
            log.info("asked for a %s backup of the %s: this client sends none", codec, source)
            return
        if source not in BACKUP_SOURCES or (codec is not None and not encodable(str(codec))):
            log.warning("asked for a %s backup of the %s: cannot send that", codec, source)
            return
        self.backup.wanted = codec
        self._spawn(self._sync_backup())

    async def _sync_backup(self) -> None:
        """Start or stop the camera's backup until it is what the server last asked for
        (once the camera is published); a failure is logged, never raised."""
        async with self._publishing:
            while not self.backup.settled() and self.publisher is not None and self._published:
                wanted = self.backup.wanted
                try:
                    self.backup.apply(self.publisher, self._published[0])
                    await self._offer()
                except Exception as error:  # never the bot's end: one line, no traceback
                    log.warning("could not %s the camera's backup: %r", _verb(wanted), error)
                    self.backup.wanted = None  # until asked again: decode nothing meanwhile
                    with contextlib.suppress(Exception):
                        self.backup.apply(self.publisher, self._published[0])
                    return
                log.info("camera backup %s", f"sent in {wanted}" if wanted else "stopped")

    # -- subscribing -----------------------------------------------------------------------
    async def _on_subscriber_offer(self, data: dict[str, Any]) -> None:
        await self._offers.put(data)

    def _answer_anew(self) -> None:
        """Drop the offers of a connection that broke, and an answer in flight on it (it
        would wait out its timeout, and the new connection's offers behind it theirs)."""
        if self._answering is not None:
            self._answering.cancel()
        self._offers = asyncio.Queue()
        self._answering = asyncio.ensure_future(self._answer_offers())
        self._tasks.add(self._answering)
        self._answering.add_done_callback(self._tasks.discard)

    async def _answer_offers(self) -> None:
        while True:
            offer = await self._offers.get()
            try:
                await self._answer(offer)
            except Exception:
                log.exception("could not answer the subscriber offer")

    async def _answer(self, offer: dict[str, Any]) -> None:
        if self.subscriber is None:
            self.subscriber = self._connection()
            self.subscriber.on("track", self._on_track)
        listed = {t["mid"]: t for t in offer["tracks"]}
        previous = self.subscriptions
        self.subscriptions = {}
        for mid, info in listed.items():
            kept = previous.get(mid)
            if kept is not None and kept.publication_id == info["publication_id"]:
                self.subscriptions[mid] = kept
                continue
            self.subscriptions[mid] = Subscription(
                mid,
                info["publication_id"],
                info["participant_id"],
                info["kind"],
                info["source"],
                info.get("codec", ""),
                on_packet=kept.on_packet if kept else [],
            )
            for callback in self.on_subscription:
                callback(self.subscriptions[mid])
        await self.subscriber.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.subscriber.setLocalDescription(await self.subscriber.createAnswer())
        answer = self.subscriber.localDescription.sdp
        if self.decodes is not None:
            answer = reject_sections(answer, undecodable_mids(offer["sdp"], self.decodes))
        ack = await self.call("subscriber_answer", {"sdp": answer, "type": "answer"})
        self.unavailable = list(ack.get("unavailable", []))

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.subscriber is not None
        for transceiver in self.subscriber.getTransceivers():
            if transceiver.receiver.track is track and transceiver.mid is not None:
                assembler = aiortc_internals.make_passthrough(transceiver.receiver)
                if not self.bandwidth_estimation:
                    aiortc_internals.disable_bandwidth_estimation(transceiver.receiver)
                self._assemblers[transceiver.mid] = assembler
                rate = 90000 if track.kind == "video" else 48000
                self.clocks[transceiver.mid] = aiortc_internals.sender_clock(
                    transceiver.receiver, rate
                )
                if self.direct_delivery:
                    aiortc_internals.receive_inline(
                        transceiver.receiver, functools.partial(self._deliver, transceiver.mid)
                    )
                else:
                    self._spawn(self._consume(transceiver.mid, track))

    async def _consume(self, mid: str, track: MediaStreamTrack) -> None:
        while True:
            try:
                packet = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(packet, av.Packet)  # the pass-through receiver never decodes
            self._deliver(mid, packet)

    def _deliver(self, mid: str, packet: av.Packet) -> None:
        sub = self.subscriptions.get(mid)
        if sub is None:
            return
        now = time.monotonic()
        sub.packets += 1
        sub.bytes += packet.size
        sub.keyframes += int(bool(packet.is_keyframe))
        sub.first_at = sub.first_at or now
        sub.last_at = now
        for callback in sub.on_packet:
            callback(sub, packet)

    async def request_keyframe(self, mid: str) -> None:
        """Ask (through the server) the publisher behind `mid` for a keyframe."""
        assembler = self._assemblers.get(mid)
        if self.subscriber is None or assembler is None or assembler.media_ssrc is None:
            return
        for transceiver in self.subscriber.getTransceivers():
            if transceiver.mid == mid:
                await aiortc_internals.send_pli(transceiver.receiver, assembler.media_ssrc)

    def subscriptions_of(self, participant_id: str) -> dict[str, Subscription]:
        """The live subscriptions carrying `participant_id`'s publications, by source."""
        return {
            s.source: s for s in self.subscriptions.values() if s.participant_id == participant_id
        }

    # -- leaving ---------------------------------------------------------------------------
    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def leave(self) -> None:
        self._leaving = True
        if self.sio.connected:
            with contextlib.suppress(Exception):  # already closing: fine
                await self.sio.call("leave", {}, timeout=2)
            await self.sio.disconnect()
        await self.close()

    async def close(self) -> None:
        self._leaving = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        for task in list(self._tasks):
            task.cancel()
        for pc in (self.publisher, self.subscriber):
            if pc is not None:
                await pc.close()
        if self.sio.connected:
            await self.sio.disconnect()
