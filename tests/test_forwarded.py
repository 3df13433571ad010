"""`--trusted-proxies`: behind a reverse proxy the client's address comes from the proxy's
X-Forwarded-For, and only from a trusted proxy (server/forwarded.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import start_server
from tiaojie.server.forwarded import Forwarded, parse_trusted_proxies
from tiaojie.server.limits import ConnectionGuard

PROXIES = Forwarded(parse_trusted_proxies("127.0.0.1, 10.0.0.0/8"))


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        (["203.0.113.9"], "203.0.113.9"),
        # what the client wrote itself (left) is ignored; our proxies' hops are skipped
        (["198.51.100.1, 203.0.113.9, 10.1.2.3"], "203.0.113.9"),
        (["198.51.100.1", "203.0.113.9"], "203.0.113.9"),  # two headers, in order
        (["203.0.113.9, not-an-address"], "127.0.0.1"),  # unreadable: the peer itself
        ([], "127.0.0.1"),
        (["10.9.9.9"], "127.0.0.1"),  # only proxies: the peer
    ],
)
def test_the_client_is_the_right_most_untrusted_hop(headers, client) -> None:
    assert PROXIES.client("127.0.0.1", headers) == client


@pytest.mark.parametrize("text", ["10.0.0.0/33", "proxy.example.org", "1.2.3"])
def test_bad_proxy_ranges_are_refused(text) -> None:
    with pytest.raises(ValueError, match="--trusted-proxies"):
        parse_trusted_proxies(text)


def test_a_trusted_proxy_is_not_held_to_the_connection_limit() -> None:
    guard = ConnectionGuard(lambda: None, 1, PROXIES.is_trusted)  # type: ignore[arg-type,return-value]
    assert guard.admit("10.0.0.5") and guard.admit("10.0.0.5") and guard.admit("10.0.0.5")
    assert guard.admit("203.0.113.9") and not guard.admit("203.0.113.9")


async def login_fails(srv, address: str | None) -> int:
    headers = {"X-Forwarded-For": address} if address else {}
    status, _ = await srv.request(
        "POST", "/api/session", json={"login": "nobody", "password": "wrong"}, headers=headers
    )
    return status


async def test_behind_a_trusted_proxy_the_lockout_and_the_tsa_see_the_client(
    tmp_path: Path,
) -> None:
    # the tests' requests come from 127.0.0.1: here, that is the proxy
    srv = await start_server(
        tmp_path / "data",
        trusted_proxies="127.0.0.1",
        login_failures=100,
        login_address_failures=2,
    )
    try:
        assert [await login_fails(srv, "203.0.113.9") for _ in range(3)] == [401, 401, 429]
        assert await login_fails(srv, "198.51.100.7") == 401  # another client: not locked
        # the built-in TSA answers this machine only: a forwarded outsider is not it
        status, body = await srv.request(
            "POST",
            "/tsa",
            data=b"\x30\x00",
            headers={
                "X-Forwarded-For": "203.0.113.9",
                "Content-Type": "application/timestamp-query",
            },
        )
        assert status == 403, body
    finally:
        await srv.close()
        await srv.server.close()


async def test_without_trusted_proxies_the_header_is_ignored(tmp_path: Path) -> None:
    srv = await start_server(tmp_path / "data", login_failures=100, login_address_failures=2)
    try:
        # each "client" names another address: all are 127.0.0.1, locked after two
        answers = [await login_fails(srv, f"203.0.113.{n}") for n in range(3)]
        assert answers == [401, 401, 429]
    finally:
        await srv.close()
        await srv.server.close()
