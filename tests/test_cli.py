"""The `tiaojie` command as a newcomer runs it: a real server process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.server_process import stop, wait_healthy

TIAOJIE = str(Path(sys.executable).with_name("tiaojie"))


def _post(url: str, token: str, body: bytes) -> dict:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return json.loads(urllib.request.urlopen(request, timeout=5).read())


def _serve(data: Path, port: int, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [TIAOJIE, "serve", "--data", str(data), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TIAOJIE_ADMIN_TOKEN": "", **(env or {})},
    )


def test_serve_generates_secrets_once_and_new_room_prints_links(tmp_path):
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    process = _serve(data, port)
    try:
        assert wait_healthy(url, process)["backend"] == "sqlite"
        token = (data / "admin_token").read_text().strip()
        assert stat.S_IMODE((data / "admin_token").stat().st_mode) == 0o600
        assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
        made = subprocess.run(
            [TIAOJIE, "new-room", "邻里纠纷", "--server", url, "--data", str(data)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert made.returncode == 0, made.stderr
        links = [line.split(": ", 1)[1] for line in made.stdout.splitlines() if "/join#" in line]
        assert len(links) == 3 and all(link.startswith(f"{url}/join#token=tj1.") for link in links)
    finally:
        first = stop(process)
    assert f"open {url}/" in first and token in first
    # A second start keeps the same secrets and does not print the token again.
    process = _serve(data, port)
    try:
        wait_healthy(url, process)
        assert (data / "admin_token").read_text().strip() == token
    finally:
        second = stop(process)
    assert token not in second and "admin_token" in second
    # The recorder key is made on first run, kept, and its id printed for archivists.
    from tiaojie.archive.chain import key_id
    from tiaojie.archive.keys import load_public

    public = load_public(data / "keys" / "recorder_ed25519.pub.pem")
    assert stat.S_IMODE((data / "keys" / "recorder_ed25519.pem").stat().st_mode) == 0o600
    assert f"recorder key id (archivists check recordings against it): {key_id(public)}" in first
    assert key_id(public) in second
    # so are the local CA, seal and TSA keys (private keys 0600)
    for name in ("ca", "seal", "tsa"):
        assert (data / "keys" / f"{name}.cert.pem").is_file()
        assert stat.S_IMODE((data / "keys" / f"{name}.key.pem").stat().st_mode) == 0o600
    # Tokens are secrets: they never reach the log.
    for link in links:
        assert link.split("token=")[1] not in first + second


def test_environment_variables_configure_serve(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [TIAOJIE, "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "TIAOJIE_PORT": str(port),
            "TIAOJIE_DATA": str(tmp_path / "env"),
            "TIAOJIE_ADMIN_TOKEN": "from-the-environment-123",
            "TIAOJIE_PUBLIC_URL": "https://mediation.example.org",
            "TIAOJIE_METRICS_TOKEN": "metrics-from-the-environment-123",
        },
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        # what startup made is kept out of the garbage collector's full collections
        # (server/listener.py): a full collection walked it all, a stall of the loop
        scrape = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics",
            headers={"Authorization": "Bearer metrics-from-the-environment-123"},
        )
        metrics = urllib.request.urlopen(scrape, timeout=5).read().decode()
        frozen = next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("tiaojie_gc_frozen_objects ")
        )
        assert frozen > 50_000
        room = _post(
            f"http://127.0.0.1:{port}/api/rooms", "from-the-environment-123", b'{"title": "t"}'
        )
        invite = _post(
            f"http://127.0.0.1:{port}/api/rooms/{room['id']}/invites",
            "from-the-environment-123",
            b'{"role": "party", "name": "p"}',
        )
        assert invite["url"].startswith("https://mediation.example.org/join#token=")
        assert not (tmp_path / "env" / "admin_token").exists()
    finally:
        stop(process)


def test_python_dash_m_server_is_serve():
    out = subprocess.run(
        [sys.executable, "-m", "tiaojie", "--help"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and "--public-url" in out.stdout and "--redis" in out.stdout


@pytest.mark.parametrize("args", [["serve", "--port", "notaport"], ["frobnicate"]])
def test_bad_arguments_exit_with_usage(args):
    out = subprocess.run([TIAOJIE, *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "usage:" in out.stderr


def test_sigterm_with_a_connected_client_stops_promptly(tmp_path):
    import asyncio

    from tests.support.signal_client import SignalClient

    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    process = _serve(data, port, env={"TIAOJIE_ADMIN_TOKEN": "admin-token-for-this-test"})
    try:
        wait_healthy(url, process)
        room = _post(
            f"{url}/api/rooms", "admin-token-for-this-test", b'{"title": "t", "lobby": false}'
        )
        invite = _post(
            f"{url}/api/rooms/{room['id']}/invites",
            "admin-token-for-this-test",
            b'{"role": "party", "name": "p"}',
        )

        async def scenario() -> float:
            client = SignalClient(url)
            await client.connect({"token": invite["token"]})
            await client.wait_for("welcome")
            started = time.monotonic()
            process.terminate()
            await asyncio.wait_for(client.disconnected.wait(), 10)
            return time.monotonic() - started

        asyncio.run(scenario())
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()


def test_the_image_installs_what_make_run_installs():
    """Docker is not available here to build the image; at least its apt lists must not
    fall behind the Makefile's RUN_APT (the CJK font the agreement PDFs embed), and the
    Makefile's BUILD_APT (a C compiler for rtc/_fastpath.c) must have its counterpart in
    the image's build step, which checks the extension was built."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    makefile = (root / "Makefile").read_text()
    run_apt = re.search(r"^RUN_APT :=(.*)$", makefile, re.M)
    build_apt = re.search(r"^BUILD_APT :=(.*)$", makefile, re.M)
    assert run_apt is not None and build_apt is not None
    assert "$(BUILD_APT)" in run_apt.group(1).split()
    assert "build-essential" in build_apt.group(1).split()
    dockerfile = (root / "Dockerfile").read_text()
    installs = re.findall(r"apt-get install -y --no-install-recommends ([^\\\n]*)", dockerfile)
    assert len(installs) == 2, installs  # the runtime's, then the build's
    runtime = set(run_apt.group(1).split()) - {"$(BUILD_APT)"}
    assert runtime <= set(installs[0].split())
    assert "gcc" in installs[1].split()  # Python's headers come with the image
    assert 'python -c "import tiaojie.rtc._fastpath"' in dockerfile
