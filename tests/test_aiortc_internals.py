"""aiortc's private internals that rtc/aiortc_internals.py relies on.

These tests fail loudly when an aiortc upgrade moves them: first the attributes and their
types, then the receive path they make (RTP packets in, av.Packets out, NACK/RTX, PLI to
the media SSRC) on a real RTCRtpReceiver with a recording transport, the sender's
keyframe-request hook, and finally two RTCPeerConnections on loopback forwarding a real
H264 + Opus file without decoding.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import queue
import re
import time
import tomllib
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiortc
import av
import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.codecs.h264 import H264Encoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    wrap_rtx,
)

from tests.support.testmedia import make_test_mp4
from tiaojie.client.media_file import FileSource
from tiaojie.rtc import aiortc_internals
from tiaojie.rtc.aiortc_internals import (
    FrameAssembler,
    InternalsChanged,
    PassthroughQueue,
    make_passthrough,
    on_keyframe_request,
    send_pli,
)
from tiaojie.rtc.keyframes import h264_nal_types, is_keyframe
from tiaojie.rtc.ports import PortRange

ROOT = Path(__file__).resolve().parents[1]
MEDIA_SSRC, RTX_SSRC, LOCAL_SSRC = 0x11111111, 0x22222222, 0x33333333
H264_PT, RTX_PT, OPUS_PT = 102, 103, 111


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "test.mp4"
    return make_test_mp4(path, seconds=2.0, keyframe_interval_s=1.0)


@pytest.fixture(scope="module")
def encoded(test_mp4: Path) -> dict[str, list[bytes]]:
    """The file's Annex-B H264 access units and Opus packets, in order."""
    out: dict[str, list[bytes]] = {"video": [], "audio": []}
    with av.open(str(test_mp4)) as container:
        annexb = av.BitStreamFilterContext("h264_mp4toannexb", container.streams.video[0])
        for packet in container.demux():
            if packet.size == 0:
                continue
            if packet.stream.type == "video":
                out["video"].extend(bytes(p) for p in annexb.filter(packet))
            else:
                out["audio"].append(bytes(packet))
    assert is_keyframe("h264", out["video"][0]) and len(out["audio"]) > 10
    return out


def nal_units(access_unit: bytes) -> list[bytes]:
    """NAL units without start codes (3- and 4-byte start codes compare equal)."""
    return [n.rstrip(b"\x00") for n in re.split(b"\x00\x00\x01", access_unit) if n.strip(b"\x00")]


class RecordingTransport:
    """What RTCRtpReceiver/RTCRtpSender use of their RTCDtlsTransport; records RTCP."""

    state = "connected"
    _stats_id = "transport"

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def _register_rtp_receiver(self, receiver: object, parameters: object) -> None:
        pass

    def _unregister_rtp_receiver(self, receiver: object) -> None:
        pass

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.extend(RtcpPacket.parse(data))

    def take(self) -> list[Any]:
        sent, self.sent = self.sent, []
        return sent


# -- the attributes ----------------------------------------------------------------------


def test_aiortc_version_is_the_pinned_one():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("aiortc")]
    assert pins == [f"aiortc=={aiortc_internals.AIORTC_VERSION}"]
    assert aiortc.__version__ == aiortc_internals.AIORTC_VERSION, (
        "aiortc was upgraded: re-check rtc/aiortc_internals.py against its source"
    )


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_receiver_private_attributes(kind):
    receiver = RTCRtpReceiver(kind, RecordingTransport())
    assert isinstance(receiver._RTCRtpReceiver__jitter_buffer, JitterBuffer)
    assert isinstance(receiver._RTCRtpReceiver__decoder_queue, queue.Queue)
    assert receiver._RTCRtpReceiver__kind == kind
    assert receiver._RTCRtpReceiver__started is False
    estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator
    assert (estimator is not None) == (kind == "video")
    aiortc_internals.estimate_natively(receiver)  # rtc/_remb.c's, where it is built
    estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator
    assert (estimator is not None) == (kind == "video")
    if kind == "video" and aiortc_internals.FASTPATH is not None:
        assert type(estimator).__name__ == "BitrateEstimator"
        # the call tap_packets makes: (arrival_ms, abs_send_time, payload_size, ssrc)
        assert estimator.add(1000, 0, 1200, 1234) is None
    aiortc_internals.disable_bandwidth_estimation(receiver)
    assert receiver._RTCRtpReceiver__remote_bitrate_estimator is None
    assert inspect.iscoroutinefunction(receiver._send_rtcp_pli)
    assert list(inspect.signature(receiver._send_rtcp_pli).parameters) == ["media_ssrc"]
    # the JitterBuffer API the receiver calls, which FrameAssembler mirrors
    assert list(inspect.signature(JitterBuffer.add).parameters) == ["self", "packet"]
    receiver._track = RemoteStreamTrack(kind=kind)
    assert isinstance(receiver.track._queue, asyncio.Queue)


async def test_sender_private_keyframe_hook():
    sender = RTCRtpSender("video", RecordingTransport())
    assert sender._RTCRtpSender__force_keyframe is False
    pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=LOCAL_SSRC, media_ssrc=sender._ssrc)
    await sender._handle_rtcp_packet(pli)
    # what aiortc's own _send_keyframe does: a flag for its encoder, useless when forwarding
    assert sender._RTCRtpSender__force_keyframe is True

    calls: list[str] = []
    on_keyframe_request(sender, lambda: calls.append("keyframe"))
    await sender._handle_rtcp_packet(pli)
    fir = RtcpPsfbPacket(fmt=RTCP_PSFB_FIR, ssrc=LOCAL_SSRC, media_ssrc=sender._ssrc)
    await sender._handle_rtcp_packet(fir)
    assert calls == ["keyframe", "keyframe"]
    nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=LOCAL_SSRC, media_ssrc=sender._ssrc)
    nack.lost = [1]
    await sender._handle_rtcp_packet(nack)
    assert calls == ["keyframe", "keyframe"]
    # NACKs are counted (for /metrics) and still handled by aiortc
    nacked: list[int] = []
    aiortc_internals.on_nack(sender, nacked.append)
    nack.lost = [1, 2, 3]
    await sender._handle_rtcp_packet(nack)
    await sender._handle_rtcp_packet(pli)
    assert nacked == [3] and calls == ["keyframe", "keyframe", "keyframe"]

    # aiortc answers a NACK through _retransmit, unless the callback refuses it (a
    # paused subscription)
    for answer, retransmitted in ((True, [1, 2, 3]), (None, [1, 2, 3]), (False, [])):
        fresh = RTCRtpSender("video", RecordingTransport())
        answered: list[int] = []

        async def retransmit(seq: int, answered: list[int] = answered) -> None:
            answered.append(seq)

        fresh._retransmit = retransmit
        aiortc_internals.on_nack(fresh, lambda count, answer=answer: answer)
        await fresh._handle_rtcp_packet(nack)
        assert answered == retransmitted, answer


async def test_receiver_reports_with_the_round_trip_of_any_recent_sender_report():
    sender = RTCRtpSender("video", RecordingTransport())
    reports: list[aiortc_internals.ReceiverReport] = []
    aiortc_internals.on_receiver_report(sender, reports.append)
    # two sender reports go out (as aiortc's RTCP loop sends them), 0.2 s apart
    sent_at = []
    for ntp in (0x0001_2345_6789_0000, 0x0001_2346_0000_0000):
        info = RtcpSenderInfo(ntp_timestamp=ntp, rtp_timestamp=0, packet_count=0, octet_count=0)
        sent_at.append(time.time())
        await sender._send_rtcp([RtcpSrPacket(ssrc=sender._ssrc, sender_info=info)])
    # the receiver answers the first one (older than the latest: a long round trip),
    # having held it 0.5 s, with its running counts
    block = RtcpReceiverInfo(
        ssrc=sender._ssrc, fraction_lost=0, packets_lost=7, highest_sequence=70_000,
        jitter=0, lsr=0x2345_6789, dlsr=0,
    )  # fmt: skip
    await sender._handle_rtcp_packet(RtcpRrPacket(ssrc=LOCAL_SSRC, reports=[block]))
    (report,) = reports
    assert report.lost == 7 and report.highest == 70_000
    assert report.rtt is not None and 0 <= report.rtt <= time.time() - sent_at[0]
    # one that answers no report we remember has no round trip; nor does one about
    # another stream count at all
    block.lsr = 0x1111_1111
    other = RtcpReceiverInfo(
        ssrc=sender._ssrc + 1, fraction_lost=0, packets_lost=0, highest_sequence=1,
        jitter=0, lsr=0, dlsr=0,
    )  # fmt: skip
    await sender._handle_rtcp_packet(RtcpRrPacket(ssrc=LOCAL_SSRC, reports=[block, other]))
    assert len(reports) == 2 and reports[1].rtt is None
    # a sender report repeating an NTP time (a paused stream) makes it ambiguous
    info = RtcpSenderInfo(
        ntp_timestamp=0x0001_2346_0000_0000, rtp_timestamp=0, packet_count=0, octet_count=0
    )
    await sender._send_rtcp([RtcpSrPacket(ssrc=sender._ssrc, sender_info=info)])
    block.lsr = 0x2346_0000
    await sender._handle_rtcp_packet(RtcpRrPacket(ssrc=LOCAL_SSRC, reports=[block]))
    assert reports[2].rtt is None


async def test_missing_internals_raise_internals_changed():
    with pytest.raises(InternalsChanged):
        make_passthrough(SimpleNamespace(track=None))  # type: ignore[arg-type]
    with pytest.raises(InternalsChanged):
        await send_pli(SimpleNamespace(), 1)  # type: ignore[arg-type]
    with pytest.raises(InternalsChanged):
        on_keyframe_request(SimpleNamespace(), lambda: None)  # type: ignore[arg-type]
    receiver = RTCRtpReceiver("video", RecordingTransport())
    receiver._track = RemoteStreamTrack(kind="video")
    receiver._RTCRtpReceiver__jitter_buffer = object()  # a type it no longer has
    with pytest.raises(InternalsChanged):
        make_passthrough(receiver)


async def test_ice_sockets_bind_in_the_port_range_through_aioice_module_asyncio(monkeypatch):
    """aioice binds host candidates through `asyncio.get_running_loop()` looked up in
    aioice.ice at gathering time; the range works only while that stays so."""
    import aioice.ice

    try:
        low = 29500
        aiortc_internals.bind_ice_in(PortRange(low, low + 49))
        assert aiortc_internals.ice_port_range() == PortRange(low, low + 49)
        connection = aioice.ice.Connection(ice_controlling=True, use_ipv6=False)
        await connection.gather_candidates()
        ports = [c.port for c in connection.local_candidates if c.type == "host"]
        await connection.close()
        assert ports and all(low <= p <= low + 49 for p in ports), ports
    finally:
        aiortc_internals.bind_ice_in(None)
    assert aioice.ice.asyncio is asyncio and aiortc_internals.ice_port_range() is None

    async def moved(self, component, addresses, timeout=5):  # an aioice that binds otherwise
        return []

    monkeypatch.setattr(aioice.ice.Connection, "get_component_candidates", moved)
    with pytest.raises(InternalsChanged):
        aiortc_internals.bind_ice_in(PortRange(low, low + 49))


async def test_ice_connect_returns_once_the_check_list_completes_not_at_the_next_pacing_tick(
    monkeypatch,
):
    """aioice's `connect` paces its checks with a sleep and saw a nominated pair only when
    the sleep ended; with the pacing made 60 s, both agents still return as soon as their
    check list completes (aioice's own would sleep the 60 s: the test times out)."""
    import aioice.ice

    assert aioice.ice.Connection.connect is aiortc_internals._connect
    monkeypatch.setattr(aiortc_internals, "ICE_PACING_S", 60.0)
    aiortc_internals.gather_only_on(["127.0.0.1"])
    a = aioice.ice.Connection(ice_controlling=True, use_ipv6=False)
    b = aioice.ice.Connection(ice_controlling=False, use_ipv6=False)
    try:
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        for one, other in ((a, b), (b, a)):
            one.remote_username, one.remote_password = other.local_username, other.local_password
            for candidate in other.local_candidates:
                await one.add_remote_candidate(candidate)
            await one.add_remote_candidate(None)
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 10)
        await a.send(b"ping")
        assert await asyncio.wait_for(b.recv(), 10) == b"ping"
    finally:
        aiortc_internals.gather_only_on(None)
        await asyncio.gather(a.close(), b.close())
    # an aioice whose connect is not the one copied refuses, and so does an aiortc that
    # no longer starts its senders right after DTLS (when_sending)
    monkeypatch.setattr(aioice.ice.Connection, "_tiaojie_aioice_connect", None)
    with pytest.raises(InternalsChanged, match="connect"):
        aiortc_internals.complete_ice_at_once()
    monkeypatch.setattr(inspect, "getsource", lambda obj: "")
    aiortc_internals._senders_start_after_dtls.cache_clear()
    with pytest.raises(InternalsChanged, match="senders"):
        aiortc_internals.when_sending(SimpleNamespace(), print)  # type: ignore[arg-type]
    aiortc_internals._senders_start_after_dtls.cache_clear()  # checked again when next used


# -- a real receiver, fed RTP packets by hand ----------------------------------------------


class RtpFeeder:
    """Packetizes encoded frames like aiortc's RTCRtpSender and feeds a receiver."""

    def __init__(
        self, receiver: RTCRtpReceiver, payload_type: int, clock_step: int, settle: Any = None
    ) -> None:
        self.receiver = receiver
        self.settle = settle  # awaited after each packet: RTCP sent from tasks (inline)
        self.payload_type = payload_type
        self.clock_step = clock_step
        self.seq = 65530  # wraps during the test
        self.timestamp = 2**32 - 3 * clock_step  # so does the RTP timestamp
        self.rtx_seq = 500

    def packets(self, payloads: list[bytes]) -> list[RtpPacket]:
        out = []
        for i, payload in enumerate(payloads):
            out.append(
                RtpPacket(
                    payload_type=self.payload_type,
                    marker=int(i == len(payloads) - 1),
                    sequence_number=self.seq,
                    timestamp=self.timestamp,
                    ssrc=MEDIA_SSRC,
                    payload=payload,
                )
            )
            self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + self.clock_step) & 0xFFFFFFFF
        return out

    async def feed(self, *packets: RtpPacket) -> None:
        for packet in packets:
            await self.receiver._handle_rtp_packet(packet, arrival_time_ms=0)
            if self.settle is not None:
                await self.settle()

    async def retransmit(self, packet: RtpPacket) -> None:
        rtx = wrap_rtx(packet, payload_type=RTX_PT, sequence_number=self.rtx_seq, ssrc=RTX_SSRC)
        self.rtx_seq += 1
        await self.feed(rtx)


async def started_receiver(
    kind: str, codecs: list[RTCRtpCodecParameters], rtx: bool
) -> tuple[RTCRtpReceiver, RecordingTransport, FrameAssembler]:
    transport = RecordingTransport()
    receiver = RTCRtpReceiver(kind, transport)
    receiver._track = RemoteStreamTrack(kind=kind)  # what RTCPeerConnection does
    assembler = make_passthrough(receiver)
    assert receiver._RTCRtpReceiver__jitter_buffer is assembler
    assert isinstance(receiver._RTCRtpReceiver__decoder_queue, PassthroughQueue)
    encoding = RTCRtpDecodingParameters(
        ssrc=MEDIA_SSRC,
        payloadType=codecs[0].payloadType,  # type: ignore[arg-type]
        rtx=RTCRtpRtxParameters(ssrc=RTX_SSRC) if rtx else None,
    )
    await receiver.receive(RTCRtpReceiveParameters(codecs=codecs, encodings=[encoding]))
    receiver._set_rtcp_ssrc(LOCAL_SSRC)
    with pytest.raises(RuntimeError, match="already started"):
        make_passthrough(receiver)
    return receiver, transport, assembler


def queued(receiver: RTCRtpReceiver) -> list[av.Packet]:
    items = []
    while not receiver.track._queue.empty():
        items.append(receiver.track._queue.get_nowait())
    return items


async def stop(receiver: RTCRtpReceiver) -> None:
    """The receiver stops its decoder thread, which ends the track: must not hang."""
    await asyncio.wait_for(receiver.stop(), 5)
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(receiver.track.recv(), 5)


async def test_video_receiver_hands_over_packets_nacks_rtx_and_pli(encoded):
    h264 = RTCRtpCodecParameters(
        mimeType="video/H264",
        clockRate=90000,
        payloadType=H264_PT,
        parameters={"packetization-mode": "1", "profile-level-id": "42e01f"},
    )
    rtx = RTCRtpCodecParameters(
        mimeType="video/rtx", clockRate=90000, payloadType=RTX_PT, parameters={"apt": H264_PT}
    )
    receiver, transport, assembler = await started_receiver("video", [h264, rtx], rtx=True)
    try:
        await check_video_receiver(receiver, transport, assembler, encoded["video"][:8])
    finally:
        await receiver.stop()  # else its decoder thread keeps the process alive


async def check_video_receiver(
    receiver: RTCRtpReceiver,
    transport: RecordingTransport,
    assembler: FrameAssembler,
    frames: list[bytes],
    take: Any = None,
    settle: Any = None,
) -> None:
    """`take()`: the packets handed over since the last call (default: the track's
    queue); `settle()`: awaited after each packet fed."""
    take_out = take or (lambda: queued(receiver))
    feeder = RtpFeeder(receiver, H264_PT, 4500, settle)
    packetized = [
        feeder.packets(H264Encoder._packetize(H264Encoder._split_bitstream(f))) for f in frames
    ]
    assert len(packetized[0]) > 2 and all(len(p) >= 2 for p in packetized[1:5])

    # In order: each frame comes out at its marker packet, as an av.Packet, not decoded.
    await feeder.feed(*packetized[0][:-1])
    assert take_out() == []
    await feeder.feed(packetized[0][-1])
    await feeder.feed(*packetized[1])
    out = first_four = take_out()
    assert [type(p) for p in out] == [av.Packet, av.Packet]
    assert [nal_units(bytes(p)) for p in out] == [nal_units(f) for f in frames[:2]]
    assert out[0].is_keyframe and not out[1].is_keyframe
    assert {7, 8, 5} <= set(h264_nal_types(bytes(out[0])))
    assert [p.pts for p in out] == [0, 4500] and out[0].time_base == Fraction(1, 90000)
    assert transport.take() == []

    # A lost packet: NACKed to the media SSRC, repaired by RTX, frames out in order.
    lost = packetized[2][1]
    await feeder.feed(packetized[2][0], *packetized[2][2:], *packetized[3])
    nacks = [p for p in transport.take() if isinstance(p, RtcpRtpfbPacket)]
    assert [(n.media_ssrc, n.lost) for n in nacks] == [(MEDIA_SSRC, [lost.sequence_number])]
    assert take_out() == []  # frame 3 waits behind frame 2
    await feeder.retransmit(lost)
    out = take_out()
    first_four = first_four + out
    assert [nal_units(bytes(p)) for p in out] == [nal_units(f) for f in frames[2:4]]
    assert [p.pts for p in out] == [9000, 13500]
    assert assembler.media_ssrc == MEDIA_SSRC and assembler.losses == 0

    # A loss never repaired: the frame is dropped, a PLI goes to the MEDIA ssrc (not RTX),
    # the next complete frame still comes out.
    assembler.max_wait = 0.0
    await feeder.feed(packetized[4][0], *packetized[4][2:])
    await feeder.feed(*packetized[5])
    plis = [p for p in transport.take() if isinstance(p, RtcpPsfbPacket)]
    assert [(p.fmt, p.ssrc, p.media_ssrc) for p in plis] == [
        (RTCP_PSFB_PLI, LOCAL_SSRC, MEDIA_SSRC)
    ]
    out = take_out()
    assert [nal_units(bytes(p)) for p in out] == [nal_units(frames[5])]
    assert out[0].pts == 5 * 4500 and assembler.losses == 1

    # send_pli: what the SFU does for a subscriber's keyframe request.
    await send_pli(receiver, assembler.media_ssrc)
    assert [(type(p), p.fmt, p.media_ssrc) for p in transport.take()] == [
        (RtcpPsfbPacket, RTCP_PSFB_PLI, MEDIA_SSRC)
    ]

    # The handed-over bytes decode (after the keyframe) like the original frames.
    await feeder.feed(*packetized[6], *packetized[7])
    out = take_out()
    assert [nal_units(bytes(p)) for p in out] == [nal_units(f) for f in frames[6:8]]
    assert [p.pts for p in out] == [6 * 4500, 7 * 4500]

    # What came out decodes with a fresh decoder (keyframe first, then 3 delta frames).
    decoder = av.CodecContext.create("h264", "r")
    pictures = [f for p in first_four for f in decoder.decode(av.Packet(bytes(p)))]
    pictures += decoder.decode(None)
    assert len(pictures) == 4 and all((p.width, p.height) == (640, 480) for p in pictures)
    await stop(receiver)


async def test_audio_receiver_hands_over_each_opus_packet(encoded):
    opus = RTCRtpCodecParameters(
        mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_PT
    )
    receiver, _transport, assembler = await started_receiver("audio", [opus], rtx=False)
    try:
        await check_audio_receiver(receiver, assembler, encoded["audio"][:12])
    finally:
        await receiver.stop()


async def check_audio_receiver(
    receiver: RTCRtpReceiver,
    assembler: FrameAssembler,
    payloads: list[bytes],
    take: Any = None,
) -> None:
    feeder = RtpFeeder(receiver, OPUS_PT, 960)
    packets = [feeder.packets([payload])[0] for payload in payloads]
    await feeder.feed(*packets[:5])
    await feeder.feed(packets[6], packets[5], packets[6], *packets[7:])  # 5 late, 6 duplicated
    out = take() if take is not None else queued(receiver)
    assert [bytes(p) for p in out] == [p.payload for p in packets[:5] + packets[6:]]
    assert [p.pts for p in out] == [960 * i for i in [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]]
    decoder = av.CodecContext.create("opus", "r")
    samples = [f.samples for p in out for f in decoder.decode(av.Packet(bytes(p)))]
    assert samples and all(s == 960 for s in samples)
    assert assembler.media_ssrc == MEDIA_SSRC
    await stop(receiver)


async def test_direct_delivery_skips_the_track_queue_and_contains_failures(encoded):
    opus = RTCRtpCodecParameters(
        mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_PT
    )
    receiver, _transport, _assembler = await started_receiver("audio", [opus], rtx=False)
    try:
        got: list[av.Packet] = []

        def consume(packet: av.Packet) -> None:
            got.append(packet)
            if len(got) == 2:
                raise RuntimeError("a consumer bug must not break the receiver")

        aiortc_internals.deliver_directly(receiver, consume)
        feeder = RtpFeeder(receiver, OPUS_PT, 960)
        packets = [feeder.packets([p])[0] for p in encoded["audio"][:5]]
        await feeder.feed(*packets)
        assert [bytes(p) for p in got] == [p.payload for p in packets]
        assert [p.pts for p in got] == [960 * i for i in range(5)]
        assert queued(receiver) == []  # nothing went through the track's queue
    finally:
        await receiver.stop()


async def test_sender_reports_map_packets_to_the_senders_clock(encoded):
    """The recorder lines tracks up with sender reports, via a hook on the receiver."""
    opus = RTCRtpCodecParameters(
        mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_PT
    )
    receiver, _transport, _assembler = await started_receiver("audio", [opus], rtx=False)
    try:
        clock = aiortc_internals.sender_clock(receiver, 48000)
        feeder = RtpFeeder(receiver, OPUS_PT, 960)
        first_rtp = feeder.timestamp  # 3 packets before the 32-bit wrap
        await feeder.feed(*(feeder.packets([p])[0] for p in encoded["audio"][:6]))
        out = queued(receiver)
        assert clock.wall_time(out[-1].pts) is None  # no sender report yet
        # aiortc's sender reports NTP 0 before its first packet: that is no clock at all
        empty = RtcpSrPacket(
            ssrc=MEDIA_SSRC,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=0, rtp_timestamp=0, packet_count=0, octet_count=0
            ),
        )
        await receiver._handle_rtcp_packet(empty)
        assert clock.wall_time(out[-1].pts) is None
        # The sender says: RTP timestamp of packet 4 (past the wrap) was at Unix 1.7e9 + 0.5.
        unix = 1_700_000_000.5
        ntp = int((unix + aiortc_internals.NTP_UNIX_OFFSET) * (1 << 32))
        report = RtcpSrPacket(
            ssrc=MEDIA_SSRC,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp,
                rtp_timestamp=(first_rtp + 4 * 960) & 0xFFFFFFFF,
                packet_count=6,
                octet_count=600,
            ),
        )
        await receiver._handle_rtcp_packet(report)
        assert clock.wall_time(out[4].pts) == pytest.approx(unix, abs=1e-6)
        assert clock.wall_time(out[0].pts) == pytest.approx(unix - 4 * 0.02, abs=1e-6)
        assert clock.wall_time(out[5].pts) == pytest.approx(unix + 0.02, abs=1e-6)
    finally:
        await receiver.stop()


# -- two peer connections on loopback ------------------------------------------------------


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def test_loopback_forwarding_without_decoding(test_mp4):
    config = RTCConfiguration(iceServers=[])
    pub, sub = RTCPeerConnection(config), RTCPeerConnection(config)
    source = FileSource(test_mp4, loop=True)
    video_sender = pub.addTrack(source.video)
    pub.addTrack(source.audio)
    caps = RTCRtpSender.getCapabilities("video").codecs
    h264 = [
        c
        for c in caps
        if c.mimeType == "video/H264"
        and c.parameters.get("packetization-mode") == "1"
        and c.parameters.get("profile-level-id") == "42e01f"
    ]
    rtx = [c for c in caps if c.mimeType == "video/rtx"]
    assert h264 and rtx
    next(t for t in pub.getTransceivers() if t.kind == "video").setCodecPreferences(h264 + rtx)

    received: dict[str, tuple[RTCRtpReceiver, Any, FrameAssembler]] = {}

    @sub.on("track")
    def on_track(track: Any) -> None:
        receiver = next(t.receiver for t in sub.getTransceivers() if t.receiver.track is track)
        received[track.kind] = (receiver, track, make_passthrough(receiver))

    try:
        await pub.setLocalDescription(await pub.createOffer())
        await sub.setRemoteDescription(pub.localDescription)
        await sub.setLocalDescription(await sub.createAnswer())
        await pub.setRemoteDescription(sub.localDescription)
        assert set(received) == {"video", "audio"}
        assert "H264/90000" in sub.localDescription.sdp
        source.start()

        video_receiver, video_track, video_assembler = received["video"]
        _, audio_track, _ = received["audio"]
        video = [await asyncio.wait_for(video_track.recv(), 10) for _ in range(6)]
        audio = [await asyncio.wait_for(audio_track.recv(), 10) for _ in range(10)]

        assert all(type(p) is av.Packet for p in video + audio)  # not VideoFrame/AudioFrame
        assert video[0].is_keyframe and is_keyframe("h264", bytes(video[0]))
        types = h264_nal_types(bytes(video[0]))
        assert bytes(video[0]).startswith(b"\x00\x00\x00\x01")  # Annex-B
        assert 7 in types and 8 in types and 5 in types
        assert all(not p.is_keyframe for p in video[1:])
        assert all(b.pts > a.pts for a, b in itertools.pairwise(video))
        decoder = av.CodecContext.create("h264", "r")
        pictures = [f for p in video for f in decoder.decode(av.Packet(bytes(p)))]
        assert len(pictures) >= 5 and all((f.width, f.height) == (640, 480) for f in pictures)
        assert all(p.time_base == Fraction(1, 48000) for p in audio)
        opus = av.CodecContext.create("opus", "r")
        assert [f.samples for p in audio for f in opus.decode(av.Packet(bytes(p)))][:1] == [960]

        # The publisher's sender hears a PLI sent to the media SSRC; aiortc drops one sent
        # to the RTX SSRC, as Chrome ignores it.
        assert video_assembler.media_ssrc == video_sender._ssrc != video_sender._rtx_ssrc
        seen: list[Any] = []
        original = video_sender._handle_rtcp_packet

        async def spy(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
                seen.append(packet)
            await original(packet)

        video_sender._handle_rtcp_packet = spy  # type: ignore[method-assign]
        requests: list[str] = []
        on_keyframe_request(video_sender, lambda: requests.append("pli"))
        await send_pli(video_receiver, video_sender._rtx_ssrc)
        await asyncio.sleep(0.3)
        assert seen == [] and requests == []
        await send_pli(video_receiver, video_assembler.media_ssrc)
        await wait_for(lambda: requests == ["pli"])
        assert [p.media_ssrc for p in seen] == [video_sender._ssrc]
        assert video_assembler.frames_out >= 6
    finally:
        await source.stop()
        await asyncio.wait_for(asyncio.gather(pub.close(), sub.close()), 10)


@pytest.mark.parametrize("browser", ["chromium", "firefox"])
async def test_rejected_sections_need_rewriting_and_max_bundle_shares_the_first_transport(
    browser: str,
) -> None:
    """server/media/sdp.py accept_rejected relies on these: aiortc refuses an answer that
    rejects an m-section (port 0, no ICE), and under max-bundle every transceiver uses
    the first one's transport (so the bundle must stay tagged with the first mid). Firefox
    writes a=rtcp-mux without an a=rtcp line, which aiortc's writer then drops: the
    rewritten answer must keep its RTCP mux."""
    from aiortc import RTCBundlePolicy, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

    from tiaojie.client.rejecting import reject_sections
    from tiaojie.server.media.sdp import accept_rejected

    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    offerer, answerer = RTCPeerConnection(config), RTCPeerConnection(config)
    try:
        audio = offerer.addTransceiver(AudioStreamTrack(), direction="sendonly")
        video = offerer.addTransceiver(VideoStreamTrack(), direction="sendonly")
        assert video.sender.transport is audio.sender.transport
        await offerer.setLocalDescription(await offerer.createOffer())
        offer = offerer.localDescription.sdp
        await answerer.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await answerer.setLocalDescription(await answerer.createAnswer())
        rejecting = reject_sections(answerer.localDescription.sdp, [video.mid])
        if browser == "firefox":
            lines = rejecting.splitlines(keepends=True)
            rejecting = "".join(line for line in lines if not line.startswith("a=rtcp:"))
        with pytest.raises(ValueError, match="ICE username fragment or password is missing"):
            await offerer.setRemoteDescription(RTCSessionDescription(rejecting, "answer"))
        usable, rejected = accept_rejected(rejecting, offer)
        assert rejected == [video.mid]
        await offerer.setRemoteDescription(RTCSessionDescription(usable, "answer"))
        assert (audio.currentDirection, video.currentDirection) == ("sendonly", "inactive")
    finally:
        await offerer.close()
        await answerer.close()


async def test_run_now_runs_a_coroutine_in_the_callers_frame_and_finishes_a_waiting_one(caplog):
    """The RTCP handlers run without a task; one that waits after all is finished by a
    task from where it stopped (with the value it waited for), one that fails is logged."""
    steps: list[object] = []

    async def quick(value: int) -> None:
        steps.append(value)

    async def inner(future: asyncio.Future[int]) -> int:
        steps.append("waiting")
        got = await future
        steps.append(got)
        return got + 1

    async def waiting(future: asyncio.Future[int]) -> None:
        steps.append(await inner(future))

    async def failing() -> None:
        raise ValueError("broken RTCP")

    aiortc_internals.run_now(quick(1))
    assert steps == [1]  # done before run_now returned
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    aiortc_internals.run_now(waiting(future))
    assert steps == [1, "waiting"]
    future.set_result(41)
    await asyncio.gather(*aiortc_internals._background)
    assert steps == [1, "waiting", 41, 42]
    aiortc_internals.run_now(failing())
    assert "an RTCP handler failed" in caplog.text
