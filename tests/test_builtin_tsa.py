"""Who the built-in TSA (`POST /tsa`) answers, and how often (docs/decisions.md)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

# the TSA's keys, made once per session (RSA key generation takes seconds)
from tests.test_agreements import keys, shared_keys  # noqa: F401  (fixtures)
from tiaojie.server.agreements.http import (
    TSA_RATE_PER_ADDRESS,
    AgreementRoutes,
    _is_loopback,
)
from tiaojie.server.config import Settings
from tiaojie.server.errors import TiaojieError
from tiaojie.signing.tsa import QUERY_TYPE, timestamp_request


async def post_tsa(session: aiohttp.ClientSession, url: str) -> int:
    query = timestamp_request(b"chain head").dump()
    headers = {"Content-Type": QUERY_TYPE}
    async with session.post(url + "/tsa", data=query, headers=headers) as response:
        await response.read()
        return response.status


async def test_timestamps_are_rate_limited_per_address(live_server) -> None:
    """About 370 tokens a second were signed for anyone; now a burst, then
    TSA_RATE_PER_ADDRESS a second."""
    burst = int(2 * TSA_RATE_PER_ADDRESS)
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        statuses = await asyncio.gather(
            *(post_tsa(session, live_server.url) for _ in range(5 * burst))
        )
        elapsed = time.monotonic() - started
        assert set(statuses) == {200, 429}, statuses
        # the burst, and what the bucket refilled while the requests were answered
        assert burst <= statuses.count(200) <= burst + TSA_RATE_PER_ADDRESS * elapsed + 1
        # The bucket refills: a little later a timestamp is signed again.
        await asyncio.sleep(1.5 / TSA_RATE_PER_ADDRESS)
        assert await post_tsa(session, live_server.url) == 200


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("203.0.113.9", False),
        ("10.1.2.3", False),
        ("2001:db8::1", False),
        ("", False),
        ("/run/tiaojie.sock", False),
    ],
)
def test_loopback_addresses(address: str, local: bool) -> None:
    assert _is_loopback(address) is local


async def test_other_machines_are_refused_unless_the_operator_opens_it(tmp_path) -> None:
    def from_afar(content_type: str) -> web.Request:
        request = make_mocked_request("POST", "/tsa", headers={"Content-Type": content_type})
        return request.clone(remote="203.0.113.9")

    def routes(**options: bool) -> AgreementRoutes:
        settings = Settings(data_dir=tmp_path, **options)
        return AgreementRoutes(settings, store=None, auth=None)  # type: ignore[arg-type]

    with pytest.raises(TiaojieError) as refused:
        await routes().tsa(from_afar(QUERY_TYPE))
    assert (refused.value.code, refused.value.status) == ("tsa_closed", 403)
    assert "--tsa-open" in refused.value.message
    # Opened, the same address gets past the check (to the next one: the content type).
    with pytest.raises(TiaojieError) as refused:
        await routes(tsa_open=True).tsa(from_afar("text/plain"))
    assert refused.value.code == "unsupported_media_type"
