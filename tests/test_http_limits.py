"""A real `tiaojie serve` against slow, greedy and nosy clients, over raw sockets.

The request timeout and the per-address connection limit come from the environment
(TIAOJIE_REQUEST_TIMEOUT, TIAOJIE_MAX_CONNECTIONS_PER_IP), small so that the tests are
quick: a slowloris connection is closed once its timeout has passed, a huge announced body
is refused at once without being read, a slow body gets 408, one address cannot open more
connections than the limit. The access log keeps tickets and tokens out.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.server_process import wait_healthy
from tests.test_cli import TIAOJIE

ADMIN = "admin-token-for-the-limits-test"
TIMEOUT_S = 2.0
LIMIT = 5
#: How much later than the timeout a close may come on a busy machine.
MARGIN_S = 3.0


@dataclass
class Served:
    url: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA/keys made once: `serve` makes its CA, seal and TSA keys on first run otherwise."""
    from tiaojie.archive.keys import load_or_create
    from tiaojie.signing.authority import Authority

    folder = tmp_path_factory.mktemp("keys")
    Authority.load_or_create(folder)
    load_or_create(folder)
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("limits")
    shutil.copytree(keys, base / "data" / "keys")
    port = free_port()
    log = base / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [TIAOJIE, "serve", "--data", str(base / "data"), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "TIAOJIE_ADMIN_TOKEN": ADMIN,
                "TIAOJIE_REQUEST_TIMEOUT": str(TIMEOUT_S),
                "TIAOJIE_MAX_CONNECTIONS_PER_IP": str(LIMIT),
            },
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield Served(url, port, log, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    sock.settimeout(TIMEOUT_S + MARGIN_S + 5)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def closed_after(sock: socket.socket, started: float) -> float:
    """Wait for the server to close `sock`; seconds since `started`."""
    read_all(sock)
    return time.monotonic() - started


def open_websocket(served: Served) -> socket.socket:
    """An engine.io WebSocket: a long-lived connection, which no request timeout ends."""
    sock = connect(served)
    sock.sendall(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: tiaojie\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        while sock.recv(65536):  # engine.io's open packet, pings
            pass
        return False  # end of stream: closed
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        sock.setblocking(True)


def test_a_slowloris_connection_is_closed_after_the_timeout(served: Served) -> None:
    with connect(served) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: tiaojie\r\n")
        closed = False
        # One header line every 0.2 s, never the blank line that ends the head.
        while time.monotonic() - started < TIMEOUT_S + MARGIN_S:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        elapsed = time.monotonic() - started
    assert closed, f"the connection was still open after {elapsed:.1f} s"
    assert TIMEOUT_S - 0.5 <= elapsed <= TIMEOUT_S + MARGIN_S, elapsed


def test_an_idle_connection_is_closed_after_the_timeout(served: Served) -> None:
    with connect(served) as sock:
        started = time.monotonic()
        assert read_all(sock) == b""
        assert time.monotonic() - started <= TIMEOUT_S + MARGIN_S


def test_a_huge_body_is_refused_at_once_without_reading_it(served: Served) -> None:
    with connect(served) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /api/rooms HTTP/1.1\r\nHost: tiaojie\r\n"
            + f"Authorization: Bearer {ADMIN}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{"
        )
        sock.settimeout(TIMEOUT_S)  # "at once": well before the body timeout
        head = sock.recv(65536)
        answered = time.monotonic() - started
        assert head.startswith(b"HTTP/1.1 413 "), head[:200]
        assert b"payload_too_large" in head
        assert answered < TIMEOUT_S, answered
        sock.settimeout(TIMEOUT_S + MARGIN_S + 5)
        assert closed_after(sock, started) <= TIMEOUT_S + MARGIN_S
    # The same for the socket.io endpoint, whose own cap is engine.io's message size.
    with connect(served) as sock:
        sock.sendall(
            b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: tiaojie\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 10000000000\r\n\r\n"
        )
        sock.settimeout(TIMEOUT_S)
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")
        sock.settimeout(TIMEOUT_S + MARGIN_S + 5)
        read_all(sock)  # closed by the server


def test_a_body_slower_than_the_timeout_gets_408(served: Served) -> None:
    with connect(served) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /api/rooms HTTP/1.1\r\nHost: tiaojie\r\n"
            + f"Authorization: Bearer {ADMIN}\r\n".encode()
            + b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"title": '
        )
        answer = read_all(sock)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert TIMEOUT_S - 0.5 <= elapsed <= TIMEOUT_S + MARGIN_S + 2.5, elapsed


def test_one_address_holds_at_most_the_limit_of_connections(served: Served) -> None:
    held = [open_websocket(served) for _ in range(LIMIT)]
    try:
        with connect(served) as extra:
            started = time.monotonic()
            answer = read_all(extra)
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert time.monotonic() - started < 1.0
        # The request timeout does not end WebSockets: after it, all are still open and
        # still counted.
        time.sleep(TIMEOUT_S + 1)
        assert all(still_open(sock) for sock in held)
        with connect(served) as extra:
            assert read_all(extra).startswith(b"HTTP/1.1 503 ")
        # One goes: a new connection is served again.
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:
            with connect(served) as again:
                again.sendall(b"GET /api/health HTTP/1.1\r\nHost: tiaojie\r\n\r\n")
                answer = again.recv(65536)
            if answer.startswith(b"HTTP/1.1 200 "):
                break
            assert answer.startswith(b"HTTP/1.1 503 ") and time.monotonic() < deadline, answer
    finally:
        for sock in held:
            sock.close()


def test_the_access_log_keeps_credentials_out(served: Served) -> None:
    ticket = "tjt1.0123456789abcdef.1999999999.c2VjcmV0LW1hYy12YWx1ZQ"
    token = "tj1.this-is-a-secret-invite-token"
    requests = [
        f"GET /api/recordings/r_0123456789abcdef/files/chain.jsonl?ticket={ticket}&download=1",
        f"GET /recordings?token={token}",
        f"GET /join?access_token={token}&lang=en",
        # (engine.io itself logs an unknown sid; a known one would be a credential)
        "GET /socket.io/?EIO=4&transport=polling&sid=no-such-session",
    ]
    for line in requests:
        with connect(served) as sock:
            sock.sendall(
                f"{line} HTTP/1.1\r\nHost: tiaojie\r\nConnection: close\r\n"
                f"Referer: https://elsewhere.example/page?token={token}&x=1\r\n\r\n".encode()
            )
            assert read_all(sock).startswith(b"HTTP/1.1 ")
    marker = "GET /join?access_token="
    deadline = time.monotonic() + 10
    while marker not in (log := served.log.read_text()):
        assert time.monotonic() < deadline, "the access log did not show the requests"
        time.sleep(0.1)
    assert ticket not in log and token not in log, log
    assert "chain.jsonl?ticket=REDACTED&download=1" in log
    assert "/join?access_token=REDACTED&lang=en" in log
    assert "transport=polling&sid=REDACTED HTTP/1.1" in log
    assert "https://elsewhere.example/page?token=REDACTED&x=1" in log


def test_redaction_of_query_strings() -> None:
    from tiaojie.server.access_log import redact_target, redact_url

    assert (
        redact_target("/a?ticket=1&b=2&API_KEY=3&x") == "/a?ticket=REDACTED&b=2&API_KEY=REDACTED&x"
    )
    assert redact_target("/a?%74oken=1") == "/a?%74oken=REDACTED"  # %74 is "t"
    assert redact_target("/a") == "/a"
    assert redact_url("http://h/p?sid=1&q=2#token=3") == "http://h/p?sid=REDACTED&q=2"
