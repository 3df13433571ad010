"""What the benchmarks share: a real `tiaojie serve` process and the admin API."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ADMIN = "bench-admin-token-0123456789"


def api(base: str, path: str, body: dict) -> dict:
    """POST `body` to the server's REST API with the admin token."""
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server_process(
    *options: str, cpu: int | None = None, data: Path | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """A `tiaojie serve` process on a free port (pinned to `cpu`), and its base URL; its
    data directory is `data` (default: a new temporary one)."""
    port = _free_port()
    command = [
        str(Path(sys.executable).with_name("tiaojie")),
        "serve",
        "--port",
        str(port),
        "--data",
        str(data or tempfile.mkdtemp(prefix="tiaojie-bench-")),
        *options,
    ]
    server = subprocess.Popen(
        command,
        env={**os.environ, "TIAOJIE_ADMIN_TOKEN": ADMIN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if cpu is not None:
        os.sched_setaffinity(server.pid, {cpu})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield server, base
    finally:
        server.terminate()
        server.wait(timeout=30)
