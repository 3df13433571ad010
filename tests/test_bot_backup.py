"""A Python participant answers `backup_codec` (issue 18): its H264 file's camera reaches a
subscriber that cannot decode H264 as VP8, decoded and encoded by the client itself, and
only while such a subscriber is in the room."""

from __future__ import annotations

import logging
from typing import Any

import av
import pytest

from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient, Subscription

NO_H264 = {"audio/opus", "video/VP8"}


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    return make_test_mp4(
        tmp_path_factory.mktemp("media") / "av.mp4", seconds=3, keyframe_interval_s=0.5
    )


async def join(live_server: Any, room: dict[str, Any], name: str, **options: Any) -> RoomClient:
    invite = await live_server.create_invite(room["id"], "party", name)
    client = RoomClient(invite["url"], **options)
    client.invite = invite  # type: ignore[attr-defined]
    await client.join()
    return client


def pid(client: RoomClient) -> str:
    return str(client.invite["invite_id"])  # type: ignore[attr-defined]


class Frames:
    """Decodes what arrives on a subscription from its first keyframe: the frames' sizes."""

    def __init__(self, subscription: Subscription) -> None:
        self.decoder = av.CodecContext.create(subscription.codec.split("/")[1].lower(), "r")
        self.sizes: list[tuple[int, int]] = []
        self.started = False
        subscription.on_packet.append(self.packet)

    def packet(self, subscription: Subscription, packet: av.Packet) -> None:
        self.started = self.started or bool(packet.is_keyframe)
        if self.started and len(self.sizes) < 10:
            self.sizes += [(f.width, f.height) for f in self.decoder.decode(packet)]


async def receives_vp8_backup(viewer: RoomClient, of: RoomClient) -> Subscription:
    """`viewer` gets `of`'s camera as VP8 (frames decode at the file's size) and its sound."""
    await eventually(
        lambda: (
            viewer.subscriptions_of(pid(of)).get("camera", Subscription("", "", "", "", "")).codec
            == "video/VP8"
        ),
        what=f"{viewer.name} offered {of.name}'s VP8 backup",
    )
    subs = viewer.subscriptions_of(pid(of))
    frames = Frames(subs["camera"])
    await viewer.request_keyframe(subs["camera"].mid)
    await eventually(lambda: len(frames.sizes) >= 5, what=f"{viewer.name} decoding VP8 frames")
    assert set(frames.sizes) == {(640, 480)}, frames.sizes
    heard = subs["microphone"].packets
    await eventually(lambda: subs["microphone"].packets > heard + 10, what="sound")
    assert not any(u["participant_id"] == pid(of) for u in viewer.unavailable), viewer.unavailable
    return subs["camera"]


async def test_a_bot_sends_a_vp8_backup_while_someone_cannot_decode_h264(
    live_server, test_mp4, caplog
) -> None:
    room = await live_server.create_room(lobby=False)
    # carol's client sends no backups: her camera stays unavailable to bob (as before)
    carol = await join(live_server, room, "Carol", backups=False)
    bob = await join(live_server, room, "Bob", decodes=NO_H264)
    alice = await join(live_server, room, "Alice")
    dave: RoomClient | None = None
    sources = [FileSource(test_mp4), FileSource(test_mp4)]
    media = live_server.state.media.rooms[room["id"]]
    try:
        await carol.publish(sources[1])
        await eventually(lambda: len(bob.unavailable) == 1, what="carol's camera unavailable")
        # bob has rejected H264 already: the server asks alice as soon as she publishes
        # (the question may come before her publish is answered)
        await alice.publish(sources[0])
        await receives_vp8_backup(bob, alice)
        assert [(u["participant_id"], u["source"]) for u in bob.unavailable] == [
            (pid(carol), "camera")
        ]
        track = sources[0].decoded
        assert track is not None and track.decoding and track.decoded > 0
        assert alice.backup.sending == "video/VP8"
        backup_mid = alice.backup.transceiver.mid if alice.backup.transceiver else None
        assert sources[1].decoded is None  # carol decodes nothing

        # carol decodes H264: she gets alice's camera as it is, announced once
        def carol_sees_alice() -> bool:
            camera = carol.subscriptions_of(pid(alice)).get("camera")
            return camera is not None and camera.keyframes >= 1

        await eventually(carol_sees_alice, what="carol seeing alice")
        assert carol.subscriptions_of(pid(alice))["camera"].codec == "video/H264"
        of_alice = [s for s in carol.subscriptions.values() if s.participant_id == pid(alice)]
        assert sorted(s.source for s in of_alice) == ["camera", "microphone"], of_alice
        published = [p for p in media.publications() if p.participant_id == pid(alice)]
        assert sorted((p.source, p.codec, p.backup_of is None) for p in published) == [
            ("camera", "video/H264", True),
            ("camera", "video/VP8", False),
            ("microphone", "audio/opus", True),
        ]

        # bob leaves: nobody needs the backup, alice stops decoding and sending it
        await bob.leave()
        peer = media.peers[pid(alice)]

        def stopped() -> bool:
            if alice.backup.sending is not None or sources[0].decoded is not None:
                return False
            if any(p.backup_of is not None for p in peer.publications.values()):
                return False
            idle = [t for t in peer.publisher.getTransceivers() if t.mid == backup_mid]
            return bool(idle) and idle[0].currentDirection == "inactive"

        await eventually(stopped, what="alice's backup stopped")
        assert not track.decoding

        # dave cannot decode H264 either: the same transceiver sends it again
        dave = await join(live_server, room, "Dave", decodes=NO_H264)
        await receives_vp8_backup(dave, alice)
        assert alice.backup.transceiver is not None
        assert alice.backup.transceiver.mid == backup_mid
    finally:
        for source in sources:
            await source.stop()
        for client in (alice, bob, carol, dave):
            if client is not None:
                await client.close()
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING and "tiaojie" in r.name]
    assert problems == [], [r.getMessage() for r in problems]


async def test_a_backup_it_cannot_send_is_one_logged_line(caplog) -> None:
    """A question the client cannot answer (not an object, another source, a codec aiortc
    cannot encode) is logged in one line each and changes nothing."""
    client = RoomClient("http://127.0.0.1:1/join#token=tj1.a.b")
    handler = client.sio.handlers["/"]["backup_codec"]
    with caplog.at_level(logging.WARNING, logger="tiaojie.client.session"):
        for data in (
            "video/VP8",
            {"source": "screen", "codec": "video/VP8"},
            {"source": "camera", "codec": "video/AV1"},
            {"source": "camera", "codec": "video/rtx"},
        ):
            await handler(data)
    assert client.backup.wanted is None
    lines = [r.getMessage() for r in caplog.records if r.name == "tiaojie.client.session"]
    assert len(lines) == 4 and all("\n" not in line for line in lines), lines
    await client.close()
