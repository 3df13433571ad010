"""How every browser test (and bench/join_time.py) starts Debian's Chromium."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # fake camera / microphone / screen, granted without a prompt
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    # background pages keep rendering and playing (several pages share the browser)
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--autoplay-policy=no-user-gesture-required",
]

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when pytest dies, so a killed run leaves no Chromium."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def chromium_over_cdp(
    profile: Path,
    args: Sequence[str] = CHROMIUM_ARGS,
    wrapper: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """Start headless Chromium with `profile` (and `args`: CHROMIUM_ARGS unless told);
    yield its CDP endpoint, stop it after.

    `wrapper` runs it through another command (`ip netns exec NS`: tests/support/netlab.py);
    the endpoint is then on that namespace's loopback. `extra_args` go after `args`."""
    process = subprocess.Popen(
        [
            *wrapper,
            CHROMIUM,
            *args,
            *extra_args,
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text().strip()):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("chromium did not start (no DevToolsActivePort)")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
