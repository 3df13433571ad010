"""A `tiaojie serve` child process: wait until it answers, stop it the way an operator does."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from typing import Any


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 30) -> dict[str, Any]:
    """GET /api/health until it answers (the server is ready); fail if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"server exited with {process.returncode}: {output}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=1) as response:
                return dict(json.loads(response.read()))
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server did not become healthy within {timeout} s")


def stop(process: subprocess.Popen, timeout: float = 15) -> str:
    """SIGTERM and wait; the output the server printed."""
    process.terminate()
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        raise AssertionError(f"server did not stop within {timeout} s of SIGTERM: {out}") from None
    return str(out or "")
