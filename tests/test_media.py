"""The SFU with Python-client participants: pass-through forwarding, moderation on media."""

from __future__ import annotations

import asyncio
import logging
import time

import av
import pytest

from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    return make_test_mp4(tmp_path_factory.mktemp("media") / "av.mp4", seconds=3)


async def join(live_server, room, role, name, **options) -> RoomClient:
    invite = await live_server.create_invite(room["id"], role, name)
    client = RoomClient(invite["url"], **options)
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


async def test_mute_stops_forwarding_and_unmute_resumes(live_server, test_mp4):
    room = await live_server.create_room(lobby=False)
    mediator = await join(live_server, room, "mediator", "M")
    party = await join(live_server, room, "party", "P")
    other = await join(live_server, room, "party", "Q")
    source = FileSource(test_mp4)
    try:
        await party.publish(source)
        pid = party.invite["invite_id"]
        await eventually(lambda: len(other.subscriptions_of(pid)) == 2, what="subscribed")
        subs = other.subscriptions_of(pid)
        await eventually(lambda: subs["microphone"].packets > 20, what="audio flowing")
        assert (await mediator.call("mute", {"participant_id": pid}))["ok"]
        await asyncio.sleep(0.3)  # packets already in flight
        audio_before, video_before = subs["microphone"].packets, subs["camera"].packets
        await asyncio.sleep(1.5)
        assert subs["microphone"].packets == audio_before  # not forwarded any more
        assert subs["camera"].packets > video_before + 10  # video still is
        # The party may not unmute itself; once asked, it decides to.
        with pytest.raises(Exception, match="muted_by_mediator"):
            await party.call("set_muted", {"track": "audio", "muted": False})
        await mediator.call("request_unmute", {"participant_id": pid})
        await party.call("set_muted", {"track": "audio", "muted": False})
        await eventually(
            lambda: subs["microphone"].packets > audio_before + 20, what="audio forwarded again"
        )
    finally:
        await source.stop()
        for c in (mediator, party, other):
            await c.close()


async def test_remove_and_leave_take_publications_away(live_server, test_mp4):
    room = await live_server.create_room(lobby=False)
    mediator = await join(live_server, room, "mediator", "M")
    party = await join(live_server, room, "party", "P")
    source = FileSource(test_mp4)
    removed: list[dict] = []
    mediator.sio.on("publication_removed", lambda data: removed.append(data))
    try:
        await party.publish(source)
        pid = party.invite["invite_id"]
        await eventually(lambda: len(mediator.subscriptions_of(pid)) == 2, what="subscribed")
        await mediator.call("remove", {"participant_id": pid})
        await eventually(lambda: len(removed) == 2, what="publication_removed x2")
        assert {r["participant_id"] for r in removed} == {pid}
        await eventually(lambda: party.closed_reason == "removed", what="party closed")
        await eventually(lambda: mediator.subscriptions_of(pid) == {}, what="renegotiated")
        stats = live_server.state.media.stats()
        assert pid not in stats.get(room["id"], {})
    finally:
        await source.stop()
        await mediator.close()
        await party.close()


async def test_lobby_participant_gets_and_sends_no_media(live_server, test_mp4):
    room = await live_server.create_room(lobby=True)
    mediator = await join(live_server, room, "mediator", "M")
    source = FileSource(test_mp4)
    await mediator.publish(source)
    invite = await live_server.create_invite(room["id"], "party", "P")
    waiting = RoomClient(invite["url"])
    try:
        with pytest.raises(TimeoutError):
            await waiting.join(wait=1.5)
        answer = await waiting.sio.call(
            "publish", {"sdp": "v=0 fake sdp", "type": "offer", "tracks": []}, timeout=5
        )
        assert answer["error"] == "not_joined"
        await asyncio.sleep(1)
        assert waiting.subscriber is None and waiting.subscriptions == {}  # no offer came
        assert invite["invite_id"] not in live_server.state.media.stats()[room["id"]]
        assert (await mediator.call("admit", {"participant_id": invite["invite_id"]}))["ok"]
        mid = mediator.invite["invite_id"]
        await eventually(lambda: len(waiting.subscriptions_of(mid)) == 2, what="subscribed")
        await eventually(
            lambda: waiting.subscriptions_of(mid)["camera"].keyframes >= 1,
            what="video after admission",
        )
    finally:
        await source.stop()
        await mediator.close()
        await waiting.close()


async def test_new_subscriber_and_subscriber_pli_reach_the_publisher(live_server, test_mp4):
    """Keyframe requests go to the publisher's media SSRC: a new subscription asks for one,
    and a subscriber's own PLI is forwarded (rate-limited)."""
    from tiaojie.rtc import aiortc_internals

    room = await live_server.create_room(lobby=False)
    publisher = await join(live_server, room, "party", "P")
    source = FileSource(test_mp4)
    await publisher.publish(source)
    requests: list[float] = []
    camera = next(t for t in publisher.publisher.getTransceivers() if t.kind == "video")
    aiortc_internals.on_keyframe_request(camera.sender, lambda: requests.append(time.monotonic()))
    media = live_server.state.media
    pid = publisher.invite["invite_id"]
    # Wait until the server receives the publisher's video mid-GOP, so that a new subscriber
    # needs a keyframe it can only get by asking.
    await eventually(
        lambda: media.stats()[room["id"]][pid]["publications"].get("camera", 0) > 3,
        what="video at the server",
    )
    viewer = await join(live_server, room, "party", "V")
    try:
        await eventually(lambda: len(viewer.subscriptions_of(pid)) == 2, what="subscribed")
        await eventually(lambda: len(requests) >= 1, timeout=5, what="PLI for new subscriber")
        # The viewer's own PLI (as a browser sends after loss) reaches the publisher.
        camera_sub = viewer.subscriptions_of(pid)["camera"]
        await eventually(lambda: camera_sub.packets > 0, what="video at the viewer")
        await asyncio.sleep(0.6)  # past the rate limit
        before = len(requests)
        receiver = next(
            t.receiver for t in viewer.subscriber.getTransceivers() if t.kind == "video"
        )
        ssrc = next(s.source for s in receiver.getSynchronizationSources())
        await aiortc_internals.send_pli(receiver, ssrc)
        await eventually(lambda: len(requests) > before, timeout=5, what="forwarded PLI")
        # A burst of PLIs is rate-limited: at most one per PLI_INTERVAL reaches the publisher.
        from tiaojie.server.media.sfu import PLI_INTERVAL

        before, started = len(requests), time.monotonic()
        for _ in range(40):
            await aiortc_internals.send_pli(receiver, ssrc)
            await asyncio.sleep(0.025)
        await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        assert 1 <= len(requests) - before <= elapsed / PLI_INTERVAL + 1
    finally:
        await source.stop()
        await publisher.close()
        await viewer.close()


async def test_screen_share_is_a_second_video_publication(live_server, test_mp4):
    room = await live_server.create_room(lobby=False)
    sharer = await join(live_server, room, "expert", "S")
    viewer = await join(live_server, room, "observer", "O")
    camera, screen = FileSource(test_mp4), FileSource(test_mp4)
    try:
        await sharer.publish(camera, screen=screen.video)
        screen.start()
        sid = sharer.invite["invite_id"]
        await eventually(
            lambda: set(viewer.subscriptions_of(sid)) == {"camera", "microphone", "screen"},
            what="three subscriptions",
        )
        subs = viewer.subscriptions_of(sid)
        await eventually(
            lambda: subs["screen"].keyframes >= 1 and subs["camera"].keyframes >= 1,
            what="both videos",
        )
        # An observer may watch but not publish.
        with pytest.raises(Exception, match="forbidden"):
            await viewer.call("publish", {"sdp": "v=0 fake sdp", "type": "offer", "tracks": []})
    finally:
        await camera.stop()
        await screen.stop()
        await sharer.close()
        await viewer.close()


async def test_bot_command_publishes_and_leaves_cleanly_on_sigterm(live_server, test_mp4):
    import signal
    import sys
    from pathlib import Path

    room = await live_server.create_room(lobby=False)
    viewer = await join(live_server, room, "mediator", "V")
    invite = await live_server.create_invite(room["id"], "party", "Bot")
    left: list[dict] = []
    viewer.sio.on("participant_left", lambda data: left.append(data))
    tiaojie = str(Path(sys.executable).with_name("tiaojie"))
    process = await asyncio.create_subprocess_exec(
        tiaojie,
        "bot",
        invite["url"],
        "--publish",
        str(test_mp4),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        bot_id = invite["invite_id"]
        await eventually(lambda: "camera" in viewer.subscriptions_of(bot_id), what="bot video")
        camera = viewer.subscriptions_of(bot_id)["camera"]
        # Looping: more packets than the 3 s file holds arrive, keyframes keep coming.
        await eventually(
            lambda: camera.packets > 80 and camera.keyframes >= 3,
            timeout=20,
            what="the file looping",
        )
        process.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(process.communicate(), 15))[0].decode()
        assert process.returncode == 0, output
        assert "joined" in output and "left the room" in output
        await eventually(
            lambda: any(d["participant_id"] == bot_id for d in left), what="participant_left"
        )
        assert next(d for d in left if d["participant_id"] == bot_id)["reason"] == "left"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await viewer.close()


def test_bot_refuses_bad_links_and_files(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    tiaojie = str(Path(sys.executable).with_name("tiaojie"))
    out = subprocess.run(
        [tiaojie, "bot", "http://127.0.0.1:1/join"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2 and "not an invite link" in out.stderr
    out = subprocess.run(
        [
            tiaojie,
            "bot",
            "http://127.0.0.1:1/join#token=tj1.a.b",
            "--publish",
            str(tmp_path / "missing.mp4"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "no such file" in out.stderr


async def test_a_subscriber_that_cannot_decode_h264_still_hears_everyone(
    live_server, test_mp4, caplog
):
    """Its answers reject the H264 video sections (port 0): the rest of the subscriber
    connection works, the server says which publications it cannot receive, and logs
    no error; a later renegotiation keeps the rejected section idle. (Alice and Carol
    send no backup encodings: tests/test_bot_backup.py is the other case.)"""
    room = await live_server.create_room(lobby=False)
    alice = await join(live_server, room, "mediator", "Alice", backups=False)
    invite = await live_server.create_invite(room["id"], "party", "Bob")
    bob = RoomClient(invite["url"], decodes={"audio/opus", "video/VP8"})
    await bob.join()
    carol = await join(live_server, room, "expert", "Carol", backups=False)
    sources = [FileSource(test_mp4), FileSource(test_mp4)]
    try:
        await alice.publish(sources[0])
        alice_id, carol_id = alice.invite["invite_id"], carol.invite["invite_id"]
        await eventually(
            lambda: "microphone" in bob.subscriptions_of(alice_id), what="bob offered alice"
        )
        mic = bob.subscriptions_of(alice_id)["microphone"]
        await eventually(lambda: mic.packets >= 25, what="bob hearing alice")
        assert [
            (u["participant_id"], u["source"], u["codec"], u["reason"]) for u in bob.unavailable
        ] == [(alice_id, "camera", "video/H264", "codec_unsupported")]
        # Carol publishes: bob's next offers keep alice's video section rejected and add
        # carol's, which his answer rejects in turn; he hears both.
        await carol.publish(sources[1])
        await eventually(
            lambda: "microphone" in bob.subscriptions_of(carol_id), what="bob offered carol"
        )
        carol_mic = bob.subscriptions_of(carol_id)["microphone"]
        await eventually(lambda: carol_mic.packets >= 25, what="bob hearing carol")
        await eventually(lambda: len(bob.unavailable) == 2, what="carol's camera unavailable")
        assert {(u["participant_id"], u["source"]) for u in bob.unavailable} == {
            (alice_id, "camera"),
            (carol_id, "camera"),
        }
        packets = mic.packets
        await eventually(lambda: mic.packets > packets + 25, what="alice's audio still flowing")

        # Alice, who decodes H264, sees carol's camera as before.
        def alice_sees_carol() -> bool:
            camera = alice.subscriptions_of(carol_id).get("camera")
            return camera is not None and camera.keyframes >= 1

        await eventually(alice_sees_carol, what="alice seeing carol")
        assert alice.unavailable == []
    finally:
        for source in sources:
            await source.stop()
        for client in (alice, bob, carol):
            await client.close()
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING and "tiaojie" in r.name]
    assert problems == [], [r.getMessage() for r in problems]
