"""Room events on their way into a recording's chain.

Room events that belong in the evidence (joins, leaves, consent, moderation, signing)
reach the recorder as `record_event` calls, in order; one the recorder has not
acknowledged stays queued (while it restarts, say) and is sent again when it is back.
The recorder of a room recorded by another node of the cluster gets them as plain
emits, carried by socket.io's Redis manager. An event the recorder fails on again and
again (it dies or does not answer while writing it) does not block the ones after it:
after MAX_DELIVERIES attempts an `event_not_recorded` note, saying which event and why,
takes its place.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Any

from tiaojie.server.recordings.process import RecorderProcess
from tiaojie.server.signalling import Signalling
from tiaojie.server.store import RoomStore

log = logging.getLogger(__name__)

#: Attempts to deliver one event before a note that it could not be recorded replaces it.
MAX_DELIVERIES = 3
NOT_RECORDED = "event_not_recorded"


class RoomEvent(StrEnum):
    """The kinds of room event the server puts in a chain (docs/ARCHIVE.md, `event`)."""

    JOINED = "joined"
    LEFT = "left"
    #: Their connection dropped; they keep their seat for the reconnect grace (their
    #: next `joined` is the return; `left` with reason `disconnected` if none).
    RECONNECTING = "reconnecting"
    CONSENT = "consent"
    REFUSAL = "refusal"
    MUTE = "mute"
    SELF_MUTE = "self_mute"
    SELF_UNMUTE = "self_unmute"
    REMOVE = "remove"
    #: The mediator sent someone back to the lobby (`by`); a `left` (reason
    #: `sent_to_lobby`) follows, and a `joined` when they are admitted again.
    SEND_TO_LOBBY = "send_to_lobby"
    #: A main-room chat message: its id, sender and the sha256 of its text (server/chat.py).
    CHAT = "chat"
    ROOM_ENDED = "room_ended"
    #: The server is shutting down (SIGTERM): the recording stops right after this
    #: (`recording_stopped`, the seal); the session may go on after a restart, in a new
    #: recording (docs/decisions.md).
    SERVER_STOPPING = "server_stopping"
    #: screening and caucuses (server/caucus.py): who and when, never what was said
    SCREEN = "screen"
    CAUCUS_OPENED = "caucus_opened"
    CAUCUS_JOINED = "caucus_joined"
    CAUCUS_LEFT = "caucus_left"
    CAUCUS_CLOSED = "caucus_closed"
    #: a caucus timer set (`minutes`, `ends_at`) or cleared (`minutes` null), and its end
    CAUCUS_TIMER = "caucus_timer"
    CAUCUS_TIME_UP = "caucus_time_up"
    #: recording a caucus (server/caucus_recording.py): asked or withdrawn by the mediator,
    #: each member's answer, and when the recorder began or stopped receiving it
    CAUCUS_RECORDING_ASKED = "caucus_recording_asked"
    CAUCUS_RECORDING_WITHDRAWN = "caucus_recording_withdrawn"
    CAUCUS_RECORDING_CONSENT = "caucus_recording_consent"
    CAUCUS_RECORDING_REFUSAL = "caucus_recording_refusal"
    CAUCUS_RECORDING_STARTED = "caucus_recording_started"
    CAUCUS_RECORDING_STOPPED = "caucus_recording_stopped"
    #: The mediator's notice to everyone (server/notices.py): sha256 of the text, as chat.
    MEDIATOR_NOTICE = "mediator_notice"
    AGREEMENT_SIGNATURES_INVALIDATED = "agreement_signatures_invalidated"
    AGREEMENT_SIGNATURES_REQUESTED = "agreement_signatures_requested"
    AGREEMENT_SIGNATURE = "agreement_signature"
    #: The signed agreement PDF; the one kind that may be an addendum (archive.chain).
    AGREEMENT = "agreement"


class Delivery:
    """Delivers room events to recorders, over signalling."""

    def __init__(self, store: RoomStore, signalling: Signalling) -> None:
        self.store = store
        self.signalling = signalling

    def queue(self, proc: RecorderProcess, event: dict[str, Any]) -> None:
        proc.pending.append(event)
        self.start(proc)

    def start(self, proc: RecorderProcess) -> None:
        """Deliver what is queued, in the background, once the recorder is connected."""
        if proc.sid is not None and (proc.flusher is None or proc.flusher.done()):
            proc.flusher = asyncio.ensure_future(self.flush(proc))

    async def flush(self, proc: RecorderProcess) -> None:
        """Deliver queued events in order; one that is not acknowledged stays queued."""
        async with proc.lock:
            while proc.pending and proc.sid is not None:
                try:
                    answer = await self.signalling.call(proc.sid, "record_event", proc.pending[0])
                except Exception:  # timeout or disconnect: retry when the recorder is back
                    self.failed(proc)
                    return
                proc.failed_deliveries = 0
                if not (isinstance(answer, dict) and answer.get("ok")):
                    log.error("the recorder refused event %r", proc.pending[0].get("kind"))
                proc.pending.pop(0)

    @staticmethod
    def failed(proc: RecorderProcess) -> None:
        """Count a failed delivery of the first queued event; after MAX_DELIVERIES, a note
        that the recorder could not write it (and why) takes its place."""
        proc.failed_deliveries += 1
        if proc.failed_deliveries < MAX_DELIVERIES or not proc.pending:
            return
        event, proc.failed_deliveries = proc.pending[0], 0
        kind = str(event.get("kind"))[:64]
        if kind == NOT_RECORDED:  # not even the note goes through: the log says it
            log.error("recording %s: the recorder cannot write any note", proc.recording_id)
            proc.pending.pop(0)
            return
        reason = f"the recorder failed {MAX_DELIVERIES} times while writing it"
        if proc.last_exit:
            reason += f" (last exit: {proc.last_exit})"
        log.error("recording %s: event %r not recorded: %s", proc.recording_id, kind, reason)
        note: dict[str, Any] = {"kind": NOT_RECORDED, "at": event.get("at"), "event_kind": kind}
        if isinstance(event.get("participant_id"), str):
            note["participant_id"] = event["participant_id"]
        proc.pending[0] = {**note, "reason": reason}

    async def remote(self, room_id: str, recording_id: str | None, event: dict[str, Any]) -> bool:
        """The room is recorded by another node: send the event to its recorder directly.

        socket.io's Redis manager carries emits across nodes (not acknowledgements), so
        this is best effort: an event sent while that recorder restarts is lost.
        """
        room = await self.store.get(room_id)
        if room is None or room.recording is None:
            return False
        if recording_id not in (None, room.recording["id"]):
            return False
        recorder = room.participants.get(room.recording["invite_id"])
        if recorder is None:
            return False
        await self.signalling.send(recorder.sid, "record_event", event)
        return True
