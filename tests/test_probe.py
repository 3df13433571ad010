"""The network check (`/api/probe`, server/media/probe.py): an invite holder's data-channel
offer is answered by a media-plane connection that echoes, directly or, relay-only,
through a real coturn with the holder's own TURN login; anything else is refused before
a connection exists; the node's cap holds; every probe is closed.

The client is a real aiortc peer connection, as a browser's would be.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

from tests.conftest import start_server
from tests.support.coturn import Coturn, start_coturn
from tiaojie.server.errors import TiaojieError
from tiaojie.server.media.ice import IceSettings
from tiaojie.server.media.probe import Probes
from tiaojie.server.media.probe_http import PROBES
from tiaojie.server.media.sfu import MediaPlane
from tiaojie.server.roles import Role
from tiaojie.server.tokens import InviteClaims

TIMEOUT = 15.0


async def _offer(
    config: RTCConfiguration | None = None,
) -> tuple[RTCPeerConnection, RTCDataChannel, str]:
    pc = RTCPeerConnection(config or RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("probe")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, channel, pc.localDescription.sdp


async def _echo(channel: RTCDataChannel, message: str) -> str:
    answered: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    if channel.readyState != "open":
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await asyncio.wait_for(opened.wait(), TIMEOUT)
    channel.on("message", lambda m: answered.done() or answered.set_result(m))
    channel.send(message)
    return await asyncio.wait_for(answered, TIMEOUT)


async def _closed(pc: RTCPeerConnection) -> None:
    """Until `pc`'s peer is gone: its state leaves `connected`."""
    done = asyncio.Event()

    def check() -> None:
        if pc.connectionState in ("closed", "failed"):
            done.set()

    pc.on("connectionstatechange", check)
    check()
    await asyncio.wait_for(done.wait(), TIMEOUT)


def _probes(server: Any) -> Probes:
    return server.app[PROBES]


async def test_an_invite_holder_connects_and_the_probe_echoes(live_server, caplog):
    caplog.set_level(logging.INFO)
    room = await live_server.create_room()
    invite = await live_server.create_invite(room["id"], "party", "王某")
    status, settings = await live_server.request("GET", "/api/probe", invite["token"])
    assert status == 200 and settings["ice_servers"] == [] and settings["lifetime"] == 20

    pc, channel, offer = await _offer()
    started = time.monotonic()
    status, body = await live_server.request(
        "POST", "/api/probe", invite["token"], json={"sdp": offer, "type": "offer"}
    )
    assert status == 201, body
    assert body["type"] == "answer" and "a=candidate:" in body["sdp"]
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
    assert await _echo(channel, "ping 1") == "ping 1"
    assert await _echo(channel, "ping 2") == "ping 2"
    assert time.monotonic() - started < TIMEOUT
    probe = _probes(live_server).by_invite(invite["invite_id"])
    assert probe is not None and probe.id == body["probe_id"] and probe.echoed == 2

    # the browser closing its side closes the probe (before its 20 s are up)
    await pc.close()
    await asyncio.wait_for(probe.closed.wait(), TIMEOUT)
    assert probe.pc.connectionState == "closed"
    assert _probes(live_server).open_count == 0
    assert invite["token"] not in caplog.text  # named by the invite's id, never its token
    assert f"of invite {invite['invite_id']} opened" in caplog.text


async def test_refused_tokens_and_offers_create_nothing(live_server):
    room = await live_server.create_room()
    invite = await live_server.create_invite(room["id"], "party", "李某")
    signer = live_server.state.signer
    expired = signer.sign(
        InviteClaims(room["id"], Role.PARTY, invite["invite_id"], int(time.time()) - 10)
    )
    forged = invite["token"][:-4] + ("AAAA" if not invite["token"].endswith("AAAA") else "BBBB")
    withdrawn = await live_server.create_invite(room["id"], "party", "张某")
    status, _ = await live_server.admin(
        "DELETE", f"/api/rooms/{room['id']}/invites/{withdrawn['invite_id']}"
    )
    assert status == 200

    pc, _, offer = await _offer()
    cases = [
        (None, 401, "token_missing"),
        (forged, 401, "token_invalid"),
        (expired, 401, "token_expired"),
        (withdrawn["token"], 403, "token_revoked"),
        (live_server.admin_token, 403, "forbidden"),  # least privilege: invite links only
    ]
    for token, code, error in cases:
        for method in ("GET", "POST"):
            status, body = await live_server.request(
                method, "/api/probe", token, json={"sdp": offer, "type": "offer"}
            )
            assert (status, body["error"]) == (code, error), (token and token[:8], method)
    # a media offer is not a network check
    media = RTCPeerConnection()
    media.addTransceiver("audio")
    await media.setLocalDescription(await media.createOffer())
    status, body = await live_server.request(
        "POST",
        "/api/probe",
        invite["token"],
        json={"sdp": media.localDescription.sdp, "type": "offer"},
    )
    assert (status, body["error"]) == (400, "bad_sdp")
    assert _probes(live_server).open_count == 0

    # an ended room's links check nothing either
    await live_server.admin("DELETE", f"/api/rooms/{room['id']}")
    status, body = await live_server.request(
        "POST", "/api/probe", invite["token"], json={"sdp": offer, "type": "offer"}
    )
    assert (status, body["error"]) == (410, "room_ended")
    assert _probes(live_server).open_count == 0
    await pc.close()
    await media.close()


async def test_the_cap_the_rate_and_the_lifetime(live_server):
    """A plane of its own with small limits: the second probe at once is refused, an
    invite's new probe replaces its earlier one, and a probe left alone is closed."""
    plane = MediaPlane(IceSettings(), _no_send, _no_send)
    probes = Probes(plane, max_open=1, lifetime=1.0)
    clients: list[RTCPeerConnection] = []
    try:
        pc, channel, offer = await _offer()
        clients.append(pc)
        first, answer = await probes.open("invite-a", offer)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        assert await _echo(channel, "hello") == "hello"

        other, _, other_offer = await _offer()
        clients.append(other)
        with pytest.raises(TiaojieError) as refused:
            await probes.open("invite-b", other_offer)
        assert refused.value.code == "probe_busy" and refused.value.status == 503
        assert probes.open_count == 1 and probes.by_invite("invite-b") is None

        # the same invite again: its earlier probe is closed, the new one takes its place
        again, _, again_offer = await _offer()
        clients.append(again)
        second, _ = await probes.open("invite-a", again_offer)
        assert first.closed.is_set() and first.pc.connectionState == "closed"
        assert probes.by_invite("invite-a") is second and probes.open_count == 1

        # left alone, it is closed after its lifetime
        await asyncio.wait_for(second.closed.wait(), TIMEOUT)
        assert second.pc.connectionState == "closed" and probes.open_count == 0
        await _closed(pc)

        # an invite that keeps starting probes is slowed down (RATE_BURST, then RATE)
        codes = []
        for _ in range(6):
            try:
                probe, _ = await probes.open("invite-c", again_offer)
                await probes.close(probe)
                codes.append("ok")
            except TiaojieError as error:
                codes.append(error.code)
        assert codes == ["ok"] * 5 + ["rate_limited"]
    finally:
        await probes.close_all()
        for client in clients:
            await client.close()


async def _no_send(to: str, event: str, payload: dict[str, Any]) -> None:
    raise AssertionError("a probe sends nothing over signalling")


TURN_SECRET = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    server = start_coturn(tmp_path_factory.mktemp("coturn"), TURN_SECRET)
    yield server
    server.stop()


async def test_a_relay_only_client_checks_through_coturn(tmp_path: Path, coturn: Coturn):
    """Behind a firewall that lets only the TURN server through: the probe's settings
    carry the invite's own TURN login, and the check connects and echoes through coturn."""
    srv = await start_server(
        tmp_path / "data", announce_ip="127.0.0.1", turn_secret=TURN_SECRET, turn_urls=coturn.urls
    )
    pc = None
    try:
        room = await srv.create_room()
        invite = await srv.create_invite(room["id"], "party", "赵某")
        status, settings = await srv.request("GET", "/api/probe", invite["token"])
        assert status == 200
        (login,) = [s for s in settings["ice_servers"] if "username" in s]
        assert login["username"].endswith(":" + invite["invite_id"])
        config = RTCConfiguration(
            iceServers=[RTCIceServer(**login)], iceTransportPolicy=RTCIceTransportPolicy.RELAY
        )
        pc, channel, offer = await _offer(config)
        assert set(re.findall(r"^a=candidate:.* typ (\w+)", offer, re.M)) == {"relay"}
        status, body = await srv.request(
            "POST", "/api/probe", invite["token"], json={"sdp": offer, "type": "offer"}
        )
        assert status == 201, body
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
        assert await _echo(channel, "through the relay") == "through the relay"
    finally:
        if pc is not None:
            await pc.close()
        await srv.close()
        await srv.server.close()
