"""Unhandled input: a clear error to the sender, one short log line, never a traceback.

REST bodies (nesting, NaN, 42.0), SDP offers and answers aiortc cannot read, and, against
`tiaojie serve` as deployed, malformed HTTP requests, clients that hang up mid-body and
malformed Engine.IO/socket.io frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import shutil
from collections import Counter

import aiohttp
import pytest

from tests.support.serve import ServeProcess
from tests.support.testmedia import make_test_mp4
from tests.test_agreements import shared_keys  # noqa: F401  (the fixture: keys made once)
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient
from tiaojie.server.errors import TiaojieError
from tiaojie.server.media.ice import IceSettings
from tiaojie.server.media.sfu import MediaPlane

ADMIN = "test-admin-token-for-input-errors-0123456789"

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
    "a=rtcp-mux\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "a=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\n"
)


def tracebacks(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.exc_info]


# -- REST bodies ------------------------------------------------------------------------------
async def test_deeply_nested_json_bodies_are_refused_not_500(live_server) -> None:
    for depth in (5000, 40):
        body = '{"title": ' + "[" * depth + "]" * depth + "}"
        status, answer = await live_server.admin(
            "POST", "/api/rooms", data=body, headers={"Content-Type": "application/json"}
        )
        assert status == 400 and answer["error"] == "invalid_json", (depth, status, answer)
        assert "nested" in answer["message"]


async def test_nan_and_infinity_are_not_json(live_server) -> None:
    for constant in ("NaN", "Infinity", "-Infinity"):
        body = '{"title": "x", "max_participants": ' + constant + "}"
        status, answer = await live_server.admin(
            "POST", "/api/rooms", data=body, headers={"Content-Type": "application/json"}
        )
        assert (status, answer["error"]) == (400, "invalid_json"), answer


async def test_integral_numbers_are_integers_as_the_schema_says(live_server) -> None:
    """JSON Schema (and so /api/openapi.json) counts 12.0 as an integer."""
    status, room = await live_server.admin(
        "POST", "/api/rooms", json={"title": "x", "max_participants": 12.0}
    )
    assert status == 201 and room["max_participants"] == 12
    assert isinstance(room["max_participants"], int)
    status, answer = await live_server.admin(
        "POST", "/api/rooms", json={"title": "x", "max_participants": 12.5}
    )
    assert (status, answer["error"]) == (400, "bad_request")


async def test_method_not_allowed_says_which_are(live_server) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.put(live_server.url + "/api/rooms") as response,
    ):
        assert response.status == 405
        assert set(response.headers["Allow"].split(",")) >= {"GET", "POST"}
        assert (await response.json())["error"] == "method_not_allowed"


# -- SDP --------------------------------------------------------------------------------------
async def test_unreadable_offers_are_bad_sdp(live_server, caplog) -> None:
    room = await live_server.create_room(lobby=False)
    party = await live_server.join(await live_server.create_invite(room["id"], "party", "王五"))
    await party.wait_for("room_state")
    tracks = [{"mid": "0", "source": "microphone"}]
    for sdp in (
        OFFER.replace("a=setup:actpass", "a=setup:bogus"),  # KeyError in aiortc
        OFFER.replace("opus/48000/2", "opus"),  # IndexError
        OFFER.replace("c=IN IP4 0.0.0.0", "c=IN"),  # AssertionError
        OFFER + "a=ssrc:x cname:y\r\n",  # ValueError
        "hello, this is no SDP at all",
    ):
        ack = await party.call("publish", {"sdp": sdp, "type": "offer", "tracks": tracks})
        assert ack["ok"] is False and ack["error"] == "bad_sdp", (sdp[-40:], ack)
    assert not tracebacks(caplog.records)
    # The connection is fine: a readable offer gets past the parser.
    ack = await party.call("publish", {"sdp": OFFER, "type": "offer", "tracks": tracks})
    assert ack["ok"] is True, ack


FULL_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
    "a=rtcp-mux\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "a=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n"
    "a=rtcp-mux\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "a=setup:actpass\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\na=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\na=ssrc-group:FID 1 2\r\na=ssrc:1 cname:x\r\n"
    "a=rtcp-fb:96 nack pli\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
)
JUNK = ["", "x", "-1", "99999999999999999999", ":", " ", "a=", "bogus", "0", "1 2 3", "%"]


def mangled_offers(count: int, seed: int = 1) -> list[str]:
    """`count` copies of FULL_OFFER with one to three lines cut, emptied, garbled or gone."""
    rng = random.Random(seed)
    lines = FULL_OFFER.split("\r\n")
    offers = []
    for _ in range(count):
        mangled = list(lines)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(mangled))
            how = rng.random()
            if how < 0.3:
                mangled[i] = mangled[i][: rng.randint(0, len(mangled[i]))]
            elif how < 0.6:
                words = mangled[i].split(" ")
                words[rng.randrange(len(words))] = rng.choice(JUNK)
                mangled[i] = " ".join(words)
            elif how < 0.8:
                mangled[i] = mangled[i].replace(":", rng.choice(JUNK), 1)
            else:
                del mangled[i]
        offers.append("\r\n".join(mangled))
    return offers


async def test_mangled_offers_are_bad_sdp_never_a_crash(caplog) -> None:
    """The media plane itself (real aiortc): offers that aiortc reads but cannot use
    raised AttributeError or OperationError from deep inside, and left connections that
    could not even be closed."""
    sent: list[tuple[str, str]] = []

    async def send(to: str, event: str, payload: dict) -> None:
        sent.append((to, event))

    plane = MediaPlane(IceSettings(), send, send)
    outcomes: Counter[str] = Counter()
    tracks = [{"mid": "0", "source": "microphone"}, {"mid": "1", "source": "camera"}]
    for n, offer in enumerate(mangled_offers(200)):
        await plane.add_peer("room", f"p{n % 10}", f"sid{n % 10}", {"audio": False, "video": False})
        try:
            await plane.peer("room", f"p{n % 10}").publish(offer, tracks)
            outcomes["ok"] += 1
        except TiaojieError as error:
            outcomes[error.code] += 1
        await plane.remove_peer("room", f"p{n % 10}")
    await plane.close()
    assert set(outcomes) <= {"ok", "bad_sdp", "bad_request"}, outcomes
    assert outcomes["bad_sdp"] > 50 and outcomes["ok"] > 20, outcomes
    assert not tracebacks(caplog.records)


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    return make_test_mp4(tmp_path_factory.mktemp("media") / "av.mp4", seconds=3)


async def test_a_bad_subscriber_answer_is_refused_not_acknowledged(
    live_server, test_mp4, caplog
) -> None:
    room = await live_server.create_room(lobby=False)
    publisher = RoomClient((await live_server.create_invite(room["id"], "party", "王五"))["url"])
    await publisher.join()
    try:
        await publisher.publish(FileSource(test_mp4))
        viewer = await live_server.join(
            await live_server.create_invite(room["id"], "party", "李四")
        )
        offer = await viewer.wait_for("subscriber_offer", timeout=15)
        unreadable = offer["sdp"].replace("a=setup:actpass", "a=setup:bogus")
        ack = await viewer.call("subscriber_answer", {"sdp": unreadable, "type": "answer"})
        assert (ack["ok"], ack["error"]) == (False, "bad_sdp"), ack
        # Readable but not an answer to that offer (its own offer back): refused too,
        # once the server has tried to apply it.
        ack = await viewer.call("subscriber_answer", {"sdp": offer["sdp"], "type": "answer"})
        assert (ack["ok"], ack["error"]) == (False, "bad_sdp"), ack
        # Nothing waits for an answer now.
        ack = await viewer.call("subscriber_answer", {"sdp": offer["sdp"], "type": "answer"})
        assert ack["error"] == "unexpected_answer"
    finally:
        await publisher.close()
    assert not tracebacks(caplog.records)


# -- tiaojie serve, as deployed ------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_keys):  # noqa: F811
    data = tmp_path_factory.mktemp("serve") / "data"
    shutil.copytree(shared_keys, data / "keys", ignore=shutil.ignore_patterns(".lock"))
    server = ServeProcess(data, ADMIN)
    yield server
    server.stop()


async def raw_http(port: int, data: bytes, hang_up: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = b""
    if hang_up:
        await asyncio.sleep(0.3)
        writer.transport.abort()
    else:
        answer = await asyncio.wait_for(reader.read(200), 5)
        writer.close()
    return answer


async def test_malformed_input_is_one_log_line_without_traceback(served) -> None:
    port, auth = served.port, f"Authorization: Bearer {ADMIN}\r\n".encode()
    # Malformed HTTP: 400, one line each.
    for request in (
        b"GET /api/health HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET /api/health HTTP/9.1\r\n\r\n",
        b"POST /api/rooms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
    ):
        assert (await raw_http(port, request)).startswith(b"HTTP/1.0 400"), request
    # Clients that hang up mid-body (a REST body, a timestamp query).
    for path, kind in (
        (b"/api/rooms", b"application/json"),
        (b"/tsa", b"application/timestamp-query"),
    ):
        await raw_http(
            port,
            b"POST "
            + path
            + b" HTTP/1.1\r\nHost: x\r\n"
            + auth
            + b"Content-Type: "
            + kind
            + b'\r\nContent-Length: 1000\r\n\r\n{"title":',
            hang_up=True,
        )
    # Malformed Engine.IO and socket.io frames.
    async with aiohttp.ClientSession() as session:
        for frames in (["x"], ["9"], ["4x", '42{"a"', "42" + "[" * 3000, "4"]):
            async with session.ws_connect(
                served.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
            ) as ws:
                await ws.receive()
                # then a CONNECT without a token: its refusal says the frames before it
                # were handled (unless one of them closed the connection)
                for frame in [*frames, "40"]:
                    await ws.send_str(frame)
                async with asyncio.timeout(5):
                    while (message := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                        if message.data.startswith("44"):
                            break
        # ... and over long-polling: an Engine.IO session, then bodies that do not decode
        polling = served.url + "/socket.io/?EIO=4&transport=polling"
        async with session.get(polling) as response:
            sid = json.loads((await response.text())[1:])["sid"]
        for body in (b"x", b"4" + b"[" * 5000, b"\xff\xfe"):
            async with session.post(
                f"{polling}&sid={sid}", data=body, headers={"Content-Type": "text/plain"}
            ) as response:
                assert response.status < 500
    # The server is fine, and said so in a few short lines.
    async with (
        aiohttp.ClientSession() as session,
        session.get(served.url + "/api/health") as response,
    ):
        assert response.status == 200
    await asyncio.sleep(0.5)
    log = served.log()
    assert "Traceback" not in log, log
    lines = [line for line in log.splitlines() if " WARNING " in line or " INFO aiohttp.s" in line]
    assert sum("malformed HTTP request" in line for line in lines) == 3, lines
    assert sum("the client went away" in line for line in lines) == 2, lines
    assert sum("malformed Engine.IO" in line for line in lines) == 5, lines
    assert sum("dropped a socket.io packet" in line for line in lines) == 4, lines
    assert all(len(line) < 300 for line in lines), lines
