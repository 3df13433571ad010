"""Joining a room where something is published takes one message from the server: the
first subscriber offer comes in `room_state` (docs/PROTOCOL.md), not after it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.support.testmedia import make_test_mp4
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    return make_test_mp4(tmp_path_factory.mktemp("media") / "av.mp4", seconds=3)


async def test_room_state_carries_the_first_subscriber_offer(live_server, test_mp4) -> None:
    room = await live_server.create_room(lobby=False)
    empty = await live_server.join(await live_server.create_invite(room["id"], "party", "赵六"))
    # nothing published yet: nothing to offer
    assert (await empty.wait_for("room_state"))["subscriber_offer"] is None

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher, viewer, state, body = await _viewer_with_an_answer(live_server, room, test_mp4, pc)
    try:
        offer = state["subscriber_offer"]
        published = {p["id"] for p in state["publications"]}
        assert {t["publication_id"] for t in offer["tracks"]} == published, offer
        assert offer["type"] == "offer" and "a=candidate:" in offer["sdp"]
        # the publisher was asked for a keyframe with the offer, before any answer: it
        # comes while the answer, ICE and DTLS are under way (and is held until then)
        assert live_server.state.media.counters.keyframe_requests_sent >= 1

        # answered straight from room_state: applied, and no second offer was needed
        ack = await viewer.call("subscriber_answer", body)
        assert ack == {"ok": True, "unavailable": []}, ack
        raw = [name for name, _ in viewer.events if name in ("room_state", "subscriber_offer")]
        # (the test client records room_state's offer as a subscriber_offer after it)
        assert raw == ["room_state", "subscriber_offer"], raw
    finally:
        await pc.close()
        await publisher.close()


async def test_an_answer_to_a_connection_closed_meanwhile_is_no_failure(
    live_server, test_mp4, caplog: Any
) -> None:
    """The subscriber connection closes while its answer is on the way (the participant
    left, was removed, reconnected): the answer is refused as `no_media`, and the server
    does not log a failed negotiation (seen in CI as a warning: "Cannot handle answer in
    signaling state closed")."""
    room = await live_server.create_room(lobby=False)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher, viewer, state, body = await _viewer_with_an_answer(live_server, room, test_mp4, pc)
    try:
        peer = live_server.state.media.rooms[room["id"]].peers[state["self"]["id"]]
        await peer.subscriber.close()  # as a leave or a removal does, before the answer
        ack = await viewer.call("subscriber_answer", body)
        assert ack["ok"] is False and ack["error"] == "no_media", ack
        failed = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith("tiaojie")
        ]
        assert failed == [], failed
    finally:
        await pc.close()
        await publisher.close()


async def _viewer_with_an_answer(
    live_server: Any, room: dict[str, Any], test_mp4: Any, pc: RTCPeerConnection
) -> tuple[RoomClient, Any, dict[str, Any], dict[str, str]]:
    """王五 publishes, 李四 joins: (the publisher, 李四's client, 李四's room_state, an
    answer to the offer it carries, made by `pc`)."""
    publisher = RoomClient((await live_server.create_invite(room["id"], "party", "王五"))["url"])
    await publisher.join()
    await publisher.publish(FileSource(test_mp4))
    invite = await live_server.create_invite(room["id"], "party", "李四")
    viewer = await live_server.join(invite)
    state = await viewer.wait_for("room_state")
    await pc.setRemoteDescription(RTCSessionDescription(state["subscriber_offer"]["sdp"], "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return publisher, viewer, state, {"sdp": pc.localDescription.sdp, "type": "answer"}
