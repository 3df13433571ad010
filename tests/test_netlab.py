"""The network lab itself (tests/support/netlab.py): the impairment relay drops, delays
and rate-limits what it forwards and says so; a NAT lab translates and leaves nothing."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from tests.support import netlab
from tests.support.netlab import Impairment, ImpairmentRelay


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.transport.sendto(data, addr)


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.delays: list[float] = []
        self.arrived = asyncio.Event()

    def datagram_received(self, data: bytes, addr) -> None:
        self.delays.append(time.monotonic() - float(data[:24]))
        self.arrived.set()


async def test_the_relay_drops_delays_and_rate_limits_and_counts_it() -> None:
    loop = asyncio.get_running_loop()
    echo, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    relay = await ImpairmentRelay(
        echo.get_extra_info("sockname"),
        up=Impairment(loss=0.1, delay_ms=40),
        down=Impairment(delay_ms=35, rate_bps=1_000_000, queue_bytes=20_000),
    ).start()
    client = _Client()
    transport, _ = await loop.create_datagram_endpoint(lambda: client, remote_addr=relay.address)
    try:
        # 10 bursts of 40 datagrams of 1000 bytes: each burst is twice the 20 kB queue
        for _ in range(10):
            for _ in range(40):
                transport.sendto(f"{time.monotonic():<24}".encode() + b"x" * 976)
            await asyncio.sleep(0.02)
        up, down = relay.up.counters, relay.down.counters
        while len(client.delays) < down.forwarded:
            client.arrived.clear()
            await asyncio.wait_for(client.arrived.wait(), 5)
        assert up.packets == 400 and 20 <= up.lost <= 65  # 10 % of 400, give or take
        assert down.packets == up.forwarded  # the echo answered everything that got there
        assert down.overflowed > 100  # the link could not take it all
        # 1 Mbit/s for what was forwarded: ~8 ms per datagram, plus 75 ms of delay
        assert min(client.delays) >= 0.075 + 0.008
        assert max(client.delays) >= 0.075 + 20_000 * 8 / 1_000_000  # a full queue waits
        assert relay.clients == 1
        # an outage drops everything, in both directions
        relay.set_outage(True)
        transport.sendto(f"{time.monotonic():<24}".encode())
        await asyncio.sleep(0.2)  # nothing to wait for: nothing may arrive
        assert up.blacked_out == 1 and len(client.delays) == down.forwarded
    finally:
        transport.close()
        relay.close()
        echo.close()


def test_a_nat_lab_translates_and_is_removed_afterwards() -> None:
    why = netlab.available()
    if why:
        pytest.fail(why)
    with netlab.nat_lab() as lab:
        assert lab.translates  # the client's UDP arrived from the router's address
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert lab.router in names and lab.client in names
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert lab.router not in names and lab.client not in names
    assert lab.root_link not in links
