"""Room events on their way into a recording's chain.

Room events that belong in the evidence (joins, leaves, consent, moderation, signing)
reach the recorder as `record_event` calls, in order; one the recorder has not
acknowledged stays queued (while it restarts, say) and is sent again when it is back.
The recorder of a room recorded by another node of the cluster gets them as plain
emits, carried by socket.io's Redis manager.
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


class RoomEvent(StrEnum):
    """The kinds of room event the server puts in a chain (docs/ARCHIVE.md, `event`)."""

    JOINED = "joined"
    LEFT = "left"
    CONSENT = "consent"
    REFUSAL = "refusal"
    MUTE = "mute"
    SELF_MUTE = "self_mute"
    SELF_UNMUTE = "self_unmute"
    REMOVE = "remove"
    ROOM_ENDED = "room_ended"
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
                    return
                if not (isinstance(answer, dict) and answer.get("ok")):
                    log.error("the recorder refused event %r", proc.pending[0].get("kind"))
                proc.pending.pop(0)

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
