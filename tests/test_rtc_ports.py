"""`--rtc-ports`: every ICE socket of the server and of its recorder binds in the range;
a full range is a clear error and a log line (rtc/ports.py, rtc/aiortc_internals.py)."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from tests.conftest import free_port, start_server
from tests.support.server_process import stop, wait_healthy
from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tests.test_agreements import start_recording, stop_recording
from tests.test_cli import TIAOJIE, _post
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient
from tiaojie.rtc import aiortc_internals
from tiaojie.rtc.ports import PortRange, PortsExhausted, parse_port_range

ADMIN = "admin-token-for-the-single-port-test-0123"


def candidate_ports(sdp: str) -> set[int]:
    return {int(p) for p in re.findall(r"^a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ", sdp, re.M)}


def free_block(size: int) -> tuple[int, int]:
    """`size` consecutive UDP ports free on every address (below the kernel's ephemeral
    range, so nothing else takes them while the test runs)."""
    for _ in range(200):
        first = random.randrange(20000, 32000 - size)
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("0.0.0.0", port))
            return first, first + size - 1
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no free block of UDP ports")


def udp_ports_of(pid: int) -> set[int]:
    """The local ports of the UDP sockets process `pid` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def restore_binding() -> Iterator[None]:
    yield
    aiortc_internals.bind_ice_in(None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("40000-40199", (40000, 40199)), (" 50000 ", (50000, 50000)), ("", None), (None, None)],
)
def test_port_ranges_are_read(text, expected) -> None:
    ports = parse_port_range(text)
    assert (None if ports is None else (ports.first, ports.last)) == expected


@pytest.mark.parametrize("text", ["40000-", "a-b", "40199-40000", "80-90", "40000-70000", "1:2"])
def test_bad_port_ranges_are_refused_with_the_option_named(text) -> None:
    with pytest.raises(ValueError, match="--rtc-ports"):
        parse_port_range(text)


def test_a_taken_port_is_skipped_and_a_full_range_says_so(caplog) -> None:
    first, last = free_block(2)
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", first))
    ports = PortRange(first, last)
    try:
        got = ports.bind("127.0.0.1")
        assert got.getsockname()[1] == last
        with caplog.at_level(logging.WARNING), pytest.raises(PortsExhausted, match="in use"):
            ports.bind("127.0.0.1")
        assert f"--rtc-ports {first}-{last}" in caplog.text
        got.close()
        assert ports.bind("127.0.0.1").getsockname()[1] == last  # freed: usable again
    finally:
        taken.close()


async def test_every_ice_socket_of_server_and_recorder_binds_in_the_range(
    tmp_path, restore_binding
) -> None:
    first, last = free_block(24)
    inside = range(first, last + 1)
    srv = await start_server(
        tmp_path / "data", announce_ip="127.0.0.1", rtc_ports=f"{first}-{last}"
    )
    room = await srv.create_room(lobby=False)
    a = RoomClient((await srv.create_invite(room["id"], "party", "甲"))["url"])
    b = RoomClient((await srv.create_invite(room["id"], "party", "乙"))["url"])
    source = FileSource(make_test_mp4(tmp_path / "m.mp4", seconds=3))
    try:
        await a.join()
        await b.join()
        await a.publish(source)
        a_id = a.room_state["self"]["id"]

        def receiving() -> bool:
            camera = b.subscriptions_of(a_id).get("camera")
            return camera is not None and camera.packets > 10

        await eventually(receiving, timeout=20, what="b receiving a's camera")
        assert a.publisher is not None and b.subscriber is not None
        answer_ports = candidate_ports(a.publisher.remoteDescription.sdp)
        offer_ports = candidate_ports(b.subscriber.remoteDescription.sdp)
        assert answer_ports and offer_ports
        assert all(p in inside for p in answer_ports | offer_ports), (answer_ports, offer_ports)

        await start_recording(srv, room["id"])
        recorder = srv.state.recordings.processes[room["id"]].process
        assert recorder is not None

        def recorder_sockets() -> set[int]:
            return udp_ports_of(recorder.pid)

        await eventually(lambda: recorder_sockets(), timeout=30, what="the recorder's media")
        assert all(p in inside for p in recorder_sockets()), recorder_sockets()
        await stop_recording(srv, room["id"])
    finally:
        await source.stop()
        await a.leave()
        await b.leave()
        await srv.close()
        await srv.server.close()


async def test_a_full_range_refuses_the_publish_with_a_clear_error(
    tmp_path, restore_binding, caplog
) -> None:
    first, last = free_block(2)
    srv = await start_server(
        tmp_path / "data", announce_ip="127.0.0.1", rtc_ports=f"{first}-{last}"
    )
    pcs: list[RTCPeerConnection] = []
    try:
        room = await srv.create_room(lobby=False)
        acks = []
        for name in ("甲", "乙"):
            client = await srv.join(await srv.create_invite(room["id"], "party", name))
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pcs.append(pc)
            pc.addTransceiver("audio", direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            tracks = [{"mid": pc.getTransceivers()[0].mid, "source": "microphone"}]
            with caplog.at_level(logging.WARNING, logger="tiaojie.rtc.ports"):
                acks.append(
                    await client.call(
                        "publish",
                        {"sdp": pc.localDescription.sdp, "type": "offer", "tracks": tracks},
                    )
                )
        # the first client's socket and the server's answer take the two ports
        assert acks[0]["ok"] is True, acks[0]
        assert acks[1]["ok"] is False and acks[1]["error"] == "media_ports_exhausted", acks[1]
        assert f"--rtc-ports {first}-{last}" in caplog.text
        assert "Traceback" not in caplog.text
    finally:
        for pc in pcs:
            await pc.close()
        await srv.close()
        await srv.server.close()


@pytest.fixture
def single_port_server(tmp_path) -> Iterator[tuple[str, int, subprocess.Popen]]:
    """A real `tiaojie serve --rtc-ports P` (one port): (its URL, P, the process)."""
    port, _ = free_block(1)
    http = free_port()
    url = f"http://127.0.0.1:{http}"
    command = [TIAOJIE, "serve", "--data", str(tmp_path / "data"), "--port", str(http)]
    process = subprocess.Popen(
        [*command, "--rtc-ports", str(port), "--announce-ip", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TIAOJIE_ADMIN_TOKEN": ADMIN},
    )
    try:
        wait_healthy(url, process)
        yield url, port, process
    finally:
        stop(process)


async def test_single_port_mode_carries_every_connection_on_one_port(
    tmp_path, single_port_server
) -> None:
    """`--rtc-ports 40000` (one port) on a real `tiaojie serve`: the server's every
    candidate is that port, and a publisher and two subscribers (five connections) all
    work through it. (The clients run in this process, the server in its own: in one
    process they would share the port too.)"""
    url, port, process = single_port_server
    clients: list[RoomClient] = []
    source = FileSource(make_test_mp4(tmp_path / "m.mp4", seconds=3))
    try:
        room = _post(f"{url}/api/rooms", ADMIN, b'{"title": "one port", "lobby": false}')
        for name in ("a", "b", "c"):
            body = json.dumps({"role": "party", "name": name}).encode()
            invite = _post(f"{url}/api/rooms/{room['id']}/invites", ADMIN, body)
            clients.append(RoomClient(invite["url"]))
        a, b, c = clients
        for client in clients:
            await client.join()
        await a.publish(source)
        a_id = a.room_state["self"]["id"] if a.room_state else ""

        def receiving(viewer: RoomClient) -> bool:
            camera = viewer.subscriptions_of(a_id).get("camera")
            audio = viewer.subscriptions_of(a_id).get("microphone")
            return bool(camera and audio and camera.keyframes and camera.packets > 10)

        await eventually(lambda: receiving(b) and receiving(c), timeout=30, what="b and c")
        assert a.publisher is not None
        sdps = [a.publisher.remoteDescription.sdp]
        sdps += [v.subscriber.remoteDescription.sdp for v in (b, c) if v.subscriber]
        assert len(sdps) == 3
        assert all(candidate_ports(sdp) == {port} for sdp in sdps), sdps
        # and the server process holds that one UDP port for its media
        assert port in udp_ports_of(process.pid)
    finally:
        await source.stop()
        for client in clients:
            await client.leave()
