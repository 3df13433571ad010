"""The recorder process: `tiaojie record` (recorder/cli.py) as a child of the server, one
per recorded room, launched, counted when it crashes, and stopped with SIGTERM (it then
closes its segments, seals the chain and exits)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiaojie.archive.keys import PRIVATE_FILE

log = logging.getLogger(__name__)

RESTART_DELAY_S = 0.3
STOP_TIMEOUT_S = 30.0
MAX_RESTARTS_PER_MINUTE = 10
#: The recorder process reads its link's token from this variable (tiaojie.recorder.cli),
#: so the token is never on a command line.
RECORDER_TOKEN_ENV = "TIAOJIE_RECORDER_TOKEN"


@dataclass
class RecorderProcess:
    """One recorded room's recorder: its process and the room events on their way to it."""

    room_id: str
    recording_id: str
    directory: Path
    token: str
    process: asyncio.subprocess.Process | None = None
    stopping: bool = False
    restarts: list[float] = field(default_factory=list)
    #: Room events not yet acknowledged by the recorder, oldest first (server.recordings.notes).
    pending: list[dict[str, Any]] = field(default_factory=list)
    #: The recorder's socket.io connection, once it is in the room.
    sid: str | None = None
    watcher: asyncio.Task[None] | None = None
    flusher: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one delivery at a time

    def crashed(self) -> bool:
        """Count a crash; True while restarting is still worth it."""
        moment = time.monotonic()
        self.restarts = [t for t in self.restarts if t > moment - 60] + [moment]
        return len(self.restarts) <= MAX_RESTARTS_PER_MINUTE


@dataclass(frozen=True)
class RecorderCommand:
    """How this server starts `tiaojie record`."""

    server_url: str  # where the recorder reaches this server (Settings.local_url)
    keys_dir: Path
    logs_dir: Path
    tsa_url: str | None = None

    def argv(self, proc: RecorderProcess) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "tiaojie",
            "record",
            "--server",
            self.server_url,
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
        return command

    async def launch(self, proc: RecorderProcess) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, RECORDER_TOKEN_ENV: proc.token}
        with (self.logs_dir / f"recorder-{proc.recording_id}.log").open("ab") as logfile:
            proc.process = await asyncio.create_subprocess_exec(
                *self.argv(proc),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logfile,
                stderr=logfile,
            )
        proc.sid = None
        log.info("recorder %s started (pid %d)", proc.recording_id, proc.process.pid)


async def terminate(proc: RecorderProcess) -> None:
    """SIGTERM, and wait for the seal; killed after STOP_TIMEOUT_S."""
    if proc.process is None or proc.process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        log.error("recorder %s did not stop in time: killed", proc.recording_id)
        with contextlib.suppress(ProcessLookupError):
            proc.process.kill()
        await proc.process.wait()
