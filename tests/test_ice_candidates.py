"""The remote candidates the server's ICE checks: never in a denied range, never a name,
at most MAX_REMOTE_CANDIDATES per connection (server/media/ice.py)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from tests.conftest import start_server
from tiaojie.server.media.ice import (
    LOCAL_RANGES,
    MAX_REMOTE_CANDIDATES,
    IceSettings,
    RemoteCandidates,
    deny_ranges,
    parse_ice_deny,
    screen_candidates,
)
from tiaojie.server.media.ice import apply as apply_ice

DENIED = "127.0.0.2"
ALLOWED = "127.0.0.3"
STUN_BINDING_REQUEST = b"\x00\x01"


def candidate(number: int, address: str, port: int, priority: int, transport: str = "udp") -> str:
    return f"a=candidate:{number} 1 {transport} {priority} {address} {port} typ host\r\n"


def with_candidates(sdp: str, candidates: list[str]) -> str:
    """`sdp` with its own candidates replaced by `candidates` (after its ICE password)."""
    lines = [
        line
        for line in sdp.splitlines(keepends=True)
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    ]
    at = next(i for i, line in enumerate(lines) if line.startswith("a=ice-pwd:")) + 1
    return "".join(lines[:at] + candidates + ["a=end-of-candidates\r\n"] + lines[at:])


@pytest.fixture
def udp_sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for sock in made:
        sock.close()


def bound(made: list[socket.socket], address: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    sock.settimeout(20)
    made.append(sock)
    return sock


def port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


async def test_denied_and_surplus_candidates_get_no_ice_check(tmp_path, udp_sockets) -> None:
    """A publisher's offer names a denied address (the highest priority, so it would be
    checked first), an mDNS name, and more allowed candidates than the limit: the server's
    checks reach the allowed ones up to the limit, and nothing else."""
    srv = await start_server(tmp_path / "data", announce_ip="127.0.0.1", ice_deny=f"{DENIED}/32")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        room = await srv.create_room(lobby=False)
        invite = await srv.create_invite(room["id"], "party", "甲")
        client = await srv.join(invite)
        denied = bound(udp_sockets, DENIED)
        allowed = [bound(udp_sockets, ALLOWED) for _ in range(MAX_REMOTE_CANDIDATES + 4)]
        lines = [
            candidate(1, DENIED, port(denied), 2130706431),
            candidate(2, "4f1c9c1e-2c3a-4d0e-9a43-1a2b3c4d5e6f.local", 50000, 2130706430),
            candidate(3, ALLOWED, 9, 2130706429, transport="tcp"),
        ]
        lines += [
            candidate(10 + i, ALLOWED, port(sock), 2130706000 - i) for i, sock in enumerate(allowed)
        ]
        pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = with_candidates(pc.localDescription.sdp, lines)
        tracks = [{"mid": pc.getTransceivers()[0].mid, "source": "microphone"}]
        ack = await client.call("publish", {"sdp": offer, "type": "offer", "tracks": tracks})
        assert ack["ok"] is True, ack

        # What the server's ICE took: the first MAX_REMOTE_CANDIDATES allowed ones, no more.
        publisher = srv.state.media.peer(room["id"], invite["invite_id"]).publisher
        ice = publisher.getTransceivers()[0].receiver.transport.transport
        taken = {(c.ip, c.port) for c in ice.getRemoteCandidates()}
        kept = allowed[:MAX_REMOTE_CANDIDATES]
        assert taken == {(ALLOWED, port(sock)) for sock in kept}

        # Checks go in priority order: once the last kept candidate has had one, the denied
        # one (the highest priority) would have had its own long before.
        for sock in (kept[0], kept[-1]):
            data, _ = await asyncio.to_thread(sock.recvfrom, 2048)
            assert data[:2] == STUN_BINDING_REQUEST
        for sock in [denied, *allowed[MAX_REMOTE_CANDIDATES:]]:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recvfrom(2048)
    finally:
        await pc.close()
        await srv.close()
        await srv.server.close()
        apply_ice(IceSettings())  # gathering back to aioice's default (process-wide)


def test_screening_keeps_addresses_outside_the_denied_ranges() -> None:
    ice = IceSettings(deny=deny_ranges("10.0.0.0/8, 2001:db8::/32", None))
    sdp = "".join(
        [
            "v=0\r\n",
            candidate(1, "203.0.113.5", 5000, 100),
            candidate(2, "127.0.0.1", 5000, 100),
            candidate(3, "::1", 5000, 100),
            candidate(4, "169.254.10.1", 5000, 100),
            candidate(5, "fe80::1", 5000, 100),
            candidate(6, "::ffff:127.0.0.1", 5000, 100),
            candidate(7, "10.1.2.3", 5000, 100),
            candidate(8, "2001:db8::5", 5000, 100),
            candidate(9, "0.0.0.0", 5000, 100),
            candidate(10, "224.0.0.251", 5353, 100),
            candidate(11, "x.local", 5000, 100),
            candidate(12, "example.org", 5000, 100),
            candidate(13, "198.51.100.7", 5000, 100, transport="tcp"),
            candidate(14, "198.51.100.7", 0, 100),
            "a=candidate:15 1 udp\r\n",
            "a=candidate\r\n",
            candidate(16, "2001:db9::1", 6000, 100),
            "a=end-of-candidates\r\n",
        ]
    )
    screened, dropped = screen_candidates(sdp, ice, RemoteCandidates())
    assert screened == "".join(
        [
            "v=0\r\n",
            candidate(1, "203.0.113.5", 5000, 100),
            candidate(16, "2001:db9::1", 6000, 100),
            "a=end-of-candidates\r\n",
        ]
    )
    assert dropped == {
        "denied": 9,
        "mdns": 1,
        "not_an_address": 1,
        "not_udp": 1,
        "unreadable": 3,
    }


def test_the_limit_counts_a_connection_over_renegotiations() -> None:
    ice = IceSettings(max_remote_candidates=3)
    seen = RemoteCandidates()
    first = "".join(candidate(i, "198.51.100.1", 6000 + i, 100) for i in range(2))
    assert screen_candidates(first, ice, seen) == (first, {})
    # the same two again, and two new ones: one fits
    again = first + "".join(candidate(i, "198.51.100.1", 6000 + i, 100) for i in range(2, 4))
    screened, dropped = screen_candidates(again, ice, seen)
    assert screened == first + candidate(2, "198.51.100.1", 6002, 100)
    assert dropped == {"over_limit": 1}


def test_loopback_and_link_local_are_denied_unless_the_server_is_on_loopback() -> None:
    assert set(deny_ranges(None, None)) == set(LOCAL_RANGES)
    assert set(deny_ranges(None, "203.0.113.7")) == set(LOCAL_RANGES)
    assert deny_ranges(None, "127.0.0.1") == ()
    assert deny_ranges("10.0.0.0/8", "::1") == (ipaddress.ip_network("10.0.0.0/8"),)
    listed = deny_ranges("10.0.0.0/8 192.168.1.7", "192.0.2.2")
    assert set(listed) == {
        *LOCAL_RANGES,
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
    }
    with pytest.raises(ValueError, match="--ice-deny"):
        parse_ice_deny("10.0.0.0/8, intranet")


def test_serve_refuses_a_bad_ice_deny(tmp_path) -> None:
    tiaojie = str(Path(sys.executable).with_name("tiaojie"))
    out = subprocess.run(
        [tiaojie, "serve", "--data", str(tmp_path), "--port", "1", "--ice-deny", "10.0.0.0/33"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "--ice-deny" in out.stderr, out.stderr


async def test_trickled_candidates_are_screened_and_reach_the_servers_ice(
    tmp_path, udp_sockets
) -> None:
    """`ice_candidate` (trickle ICE): a candidate sent after the offer is screened as one in
    the SDP is; an allowed one is checked by the server's ICE, a denied one never."""
    srv = await start_server(tmp_path / "data", announce_ip="127.0.0.1", ice_deny=f"{DENIED}/32")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        room = await srv.create_room(lobby=False)
        invite = await srv.create_invite(room["id"], "party", "甲")
        client = await srv.join(invite)
        denied, allowed = bound(udp_sockets, DENIED), bound(udp_sockets, ALLOWED)
        lines = {
            "denied": candidate(1, DENIED, port(denied), 2130706431),
            "allowed": candidate(2, ALLOWED, port(allowed), 2130706430),
        }
        trickled = {k: v.removeprefix("a=").strip() for k, v in lines.items()}

        def send(line: str) -> dict:
            body = {"connection": "publisher", "candidate": line, "sdpMid": "0"}
            return client.call("ice_candidate", body)

        ack = await send(trickled["allowed"])  # before any offer: no connection to add it to
        assert ack["ok"] is False and ack["error"] == "no_media", ack

        pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = "".join(  # sent at once: no candidates, no end-of-candidates
            line
            for line in pc.localDescription.sdp.splitlines(keepends=True)
            if not line.startswith(("a=candidate:", "a=end-of-candidates"))
        )
        tracks = [{"mid": pc.getTransceivers()[0].mid, "source": "microphone"}]
        ack = await client.call("publish", {"sdp": offer, "type": "offer", "tracks": tracks})
        assert ack["ok"] is True, ack

        assert (await send(trickled["denied"])) == {"ok": True, "added": False}
        assert (await send(trickled["allowed"])) == {"ok": True, "added": True}
        assert (await send("candidate:1 1 udp x")) == {"ok": True, "added": False}  # unreadable
        ack = await send(trickled["allowed"] + "\r\na=candidate:3 1 udp 1 10.0.0.1 9 typ host")
        assert ack["ok"] is False, ack  # one line only

        publisher = srv.state.media.peer(room["id"], invite["invite_id"]).publisher
        ice = publisher.getTransceivers()[0].receiver.transport.transport
        assert {(c.ip, c.port) for c in ice.getRemoteCandidates()} == {(ALLOWED, port(allowed))}
        data, _ = await asyncio.to_thread(allowed.recvfrom, 2048)
        assert data[:2] == STUN_BINDING_REQUEST
        denied.setblocking(False)
        with pytest.raises(BlockingIOError):
            denied.recvfrom(2048)
    finally:
        await pc.close()
        await srv.close()
        await srv.server.close()
        apply_ice(IceSettings())
