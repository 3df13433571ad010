"""The recorder's receive path (rtc/aiortc_internals.py `receive_inline`): RTP handled in
the socket callback, the socket read on a timer. It must hand over exactly what aiortc's
own path (the DTLS task, `_handle_rtp_packet`, the PassthroughQueue) hands over, send the
same NACKs and PLIs, keep the reception statistics the receiver reports, and never let a
malformed datagram escape into aioice."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import pylibsrtp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RtpRouter
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from tests.test_aiortc_internals import (
    H264_PT,
    LOCAL_SSRC,
    MEDIA_SSRC,
    OPUS_PT,
    RTX_PT,
    RTX_SSRC,
    RecordingTransport,
    check_audio_receiver,
    check_video_receiver,
    wait_for,
)
from tests.test_aiortc_internals import encoded as encoded_media
from tests.test_aiortc_internals import test_mp4 as media_file
from tiaojie.client.media_file import FileSource
from tiaojie.rtc import aiortc_internals
from tiaojie.rtc.aiortc_internals import InlineReceiver, make_passthrough, receive_inline
from tiaojie.rtc.keyframes import h264_nal_types

test_mp4 = media_file  # the same module-scoped fixtures, for this module
encoded = encoded_media

KEY = bytes(range(30))  # SRTP master key + salt (AES128_CM_SHA1_80)

H264 = RTCRtpCodecParameters(
    mimeType="video/H264",
    clockRate=90000,
    payloadType=H264_PT,
    parameters={"packetization-mode": "1", "profile-level-id": "42e01f"},
)
RTX = RTCRtpCodecParameters(
    mimeType="video/rtx", clockRate=90000, payloadType=RTX_PT, parameters={"apt": H264_PT}
)
OPUS = RTCRtpCodecParameters(
    mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_PT
)


def srtp(direction: int) -> pylibsrtp.Session:
    return pylibsrtp.Session(
        pylibsrtp.Policy(
            key=KEY,
            ssrc_type=direction,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
    )


class Socket:
    """What aioice's StunProtocol is to the inline path: a datagram callback (which records
    what it was left to handle) and a transport."""

    def __init__(self) -> None:
        self.left: list[bytes] = []
        self.transport = None

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.left.append(data)


class InlineTransport(RecordingTransport):
    """RecordingTransport with what the inline path reads of an RTCDtlsTransport: the RTP
    router, header extensions, the SRTP session, the ICE connection's sockets and queue."""

    def __init__(self) -> None:
        super().__init__()
        self._rtp_router = RtpRouter()
        self._rtp_header_extensions_map = HeaderExtensionsMap()
        self._rx_srtp = srtp(pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self.socket = Socket()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.transport = SimpleNamespace(
            _connection=SimpleNamespace(_protocols=[self.socket], _nominated={}, _queue=self.queue)
        )

    def _register_rtp_receiver(self, receiver: Any, parameters: Any) -> None:
        self._rtp_router.register_receiver(
            receiver,
            ssrcs=[e.ssrc for e in parameters.encodings]
            + [e.rtx.ssrc for e in parameters.encodings if e.rtx],
            payload_types=[c.payloadType for c in parameters.codecs],
            mid=None,
        )

    def _unregister_rtp_receiver(self, receiver: Any) -> None:
        self._rtp_router.unregister_receiver(receiver)


async def inline_receiver(
    kind: str, codecs: list[RTCRtpCodecParameters], rtx: bool
) -> tuple[RTCRtpReceiver, InlineTransport, InlineReceiver, list[av.Packet]]:
    transport = InlineTransport()
    receiver = RTCRtpReceiver(kind, transport)  # type: ignore[arg-type]
    receiver._track = RemoteStreamTrack(kind=kind)
    make_passthrough(receiver)
    got: list[av.Packet] = []
    inline = receive_inline(receiver, got.append, read_interval=None)
    encoding = RTCRtpDecodingParameters(
        ssrc=MEDIA_SSRC,
        payloadType=codecs[0].payloadType,  # type: ignore[arg-type]
        rtx=RTCRtpRtxParameters(ssrc=RTX_SSRC) if rtx else None,
    )
    await receiver.receive(RTCRtpReceiveParameters(codecs=codecs, encodings=[encoding]))
    receiver._set_rtcp_ssrc(LOCAL_SSRC)
    return receiver, transport, inline, got


def taking(got: list[av.Packet]) -> Any:
    def take() -> list[av.Packet]:
        out = list(got)
        got.clear()
        return out

    return take


async def test_inline_video_hands_over_nacks_and_plis_as_the_queued_path_does(encoded):
    """The queued path's own test (test_aiortc_internals.check_video_receiver), inline:
    frames byte for byte, pts, keyframes; NACK to the media SSRC, RTX repair; a loss given
    up -> PLI. RTCP goes out from tasks: each feed waits until they are sent."""
    receiver, transport, inline, got = await inline_receiver("video", [H264, RTX], rtx=True)
    try:
        await check_video_receiver(
            receiver,
            transport,
            inline.assembler,
            encoded["video"][:8],
            take=taking(got),
            settle=inline.settled,
        )
    finally:
        await receiver.stop()


async def test_inline_audio_hands_over_each_opus_packet(encoded):
    receiver, _transport, inline, got = await inline_receiver("audio", [OPUS], rtx=False)
    try:
        await check_audio_receiver(
            receiver, inline.assembler, encoded["audio"][:12], take=taking(got)
        )
    finally:
        await receiver.stop()


def protected(tx: pylibsrtp.Session, payload: bytes, seq: int, ssrc: int = MEDIA_SSRC) -> bytes:
    packet = RtpPacket(
        payload_type=OPUS_PT,
        sequence_number=seq,
        timestamp=960 * seq,
        ssrc=ssrc,
        payload=payload,
    )
    return tx.protect(packet.serialize())


async def test_the_socket_callback_takes_srtp_of_inline_receivers_and_leaves_the_rest(encoded):
    receiver, transport, _inline, got = await inline_receiver("audio", [OPUS], rtx=False)
    tx = srtp(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    payloads = encoded["audio"][:8]
    datagrams = [protected(tx, p, seq) for seq, p in enumerate(payloads)]
    try:
        # Before the receiver's first packet went through aiortc's task, aioice's socket
        # callback is its own and the datagrams queue up.
        original = transport.socket.datagram_received
        assert transport.socket.left == []
        # The first packet reaches the receiver through the task (which unprotected it);
        # four more wait in the queue with a DTLS record between them.
        dtls_record = bytes([22, 254, 253]) + bytes(10)
        first = RtpPacket.parse(transport._rx_srtp.unprotect(datagrams[0]))
        for item in [datagrams[1], datagrams[2], dtls_record, datagrams[3], datagrams[4]]:
            transport.queue.put_nowait((item, 1))
        await receiver._handle_rtp_packet(first, arrival_time_ms=0)
        # It hooked the socket and took the queued packets, in order, before anything
        # newer; the DTLS record stays queued for aiortc.
        assert transport.socket.datagram_received is not original
        assert [bytes(p) for p in got] == payloads[:5]
        assert [p.pts for p in got] == [960 * i for i in range(5)]
        assert transport.queue.get_nowait() == (dtls_record, 1) and transport.queue.empty()

        # From now on the socket callback takes them.
        for data in datagrams[5:]:
            transport.socket.datagram_received(data, ("127.0.0.1", 9))
        assert [bytes(p) for p in got] == payloads
        assert aiortc_internals.inline_packets(receiver) == 4 + 3  # 4 were queued, 3 live
        assert transport.socket.left == []

        # A header extension (one-byte form, RFC 8285) is skipped, not parsed.
        header = bytes([0x90, OPUS_PT]) + (8).to_bytes(2, "big") + (960 * 8).to_bytes(4, "big")
        extension = bytes([0xBE, 0xDE, 0, 1, 0x10, 0xAB, 0, 0])
        plain = header + MEDIA_SSRC.to_bytes(4, "big") + extension + b"extended"
        transport.socket.datagram_received(tx.protect(plain), ("127.0.0.1", 9))
        assert bytes(got[-1]) == b"extended" and got[-1].pts == 960 * 8

        # What is not one of its packets goes on to aioice as before: SRTCP, DTLS, STUN,
        # an SSRC no inline receiver has.
        rtcp = bytes([0x80, 200]) + bytes(30)
        stun = bytes([0, 1]) + bytes(18)
        other = protected(tx, b"x", 100, ssrc=0x5555)
        for data in (rtcp, dtls_record, stun, other):
            transport.socket.datagram_received(data, ("127.0.0.1", 9))
        assert transport.socket.left == [rtcp, dtls_record, stun, other]

        # The reception statistics (what its receiver reports say) count every packet.
        stats = receiver._RTCRtpReceiver__remote_streams[MEDIA_SSRC]
        assert stats.packets_received == len(payloads) + 1 and stats.max_seq == len(payloads)
    finally:
        await receiver.stop()


async def test_malformed_datagrams_never_escape_the_socket_callback(encoded):
    """Fuzz: random datagrams that look like RTP (and every truncation of a real one)
    are dropped or left to aioice, never raised, and a good packet after them still
    comes through."""
    receiver, transport, _inline, got = await inline_receiver("audio", [OPUS], rtx=False)
    tx = srtp(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    try:
        await receiver._handle_rtp_packet(
            RtpPacket.parse(transport._rx_srtp.unprotect(protected(tx, b"a", 0))), 0
        )
        hooked = transport.socket.datagram_received
        rng = random.Random(15)
        real = protected(tx, encoded["audio"][0], 1)
        samples = [real[:n] for n in range(len(real))]
        for _ in range(2000):
            size = rng.randrange(0, 300)
            data = bytearray(rng.randbytes(size))
            if size >= 12 and rng.random() < 0.7:  # a header of ours: deeper into the path
                data[0] = 0x80 | rng.randrange(0, 0x40)
                data[1] = OPUS_PT | (rng.random() < 0.5) << 7
                data[8:12] = MEDIA_SSRC.to_bytes(4, "big")
            samples.append(bytes(data))
        for data in samples:
            hooked(data, ("127.0.0.1", 9))
        hooked(protected(tx, b"after", 2), ("127.0.0.1", 9))
        assert bytes(got[-1]) == b"after"
    finally:
        await receiver.stop()


async def test_batched_reads_read_what_arrived_and_stop_with_the_transport():
    loop = asyncio.get_running_loop()
    received: list[bytes] = []

    class Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
            received.append(data)
            if data == b"boom":
                raise RuntimeError("a handler bug must not stop the reads")

    transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        batched = aiortc_internals._BatchedReads.start(transport, 0.05)
        assert batched is not None
        assert aiortc_internals._BatchedReads.start(transport, 0.05) is None  # once
        sent = [b"%d" % i for i in range(aiortc_internals.READ_BATCH + 10)]
        for data in [b"boom", *sent]:
            sender.sendto(data, ("127.0.0.1", port))
        await wait_for(lambda: len(received) == len(sent) + 1)
        assert received == [b"boom", *sent]  # in order, more than one batch
        assert batched.datagrams == len(sent) + 1 and batched.reads < len(sent)
        transport.close()
        await asyncio.sleep(0.15)  # a read or two after close: they must see it closed
        reads = batched.reads
        await asyncio.sleep(0.15)
        assert batched.reads == reads
    finally:
        sender.close()
        transport.close()


async def test_loopback_recording_path_inline(test_mp4: Path):
    """Two peer connections: the subscriber's receivers inline. Packets come through the
    socket callback (read on a timer), decode, and the publisher hears receiver reports
    that count them with nothing lost."""
    config = RTCConfiguration(iceServers=[])
    pub, sub = RTCPeerConnection(config), RTCPeerConnection(config)
    source = FileSource(test_mp4, loop=True)
    video_sender = pub.addTrack(source.video)
    audio_sender = pub.addTrack(source.audio)
    h264 = [
        c
        for c in RTCRtpSender.getCapabilities("video").codecs
        if c.mimeType == "video/H264"
        and c.parameters.get("packetization-mode") == "1"
        and c.parameters.get("profile-level-id") == "42e01f"
    ]
    next(t for t in pub.getTransceivers() if t.kind == "video").setCodecPreferences(h264)
    got: dict[str, list[av.Packet]] = {"video": [], "audio": []}
    receivers: dict[str, RTCRtpReceiver] = {}

    @sub.on("track")
    def on_track(track: Any) -> None:
        receiver = next(t.receiver for t in sub.getTransceivers() if t.receiver.track is track)
        make_passthrough(receiver)
        receive_inline(receiver, got[track.kind].append)
        receivers[track.kind] = receiver

    reports: list[aiortc_internals.ReceiverReport] = []
    aiortc_internals.on_receiver_report(video_sender, reports.append)
    try:
        await pub.setLocalDescription(await pub.createOffer())
        await sub.setRemoteDescription(pub.localDescription)
        await sub.setLocalDescription(await sub.createAnswer())
        await pub.setRemoteDescription(sub.localDescription)
        source.start()
        await wait_for(lambda: len(got["video"]) >= 30 and len(got["audio"]) >= 60, 20)
        await wait_for(lambda: any(r.highest > 20 for r in reports), 10)

        video, audio = got["video"], got["audio"]
        assert aiortc_internals.inline_packets(receivers["video"]) > 60
        transport = receivers["video"].transport.transport._connection
        batched = [p.protocol.transport._tiaojie_batched for p in transport._nominated.values()]
        assert batched and all(b and b.datagrams > 0 and b.reads < b.datagrams for b in batched)
        assert video[0].is_keyframe and {7, 8, 5} <= set(h264_nal_types(bytes(video[0])))
        assert [p.pts for p in video] == sorted({p.pts for p in video})
        decoder = av.CodecContext.create("h264", "r")
        pictures = [f for p in video for f in decoder.decode(av.Packet(bytes(p)))]
        assert len(pictures) >= 25 and all((f.width, f.height) == (640, 480) for f in pictures)
        steps = [b.pts - a.pts for a, b in itertools.pairwise(audio)]
        assert audio[0].pts == 0 and all(958 <= s <= 962 for s in steps)  # none missing
        assert all(r.lost == 0 for r in reports)
        assert audio_sender.transport is video_sender.transport  # one bundled socket
    finally:
        await source.stop()
        await asyncio.wait_for(asyncio.gather(pub.close(), sub.close()), 10)
