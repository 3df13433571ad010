"""A real coturn (Debian's `turnserver`) on free ports with `use-auth-secret`: the TURN
REST credentials the server hands out are checked by the real thing."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def _free_port(host: str) -> int:
    """A port free for UDP and TCP on `host` (coturn listens on both: a port free for UDP
    alone once left its TCP listener unopened, "coturn's TCP listener did not open")."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host}")


@dataclass
class Coturn:
    process: subprocess.Popen
    port: int
    secret: str
    log: Path
    host: str = "127.0.0.1"

    @property
    def urls(self) -> str:
        """`--turn-urls`: TURN over UDP and TCP on the one listening port."""
        at = f"{self.host}:{self.port}"
        return f"turn:{at}?transport=udp,turn:{at}?transport=tcp"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_coturn(directory: Path, secret: str, host: str = "127.0.0.1") -> Coturn:
    """`host`: the address it listens and relays on (a network lab's, tests/support/netlab)."""
    binary = shutil.which("turnserver")
    if binary is None:
        raise RuntimeError("coturn is not installed: run `make test`, which installs it")
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port(host)
    relay_low = 49152 + (port % 8000)
    log = directory / "turnserver.log"
    command = [
        binary, "-n", "--no-cli", "--no-tls", "--no-dtls",
        "--listening-ip", host, "--listening-port", str(port),
        "--relay-ip", host,
        "--min-port", str(relay_low), "--max-port", str(relay_low + 200),
        "--use-auth-secret", "--static-auth-secret", secret, "--realm", "tiaojie.test",
        # the server and the browsers are on loopback here; never in production
        "--allow-loopback-peers", "--fingerprint",
        "--log-file", "stdout", "--simple-log",
        "--pidfile", str(directory / "turnserver.pid"), "--db", str(directory / "turndb"),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while b"Total General servers" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"coturn did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    # the TCP listener too
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("coturn's TCP listener did not open") from None
            time.sleep(0.05)
    return Coturn(process, port, secret, log, host)
