"""The recording service: start/stop, the supervised recorder processes, the chain's
room events, consent, and the recording's socket.io events and hooks.

Starting a recording stores it on the room (so every node and every client sees it),
mints a `recorder` invite that only the server knows, and launches the recorder process
(server/recordings/process.py). A watcher restarts the recorder when it exits without
being asked to (kill -9, crash), backing off when it keeps crashing but never giving up
while the room is recorded; the restarted recorder continues the same chain after a
signed gap entry that says why the previous one exited. Stopping flushes the queued room
events, then sends SIGTERM: the recorder closes its segments, seals the chain and exits.
The recorder process is supervised by the node that started it.

Several nodes: a recording whose node was lost is ended by the node the room is placed
on next (`orphaned`), which starts a new one that follows it (`continue_orphaned`); a
draining node seals its recording `drained` and has the room's new node start the one
that follows it (`hand_over`). Either way the consents are carried over, and `follows`
(the previous id, node, reason, and its seal or last published chain head: `heads`)
goes into the new recording's first chain event (docs/ARCHIVE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tiaojie.archive.chain import ADDENDUM_KINDS, key_id
from tiaojie.archive.keys import PRIVATE_FILE, keys_dir, load_or_create
from tiaojie.archive.layout import load_summary, new_recording_id
from tiaojie.server.archive_index.files import recording_facts
from tiaojie.server.archive_index.index import ArchiveIndex
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import Invite, Participant, Room, now
from tiaojie.server.recordings import addendum, rules
from tiaojie.server.recordings.archive import RecordingArchive
from tiaojie.server.recordings.notes import Delivery, RoomEvent
from tiaojie.server.recordings.process import (
    RecorderCommand,
    RecorderProcess,
    terminate,
)
from tiaojie.server.recordings.state import public, view
from tiaojie.server.roles import Role
from tiaojie.server.signalling import CloseReason, Request, Signalling
from tiaojie.server.store import RoomStore
from tiaojie.server.tokens import InviteClaims, TokenSigner

log = logging.getLogger(__name__)

#: (room_id, call name, payload, the start here) -> the answer: the start runs on the
#: node hosting the room's media, asked over Redis when it is another (server/cluster/).
OnHost = Callable[
    [str, str, dict[str, Any], Callable[[], Awaitable[dict[str, Any]]]],
    Awaitable[dict[str, Any]],
]

#: Told of a recording's seal: (room id, recording id, its folder's facts).
SealedListener = Callable[[str, str, dict[str, Any]], Awaitable[None]]

#: The call another node makes to start a recording here (server/cluster/calls.py).
START_CALL = "start_recording"
#: The room event a drained node's recorder writes before its seal (its seal's reason).
HANDOVER = "recording_handover"
#: (node id, call name, payload) -> the answer: a call to another node (server/cluster/).
CallNode = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]]
#: A recording id -> the last chain entry its node published ({"seq", "hash"}), if any.
LastHead = Callable[[str], Awaitable[dict[str, Any] | None]]
#: How long a node that restarted waits for the seal of a recorder that outlived it.
SEAL_WAIT_S = 60
#: How long the agreement's seal waits for the room events queued for the recorder.
FLUSH_TIMEOUT_S = 15.0
#: How long a server asked to stop waits for its recorders to take the last events.
SHUTDOWN_FLUSH_S = 5.0


def _summary(directory: Path) -> dict[str, Any]:
    try:
        return load_summary(directory) or {}
    except ValueError:
        return {}


class Recordings:
    """The recording side of the server: one RecorderProcess per recorded room."""

    def __init__(
        self,
        data_dir: Path,
        local_url: str,
        store: RoomStore,
        signer: TokenSigner,
        signalling: Signalling,
        index: ArchiveIndex,
        tsa_url: str | None = None,
        node: str = "",
        rtc_ports: str | None = None,
    ) -> None:
        #: This node (server/node.py): the recordings it supervises carry its name.
        self.node = node
        self.archive = RecordingArchive(data_dir / "recordings")
        #: The archive index (server/archive_index/): a recording's row is written with
        #: the room change that starts it; its seal when the recorder has sealed.
        self.index = index
        #: Waits for the seals of recorders that outlived this node's previous run.
        self._waiting: set[asyncio.Task[None]] = set()
        self.keys_dir = data_dir / "keys"
        self.command = RecorderCommand(
            local_url, self.keys_dir, data_dir / "logs", tsa_url, rtc_ports
        )
        self.store = store
        self.signer = signer
        self.signalling = signalling
        self.delivery = Delivery(store, signalling)
        self.processes: dict[str, RecorderProcess] = {}
        #: recorder processes restarted after a crash, since this process started (/metrics)
        self.restarts_total = 0
        self._sealed_listeners: list[SealedListener] = []
        #: The recorder key is made on first run, so its id can be printed at start.
        self.key_id = key_id(load_or_create(keys_dir(data_dir)).public_key())
        self._on_host: OnHost | None = None
        self._call_node: CallNode | None = None
        self._last_head: LastHead | None = None
        #: Rooms taken over from a lost node: the recording to start there, following the
        #: lost one (`orphaned`, then `continue_orphaned`).
        self._continuing: dict[str, dict[str, Any]] = {}

    def start_on_host(self, on_host: OnHost, call_node: CallNode, last_head: LastHead) -> None:
        """Several nodes: start recordings on the node that hosts the room's media, so
        the recorder is next to it and the files are where the room's node keeps them;
        `call_node` asks another node (a drained room's recording continues there);
        `last_head` is the chain entry a lost node published last for a recording."""
        self._on_host = on_host
        self._call_node = call_node
        self._last_head = last_head

    def install(self) -> None:
        """The recording's events, its field of `room_state`, and the presence hooks."""
        sig = self.signalling
        sig.add_handler("start_recording", self._on_start)
        sig.add_handler("stop_recording", self._on_stop)
        sig.add_handler("recording_consent", self._on_consent)
        sig.add_room_state("recording", self._room_state)
        sig.on_enter(self._entered)
        sig.on_away(self._away)
        sig.on_leave(self._left)
        sig.on_room_ending(self._room_ending)

    # -- start / stop ------------------------------------------------------------------
    async def start(self, room_id: str, started_by: str) -> dict[str, Any]:
        if self._on_host is None:
            return await self.start_here(room_id, started_by)
        payload = {"room_id": room_id, "started_by": started_by}
        return await self._on_host(
            room_id, START_CALL, payload, lambda: self.start_here(room_id, started_by)
        )

    async def start_here(
        self,
        room_id: str,
        started_by: str,
        follows: dict[str, Any] | None = None,
        consents: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start the room's recording with a recorder process of this node; `follows` and
        `consents`: it continues a lost or drained node's recording (rules.start)."""
        recording_id = new_recording_id()

        def start(room: Room) -> tuple[dict[str, Any], Invite, str]:
            recording, invite = rules.start(
                room, recording_id, started_by, self.node, follows, consents
            )
            return recording, invite, room.title

        recording, invite, title = await self.store.update(room_id, start)
        token = self.signer.sign(
            InviteClaims(room_id, Role.RECORDER, invite.invite_id, invite.expires_at)
        )
        directory = self.archive.directory(recording_id)
        directory.mkdir(parents=True, mode=0o700)
        self.archive.add(
            {
                "recording_id": recording_id,
                "room_id": room_id,
                "room_title": title,
                "started_at": now(),
                "started_by": started_by,
                "node": self.node,
                **({"follows": follows} if follows else {}),
            }
        )
        proc = RecorderProcess(room_id, recording_id, directory, token, follows=follows)
        self.processes[room_id] = proc
        await self.command.launch(proc)
        proc.watcher = asyncio.ensure_future(self._watch(proc))
        await self._announce(room_id, recording)
        return public(recording)

    async def stop(self, room_id: str) -> dict[str, Any]:
        recording = await self.store.update(room_id, rules.stop)
        proc = self.processes.pop(room_id, None)
        if proc is not None:
            proc.stopping = True
            await self.delivery.flush(proc)  # queued events first: they belong before the seal
            await terminate(proc)
            if proc.watcher is not None and proc.watcher is not asyncio.current_task():
                proc.watcher.cancel()
            facts = await self.index_folder(proc.recording_id)
            await self._sealed(room_id, proc.recording_id, facts)
        await self._announce(room_id, None)
        return {**public(recording), "stopped_at": now()}

    async def shutdown(self) -> None:
        """Stop every recording this node runs (each gets its seal), the chain saying
        first that the server is stopping: not the mediator's stop."""
        for task in list(self._waiting):
            task.cancel()
        for room_id in list(self.processes):
            await self.note(room_id, RoomEvent.SERVER_STOPPING)
            await self.flush(room_id, within=SHUTDOWN_FLUSH_S)  # retried, unlike stop's
            with contextlib.suppress(TiaojieError):
                await self.stop(room_id)

    # -- the archive index -------------------------------------------------------------
    async def index_folder(self, recording_id: str, *, running: bool = False) -> dict[str, Any]:
        """Put what the recording's folder says now (its seal, who was in it) into the
        index, and return it. A database that is down is logged: `tiaojie reindex`
        catches up."""
        directory = self.archive.directory(recording_id)
        facts = await asyncio.to_thread(recording_facts, directory, running=running)
        try:
            await self.index.recording_facts(recording_id, facts)
        except TiaojieError as error:
            log.error("recording %s: not indexed (%s): run tiaojie reindex", recording_id, error)
        return facts

    def on_sealed(self, listener: SealedListener) -> None:
        """`listener(room_id, recording_id, facts)` once a recording this node stopped
        is sealed and indexed (a case's log names the seal: server/cases/projection.py)."""
        self._sealed_listeners.append(listener)

    async def _sealed(self, room_id: str, recording_id: str, facts: dict[str, Any]) -> None:
        for listener in self._sealed_listeners:
            try:
                await listener(room_id, recording_id, facts)
            except TiaojieError as error:
                log.error("recording %s: its seal was not passed on (%s)", recording_id, error)

    def _index_when_sealed(self, recording_id: str) -> None:
        """Index a recording whose recorder outlived this node once it has sealed (it
        notices the server is gone within seconds); as unsealed if it never does."""

        async def wait() -> None:
            directory = self.archive.directory(recording_id)
            for _ in range(SEAL_WAIT_S * 2):
                summary = await asyncio.to_thread(_summary, directory)
                if summary.get("status") == "sealed":
                    break
                await asyncio.sleep(0.5)
            await self.index_folder(recording_id)

        task = asyncio.ensure_future(wait())
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def wait_indexed(self) -> None:
        """Wait for the seals of recorders that outlived this node's previous run (tests)."""
        while self._waiting:
            await asyncio.gather(*self._waiting, return_exceptions=True)

    async def recover(self) -> None:
        """Take off their rooms the recordings this node ran before it (re)started.

        Their recorder process outlived the server only to find it gone: it sealed what
        it had written (seal reason `disconnected`) and exited, so the recording is
        finished and verifies. It cannot be continued (a sealed chain takes addenda only);
        the mediator starts a new recording when the session goes on.
        """
        for room in await self.store.list(open_only=True):
            recording = room.recording
            if recording is None or recording.get("node") != self.node:
                continue
            if room.id in self.processes:
                continue
            recording_id: str = recording["id"]

            def end(stored: Room, recording_id: str = recording_id) -> dict[str, Any] | None:
                return rules.interrupted(stored, recording_id)

            stopped = await self.store.update(room.id, end)
            if stopped is not None:
                log.warning(
                    "recording %s of room %s was running when this node stopped: its "
                    "recorder sealed what it wrote; it is over",
                    stopped["id"],
                    room.id,
                )
                await self._announce(room.id, None)
        for recording_id in await self.index.unfinished(self.node):
            if all(proc.recording_id != recording_id for proc in self.processes.values()):
                self._index_when_sealed(recording_id)

    async def orphaned(self, room_id: str, live_nodes: set[str]) -> None:
        """The room was placed on this node: a recording of it running on a node that is no
        longer live (killed; its lease lapsed) is over here, as `recover` ends it on a
        restart (its recorder, if its machine lives, seals it `disconnected`), and a new
        one that follows it is started by `continue_orphaned` (the consents carried
        over, as a restarted recorder keeps them). A recording of a live node is left
        alone (it stops itself, or is handed over by `hand_over`)."""
        room = await self.store.get(room_id)
        recording = room.recording if room is not None else None
        if recording is None or recording.get("node") in live_nodes | {self.node}:
            return
        recording_id: str = recording["id"]

        def end(stored: Room) -> dict[str, Any] | None:
            return rules.interrupted(stored, recording_id)

        if await self.store.update(room_id, end) is None:
            return
        log.warning(
            "recording %s of room %s ran on node %s, which is gone: its recorder seals what "
            "it wrote; a new recording follows it here",
            recording_id,
            room_id,
            recording.get("node"),
        )
        seen = await self._last_head(recording_id) if self._last_head is not None else None
        self._continuing[room_id] = {
            "started_by": recording["started_by"],
            "consents": recording.get("consents") or {},
            "follows": {
                "recording_id": recording_id,
                "node": recording.get("node"),
                "reason": "node_lost",
                # the last entry its node saw written: the lost chain holds it (seq, hash)
                "seen": seen,
            },
        }
        await self._announce(room_id, None)

    async def continue_orphaned(self, room_id: str, live_nodes: set[str]) -> None:
        """Start the recording that follows the one `orphaned` ended (after the lost
        node's connections were cleared: server/signalling.py `release_lost`)."""
        then = self._continuing.pop(room_id, None)
        if then is None:
            return
        try:
            await self.start_here(room_id, then["started_by"], then["follows"], then["consents"])
        except TiaojieError as error:  # the room ended, or a recording started meanwhile
            log.warning("room %s: no recording follows the lost one (%s)", room_id, error)

    async def hand_over(self, room_id: str, node: str) -> dict[str, Any] | None:
        """The room moves to `node` (this one drains): its recording here is sealed with
        reason `drained` (the chain says where the room went first), and a new one that
        follows it (its seal's hash, the consents) starts on `node`. The new recording,
        None when nothing was recorded here."""
        proc = self.processes.get(room_id)
        room = await self.store.get(room_id)
        recording = room.recording if room is not None else None
        if proc is None or recording is None or recording["id"] != proc.recording_id:
            return None
        await self.note(room_id, HANDOVER, reason="drained", to_node=node)
        await self.flush(room_id)
        await self.stop(room_id)
        summary = await asyncio.to_thread(_summary, proc.directory)
        seal = summary.get("seal") if isinstance(summary.get("seal"), dict) else None
        follows = {
            "recording_id": proc.recording_id,
            "node": self.node,
            "reason": "drained",
            "seal": {"seq": seal["seq"], "hash": seal["hash"]} if seal else None,
        }
        payload = {
            "room_id": room_id,
            "started_by": recording["started_by"],
            "follows": follows,
            "consents": recording.get("consents") or {},
        }
        if self._call_node is None:
            return None
        try:
            return await self._call_node(node, START_CALL, payload)
        except TiaojieError as error:
            log.error("room %s: the recording did not continue on %s (%s)", room_id, node, error)
            return None

    def heads(self) -> dict[str, dict[str, Any]]:
        """The last chain entry of each recording this node runs ({"seq", "hash"}, from
        its summary): published with the node's heartbeat, so that the node taking over
        a room whose node died names where the lost chain was (blocking: file reads)."""
        heads: dict[str, dict[str, Any]] = {}
        for proc in list(self.processes.values()):
            summary = _summary(proc.directory)
            head, length = summary.get("chain_head"), summary.get("chain_length")
            if isinstance(head, str) and isinstance(length, int) and length > 0:
                heads[proc.recording_id] = {"seq": length - 1, "hash": head}
        return heads

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
                await self.index_folder(proc.recording_id)
                return
            delay = proc.crashed()
            self.restarts_total += 1
            proc.last_exit = self.command.exit_reason(proc, code)
            if proc.backing_off:  # never given up on while the room is recorded
                log.error(
                    "recorder %s keeps failing (%d exits in a minute; last: %s): "
                    "restarting in %.1f s",
                    proc.recording_id,
                    len(proc.restarts),
                    proc.last_exit,
                    delay,
                )
            else:
                log.warning(
                    "recorder %s exited (%s): restarting", proc.recording_id, proc.last_exit
                )
            await asyncio.sleep(delay)
            if proc.stopping:
                return
            await self.command.launch(proc)

    # -- events into the chain ---------------------------------------------------------
    async def note(
        self, room_id: str, kind: str, *, recording_id: str | None = None, **fields: Any
    ) -> bool:
        """Put a room event into the recording's chain (False: nothing was written).

        Normally the running recorder writes it. An ADDENDUM_KINDS event for a recording
        of this room that has already been sealed is appended by the server itself, with
        a new seal (the signed agreement of a session whose recording had stopped).
        """
        proc = self.processes.get(room_id)
        event = {"kind": str(kind), "at": round(time.time(), 3), **fields}
        if proc is not None and recording_id in (None, proc.recording_id):
            self.delivery.queue(proc, event)
            return True
        if proc is None and await self.delivery.remote(room_id, recording_id, event):
            return True
        if recording_id is None or kind not in ADDENDUM_KINDS:
            return False
        entry = await self.index.recording(recording_id)  # the recording must be this room's
        if entry is None or entry["room_id"] != room_id:
            return False
        directory = self.archive.directory(recording_id)
        key_file = self.keys_dir / PRIVATE_FILE
        done = await asyncio.to_thread(addendum.append, directory, recording_id, key_file, event)
        if done:
            await self.index_folder(recording_id)
        return done

    async def flush(self, room_id: str, within: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait until the room events queued for the room's recorder are written into its
        chain (its acknowledgements), also through a recorder restart: what reads the
        chain next (the agreement's seal) then sees them. False (logged) after `within`
        seconds. A recorder of another node is sent events without acknowledgements:
        nothing to wait for here."""
        proc = self.processes.get(room_id)
        if proc is None:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while proc.pending:
            left = deadline - loop.time()
            if left <= 0:
                log.warning(
                    "recording %s: %d room events not yet in the chain after %.0f s",
                    proc.recording_id,
                    len(proc.pending),
                    within,
                )
                return False
            if proc.sid is None:  # the recorder is (re)starting: it comes back
                await asyncio.sleep(min(0.05, left))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.delivery.flush(proc), left)
        return True

    async def note_about(
        self, room_id: str, kind: str, participant: Participant, **fields: Any
    ) -> bool:
        """`note` of an event about `participant`: their id and name, then `fields`."""
        return await self.note(
            room_id, kind, participant_id=participant.id, name=participant.name, **fields
        )

    # -- consent -----------------------------------------------------------------------
    async def consent(
        self, room_id: str, participant: Participant, recording_id: str, accepted: bool
    ) -> dict[str, Any]:
        recording = await self.store.update(
            room_id, lambda room: rules.consent(room, participant, recording_id, accepted)
        )
        kind = RoomEvent.CONSENT if accepted else RoomEvent.REFUSAL
        await self.note_about(room_id, kind, participant, role=str(participant.role))
        await self._announce(room_id, recording)
        return public(recording)

    async def _announce(self, room_id: str, recording: dict[str, Any] | None) -> None:
        """`recording_state` to the room; mediators then get it with the consents."""
        await self.signalling.broadcast(
            room_id, "recording_state", {"recording": view(recording, False)}
        )
        await self.signalling.broadcast_mediators(
            room_id, "recording_state", {"recording": view(recording, True)}
        )

    # -- signalling: events ------------------------------------------------------------
    async def _on_start(self, request: Request) -> dict[str, Any]:
        await self.signalling.check(request)
        return {"recording": await self.start(request.room_id, request.participant_id)}

    async def _on_stop(self, request: Request) -> dict[str, Any]:
        await self.signalling.check(request)
        return {"recording": await self.stop(request.room_id)}

    async def _on_consent(self, request: Request) -> dict[str, Any]:
        sender = await self.signalling.check(request)
        recording_id, accepted = request.payload["recording_id"], request.payload["accepted"]
        recording = await self.consent(request.room_id, sender, recording_id, accepted)
        return {"recording": view(recording, sender.role is Role.MEDIATOR)}

    # -- signalling: presence ----------------------------------------------------------
    def _room_state(self, room: Room, participant: Participant) -> dict[str, Any] | None:
        return view(room.recording, participant.role is Role.MEDIATOR, participant.id)

    async def _entered(self, room_id: str, participant: Participant) -> None:
        if participant.role is not Role.RECORDER:
            await self.note_about(
                room_id, RoomEvent.JOINED, participant, role=str(participant.role)
            )
            return
        proc = self.processes.get(room_id)
        if proc is not None:  # the recorder is in: deliver what waited for it
            proc.sid = participant.sid
            self.delivery.start(proc)

    async def _away(self, room_id: str, participant: Participant) -> None:
        """The chain says when a participant's connection (and so their media) stopped;
        `joined` says when they came back."""
        if participant.role is not Role.RECORDER:
            await self.note_about(room_id, RoomEvent.RECONNECTING, participant)
            return
        proc = self.processes.get(room_id)
        if proc is not None and proc.sid == participant.sid:
            proc.sid = None

    async def _left(self, room_id: str, participant: Participant, reason: CloseReason) -> None:
        if participant.role is not Role.RECORDER:
            await self.note_about(room_id, RoomEvent.LEFT, participant, reason=str(reason))
            return
        proc = self.processes.get(room_id)
        if proc is not None and proc.sid == participant.sid:
            proc.sid = None

    async def _room_ending(self, room_id: str) -> None:
        """The seal, before everyone (the recorder too) is gone."""
        if room_id in self.processes:
            await self.note(room_id, RoomEvent.ROOM_ENDED)
            with contextlib.suppress(TiaojieError):
                await self.stop(room_id)
