"""The recorder process: joins a room as `recorder` and archives it (docs/ARCHIVE.md).

It is a Python RoomClient like any participant. Every Subscription it receives is routed
to the Segment of its participant and source (`camera` for camera + microphone, `screen`
for a screen share); each Segment is one fMP4 file (recorder/segment.py), each of its
init segment and fragments, as written and fsynced, becomes a chain entry. Events the
server sends (`record_event`: consent, joins, leaves, moderation, signing) are chained
too. A signed checkpoint follows every few seconds; SIGTERM (or the room ending) closes
the segments and writes the seal.

The recorder never dies on what it is given: the Chain and the summary can hold any
string (archive/jsontext.py), a room event it cannot write becomes an
`event_not_recorded` entry that says why, and a summary that cannot be written is logged
(the summary is not evidence; the Chain is). A restarted recorder writes why the previous
one exited (`previous_exit`, from the server) into its signed `gap` entry. A recording that
continues a lost or drained node's names it (`--follows`) in its `recording_started`
event and summary; a `recording_handover` room event (the room moves to another node)
gives the seal its reason (`drained`).

Timing: a Segment starts at its first video keyframe (or first audio packet). Each
track's start on the segment's timeline comes from the sender reports of the server's
RTP senders (aiortc_internals.SenderClock): audio and video of one participant share
that clock, so they line up; the segment's start is recorded as a Unix time, the
session clock on which all segments can be laid side by side. Packets wait (at most
START_WAIT_S) for the first sender report; without one the arrival time stands in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tiaojie.archive.chain import ChainWriter, canonical, key_id
from tiaojie.archive.keys import public_pem
from tiaojie.archive.layout import (
    CHAIN_FILE,
    PUBLIC_KEY_FILE,
    SEAL_TIMESTAMP_FILE,
    SEGMENTS_DIR,
    SUMMARY_FILE,
    load_summary,
    save_summary,
    segment_name,
)
from tiaojie.client.session import RoomClient, Subscription
from tiaojie.recorder.segment import CONTAINERS, EXTENSIONS, SegmentWriter

log = logging.getLogger(__name__)

START_WAIT_S = 2.0  # longest wait for a keyframe / a sender report before a segment opens
KEYFRAME_RETRY_S = 1.0
#: How often the recorder looks at its segments (ended publications, segments waiting
#: for a keyframe) and the connection: each wake-up of the process costs CPU.
TICK_S = 0.5
#: A track starting later than this after its segment means a broken clock, not media.
MAX_START_OFFSET_S = 10.0
#: Characters of an error kept in the chain.
MAX_REASON_CHARS = 300


#: The room event that says the room moves to another node, where a recording that
#: follows this one starts: the seal then gives its `reason` ("drained").
HANDOVER = "recording_handover"

#: What goes into the archive: H264 (fragmented MP4) or VP8 (WebM) video, Opus audio.
RECORDABLE_CODECS = {"video": ("video/h264", "video/vp8"), "audio": ("audio/opus",)}


#: A recorder whose connection broke reconnects (same seat, new segments) for this long,
#: then seals with reason `disconnected`: shorter than the server's grace, because a
#: server that restarted ends the recording anyway (a new recorder continues the chain).
RECONNECT_FOR_S = 10.0


def recordable(subscription: Subscription) -> bool:
    """H264 or VP8 video and Opus audio are recorded; anything else is noted, not kept."""
    codec = subscription.codec.lower()
    return not codec or codec in RECORDABLE_CODECS.get(subscription.kind, ())


def group_of(source: str) -> str:
    return "screen" if source == "screen" else "camera"


@dataclass
class SegmentInfo:
    """One Segment in the summary (recording.json)."""

    name: str
    participant_id: str
    participant_name: str
    source: str
    tracks: list[str]
    start: float | None = None  # Unix time of the segment's time 0 (session clock)
    end: float | None = None
    fragments: int = 0
    bytes: int = 0
    status: str = "recording"  # recording | closed | interrupted
    #: The segment of the same participant and source before this one (a reconnect, a
    #: camera turned off and on): the person's recording continues here. The chain's
    #: `reconnecting` / `joined` events say when their connection dropped and came back.
    follows: str | None = None


@dataclass
class _Pending:
    kind: str
    packet: av.Packet
    wall: float | None
    arrival: float


@dataclass
class Segment:
    """A participant connection's source being recorded: buffer, then an fMP4 writer."""

    info: SegmentInfo
    publications: dict[str, str]  # kind -> publication id
    created: float = field(default_factory=time.time)
    buffer: list[_Pending] = field(default_factory=list)
    writer: SegmentWriter | None = None
    origin: float | None = None
    started_kinds: set[str] = field(default_factory=set)
    last_keyframe_request: float = 0.0
    #: "h264" (a .mp4 segment) or "vp8" (a .webm one)
    video_codec: str = "h264"


class Recorder:
    def __init__(
        self,
        link: str,
        directory: Path,
        recording_id: str,
        key: Ed25519PrivateKey,
        *,
        room_id: str = "",
        tsa_url: str | None = None,
        checkpoint_seconds: float = 5.0,
        fragment_seconds: float = 1.0,
        previous_exit: str | None = None,
        follows: dict[str, Any] | None = None,
    ) -> None:
        self.directory = directory
        self.recording_id = recording_id
        self.room_id = room_id
        self.tsa_url = tsa_url
        self.checkpoint_seconds = checkpoint_seconds
        self.fragment_seconds = fragment_seconds
        self.client = RoomClient(
            link,
            name="录制 Recorder",
            bandwidth_estimation=False,
            direct_delivery=True,
            reconnect_for=RECONNECT_FOR_S,
        )
        (directory / SEGMENTS_DIR).mkdir(parents=True, exist_ok=True)
        continuing = (directory / CHAIN_FILE).exists()
        self.chain = ChainWriter(directory, recording_id, key)
        self.summary = self._load_summary()
        self.segments: dict[tuple[str, str], Segment] = {}
        self._stop = asyncio.Event()
        self._stop_reason = "stopped"
        #: The seal's reason when the server moves the room away (`recording_handover`:
        #: a drained node), instead of "stopped".
        self._handover: str | None = None
        #: True from a broken connection until the recorder is back in the room.
        self._away = False
        self._checkpointed_seq = -1
        self._tasks: set[asyncio.Task[None]] = set()
        self._unrecordable: set[str] = set()  # publications noted as not recorded
        self._summary_errors: set[str] = set()  # each logged once
        (directory / PUBLIC_KEY_FILE).write_bytes(public_pem(key.public_key()))
        if continuing:
            interrupted = []
            for s in self.summary["segments"]:
                if s.get("status") == "recording":
                    s["status"] = "interrupted"
                    interrupted.append(s["name"])
            gap: dict[str, Any] = {"interrupted": interrupted}
            if previous_exit:
                gap["previous_exit"] = previous_exit[:MAX_REASON_CHARS]
            self.chain.append(
                "gap",
                reason="the recorder restarted after an unexpected exit; "
                "what it was writing then is lost",
                **gap,
            )
            self._note("recording_resumed", room_id=room_id)
        else:
            self.summary["started_at"] = time.time()
            started: dict[str, Any] = {"room_id": room_id, "recording_id": recording_id}
            if follows:  # a lost or drained node's recording, which this one continues
                started["follows"] = follows
                self.summary["follows"] = follows
            self._note("recording_started", **started)
        self.client.on_subscription.append(self._on_subscription)
        self.client.on_reconnect.append(self._on_reconnect)
        self.client.sio.on("record_event", self._on_record_event)
        self.client.sio.on("recording_state", self._on_recording_state)
        self.client.sio.on("participant_joined", self._on_participant)
        self.client.sio.on("participant_updated", self._on_participant)
        self._write_summary()

    # -- the summary -------------------------------------------------------------------
    def _load_summary(self) -> dict[str, Any]:
        """The summary so far (a continued recording), else a new one; a summary that is
        unreadable or not what a recorder writes is started anew (it is not evidence)."""
        try:
            data = load_summary(self.directory)
        except ValueError as error:
            log.error("%s: starting a new summary", error)
            data = None
        if (
            data is not None
            and isinstance(data.get("participants"), dict)
            and isinstance(data.get("segments"), list)
            and all(isinstance(s, dict) and "name" in s for s in data["segments"])
        ):
            return data
        if data is not None:
            log.error("%s is not a recorder's summary: starting a new one", SUMMARY_FILE)
        return {
            "recording_id": self.recording_id,
            "room_id": self.room_id,
            "status": "recording",
            "started_at": None,
            "stopped_at": None,
            "participants": {},
            "segments": [],
            "gaps": [],
            "seal": None,
            "timestamp": None,
            "key_id": key_id(self.chain.key.public_key()),
        }

    def _write_summary(self) -> None:
        self.summary["chain_head"] = self.chain.head
        self.summary["chain_length"] = self.chain.seq
        try:
            save_summary(self.directory, self.summary)
        except (OSError, TypeError, ValueError) as error:  # not evidence: never fatal
            if repr(error) not in self._summary_errors:
                self._summary_errors.add(repr(error))
                log.error("could not write the summary: %r", error)

    def _segment_info(self, segment: Segment) -> None:
        for i, s in enumerate(self.summary["segments"]):
            if s["name"] == segment.info.name:
                self.summary["segments"][i] = asdict(segment.info)
                return
        self.summary["segments"].append(asdict(segment.info))

    # -- chain -------------------------------------------------------------------------
    def _note(self, kind: str, **fields: Any) -> dict[str, Any]:
        return self.chain.append("event", event={"kind": kind, **fields})

    async def _on_record_event(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            return {"ok": False}
        try:
            return self._record_event(data)
        except Exception as error:  # write what can be written, and why the rest is not
            log.exception("could not record the room event %r", data["kind"][:64])
            reason = f"{type(error).__name__}: {error}"[:MAX_REASON_CHARS]
            fields = {"event_kind": data["kind"][:64], "reason": reason}
            if isinstance(data.get("participant_id"), str):
                fields["participant_id"] = data["participant_id"][:64]
            entry = self._note("event_not_recorded", **fields)
            self._write_summary()
            return {"ok": False, "error": reason, "seq": entry["seq"]}

    def _record_event(self, data: dict[str, Any]) -> dict[str, Any]:
        entry = self._note(data["kind"], **{k: v for k, v in data.items() if k != "kind"})
        if data["kind"] == HANDOVER and isinstance(data.get("reason"), str):
            self._handover = data["reason"][:64]
        participant = data.get("participant_id")
        if isinstance(participant, str):
            people = self.summary["participants"].setdefault(participant, {})
            if data["kind"] in ("consent", "refusal"):
                people["consent"] = data["kind"]
                people["consent_at"] = entry["time"]
            for key in ("name", "role"):
                if isinstance(data.get(key), str):
                    people[key] = data[key]
            if data["kind"] == "joined":
                people.setdefault("joined", []).append(entry["time"])
            if data["kind"] == "left":
                people.setdefault("left", []).append(entry["time"])
        self._write_summary()
        return {"ok": True, "seq": entry["seq"], "hash": entry["hash"]}

    async def _on_recording_state(self, data: Any) -> None:
        """Recording stopped (by any node of a cluster): seal and leave."""
        recording = data.get("recording") if isinstance(data, dict) else None
        if not isinstance(recording, dict) or recording.get("id") != self.recording_id:
            self.stop("stopped")

    async def _on_participant(self, data: Any) -> None:
        participant = data.get("participant") if isinstance(data, dict) else None
        if isinstance(participant, dict) and isinstance(participant.get("id"), str):
            people = self.summary["participants"].setdefault(participant["id"], {})
            people["name"] = participant.get("name")
            people["role"] = participant.get("role")

    def _checkpoint(self) -> None:
        if self.chain.seq - 1 > self._checkpointed_seq:
            self.chain.append("checkpoint")
            self._checkpointed_seq = self.chain.seq - 1
            self._write_summary()

    # -- media -------------------------------------------------------------------------
    def _on_reconnect(self, back: bool) -> None:
        """The recorder's own connection broke (every segment ends here: what comes after
        is a new connection) or it is back; the chain says when."""
        self._away = not back
        if back:
            self._note("recorder_reconnected")
            return
        for segment in list(self.segments.values()):
            self._close_segment(segment)
        self._note("recorder_reconnecting")
        self._write_summary()

    def _on_subscription(self, subscription: Subscription) -> None:
        if not recordable(subscription):
            # noted when offered: a track whose first packet never comes is in the chain too
            self._not_recorded(subscription)
        if self._on_packet not in subscription.on_packet:
            subscription.on_packet.append(self._on_packet)

    def _not_recorded(self, subscription: Subscription) -> None:
        """A `not_recorded` chain event for this publication, once."""
        if subscription.publication_id in self._unrecordable:
            return
        self._unrecordable.add(subscription.publication_id)
        self._note(
            "not_recorded",
            participant_id=subscription.participant_id,
            publication_id=subscription.publication_id,
            source=subscription.source,
            codec=subscription.codec,
            reason="the archive holds H264 or VP8 video and Opus audio; this track is "
            "forwarded to the room but not recorded",
        )
        self._write_summary()

    def _name_of(self, participant_id: str) -> str:
        people = self.summary["participants"].get(participant_id, {})
        if people.get("name"):
            return str(people["name"])
        for p in (self.client.room_state or {}).get("participants", []):
            if p.get("id") == participant_id:
                return str(p.get("name", ""))
        return ""

    def _new_segment(self, participant_id: str, group: str) -> Segment:
        subscriptions = [
            s
            for s in self.client.subscriptions.values()
            if s.participant_id == participant_id and group_of(s.source) == group and recordable(s)
        ]
        publications = {s.kind: s.publication_id for s in subscriptions}
        video = next((s.codec.lower() for s in subscriptions if s.kind == "video"), "")
        video_codec = "vp8" if video == "video/vp8" else "h264"
        extension = EXTENSIONS[CONTAINERS[video_codec]] if "video" in publications else ".mp4"
        number = len(self.summary["segments"]) + 1
        name = f"{SEGMENTS_DIR}/{segment_name(number, participant_id, group, extension)}"
        earlier = [
            s["name"]
            for s in self.summary["segments"]
            if s.get("participant_id") == participant_id and s.get("source") == group
        ]
        info = SegmentInfo(
            follows=earlier[-1] if earlier else None,
            name=name,
            participant_id=participant_id,
            participant_name=self._name_of(participant_id),
            source=group,
            tracks=sorted(publications),
        )
        segment = Segment(info, publications, video_codec=video_codec)
        self._segment_info(segment)
        return segment

    def _on_packet(self, subscription: Subscription, packet: av.Packet) -> None:
        if self._stop.is_set():
            return
        group = group_of(subscription.source)
        key = (subscription.participant_id, group)
        segment = self.segments.get(key)
        if (
            segment is not None
            and subscription.kind in segment.started_kinds
            and segment.publications.get(subscription.kind) == subscription.publication_id
        ):
            assert segment.writer is not None
            try:  # the steady state: straight to the muxer
                segment.writer.write(subscription.kind, packet)
            except (ValueError, av.FFmpegError):
                log.exception("could not write a %s packet to %s", subscription.kind, key)
            return
        if not recordable(subscription):
            self._not_recorded(subscription)
            return
        if segment is not None:
            known = segment.publications.get(subscription.kind)
            lacking = segment.writer is not None and subscription.kind not in segment.info.tracks
            if known != subscription.publication_id or lacking:
                # a new connection of this participant, or a track the segment lacks
                self._close_segment(segment)
                segment = None
        if segment is None:
            segment = self._new_segment(subscription.participant_id, group)
            self.segments[key] = segment
        clock = self.client.clocks.get(subscription.mid)
        wall = clock.wall_time(packet.pts) if clock is not None and packet.pts is not None else None
        pending = _Pending(subscription.kind, packet, wall, time.time())
        if segment.writer is None:
            segment.buffer.append(pending)
            self._maybe_open(segment, subscription.mid)
        else:
            self._write(segment, pending)

    def _maybe_open(self, segment: Segment, mid: str) -> None:
        kinds = set(segment.info.tracks)
        waited = time.time() - segment.created
        keyframes = [p for p in segment.buffer if p.kind == "video" and p.packet.is_keyframe]
        if "video" in kinds and not keyframes:
            if mid and time.time() - segment.last_keyframe_request > KEYFRAME_RETRY_S:
                segment.last_keyframe_request = time.time()
                task = asyncio.ensure_future(self.client.request_keyframe(mid))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            # video before the first keyframe can never be written: keep only audio
            segment.buffer = [p for p in segment.buffer if p.kind == "audio"][-250:]
            if waited < 2 * START_WAIT_S or not segment.buffer:
                return
            # no keyframe yet (camera muted or off): record the sound alone; a later
            # video packet starts a new segment with both tracks
            kinds = {"audio"}
            segment.info.tracks = ["audio"]
        first = keyframes[0] if keyframes else segment.buffer[0]
        have_clock = {p.kind for p in segment.buffer if p.wall is not None}
        if not kinds <= have_clock and waited < START_WAIT_S:
            return
        use_clock = kinds <= have_clock or first.wall is not None
        segment.origin = (first.wall if use_clock and first.wall else first.arrival) or time.time()
        segment.info.start = segment.origin
        path = self.directory / segment.info.name
        segment.writer = SegmentWriter(
            path,
            lambda kind, offset, data: self._chunk(segment, kind, offset, data),
            video="video" in kinds,
            audio="audio" in kinds,
            fragment_seconds=self.fragment_seconds,
            video_codec=segment.video_codec,
        )
        self._note(
            "segment_started",
            segment=segment.info.name,
            participant_id=segment.info.participant_id,
            name=segment.info.participant_name,
            source=segment.info.source,
            tracks=segment.info.tracks,
            start=round(segment.origin, 6),
            clock="sender_report" if use_clock else "arrival",
        )
        buffered, segment.buffer = segment.buffer, []
        if keyframes:
            buffered = buffered[buffered.index(first) :] + [
                p for p in buffered[: buffered.index(first)] if p.kind == "audio"
            ]
        for pending in sorted(buffered, key=lambda p: p.arrival):
            self._write(segment, pending, use_clock)
        self._segment_info(segment)
        self._write_summary()

    def _write(self, segment: Segment, pending: _Pending, use_clock: bool = True) -> None:
        writer = segment.writer
        assert writer is not None and segment.origin is not None
        if pending.kind not in segment.started_kinds:
            if writer.has_video and pending.kind == "audio" and not writer.started:
                return  # before the keyframe: SegmentWriter would drop it anyway
            moment = pending.wall if (use_clock and pending.wall is not None) else pending.arrival
            offset = moment - segment.origin
            if not 0 <= offset <= MAX_START_OFFSET_S:  # a clock gone wrong: do not trust it
                log.warning(
                    "%s: %s starts %.3f s in; using 0", segment.info.name, pending.kind, offset
                )
                offset = 0.0
            writer.set_start(pending.kind, offset)
            segment.started_kinds.add(pending.kind)
        try:
            writer.write(pending.kind, pending.packet)
        except (ValueError, av.FFmpegError):
            log.exception("could not write a %s packet to %s", pending.kind, segment.info.name)

    def _chunk(self, segment: Segment, kind: str, offset: int, data: bytes) -> None:
        self.chain.add_bytes(kind, segment.info.name, offset, data)
        segment.info.fragments += kind == "fragment"
        segment.info.bytes = offset + len(data)

    def _close_segment(self, segment: Segment) -> None:
        key = (segment.info.participant_id, segment.info.source)
        if self.segments.get(key) is segment:
            del self.segments[key]
        if segment.writer is not None:
            try:
                segment.writer.close()
            except (ValueError, av.FFmpegError):
                log.exception("could not close %s cleanly", segment.info.name)
            segment.info.status = "closed"
            segment.info.end = time.time()
            self._note(
                "segment_ended",
                segment=segment.info.name,
                end=round(segment.info.end, 6),
                fragments=segment.info.fragments,
                bytes=segment.info.bytes,
            )
        else:
            segment.info.status = "empty"
        self._segment_info(segment)
        self._write_summary()

    def _close_finished_segments(self) -> None:
        live = {s.publication_id for s in self.client.subscriptions.values()}
        for segment in list(self.segments.values()):
            if not set(segment.publications.values()) & live:
                self._close_segment(segment)
            elif segment.writer is None and segment.buffer:
                mid = next(
                    (
                        s.mid
                        for s in self.client.subscriptions.values()
                        if s.publication_id in segment.publications.values()
                    ),
                    "",
                )
                self._maybe_open(segment, mid)

    # -- running -----------------------------------------------------------------------
    def _closed(self, reason: str) -> None:
        """The room connection is over. Refused while reconnecting (a server that restarted
        withdrew this recording's link, or the room ended meanwhile), the recorder lost the
        server and did not get back: the seal says `disconnected`, and the chain says what
        the server answered; `recorder_reconnecting` before it says when the server went."""
        if self._away and reason != "disconnected":
            self._note("recorder_not_readmitted", reason=reason[:MAX_REASON_CHARS])
            reason = "disconnected"
        self.stop(reason)

    def stop(self, reason: str = "stopped") -> None:
        if reason == "stopped" and self._handover:
            reason = self._handover  # the room moved to another node: a new recording follows
        self._stop_reason = reason
        self._stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        try:
            state = await self.client.join()
        except Exception as error:  # could not join: nothing was recorded this run
            log.error("the recorder could not join the room: %s", error)
            self._note("recorder_join_failed", error=str(error)[:200])
            self._checkpoint()
            return 3
        for p in state.get("participants", []):
            self.summary["participants"].setdefault(p["id"], {}).update(
                name=p.get("name"), role=p.get("role")
            )
        self._write_summary()
        last_checkpoint = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), TICK_S)
            if self.client.closed_reason is not None and not self._stop.is_set():
                self._closed(self.client.closed_reason)
            self._close_finished_segments()
            if time.monotonic() - last_checkpoint >= self.checkpoint_seconds:
                self._checkpoint()
                last_checkpoint = time.monotonic()
        await self._finish()
        return 0

    async def _finish(self) -> None:
        for segment in list(self.segments.values()):
            self._close_segment(segment)
        self._note("recording_stopped", reason=self._stop_reason)
        seal = self.chain.append("seal", reason=self._stop_reason)
        self.summary["status"] = "sealed"
        self.summary["stopped_at"] = seal["time"]
        self.summary["seal"] = {"seq": seal["seq"], "hash": seal["hash"], "time": seal["time"]}
        self._write_summary()
        if self.tsa_url:
            await self._timestamp_seal(seal)
        self.chain.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.leave(), 5)

    async def _timestamp_seal(self, seal: dict[str, Any]) -> None:
        """RFC 3161 timestamp over the seal line as stored in the chain."""
        assert self.tsa_url is not None
        try:
            # Deferred: only a recording with --tsa-url needs the TSA client (asn1crypto).
            from tiaojie.signing.tsa import request_timestamp

            token = await request_timestamp(self.tsa_url, canonical(seal))
        except Exception as error:
            log.error("the TSA at %s did not timestamp the seal: %s", self.tsa_url, error)
            self.summary["timestamp"] = {"error": str(error)[:300], "tsa_url": self.tsa_url}
        else:
            (self.directory / SEAL_TIMESTAMP_FILE).write_bytes(token)
            self.summary["timestamp"] = {"file": SEAL_TIMESTAMP_FILE, "tsa_url": self.tsa_url}
        self._write_summary()
