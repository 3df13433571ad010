"""The packet media plane end to end, on loopback: publisher -> tapped receiver ->
ForwardTrack (packet mode) -> subscriber, real aiortc connections and SRTP.

One packet to the subscriber is dropped on purpose on its way in: the subscriber NACKs
it, the server's sender answers from its history over RTX (the original sequence number
in the RTX payload is the rewritten one), and the frame arrives whole. Its sender reports
carry what was sent, and a NACK repeated at once is answered once. Then garbage goes
through the same path without an exception: handed to the tap, and as datagrams into the
server's socket (in the clear, and SRTP-protected with the publisher's keys).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import struct
import time
from pathlib import Path
from typing import Any

import av
import pylibsrtp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.rtp import RtcpSrPacket, RtpPacket

from tests.support.testmedia import make_test_mp4
from tiaojie.client.media_file import FileSource
from tiaojie.rtc import aiortc_internals
from tiaojie.rtc.keyframes import h264_nal_types, packet_starts_keyframe
from tiaojie.server.media.forwarding import ForwardTrack


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_mp4(tmp_path_factory.mktemp("media") / "av.mp4", 2.0, keyframe_interval_s=1.0)


def h264_with_rtx() -> list[Any]:
    caps = RTCRtpSender.getCapabilities("video").codecs
    h264 = [
        c
        for c in caps
        if c.mimeType == "video/H264"
        and c.parameters.get("packetization-mode") == "1"
        and c.parameters.get("profile-level-id") == "42e01f"
    ]
    return h264 + [c for c in caps if c.mimeType == "video/rtx"]


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


def malformed_stun(rng: random.Random) -> bytes:
    """A STUN message whose header is right and whose attributes (types aioice knows)
    have random lengths: aioice's parse raises struct.error on a short one."""
    attributes = b""
    for _ in range(rng.randrange(1, 4)):
        kind = rng.choice((0x0001, 0x0006, 0x0008, 0x0020, 0x0024, 0x0025, 0x8028, 0x8029))
        value = rng.randbytes(rng.randrange(9))
        attributes += struct.pack("!HH", kind, len(value)) + value + bytes(-len(value) % 4)
    header = struct.pack("!HHI", rng.choice((0x0001, 0x0101, 0x0111)), len(attributes), 0x2112A442)
    return header + rng.randbytes(12) + attributes


def loopback_plane(
    test_mp4: Any,
) -> tuple[
    list[RTCPeerConnection], FileSource, dict[str, aiortc_internals.PacketTap], ForwardTrack, Any
]:
    """Four connections on loopback, not yet connected: a publisher sending the file (H264
    with RTX) to the server's receiving side, whose receivers are tapped (`taps` by kind
    once they exist), and the server's sending side with one video ForwardTrack (`out`,
    its transceiver) towards a subscriber."""
    config = RTCConfiguration(iceServers=[])
    connections = [RTCPeerConnection(config) for _ in range(4)]
    pub, srv_in, srv_out, _ = connections
    source = FileSource(test_mp4, loop=True)
    pub.addTrack(source.video)
    pub.addTrack(source.audio)  # read, or the file source stalls; tapped, not forwarded
    pub.getTransceivers()[0].setCodecPreferences(h264_with_rtx())
    taps: dict[str, aiortc_internals.PacketTap] = {}

    @srv_in.on("track")
    def tapped(track: Any) -> None:
        receiver = next(t.receiver for t in srv_in.getTransceivers() if t.receiver.track is track)
        taps[track.kind] = aiortc_internals.tap_packets(receiver)

    forward = ForwardTrack("video")
    out = srv_out.addTransceiver(forward, direction="sendonly")
    out.setCodecPreferences(h264_with_rtx())
    return connections, source, taps, forward, out


async def wait_for(predicate: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_dropped_packet_is_nacked_and_repaired_from_the_senders_history(test_mp4, caplog):
    (pub, srv_in, srv_out, sub), source, taps, forward, out = loopback_plane(test_mp4)
    packet_sender = aiortc_internals.PacketSender(out.sender)
    forward.use_packets(packet_sender, "video/H264")
    keyframes_asked: list[int] = []
    forward.on_keyframe_needed = lambda: keyframes_asked.append(1)

    received: dict[str, Any] = {}

    @sub.on("track")
    def subscribed(track: Any) -> None:
        receiver = next(t.receiver for t in sub.getTransceivers() if t.receiver.track is track)
        received.update(
            track=track, receiver=receiver, assembler=aiortc_internals.make_passthrough(receiver)
        )

    try:
        await connect(pub, srv_in)
        await connect(srv_out, sub)
        assert set(taps) == {"video", "audio"} and received
        rtx_pt = next(c.payloadType for c in sub.getTransceivers()[0]._codecs if c.name == "rtx")

        # Every RTP packet reaching the subscriber, before aiortc parses it; one dropped.
        dtls = received["receiver"].transport
        original = dtls._handle_rtp_data
        seen: list[tuple[int, int, int, bytes]] = []  # (pt, ssrc, seq, payload)
        dropped: list[int] = []

        async def dropping(data: bytes, arrival_time_ms: int) -> None:
            pt, seq, ssrc = data[1] & 0x7F, *struct.unpack_from("!H4xL", data, 2)
            seen.append((pt, ssrc, seq, data))
            media = [s for s in seen if s[0] != rtx_pt]
            if not dropped and pt != rtx_pt and len(media) == 40 and not data[1] & 0x80:
                dropped.append(seq)  # mid-stream, not a frame's last packet
                return
            await original(data, arrival_time_ms)

        dtls._handle_rtp_data = dropping
        reports: list[RtcpSrPacket] = []
        handle_rtcp = received["receiver"]._handle_rtcp_packet

        async def spy_rtcp(packet: Any) -> None:
            if isinstance(packet, RtcpSrPacket):
                reports.append(packet)
            await handle_rtcp(packet)

        received["receiver"]._handle_rtcp_packet = spy_rtcp

        def deliver(packet: Any) -> None:
            keyframe = packet_starts_keyframe("video/H264", packet.payload)
            forward.forward(packet, keyframe, aiortc_internals.ntp_now(), time.monotonic())

        taps["video"].deliver = deliver
        source.start()

        frames = [await asyncio.wait_for(received["track"].recv(), 10) for _ in range(25)]
        assert dropped, "no packet was dropped"
        # once the run was under way, rtc/_fastpath.c's Route sent the copies (where built)
        route = packet_sender.route
        assert aiortc_internals.FASTPATH is None or route.forwarded > len(frames)
        # the subscriber NACKed it; the server's sender answered over RTX from its history,
        # with the rewritten sequence number as the original one, on its RTX SSRC
        await wait_for(lambda: any(s[0] == rtx_pt for s in seen), "a retransmission")
        rtx = [s for s in seen if s[0] == rtx_pt]
        assert {s[1] for s in rtx} == {out.sender._rtx_ssrc}
        header = 12 + 4 + 4 * struct.unpack_from("!H", rtx[0][3], 14)[0]
        assert struct.unpack_from("!H", rtx[0][3], header)[0] == dropped[0]
        assert {s[1] for s in seen if s[0] != rtx_pt} == {out.sender._ssrc}

        # so nothing was lost: frames come out whole, one every 1/20 s, and decode
        assembler = received["assembler"]
        assert assembler.losses == 0
        assert all(abs(b.pts - a.pts - 4500) <= 1 for a, b in itertools.pairwise(frames))
        assert frames[0].is_keyframe and 7 in h264_nal_types(bytes(frames[0]))
        decoder = av.CodecContext.create("h264", "r")
        pictures = [f for p in frames for f in decoder.decode(av.Packet(bytes(p)))]
        assert len(pictures) >= 20 and {(f.width, f.height) for f in pictures} == {(640, 480)}
        # the sequence numbers sent (the dropped one included): consecutive from the start
        seqs = sorted({s[2] for s in seen if s[0] != rtx_pt})
        assert len(seqs) == seqs[-1] - seqs[0] + 1

        # the sender reports count what was sent
        await wait_for(lambda: any(r.sender_info.packet_count for r in reports), "a report")
        info = next(r for r in reports if r.sender_info.packet_count).sender_info
        assert 0 < info.packet_count <= packet_sender.sent and info.octet_count > 1000
        assert info.ntp_timestamp != 0

        # A NACK repeated while its retransmission is on its way is not answered twice.
        taps["video"].deliver = None  # nothing new: the packet stays in the history
        latest = max((s for s in seen if s[0] != rtx_pt), key=lambda s: s[2])[2]
        before = len([s for s in seen if s[0] == rtx_pt])
        for _ in range(2):
            await received["receiver"]._send_rtcp_nack(out.sender._ssrc, [latest])
        await wait_for(lambda: packet_sender.nacks_ignored == 1, "the second NACK")
        await wait_for(lambda: len([s for s in seen if s[0] == rtx_pt]) == before + 1, "RTX")
        assert struct.unpack_from("!H", seen[-1][3], header)[0] == latest
        taps["video"].deliver = deliver

        # Garbage from a publisher (any payload, any numbers) goes through the hot path
        # (keyframe detection, rewrite, send) without an exception.
        rng = random.Random(15)
        for i in range(500):
            packet = RtpPacket(
                payload_type=rng.randrange(128),
                marker=rng.randrange(2),
                sequence_number=rng.randrange(1 << 16),
                timestamp=rng.randrange(1 << 32),
                ssrc=rng.randrange(1 << 32),
                payload=rng.randbytes(rng.randrange(40)),
            )
            if i % 50 == 0:
                forward.switch_source()
            deliver(packet)
        assert forward.readyState == "live"

        # The same through the network, into the server's socket: garbage in the clear
        # (libsrtp refuses it) and garbage SRTP-protected with the publisher's own keys
        # (authentic: it reaches rtc/_fastpath.c's unprotect, the parse, the router, the
        # tap and the Routes). Nothing raises, and the real stream still gets through.
        pub_dtls = pub.getTransceivers()[0].sender.transport
        pair = pub_dtls.transport._connection._nominated[1]
        for i in range(1500):
            data = bytes([0x80 | rng.randrange(0x40)]) + rng.randbytes(rng.randrange(200))
            if i % 3:
                try:
                    data = pub_dtls._tx_srtp.protect(data)
                except pylibsrtp.Error:
                    continue
            pair.protocol.transport.sendto(data, pair.remote_addr)
            if i % 10 == 0:
                pair.protocol.transport.sendto(malformed_stun(rng), pair.remote_addr)
                await asyncio.sleep(0.001)  # let the server's socket drain
        # The server survived it: its connections are up, and once a keyframe of the
        # publisher's real stream comes it forwards again (garbage on a new SSRC is a new
        # source to the tap, forwarded as it came: what the in-process aiortc subscriber
        # then makes of it is not the server's business).
        forward.switch_source()
        resumed_at = forward.forwarded
        await wait_for(lambda: forward.forwarded > resumed_at + 20, "forwarding to resume")
        for pc in (srv_in, srv_out):
            assert pc.getTransceivers()[0].receiver.transport.state == "connected"
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        await source.stop()
        await asyncio.wait_for(
            asyncio.gather(*(pc.close() for pc in (pub, srv_in, srv_out, sub))), 10
        )


async def test_a_keyframe_held_for_a_new_connection_goes_out_as_soon_as_it_can(test_mp4):
    """A new subscription's keyframe (asked for with the offer) arrives before its
    connection can send: it is held, and `send_held` sends it the moment the connection
    is up (the server calls it when aiortc starts the sender, `when_sending`: at
    "connected" the sender cannot send yet), not with the publisher's next packet; here
    the publisher sends nothing more once the keyframe and one packet after it are held."""
    (pub, srv_in, srv_out, sub), source, taps, forward, out = loopback_plane(test_mp4)
    forward.use_packets(aiortc_internals.PacketSender(out.sender), "video/H264")
    sent_when_started: list[int] = []

    def started() -> None:
        forward.send_held()
        sent_when_started.append(forward.forwarded)

    aiortc_internals.when_sending(out.sender, started)
    received: dict[str, Any] = {}

    @sub.on("track")
    def subscribed(track: Any) -> None:
        receiver = next(t.receiver for t in sub.getTransceivers() if t.receiver.track is track)
        aiortc_internals.make_passthrough(receiver)
        received["track"] = track

    try:
        await connect(pub, srv_in)
        keyframe_at: list[int] = []

        def deliver(packet: Any) -> None:
            keyframe = packet_starts_keyframe("video/H264", packet.payload)
            forward.forward(packet, keyframe, aiortc_internals.ntp_now(), time.monotonic())
            if not keyframe_at and forward.has_keyframe:
                keyframe_at.append(packet.timestamp)  # held: the connection cannot send
            elif keyframe_at and packet.timestamp != keyframe_at[0]:
                taps["video"].deliver = None  # the next frame began: nothing more comes

        taps["video"].deliver = deliver
        source.start()
        await wait_for(lambda: taps["video"].deliver is None, "a keyframe held")
        assert forward.forwarded == 0
        await connect(srv_out, sub)
        await wait_for(lambda: sent_when_started, "aiortc to start the sender")
        assert sent_when_started[0] > 0  # sent then, in the step DTLS connected
        assert srv_out.connectionState == "connected"
        frame = await asyncio.wait_for(received["track"].recv(), 10)
        assert frame.is_keyframe and frame.pts is not None
    finally:
        await source.stop()
        await asyncio.wait_for(
            asyncio.gather(*(pc.close() for pc in (pub, srv_in, srv_out, sub))), 10
        )


def test_the_tap_refuses_an_aiortc_whose_receive_path_changed(monkeypatch):
    """tap_packets replaces aiortc's per-packet receive steps with its first few: if
    aiortc reorders or renames them, it must refuse rather than drop work silently."""
    import inspect

    from aiortc import RTCRtpReceiver

    real = inspect.getsource

    def without_nacks(obj: Any) -> str:
        return real(obj).replace("__nack_generator.add(packet)", "")

    monkeypatch.setattr(inspect, "getsource", without_nacks)
    with pytest.raises(aiortc_internals.InternalsChanged, match="nack_generator"):
        aiortc_internals.tap_packets(object.__new__(RTCRtpReceiver))


def test_a_malformed_stun_message_on_the_shared_port_is_dropped() -> None:
    """Single-port mode reads a STUN request's USERNAME to find its connection: a message
    aioice cannot parse (struct.error from a short attribute, ValueError otherwise) names
    none and raises nothing."""
    shared = aiortc_internals._SharedPort()
    rng = random.Random(18)
    for _ in range(300):
        shared.datagram_received(malformed_stun(rng), ("127.0.0.1", 9))
    assert not shared._by_address


async def test_the_receive_step_in_c_forwards_what_python_would_and_stops_when_told(
    test_mp4, caplog
):
    """rtc/_ingress.c: once a publication's only slot runs a Route, the publisher's packets
    are unprotected, counted and forwarded in C without Python (the Ingress's `fast`
    count), and what the subscriber gets is what Python's path sends: consecutive
    sequence numbers, whole frames that decode, the receiver's statistics and the
    publication's and counters' figures as if Python had seen every packet. Withholding
    the slot stops the copies at once (no packet after it), releasing it brings them back
    from a keyframe; SRTP-protected garbage from the publisher while the step is armed
    raises nothing."""
    from types import SimpleNamespace

    from tiaojie.server.media.ice import IceSettings
    from tiaojie.server.media.sfu import MediaPlane, MediaRoom, Publication, Slot

    if aiortc_internals.FASTPATH is None:
        pytest.fail("rtc/_fastpath.c is not built")
    (pub, srv_in, srv_out, sub), source, taps, forward, out = loopback_plane(test_mp4)
    packet_sender = aiortc_internals.PacketSender(out.sender)
    forward.use_packets(packet_sender, "video/H264")
    received: dict[str, Any] = {}

    @sub.on("track")
    def subscribed(track: Any) -> None:
        receiver = next(t.receiver for t in sub.getTransceivers() if t.receiver.track is track)
        received.update(track=track, receiver=receiver)
        aiortc_internals.make_passthrough(receiver)

    try:
        await connect(pub, srv_in)
        await connect(srv_out, sub)
        tap = taps["video"]
        receiver = next(t.receiver for t in srv_in.getTransceivers() if t.kind == "video")
        publication = Publication(
            id="p", participant_id="a", kind="video", source="camera", mid="0",
            codec="video/H264", track=receiver.track, receiver=receiver, assembler=None, tap=tap,
            counters=forward.counters,  # one per room, as the server has it
        )  # fmt: skip
        slot = Slot(transceiver=out, track=forward, kind="video", codec="video/H264")
        forward.on_keyframe_needed = slot.keyframe_needed
        slot.attach(publication)
        publication.start()
        ingress = receiver.transport.transport._connection._tiaojie_ingress
        seen: list[int] = []  # the subscriber's sequence numbers, in arrival order
        dtls = received["receiver"].transport
        original = dtls._handle_rtp_data

        async def spying(data: bytes, arrival_time_ms: int) -> None:
            seen.append(struct.unpack_from("!H", data, 2)[0])
            await original(data, arrival_time_ms)

        dtls._handle_rtp_data = spying
        source.start()
        frames = [await asyncio.wait_for(received["track"].recv(), 10) for _ in range(30)]
        assert ingress.fast > 100, "the C receive step took no packets"
        assert tap.sink.armed
        assert len(seen) == max(seen) - min(seen) + 1  # consecutive, nothing lost
        decoder = av.CodecContext.create("h264", "r")
        pictures = [f for p in frames for f in decoder.decode(av.Packet(bytes(p)))]
        assert len(pictures) >= 25

        # the figures Python keeps, taken from C with the next packet Python handles
        publication.changed()
        await wait_for(lambda: tap.sink.armed, "the step armed again")
        stats = receiver._RTCRtpReceiver__remote_streams[tap.media_ssrc]
        assert stats.packets_received >= tap.packets - 1 > 100
        assert publication.received >= len(frames)
        assert publication.meter.rate(time.monotonic()) > 100_000
        counters = publication.counters
        assert counters.forwarded_frames["video"] >= len(frames)
        assert counters.forwarded_bytes["video"] > 10_000

        # muted by the mediator (the media plane's set_muted): the Routes stay as they are,
        # yet not one packet more reaches the subscriber
        broadcasts: list[str] = []

        async def broadcast(room_id: str, event: str, payload: dict[str, Any]) -> None:
            broadcasts.append(event)

        plane = MediaPlane(IceSettings(), broadcast, broadcast)
        plane.rooms["r"] = room = MediaRoom(plane, "r")
        room.peers["a"] = SimpleNamespace(  # type: ignore[assignment]
            muted={"audio": False, "video": False}, publications={"0": publication}
        )
        await plane.set_muted("r", "a", "video", True)
        assert broadcasts == ["publication_updated"] and packet_sender.route.active
        stopped_at, fast_at, in_at = len(seen), ingress.fast, stats.packets_received
        await wait_for(lambda: stats.packets_received > in_at + 40, "publisher's packets")
        assert len(seen) == stopped_at and ingress.fast == fast_at
        await plane.set_muted("r", "a", "video", False)
        await wait_for(lambda: ingress.fast > fast_at + 50, "the C step after unmuting", 15)

        # withheld: nothing more reaches the subscriber, not one packet
        slot.withhold(True)
        assert not tap.sink.armed
        stopped_at, fast_at = len(seen), ingress.fast
        in_at = stats.packets_received
        await wait_for(lambda: stats.packets_received > in_at + 40, "publisher's packets")
        assert len(seen) == stopped_at and ingress.fast == fast_at
        # released: from the next keyframe on, in C again
        slot.withhold(False)
        await wait_for(lambda: ingress.fast > fast_at + 50, "the C step again", 15)
        assert len(seen) > stopped_at

        # SRTP-protected garbage from the publisher, the media SSRC and payload type among
        # it, while armed: nothing raises; the connections stay up
        pub_dtls = pub.getTransceivers()[0].sender.transport
        pair = pub_dtls.transport._connection._nominated[1]
        rng = random.Random(16)
        header = struct.pack("!BBHLL", 0x80, 0, 0, 0, tap.media_ssrc)
        for i in range(1000):
            body = rng.randbytes(rng.randrange(120))
            if i % 2:
                body = bytes([header[0] | rng.randrange(0x40), tap.sink.payload_type]) + (
                    rng.randbytes(6) + header[8:] + body
                )
            else:
                body = bytes([0x80 | rng.randrange(0x40)]) + body
            try:
                data = pub_dtls._tx_srtp.protect(body)
            except pylibsrtp.Error:
                continue
            pair.protocol.transport.sendto(data, pair.remote_addr)
            if i % 20 == 0:
                await asyncio.sleep(0.001)
        for pc in (srv_in, srv_out):
            assert pc.getTransceivers()[0].receiver.transport.state == "connected"
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        await publication.stop()
        assert not tap.sink.armed
    finally:
        await source.stop()
        await asyncio.wait_for(
            asyncio.gather(*(pc.close() for pc in (pub, srv_in, srv_out, sub))), 10
        )
    # closed connections leave nothing in the receive step's table (it would grow)
    await wait_for(
        lambda: all(i is not ingress for i in aiortc_internals._INGRESS_TABLE.values()),
        "the table emptied",
    )
    assert not ingress.armed
