"""The SFU with Python-client participants: pass-through forwarding, moderation on media."""

from __future__ import annotations

import asyncio
import time

import av
import pytest

from client.media_file import FileSource
from client.session import RoomClient
from client.testmedia import make_test_mp4


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    return make_test_mp4(tmp_path_factory.mktemp("media") / "av.mp4", seconds=3)


async def eventually(check, timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def join(live_server, room, role, name) -> RoomClient:
    invite = await live_server.create_invite(room["id"], role, name)
    client = RoomClient(invite["url"])
    client.invite = invite
    await client.join()
    return client


async def test_forwarded_h264_and_opus_arrive_unchanged(live_server, test_mp4):
    room = await live_server.create_room(lobby=False)
    alice = await join(live_server, room, "mediator", "Alice")
    bob = await join(live_server, room, "party", "Bob")
    try:
        source = FileSource(test_mp4)
        await alice.publish(source)
        alice_id = alice.invite["invite_id"]
        await eventually(
            lambda: {"camera", "microphone"} <= set(bob.subscriptions_of(alice_id)),
            what="bob subscribed to alice",
        )
        subs = bob.subscriptions_of(alice_id)
        frames: list[av.Packet] = []
        subs["camera"].on_packet.append(lambda s, p: frames.append(p))

        def enough() -> bool:
            keys = [i for i, p in enumerate(frames) if p.is_keyframe]
            return bool(keys) and len(frames) - keys[0] >= 30

        await eventually(enough, what="a keyframe and 30 frames after it")
        await eventually(lambda: subs["microphone"].packets >= 50, what="audio")
        first_key = next(i for i, p in enumerate(frames) if p.is_keyframe)
        decoder = av.CodecContext.create("h264", "r")
        decoded = [f for p in frames[first_key:] for f in decoder.decode(p)]
        assert decoded and {(f.width, f.height) for f in decoded} == {(640, 480)}
    finally:
        await source.stop()
        await alice.close()
        await bob.close()
