"""The recorder process: `tiaojie record` (recorder/cli.py) as a child of the server, one
per recorded room, launched, restarted when it crashes, and stopped with SIGTERM (it then
closes its segments, seals the chain and exits).

A recorder that crashes is restarted at once, and never given up on while its room is
recorded: after MAX_RESTARTS_PER_MINUTE crashes in a minute the restarts back off (up to
MAX_RESTART_DELAY_S apart). Why it crashed (its exit code and the last line of its log,
where Python writes the exception) is logged by the server and handed to the next
recorder, which writes it into the chain's signed `gap` entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
MAX_RESTART_DELAY_S = 30.0
STOP_TIMEOUT_S = 30.0
MAX_RESTARTS_PER_MINUTE = 10
#: The recorder process reads its link's token from this variable (tiaojie.recorder.cli),
#: so the token is never on a command line.
RECORDER_TOKEN_ENV = "TIAOJIE_RECORDER_TOKEN"
#: Why the previous recorder of this recording exited (tiaojie.recorder.cli), for its gap.
RECORDER_EXIT_ENV = "TIAOJIE_RECORDER_PREVIOUS_EXIT"
#: How much of the end of a recorder's log is searched for why it exited.
LOG_TAIL_BYTES = 8192
MAX_REASON_CHARS = 300


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
    #: Why the last recorder process exited ("exit code 1: UnicodeEncodeError: ..."),
    #: given to the next one; None before the first crash.
    last_exit: str | None = None
    #: Deliveries of `pending[0]` that failed (server.recordings.notes).
    failed_deliveries: int = 0
    #: The recording this one continues (a lost or drained node's), for `--follows`.
    follows: dict[str, Any] | None = None

    def crashed(self) -> float:
        """Count a crash; the seconds to wait before the next start (backing off once it
        crashed more than MAX_RESTARTS_PER_MINUTE times in a minute)."""
        moment = time.monotonic()
        self.restarts = [t for t in self.restarts if t > moment - 60] + [moment]
        over = len(self.restarts) - MAX_RESTARTS_PER_MINUTE
        if over <= 0:
            return RESTART_DELAY_S
        return min(MAX_RESTART_DELAY_S, RESTART_DELAY_S * 2**over)

    @property
    def backing_off(self) -> bool:
        return len(self.restarts) > MAX_RESTARTS_PER_MINUTE


@dataclass(frozen=True)
class RecorderCommand:
    """How this server starts `tiaojie record`."""

    server_url: str  # where the recorder reaches this server (Settings.local_url)
    keys_dir: Path
    logs_dir: Path
    tsa_url: str | None = None
    #: the server's --rtc-ports: the recorder's ICE sockets bind there too
    rtc_ports: str | None = None

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
        if proc.follows:
            command += ["--follows", json.dumps(proc.follows, sort_keys=True)]
        if self.rtc_ports:
            command += ["--rtc-ports", self.rtc_ports]
        return command

    def log_file(self, proc: RecorderProcess) -> Path:
        return self.logs_dir / f"recorder-{proc.recording_id}.log"

    def exit_reason(self, proc: RecorderProcess, code: int) -> str:
        """Why the recorder exited: its exit code (or signal) and, when it died of an
        exception, the last line of the traceback in its log ("UnicodeEncodeError: ...")."""
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        reason = f"exit code {code}"
        try:
            with self.log_file(proc).open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
                tail = f.read().decode("utf-8", "backslashreplace")
        except OSError:
            return reason
        _, traceback, last_trace = tail.rpartition("Traceback (most recent call last):")
        lines = [line.strip() for line in last_trace.splitlines() if line.strip()]
        if traceback and lines:
            last = "".join(c if c.isprintable() else "?" for c in lines[-1])
            reason += ": " + last[:MAX_REASON_CHARS]
        return reason

    async def launch(self, proc: RecorderProcess) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, RECORDER_TOKEN_ENV: proc.token}
        if proc.last_exit:
            env[RECORDER_EXIT_ENV] = proc.last_exit
        with self.log_file(proc).open("ab") as logfile:
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
