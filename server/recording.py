"""Recording: start/stop, the supervised recorder processes, and the chain's room events.

Starting a recording stores it on the room (so every node and every client sees it),
mints a `recorder` invite that only the server knows, and launches `tiaojie record`
(recorder/cli.py) as a child process. A watcher restarts the recorder when it exits
without being asked to (kill -9, crash) within RESTART_DELAY_S; the restarted recorder
continues the same chain after a signed gap entry. Stopping sends SIGTERM: the recorder
closes its segments, seals the chain and exits.

Room events that belong in the evidence (joins, leaves, consent, moderation, signing)
reach the recorder as `record_event` calls; while it is (re)starting they wait in order.
The recorder process is supervised by the node that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tiaojie.archive.chain import ADDENDUM_KINDS, ChainWriter, key_id, read_entries
from tiaojie.archive.keys import PRIVATE_FILE, keys_dir, load_or_create
from tiaojie.archive.layout import CHAIN_FILE, SUMMARY_FILE, new_recording_id, save_summary
from tiaojie.server import rooms
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import Room, now
from tiaojie.server.roles import Role
from tiaojie.server.store import RoomStore
from tiaojie.server.tokens import InviteClaims, TokenSigner

log = logging.getLogger(__name__)

RESTART_DELAY_S = 0.3
STOP_TIMEOUT_S = 30.0
MAX_RESTARTS_PER_MINUTE = 10
RECORDER_NAME = "录制 Recorder"
RECORDER_LINK_SECONDS = 7 * 86400
INDEX_FILE = "index.jsonl"
#: The recorder process reads its link's token from this variable (tiaojie.recorder.cli),
#: so the token is never on a command line.
RECORDER_TOKEN_ENV = "TIAOJIE_RECORDER_TOKEN"


@dataclass
class RecorderProcess:
    room_id: str
    recording_id: str
    directory: Path
    token: str
    process: asyncio.subprocess.Process | None = None
    stopping: bool = False
    restarts: list[float] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    sid: str | None = None
    watcher: asyncio.Task[None] | None = None
    flusher: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one delivery at a time


class Recordings:
    """The recording side of the server: one RecorderProcess per recorded room."""

    def __init__(
        self,
        data_dir: Path,
        local_url: str,
        store: RoomStore,
        signer: TokenSigner,
        tsa_url: str | None = None,
    ) -> None:
        self.root = data_dir / "recordings"
        self.keys_dir = data_dir / "keys"
        self.logs_dir = data_dir / "logs"
        self.local_url = local_url
        self.store = store
        self.signer = signer
        self.tsa_url = tsa_url
        self.processes: dict[str, RecorderProcess] = {}
        #: The recorder key is made on first run, so its id can be printed at start.
        self.key_id = key_id(load_or_create(keys_dir(data_dir)).public_key())
        #: (room_id, event, data) -> emits to the room; set by Signalling.
        self.broadcast: Callable[[str, dict[str, Any] | None], Awaitable[None]] | None = None
        #: (sid, event, data) -> the recorder's answer; set by Signalling.
        self.call: Callable[[str, str, dict[str, Any]], Awaitable[Any]] | None = None
        #: (sid, event, data), no answer: reaches a recorder on another node too.
        self.emit: Callable[[str, str, dict[str, Any]], Awaitable[None]] | None = None

    # -- start / stop ------------------------------------------------------------------
    async def start(self, room_id: str, started_by: str) -> dict[str, Any]:
        recording_id = new_recording_id()

        def change(room: Room) -> tuple[dict[str, Any], Any]:
            if room.ended:
                raise rooms.room_ended()
            if room.recording is not None:
                raise TiaojieError("already_recording", "This room is already being recorded.", 409)
            invite = rooms.create_invite(room, Role.RECORDER, RECORDER_NAME, RECORDER_LINK_SECONDS)
            room.recording = {
                "id": recording_id,
                "started_at": now(),
                "started_by": started_by,
                "invite_id": invite.invite_id,
                "consents": {},
            }
            return room.recording, invite

        recording, invite = await self.store.update(room_id, change)
        token = self.signer.sign(
            InviteClaims(room_id, Role.RECORDER, invite.invite_id, invite.expires_at)
        )
        directory = self.root / recording_id
        directory.mkdir(parents=True, mode=0o700)
        self._index({"recording_id": recording_id, "room_id": room_id, "started_at": now()})
        proc = RecorderProcess(room_id, recording_id, directory, token)
        self.processes[room_id] = proc
        await self._launch(proc)
        proc.watcher = asyncio.ensure_future(self._watch(proc))
        await self._announce(room_id, recording)
        return public(recording)

    async def stop(self, room_id: str) -> dict[str, Any]:
        def change(room: Room) -> dict[str, Any]:
            if room.recording is None:
                raise TiaojieError("not_recording", "This room is not being recorded.", 409)
            recording, room.recording = room.recording, None
            invite = room.invites.get(recording["invite_id"])
            if invite is not None:
                # the link dies now; the recorder itself leaves after the seal, and its
                # departure is announced like anyone's
                invite.revoked = True
            return recording

        recording = await self.store.update(room_id, change)
        proc = self.processes.pop(room_id, None)
        if proc is not None:
            await self._terminate(proc)
        await self._announce(room_id, None)
        return {**public(recording), "stopped_at": now()}

    async def _terminate(self, proc: RecorderProcess) -> None:
        proc.stopping = True
        await self._flush(proc)  # queued events first: they belong before the seal
        if proc.process is not None and proc.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.error("recorder %s did not stop in time: killed", proc.recording_id)
                with contextlib.suppress(ProcessLookupError):
                    proc.process.kill()
                await proc.process.wait()
        if proc.watcher is not None and proc.watcher is not asyncio.current_task():
            proc.watcher.cancel()

    async def shutdown(self) -> None:
        """Stop every recording this node runs (each gets its seal)."""
        for room_id in list(self.processes):
            with contextlib.suppress(TiaojieError):
                await self.stop(room_id)

    # -- the process -------------------------------------------------------------------
    async def _launch(self, proc: RecorderProcess) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "tiaojie",
            "record",
            "--server",
            self.local_url,
            "--dir",
            str(proc.directory),
            "--recording-id",
            proc.recording_id,
            f"--room-id={proc.room_id}",  # ids may start with "-"
            "--key",
            str(self.keys_dir / PRIVATE_FILE),
        ]
        if self.tsa_url:
            command += ["--tsa-url", self.tsa_url]
        env = {**os.environ, RECORDER_TOKEN_ENV: proc.token}
        with (self.logs_dir / f"recorder-{proc.recording_id}.log").open("ab") as logfile:
            proc.process = await asyncio.create_subprocess_exec(
                *command, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=logfile, stderr=logfile
            )
        proc.sid = None
        log.info("recorder %s started (pid %d)", proc.recording_id, proc.process.pid)

    async def _watch(self, proc: RecorderProcess) -> None:
        """Restart the recorder whenever it exits without being asked to."""
        while True:
            assert proc.process is not None
            code = await proc.process.wait()
            if proc.stopping:
                return
            if code == 0:
                # it sealed and left by itself: the room ended, or another node of the
                # cluster stopped the recording (the recorder follows recording_state)
                if self.processes.get(proc.room_id) is proc:
                    del self.processes[proc.room_id]
                log.info("recorder %s finished", proc.recording_id)
                return
            proc.restarts = [t for t in proc.restarts if t > time.monotonic() - 60] + [
                time.monotonic()
            ]
            if len(proc.restarts) > MAX_RESTARTS_PER_MINUTE:
                log.error("recorder %s keeps failing: giving up", proc.recording_id)
                with contextlib.suppress(TiaojieError):
                    await self.stop(proc.room_id)
                return
            log.warning("recorder %s exited (%s): restarting", proc.recording_id, code)
            await asyncio.sleep(RESTART_DELAY_S)
            await self._launch(proc)

    # -- events into the chain ---------------------------------------------------------
    def recorder_joined(self, room_id: str, sid: str) -> None:
        proc = self.processes.get(room_id)
        if proc is not None:
            proc.sid = sid
            self._start_flush(proc)

    def recorder_left(self, room_id: str, sid: str) -> None:
        proc = self.processes.get(room_id)
        if proc is not None and proc.sid == sid:
            proc.sid = None

    async def note(
        self, room_id: str, kind: str, *, recording_id: str | None = None, **fields: Any
    ) -> bool:
        """Put a room event into the recording's chain (False: nothing was written).

        Normally the running recorder writes it. An ADDENDUM_KINDS event for a recording
        of this room that has already been sealed is appended by the server itself, with
        a new seal (the signed agreement of a session whose recording had stopped).
        """
        proc = self.processes.get(room_id)
        event = {"kind": kind, "at": round(time.time(), 3), **fields}
        if proc is not None and recording_id in (None, proc.recording_id):
            proc.pending.append(event)
            self._start_flush(proc)
            return True
        if proc is None and await self._note_remote(room_id, recording_id, event):
            return True
        if recording_id is None or kind not in ADDENDUM_KINDS:
            return False
        return await asyncio.to_thread(self._addendum, room_id, recording_id, event)

    async def _note_remote(
        self, room_id: str, recording_id: str | None, event: dict[str, Any]
    ) -> bool:
        """The room is recorded by another node: send the event to its recorder directly.

        socket.io's Redis manager carries emits across nodes (not acknowledgements), so
        this is best effort: an event sent while that recorder restarts is lost.
        """
        room = await self.store.get(room_id)
        if room is None or room.recording is None or self.emit is None:
            return False
        if recording_id not in (None, room.recording["id"]):
            return False
        recorder = room.participants.get(room.recording["invite_id"])
        if recorder is None:
            return False
        await self.emit(recorder.sid, "record_event", event)
        return True

    def _addendum(self, room_id: str, recording_id: str, event: dict[str, Any]) -> bool:
        if not any(
            e["recording_id"] == recording_id and e["room_id"] == room_id for e in self.index()
        ):
            return False
        directory = self.root / recording_id
        key = load_pem_private_key((self.keys_dir / PRIVATE_FILE).read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        with (directory / CHAIN_FILE).open("rb+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one writer at a time
            entries, problems = read_entries(directory / CHAIN_FILE)
            if problems or not entries or entries[-1]["type"] != "seal":
                log.error("recording %s is not sealed: no addendum", recording_id)
                return False
            chain = ChainWriter(directory, recording_id, key)
            try:
                chain.append("event", event=event)
                seal = chain.append("seal", reason="addendum")
            finally:
                chain.close()
        summary = json.loads((directory / SUMMARY_FILE).read_text())
        summary["seal"] = {"seq": seal["seq"], "hash": seal["hash"], "time": seal["time"]}
        summary["chain_head"], summary["chain_length"] = seal["hash"], seal["seq"] + 1
        save_summary(directory, summary)
        return True

    def _start_flush(self, proc: RecorderProcess) -> None:
        if proc.sid is not None and (proc.flusher is None or proc.flusher.done()):
            proc.flusher = asyncio.ensure_future(self._flush(proc))

    async def _flush(self, proc: RecorderProcess) -> None:
        """Deliver queued events in order; one that is not acknowledged stays queued."""
        async with proc.lock:
            while proc.pending and proc.sid is not None and self.call is not None:
                try:
                    answer = await self.call(proc.sid, "record_event", proc.pending[0])
                except Exception:  # timeout or disconnect: retry when the recorder is back
                    return
                if not (isinstance(answer, dict) and answer.get("ok")):
                    log.error("the recorder refused event %r", proc.pending[0].get("kind"))
                proc.pending.pop(0)

    # -- consent -----------------------------------------------------------------------
    async def consent(
        self, room_id: str, participant: Any, recording_id: str, accepted: bool
    ) -> dict[str, Any]:
        def change(room: Room) -> dict[str, Any]:
            if room.recording is None or room.recording["id"] != recording_id:
                raise TiaojieError(
                    "not_recording", "That recording is not running (any more).", 409
                )
            room.recording["consents"][participant.id] = {
                "accepted": accepted,
                "at": now(),
                "name": participant.name,
                "role": str(participant.role),
            }
            return room.recording

        recording = await self.store.update(room_id, change)
        await self.note(
            room_id,
            "consent" if accepted else "refusal",
            participant_id=participant.id,
            name=participant.name,
            role=str(participant.role),
        )
        await self._announce(room_id, recording)
        return public(recording)

    async def _announce(self, room_id: str, recording: dict[str, Any] | None) -> None:
        if self.broadcast is not None:
            await self.broadcast(room_id, recording)

    # -- the archive -------------------------------------------------------------------
    def _index(self, entry: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / INDEX_FILE).open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def index(self) -> list[dict[str, Any]]:
        try:
            lines = (self.root / INDEX_FILE).read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]


def public(recording: dict[str, Any]) -> dict[str, Any]:
    """What clients see of a running recording (never the recorder's invite)."""
    return {k: v for k, v in recording.items() if k != "invite_id"}
