"""`tiaojie serve` as an operator runs it: its own process, its log on stderr.

For tests that need the server exactly as deployed (aiohttp's own request handling and
logging, not the test server's), and for tools that speak plain HTTP (schemathesis).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """`python -m tiaojie serve` on a free port of 127.0.0.1, with `admin_token`."""

    def __init__(
        self, data_dir: Path, admin_token: str, *options: str, cheap_passwords: bool = False
    ) -> None:
        """`cheap_passwords`: hash at argon2's smallest cost (tests/support/cheap_passwords.py),
        for a test that makes many logins and accounts and is not about their cost."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = admin_token
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        env = {**os.environ, "TIAOJIE_ADMIN_TOKEN": admin_token, "PYTHONUNBUFFERED": "1"}
        if cheap_passwords:  # `python -m tests.support...` from any working directory
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.cheap_passwords" if cheap_passwords else "tiaojie",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--data",
                    str(data_dir),
                    *options,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"tiaojie serve did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        """Everything the server has printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
