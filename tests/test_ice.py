"""ICE settings: servers handed to clients, announced addresses (NAT and loopback-only)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import start_server
from tiaojie.client.session import RoomClient
from tiaojie.server.media.ice import parse_ice_servers

SERVERS = [
    {"urls": "stun:stun.example.org:3478"},
    {"urls": ["turn:turn.example.org:3478?transport=udp"], "username": "u", "credential": "p"},
]


def candidate_addresses(sdp: str) -> set[str]:
    return set(re.findall(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ host", sdp, re.M))


@pytest.mark.parametrize(
    "text",
    [
        '{"urls": "stun:x"}',
        "[1]",
        '[{"url": "stun:x"}]',
        '[{"urls": "http://x"}]',
        "[{",
        '[{"urls": "stun:x", "a": 1}]',
    ],
)
def test_bad_ice_servers_are_refused(text):
    with pytest.raises(ValueError, match="ice-servers"):
        parse_ice_servers(text)


@pytest.mark.parametrize("args", [["--announce-ip", "not-an-ip"], ["--ice-servers", "[{"]])
def test_serve_refuses_bad_ice_options(tmp_path, args):
    tiaojie = str(Path(sys.executable).with_name("tiaojie"))
    out = subprocess.run(
        [tiaojie, "serve", "--data", str(tmp_path), "--port", "1", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and ("announce-ip" in out.stderr or "ice-servers" in out.stderr)


async def _room(server):
    room = await server.create_room(lobby=False)
    invites = [await server.create_invite(room["id"], "party", n) for n in ("A", "B")]
    return [RoomClient(i["url"]) for i in invites]


async def test_ice_servers_reach_clients(tmp_path):
    server = await start_server(tmp_path, ice_servers=json.dumps(SERVERS))
    room = await server.create_room(lobby=False)
    invite = await server.create_invite(room["id"], "party", "A")
    try:
        client = await server.join(invite)
        state = await client.wait_for("room_state")
        assert state["ice_servers"] == SERVERS
    finally:
        await server.close()
        await server.server.close()


async def test_nat_address_replaces_host_candidates():
    from aiortc import RTCConfiguration, RTCPeerConnection

    from tiaojie.server.media.ice import IceSettings, rewrite_candidates

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    assert candidate_addresses(sdp) and "203.0.113.7" not in candidate_addresses(sdp)
    rewritten = rewrite_candidates(sdp, IceSettings(announce_ip="203.0.113.7"))
    assert candidate_addresses(rewritten) == {"203.0.113.7"}
    assert "c=IN IP4 203.0.113.7" in rewritten
    assert rewrite_candidates(sdp, IceSettings()) == sdp


def test_loopback_only_host_announces_127_0_0_1_and_media_flows():
    """In a fresh process: the ICE gathering switch is process-wide."""
    scenario = Path(__file__).with_name("loopback_scenario.py")
    out = subprocess.run(
        [sys.executable, str(scenario)], capture_output=True, text=True, timeout=60
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["publisher_answer_hosts"] == ["127.0.0.1"], out.stderr[-2000:]
    assert result["subscriber_offer_hosts"] == ["127.0.0.1"]
    assert result["video_keyframes"] >= 1 and result["video_packets"] > 5
