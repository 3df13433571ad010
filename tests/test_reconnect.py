"""Reconnection at the socket.io level: a connection that breaks keeps its seat.

The server drops a party's connection itself (transport closed, as when a phone loses its
network); the others see presence `reconnecting`, not a departure; the same link joining
within the grace gets the same seat (id, role, side, admission, mute state, raised hand);
a seat not taken back within the grace is gone. A client that leaves is gone at once.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.conftest import LiveServer, free_port, start_server
from tests.support.server_process import stop, wait_healthy
from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tests.test_recording import (
    _recorder_pids,
    chain,
    events_so_far,
    fragments_chained,
    segments_started,
    verify,
)
from tests.test_restart import api, serve
from tiaojie.archive.chain import read_entries
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient
from tiaojie.server.socketio_limits import close_connection


async def drop(srv: LiveServer, room_id: str, participant_id: str) -> None:
    """Break a participant's connection from the server side (no goodbye from the client)."""
    room = await srv.state.store.require(room_id)
    sio = srv.state.signalling.sio
    eio_sid = sio.manager.eio_sid_from_sid(room.participants[participant_id].sid, "/")
    await close_connection(sio, eio_sid, "the test takes the network away")


async def admitted_party(srv: LiveServer, grace_room: dict[str, Any]) -> tuple[Any, ...]:
    room = grace_room
    mediator = await srv.create_invite(room["id"], "mediator", "调解员张")
    party = await srv.create_invite(room["id"], "party", "李四", side="applicant")
    m = await srv.join(mediator)
    await m.wait_for("room_state")
    p = await srv.join(party)
    await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 1)
    assert (await m.call("admit", {"participant_id": party["invite_id"]}))["ok"]
    await p.wait_for("room_state")
    assert (await p.call("raise_hand", {"raised": True}))["ok"]
    assert (await p.call("set_muted", {"track": "audio", "muted": True}))["ok"]
    assert (await m.call("mute", {"participant_id": party["invite_id"], "track": "video"}))["ok"]
    return m, p, party


def seat(participant: dict[str, Any]) -> dict[str, Any]:
    """What a reconnect must keep."""
    keys = ("id", "role", "side", "status", "muted", "muted_by_mediator", "hand_raised")
    return {key: participant[key] for key in keys}


async def test_a_dropped_party_keeps_its_seat_within_the_grace(room_server: LiveServer) -> None:
    srv = room_server
    room = await srv.create_room()
    m, p, party = await admitted_party(srv, room)
    pid = party["invite_id"]
    before = next(x for x in (await srv.room(room["id"]))["participants"] if x["id"] == pid)
    assert before["presence"] == "online"

    lobby_news = len(m.received("lobby_updated"))
    joins = len(m.received("participant_joined"))
    await drop(srv, room["id"], pid)
    await p.disconnected.wait()
    away = await m.wait_for(
        "participant_updated", lambda d: d["participant"]["presence"] == "reconnecting"
    )
    assert away["participant"]["id"] == pid
    assert not m.received("participant_left")
    snapshot = await srv.room(room["id"])
    assert [x["presence"] for x in snapshot["participants"] if x["id"] == pid] == ["reconnecting"]

    again = await srv.join(party)
    welcome = await again.wait_for("welcome")
    assert welcome["participant"]["status"] == "joined"  # not back in the lobby
    state = await again.wait_for("room_state")
    assert seat(state["self"]) == seat(before)
    assert state["self"]["presence"] == "online"
    await eventually(lambda: len(m.received("participant_joined")) > joins, what="the return")
    back = m.received("participant_joined")[-1]
    assert seat(back["participant"]) == seat(before)
    assert not m.received("participant_left")
    assert len(m.received("lobby_updated")) == lobby_news  # nobody went through the lobby
    # the mediator still controls it; the old connection is not "replaced" (it is gone)
    assert not again.received("closed")
    assert (await m.call("request_unmute", {"participant_id": pid, "track": "video"}))["ok"]


async def test_a_seat_not_taken_back_within_the_grace_is_gone(tmp_path) -> None:
    srv = await start_server(tmp_path / "data", reconnect_grace=1.0)
    try:
        room = await srv.create_room()
        m, _p, party = await admitted_party(srv, room)
        pid = party["invite_id"]
        await drop(srv, room["id"], pid)
        await m.wait_for(
            "participant_updated", lambda d: d["participant"]["presence"] == "reconnecting"
        )
        left = await m.wait_for("participant_left", timeout=10)
        assert left == {"participant_id": pid, "reason": "disconnected"}
        assert pid not in [x["id"] for x in (await srv.room(room["id"]))["participants"]]
        # the admission stays (as after any leave): the link comes back into the room
        again = await srv.join(party)
        assert (await again.wait_for("welcome"))["participant"]["status"] == "joined"
    finally:
        await srv.close()
        await srv.server.close()


async def test_a_client_that_leaves_is_gone_at_once(room_server: LiveServer) -> None:
    srv = room_server
    room = await srv.create_room()
    m, p, party = await admitted_party(srv, room)
    await p.close()  # `leave`, then disconnect
    left = await m.wait_for("participant_left")
    assert left == {"participant_id": party["invite_id"], "reason": "left"}
    assert not [
        d for d in m.received("participant_updated") if d["participant"]["presence"] != "online"
    ]


async def test_grace_zero_is_the_old_behaviour(tmp_path) -> None:
    srv = await start_server(tmp_path / "data", reconnect_grace=0.0)
    try:
        room = await srv.create_room()
        m, _p, party = await admitted_party(srv, room)
        await drop(srv, room["id"], party["invite_id"])
        await m.wait_for("participant_left")
    finally:
        await srv.close()
        await srv.server.close()


async def test_the_lobby_is_not_held(room_server: LiveServer) -> None:
    srv = room_server
    room = await srv.create_room()
    mediator = await srv.create_invite(room["id"], "mediator", "调解员张")
    party = await srv.create_invite(room["id"], "party", "李四")
    m = await srv.join(mediator)
    await srv.join(party)
    await m.wait_for("lobby_updated", lambda d: len(d["lobby"]) == 1)
    await drop(srv, room["id"], party["invite_id"])
    await m.wait_for("lobby_updated", lambda d: d["lobby"] == [])
    await eventually(lambda: not m.received("participant_updated"), what="no presence change")


# -- the Python client (what the recorder and `tiaojie bot` use) --------------------------
@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    return make_test_mp4(
        tmp_path_factory.mktemp("media") / "av.mp4", seconds=3, keyframe_interval_s=0.5
    )


async def test_the_python_client_reconnects_by_itself(live_server: LiveServer, test_mp4) -> None:
    srv = live_server
    room = await srv.create_room(lobby=False)
    viewer_invite = await srv.create_invite(room["id"], "observer", "书记员")
    bot_invite = await srv.create_invite(room["id"], "party", "李四")
    viewer = RoomClient(viewer_invite["url"])
    bot = RoomClient(bot_invite["url"])
    source = FileSource(test_mp4)
    try:
        await viewer.join()
        m = await srv.join(await srv.create_invite(room["id"], "mediator", "调解员王"))
        pid = bot_invite["invite_id"]
        state = await bot.join()
        await bot.publish(source)
        await eventually(lambda: "camera" in viewer.subscriptions_of(pid), what="the camera")
        await eventually(lambda: viewer.subscriptions_of(pid)["camera"].packets > 20)
        first = viewer.subscriptions_of(pid)["camera"].publication_id

        await drop(srv, room["id"], pid)
        await eventually(lambda: bot.reconnects == 1, timeout=15, what="the bot reconnecting")
        assert bot.closed_reason is None
        assert bot.room_state is not None and bot.room_state["self"]["id"] == state["self"]["id"]
        assert bot.room_state["self"]["status"] == "joined"

        def receiving_again() -> bool:
            camera = viewer.subscriptions_of(pid).get("camera")
            return camera is not None and camera.publication_id != first and camera.packets > 20

        await eventually(receiving_again, timeout=20, what="the bot's camera again")
        assert not [d for d in m.received("participant_left") if d["participant_id"] == pid]
    finally:
        await source.stop()
        await bot.leave()
        await viewer.leave()


async def test_a_recorder_whose_connection_drops_reconnects(live_server: LiveServer, test_mp4):
    srv = live_server
    room = await srv.create_room(lobby=False)
    m = await srv.join(await srv.create_invite(room["id"], "mediator", "调解员张"))
    bot_invite = await srv.create_invite(room["id"], "party", "李四")
    bot = RoomClient(bot_invite["url"])
    source = FileSource(test_mp4)
    try:
        await bot.join()
        await bot.publish(source)
        answer = await m.call("start_recording", {})
        assert answer["ok"], answer
        directory = srv.state.settings.data_dir / "recordings" / answer["recording"]["id"]
        joined = await m.wait_for(
            "participant_joined", lambda d: d["participant"]["role"] == "recorder", timeout=20
        )
        recorder_id = joined["participant"]["id"]

        def fragments() -> int:
            entries, _ = read_entries(directory / "chain.jsonl")
            return sum(
                1
                for e in entries
                if e["type"] == "fragment" and bot_invite["invite_id"] in e["segment"]
            )

        await eventually(lambda: fragments() >= 2, timeout=30, what="the bot recorded")
        await drop(srv, room["id"], recorder_id)
        await m.wait_for(
            "participant_updated",
            lambda d: (
                d["participant"]["id"] == recorder_id
                and d["participant"]["presence"] == "reconnecting"
            ),
        )
        joins = len(m.received("participant_joined"))
        await eventually(
            lambda: len(m.received("participant_joined")) > joins,
            timeout=20,
            what="the recorder back",
        )
        assert m.received("participant_joined")[-1]["participant"]["id"] == recorder_id
        before = fragments()
        await eventually(lambda: fragments() >= before + 2, timeout=30, what="recording again")
        # stopping waits for the seal (slow on a loaded machine): a longer ack timeout
        assert (await m.sio.call("stop_recording", {}, timeout=30))["ok"]
        await m.wait_for("participant_left", lambda d: d["participant_id"] == recorder_id, 20)
        result = await asyncio.to_thread(verify, directory, srv.state.settings.data_dir)
        assert result.returncode == 0, result.stdout + result.stderr
        summary = json.loads((directory / "recording.json").read_text())
        camera = [
            s
            for s in summary["segments"]
            if s["participant_id"] == bot_invite["invite_id"] and s["source"] == "camera"
        ]
        assert len(camera) >= 2 and camera[-1]["follows"] == camera[-2]["name"]
    finally:
        await source.stop()
        await bot.leave()


async def test_a_server_stopped_and_started_again_is_reconnected_to(tmp_path, test_mp4) -> None:
    """SIGTERM of `tiaojie serve` and the same command again (same port, same data
    directory): the Python clients come back by themselves to their seats (the party
    admitted from the lobby is not in it again) and media flows again. The recording that
    ran stopped with the server, its chain saying so (`server_stopping` before the seal:
    not the mediator's stop), and it verifies; the room is no longer recorded."""
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(data, port, tmp_path / "server.log")
    source = FileSource(test_mp4)
    clients: list[RoomClient] = []
    try:
        wait_healthy(url, server, timeout=60)
        _, room = api(url, "POST", "/api/rooms", {"title": "重启", "lobby": True})
        rid = room["id"]
        links = {
            name: api(url, "POST", f"/api/rooms/{rid}/invites", {"role": role, "name": name})[1]
            for role, name in (("mediator", "张调解员"), ("party", "李四"))
        }
        mediator, party = (RoomClient(links[n]["url"]) for n in ("张调解员", "李四"))
        clients += [mediator, party]
        await mediator.join()
        await mediator.publish(source)
        party_id, mediator_id = links["李四"]["invite_id"], links["张调解员"]["invite_id"]
        entering = asyncio.ensure_future(party.join())

        def waiting() -> bool:
            return [
                p["status"]
                for p in api(url, "GET", f"/api/rooms/{rid}")[1]["participants"]
                if p["id"] == party_id
            ] == ["lobby"]

        await eventually(waiting, what="the party in the lobby")
        assert (await mediator.call("admit", {"participant_id": party_id}))["ok"]
        await entering
        status, started = api(url, "POST", f"/api/rooms/{rid}/recording")
        assert status == 201, started
        directory = data / "recordings" / started["id"]
        # the recorder process starts (slowly on a loaded machine), then records
        await eventually(lambda: events_so_far(directory, "segment_started"), timeout=60)
        await fragments_chained(directory, await segments_started(directory, 1), 2)

        def receiving(since: int) -> bool:
            camera = party.subscriptions_of(mediator_id).get("camera")
            return camera is not None and camera.packets > since

        await eventually(lambda: receiving(20), what="the mediator's camera")
        first = party.subscriptions_of(mediator_id)["camera"].publication_id

        # SIGTERM: the recording is stopped and sealed, connections closed (the clients
        # here go on: the wait happens in a thread)
        await asyncio.to_thread(stop, server)
        assert not _recorder_pids(started["id"])
        server = serve(data, port, tmp_path / "server.log")
        wait_healthy(url, server, timeout=60)
        for client in (mediator, party):
            await eventually(lambda c=client: c.reconnects == 1, timeout=30, what="a reconnect")
            assert client.closed_reason is None
        assert party.welcome and party.welcome["participant"]["status"] == "joined"

        def receiving_again() -> bool:
            camera = party.subscriptions_of(mediator_id).get("camera")
            return camera is not None and camera.publication_id != first and camera.packets > 20

        await eventually(receiving_again, timeout=20, what="the mediator's camera again")
        status, full = api(url, "GET", f"/api/rooms/{rid}")
        seats = {p["id"]: (p["status"], p["presence"]) for p in full["participants"]}
        assert seats == {mediator_id: ("joined", "online"), party_id: ("joined", "online")}
        assert full["recording"] is None
    finally:
        await source.stop()
        for client in clients:
            await client.leave()
        if server.poll() is None:
            stop(server)

    entries = chain(directory)
    kinds = [e["event"]["kind"] for e in entries if e["type"] == "event"]
    # the server said it was stopping; then the recorder closed its segments and sealed
    last = kinds[kinds.index("server_stopping") + 1 :]
    assert last[-1] == "recording_stopped" and set(last[:-1]) <= {"segment_ended"}, kinds
    assert entries[-1]["type"] == "seal" and entries[-1]["reason"] == "stopped"
    result = await asyncio.to_thread(verify, directory, data)
    assert result.returncode == 0, result.stdout + result.stderr
