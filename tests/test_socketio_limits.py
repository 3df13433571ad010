"""What one socket.io connection can make the server hold (server/socketio_limits.py).

Raw Engine.IO frames over a real websocket, as a hostile client would send them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tiaojie.server import rooms
from tiaojie.server.model import Room, new_id, now
from tiaojie.server.roles import Role
from tiaojie.server.signalling import MAX_IN_PROGRESS_BYTES, Request, Signalling
from tiaojie.server.store import MemoryRoomStore
from tiaojie.server.tokens import InviteClaims, TokenSigner

FRAME = b"\x00" * (512 * 1024)


def rss_bytes() -> int:
    """This process's resident memory now (the server runs in it)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


async def raw_socket(
    session: aiohttp.ClientSession, url: str, auth: dict[str, Any]
) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """A websocket connected to the "/" namespace with `auth` (Engine.IO v4), and its
    Engine.IO session id."""
    ws = await session.ws_connect(
        url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
        max_msg_size=0,
    )
    opened = (await ws.receive()).data
    assert opened.startswith("0{")
    await ws.send_str("40" + json.dumps(auth))
    assert (await ws.receive(timeout=5)).data.startswith("40{")
    return ws, json.loads(opened[1:])["sid"]


async def closed_by_server(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> bool:
    """True once the server closes the websocket (other messages are skipped)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await ws.receive()
                if message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                ):
                    return True
    except TimeoutError:
        return False


async def test_binary_attachments_from_the_lobby_close_the_connection(live_server, caplog):
    """A packet announcing 9999999999 attachments, then frames: python-socketio would keep
    every frame until the count is reached. The connection is closed at once instead."""
    room = await live_server.create_room(lobby=True)
    party = await live_server.create_invite(room["id"], "party", "王五")
    before = rss_bytes()
    async with aiohttp.ClientSession() as session:
        ws, eio_sid = await raw_socket(session, live_server.url, {"token": party["token"]})
        await ws.send_str('459999999999-["raise_hand",{"_placeholder":true,"num":0}]')
        sent = 0
        for _ in range(60):  # 30 MB, were the connection left open
            try:
                await ws.send_bytes(FRAME)
            except ConnectionError:
                break
            sent += 1
        closed = await closed_by_server(ws)
        grown = rss_bytes() - before
        assert closed, f"the server kept the connection open ({sent} frames sent)"
    assert grown < 10 * 1024 * 1024, f"the server grew by {grown >> 20} MiB ({sent} frames)"
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert [r.getMessage() for r in caplog.records if "closed socket.io" in r.getMessage()] == [
        f"closed socket.io connection {eio_sid}: binary packets are not accepted"
    ]
    # Nobody else noticed: the room is as it was.
    assert (await live_server.room(room["id"]))["lobby_count"] == 0


async def test_binary_frames_close_the_connection(live_server):
    room = await live_server.create_room(lobby=False)
    party = await live_server.create_invite(room["id"], "party", "王五")
    async with aiohttp.ClientSession() as session:
        ws, _ = await raw_socket(session, live_server.url, {"token": party["token"]})
        await ws.send_bytes(b"\x01\x02\x03")
        assert await closed_by_server(ws)


async def test_malformed_packets_are_dropped_and_the_sender_told(live_server, caplog):
    room = await live_server.create_room(lobby=False)
    party = await live_server.create_invite(room["id"], "party", "王五")
    caplog.set_level(logging.WARNING)
    async with aiohttp.ClientSession() as session:
        ws, _ = await raw_socket(session, live_server.url, {"token": party["token"]})
        junk = ["4", '42{"a":1}', "42[]", "43", "44{}", "42" + "[" * 20 + "]" * 20]
        for frame in junk:
            await ws.send_str(frame)
        errors = []
        async with asyncio.timeout(5):
            while len(errors) < len(junk):
                message = await ws.receive()
                assert message.type is aiohttp.WSMsgType.TEXT, message
                if message.data.startswith('42["request_error"'):
                    errors.append(json.loads(message.data[2:])[1])
        assert {e["error"] for e in errors} == {"bad_packet"}
        # A call whose packet is refused is still answered (not left to time out).
        await ws.send_str('420["raise_hand",' + "[" * 20 + "]" * 20 + "]")
        async with asyncio.timeout(5):
            while not (message := await ws.receive()).data.startswith("430"):
                pass
        assert json.loads(message.data[3:])[0]["error"] == "bad_packet"
        # Still connected, and well-formed events work.
        await ws.send_str('421["raise_hand",{"raised":true}]')
        async with asyncio.timeout(5):
            while not (message := await ws.receive()).data.startswith("431"):
                pass
        assert json.loads(message.data[3:])[0]["ok"] is True
        await ws.close()
    records = [r for r in caplog.records if r.name.startswith(("tiaojie", "engineio", "socketio"))]
    assert not [r for r in records if r.exc_info], "a traceback was logged"
    dropped = [r for r in records if "dropped a socket.io packet" in r.getMessage()]
    assert len(dropped) == len(junk) + 1


async def test_bytes_of_events_in_progress_per_connection_are_capped(tmp_path, caplog):
    """Event handlers run as tasks of their own, each holding its payload: a connection
    whose events in progress hold more than MAX_IN_PROGRESS_BYTES is closed. The real
    gateway, with a handler that waits until the test lets it finish."""
    store = MemoryRoomStore()
    signer = TokenSigner(b"k" * 32)
    signalling = Signalling(store, signer, None)
    release = asyncio.Event()
    handled: list[int] = []

    async def slow(request: Request) -> dict[str, Any]:
        await release.wait()
        handled.append(len(request.payload["facts"]))
        return {}

    signalling.add_handler("agreement_draft", slow)
    app = web.Application()
    signalling.attach(app)
    server = TestServer(app)
    await server.start_server()
    try:
        room = Room(id=new_id(), title="t", lobby=False, max_participants=12, created_at=now())
        await store.create(room)
        invite = await store.update(
            room.id, lambda r: rooms.create_invite(r, Role.MEDIATOR, "张", 3600)
        )
        token = signer.sign(InviteClaims(room.id, Role.MEDIATOR, invite.invite_id, 2**40))
        # 20,000 characters of facts and ten 2,000-character terms: 240 KB as JSON
        draft = {"case_number": "1", "facts": "调" * 20_000, "terms": ["解" * 2_000] * 10}
        frame = '42["agreement_draft",' + json.dumps(draft) + "]"
        fit = MAX_IN_PROGRESS_BYTES // len(frame)
        url = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as session:
            ws, _ = await raw_socket(session, url, {"token": token})
            for _ in range(fit + 1):
                await ws.send_str(frame)
            assert await closed_by_server(ws)
            release.set()
            await asyncio.sleep(0.2)
        assert handled == [20_000] * fit  # the events in progress finished
        closed = [r for r in caplog.records if "bytes of events in progress" in r.getMessage()]
        assert len(closed) == 1 and not closed[0].exc_info
    finally:
        await signalling.shutdown()
        await server.close()
