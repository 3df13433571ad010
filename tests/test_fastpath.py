"""rtc/_fastpath.c, the packet plane's C extension, on its own: its RTP parse agrees with
aiortc's, its SRTP is libsrtp's (what it protects, pylibsrtp unprotects, and back), one
`send` of copies for two sockets reaches both in order, and garbage of any shape (random
datagrams, truncated and lying headers, wrong argument types) never crashes it: it
returns None, skips the copy or raises TypeError/ValueError."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st
from pylibsrtp import Error, Policy, Session

from tests.support.waiting import eventually
from tiaojie.rtc import aiortc_internals
from tiaojie.rtc.ports import PortRange
from tiaojie.rtc.rewrite import extension_block, extension_element, rtp_header

fastpath = aiortc_internals.FASTPATH
pytestmark = pytest.mark.skipif(fastpath is None, reason="rtc/_fastpath.c is not built")

KEY = bytes(range(30))  # AES128_CM_SHA1_80: 16-byte key + 14-byte salt


def sessions() -> tuple[Session, Session]:
    """A sending and a receiving SRTP session with the same key, as DTLS makes them."""
    tx = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    rx = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND)
    tx.allow_repeat_tx = True
    return Session(tx), Session(rx)


def udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    return sock


def packet(seq: int) -> bytes:
    """An RTP header with a MID extension (what the packet plane sends)."""
    return rtp_header(seq & 1, 96, seq, seq * 3000, 0x1234, extension_block(b"\x100"))


def test_parse_agrees_with_aiortc() -> None:
    rng = random.Random(3)
    for seq in range(200):
        data = packet(seq)
        payload = rng.randbytes(rng.randrange(1, 300))
        if seq % 3 == 0:  # padded
            pad = rng.randrange(1, 20)
            data = bytes([data[0] | 0x20]) + data[1:] + payload + bytes(pad - 1) + bytes([pad])
        else:
            data += payload
        ours = fastpath.parse(data)
        theirs = RtpPacket.parse(data)
        marker, pt, number, ts, ssrc, start, end, x_start, x_end = ours
        assert (marker, pt, number, ts, ssrc) == (
            theirs.marker,
            theirs.payload_type,
            theirs.sequence_number,
            theirs.timestamp,
            theirs.ssrc,
        )
        assert data[start:end] == theirs.payload == payload
        assert data[x_start:x_end] == extension_element(1, b"0") + bytes(2)


@settings(max_examples=2000, deadline=None)
@given(data=st.binary(max_size=80))
def test_parse_refuses_what_aiortc_refuses_and_never_reads_past_the_end(data: bytes) -> None:
    ours = fastpath.parse(data)
    try:
        theirs = RtpPacket.parse(data)
    except ValueError:
        assert ours is None
        return
    assert ours is not None and data[ours[5] : ours[6]] == theirs.payload


def test_what_it_protects_libsrtp_unprotects_and_back() -> None:
    tx, rx = sessions()
    tx_pointer = aiortc_internals._srtp_pointer(tx)
    out, into = udp(), udp()
    try:
        address = aiortc_internals._sockaddr(into.getsockname())
        header, payload = packet(7), os.urandom(1100)
        assert fastpath.send([(out.fileno(), tx_pointer, address, header, payload)]) == 1
        protected = into.recv(2048)
        assert len(protected) == len(header) + len(payload) + 10  # the auth tag
        assert rx.unprotect(protected) == header + payload
        # and the other way: pylibsrtp protects, _fastpath unprotects
        tx2, rx2 = sessions()
        plain = packet(8) + payload
        assert fastpath.unprotect(aiortc_internals._srtp_pointer(rx2), tx2.protect(plain)) == (
            plain
        )
    finally:
        out.close()
        into.close()


def test_one_send_reaches_two_sockets_in_order_and_skips_what_cannot_go() -> None:
    tx, _ = sessions()
    pointer = aiortc_internals._srtp_pointer(tx)
    out, other, a, b = udp(), udp(), udp(), udp()
    try:
        to_a = aiortc_internals._sockaddr(a.getsockname())
        to_b = aiortc_internals._sockaddr(b.getsockname())
        items = []
        for seq in range(100):  # more than one batch of 64, two sockets interleaved
            sender = out if seq % 3 else other
            items.append((sender.fileno(), 0, to_a if seq % 2 else to_b, packet(seq), b"x"))
        items.append((out.fileno(), pointer, to_a, packet(1000), bytes(4000)))  # too big
        assert fastpath.send(items) == 100
        got_a = [struct.unpack_from("!H", a.recv(2048), 2)[0] for _ in range(50)]
        got_b = [struct.unpack_from("!H", b.recv(2048), 2)[0] for _ in range(50)]
        # each socket's copies leave in order (one sendmmsg per socket and batch)
        assert sorted(got_a) == list(range(1, 100, 2)) and sorted(got_b) == list(range(0, 100, 2))
        for got in (got_a, got_b):
            for sock_seqs in ([s for s in got if s % 3], [s for s in got if not s % 3]):
                assert sock_seqs == sorted(sock_seqs)
        # a closed descriptor: the copies are skipped, nothing raised
        dead = udp()
        fd = dead.fileno()
        dead.close()
        assert fastpath.send([(fd, 0, to_a, b"h", b"p")]) == 0
    finally:
        for sock in (out, other, a, b):
            sock.close()


def test_wrong_arguments_raise_instead_of_crashing() -> None:
    out = udp()
    try:
        address = aiortc_internals._sockaddr(("127.0.0.1", 9))
        for bad in (
            [("not a tuple")],
            [(out.fileno(), 0, address, b"h")],  # too short
            [(out.fileno(), 0, "address", b"h", b"p")],  # not bytes
            [(out.fileno(), 0, b"", b"h", b"p")],  # no address
            [(out.fileno(), 0, bytes(500), b"h", b"p")],  # too long an address
        ):
            with pytest.raises((TypeError, ValueError)):
                fastpath.send(bad)
        with pytest.raises(TypeError):
            fastpath.send(("not", "a list"))
        with pytest.raises(TypeError):
            fastpath.parse(None)
        assert fastpath.unprotect(0, b"x" * 40) is None  # no session
    finally:
        out.close()


@settings(max_examples=1500, deadline=None)
@given(data=st.binary(max_size=1600), rtp_like=st.booleans())
def test_unprotect_refuses_garbage(data: bytes, rtp_like: bool) -> None:
    _, rx = sessions()
    if rtp_like and data:
        data = bytes([0x80 | (data[0] & 0x3F)]) + data[1:]
    assert fastpath.unprotect(aiortc_internals._srtp_pointer(rx), data) is None


def test_rtcp_it_unprotects_is_what_libsrtp_protected() -> None:
    """SRTCP from pylibsrtp (a receiver report, a NACK, a compound) comes out as the RTCP
    went in; a tampered or replayed one is refused."""
    from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket, RtcpRtpfbPacket

    tx, rx = sessions()
    pointer = aiortc_internals._srtp_pointer(rx)
    report = RtcpReceiverInfo(
        ssrc=1, fraction_lost=0, packets_lost=0, highest_sequence=9, jitter=1, lsr=0, dlsr=0
    )
    rr = bytes(RtcpRrPacket(ssrc=7, reports=[report]))
    nack = bytes(RtcpRtpfbPacket(fmt=1, ssrc=7, media_ssrc=1, lost=[3, 4, 9]))
    for plain in (rr, nack, rr + nack):
        protected = tx.protect_rtcp(plain)
        assert fastpath.unprotect_rtcp(pointer, protected) == plain
        assert fastpath.unprotect_rtcp(pointer, protected) is None  # replayed
    tampered = bytearray(tx.protect_rtcp(rr))
    tampered[9] ^= 1
    assert fastpath.unprotect_rtcp(pointer, bytes(tampered)) is None
    assert fastpath.unprotect_rtcp(0, rr) is None


@settings(max_examples=1500, deadline=None)
@given(data=st.binary(max_size=1600), rtcp_like=st.booleans())
def test_unprotect_rtcp_refuses_garbage(data: bytes, rtcp_like: bool) -> None:
    _, rx = sessions()
    if rtcp_like and len(data) > 1:
        data = bytes([0x80 | (data[0] & 0x3F), 200 + data[1] % 7]) + data[2:]
    assert fastpath.unprotect_rtcp(aiortc_internals._srtp_pointer(rx), data) is None


def test_unprotect_refuses_a_valid_packet_with_a_lying_header() -> None:
    """Authentic SRTP whose RTP header claims CSRCs, an extension or padding that are not
    there: libsrtp authenticates it, the parse refuses it, nothing is read out of bounds."""
    rng = random.Random(5)
    tx, rx = sessions()
    pointer = aiortc_internals._srtp_pointer(rx)
    for seq in range(300):
        body = rng.randbytes(rng.randrange(0, 40))
        first = 0x80 | rng.randrange(0x40)
        data = bytes([first, rng.randrange(256)]) + struct.pack("!HLL", seq, 0, 9) + body
        try:
            protected = tx.protect(data)
        except Error:  # libsrtp checks the header it protects, too
            continue
        plain = fastpath.unprotect(pointer, protected)
        if plain is not None:
            assert plain == data
            fastpath.parse(plain)  # None or in bounds, never a crash


def extensions_map() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
                RTCRtpHeaderExtensionParameters(
                    id=3, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"
                ),
            ]
        )
    )
    return extensions


@settings(max_examples=1500, deadline=None)
@given(
    elements=st.lists(st.tuples(st.integers(0, 15), st.binary(min_size=1, max_size=4))),
    padding=st.integers(0, 3),
    lie=st.integers(-2, 2),
    body=st.binary(max_size=20),
)
def test_the_receive_parse_reads_what_aiortc_reads(
    elements: list[tuple[int, bytes]], padding: int, lie: int, body: bytes
) -> None:
    """The direct receive path's parse (rtc/aiortc_internals.py `_parse`, on
    rtc/_fastpath.c's) against aiortc's RtpPacket.parse, on packets whose one-byte
    extension elements and length word are arbitrary (and often lie): where aiortc reads a
    packet, it reads the same fields (where aiortc refuses one, it refuses it too or reads
    it leniently, e.g. a MID that is not UTF-8; it never raises)."""
    raw = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in elements) + bytes(padding)
    words = max(0, (len(raw) + 3) // 4 + lie)
    block = b"\xbe\xde" + struct.pack("!H", words) + raw + bytes(-len(raw) % 4)
    data = rtp_header(1, 100, 7, 9, 11, b"") + body
    data = bytes([data[0] | 0x10]) + data[1:12] + block + body
    extensions = extensions_map()
    ours = aiortc_internals._parse(fastpath, data, extensions)
    try:
        theirs = RtpPacket.parse(data, extensions)
    except (ValueError, struct.error, UnicodeDecodeError):
        return
    assert ours is not None
    for name in ("marker", "payload_type", "sequence_number", "timestamp", "ssrc", "payload"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.padding_size == theirs.padding_size
    for name in ("abs_send_time", "audio_level", "mid"):
        assert getattr(ours.extensions, name) == getattr(theirs.extensions, name), name


async def test_the_single_port_reads_all_waiting_datagrams_per_wake_up() -> None:
    """Single-port mode's socket is read with rtc/_fastpath.c's recvmmsg: datagrams that
    arrived together reach the demultiplexer in one turn of the event loop, in order,
    with their sender's address."""
    probe = udp()
    port = probe.getsockname()[1]
    probe.close()
    mux = await aiortc_internals._shared_port(
        asyncio.get_running_loop(), PortRange(port, port), "127.0.0.1"
    )
    got: list[tuple[bytes, tuple]] = []
    mux.datagram_received = lambda data, addr: got.append((data, addr))  # type: ignore[method-assign]
    client = udp()
    try:
        await asyncio.sleep(0)  # the batch reader takes over after asyncio's is in place
        for i in range(10):
            client.sendto(b"datagram %d" % i, ("127.0.0.1", port))
        await eventually(lambda: len(got) >= 10, timeout=10, what="the datagrams")
        assert [d for d, _ in got] == [b"datagram %d" % i for i in range(10)]
        assert {a for _, a in got} == {client.getsockname()}
        assert "_read_in_batches" in mux.transport._read_ready.__qualname__
    finally:
        client.close()
        aiortc_internals.close_shared_ports()


# -- BitrateEstimator (rtc/_remb.c): aiortc's RemoteBitrateEstimator in C -------------------


def video_arrivals(
    rng: random.Random, seconds: float, start_abs: int, start_ms: int, congestion: bool
) -> list[tuple[int, int, int, int]]:
    """(arrival_ms, abs_send_time, payload_size, ssrc) of a ~30 frame/s video sent with
    abs-send-time (6.18 fixed-point seconds, wrapping every 64 s): bursts of packets per
    frame, jitter, reordering, RTX, and (when `congestion`) queues that build up and drain,
    so the detector sees overuse and underuse and the rate control decreases."""
    arrivals = []
    queue_ms = 0.0
    send_s = 0.0
    ssrc, rtx = 0x1234, 0x5678
    while send_s < seconds:
        packets = rng.choice((1, 2, 3, 5, 8))
        if congestion:
            phase = int(send_s / 2.5) % 3
            queue_ms = max(0.0, queue_ms + (rng.uniform(1, 6) if phase == 1 else -3.0))
        for i in range(packets):
            sent = send_s + i * rng.uniform(0, 0.0004)
            abs_send = (start_abs + round(sent * (1 << 18))) & 0xFFFFFF
            arrival = start_ms + int(sent * 1000 + queue_ms + rng.uniform(0, 4))
            size = rng.choice((1100, 1180, 1200, 300, rng.randrange(0, 1300)))
            arrivals.append((arrival, abs_send, size, rtx if rng.random() < 0.03 else ssrc))
        send_s += rng.uniform(0.025, 0.040)
    for _ in range(len(arrivals) // 50):  # some reordering
        i = rng.randrange(len(arrivals) - 1)
        arrivals[i], arrivals[i + 1] = arrivals[i + 1], arrivals[i]
    return arrivals


def estimates_of(estimator: object, arrivals: list[tuple[int, int, int, int]]) -> list[object]:
    return [estimator.add(*arrival) for arrival in arrivals]  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(6))
def test_the_bitrate_estimator_gives_aiortcs_estimates(seed: int) -> None:
    """Same arrivals, same REMBs (bitrate and SSRCs, packet by packet), through several
    abs-send-time wrap-arounds (seeds start 1-3 s before one), a clock jump, and
    congestion that makes aiortc's rate control decrease and increase."""
    from aiortc.rate import RemoteBitrateEstimator

    rng = random.Random(seed)
    start_abs = (1 << 24) - rng.randrange(1 << 18, 3 << 18)
    start_ms = 3_900_000_000_000 + rng.randrange(1000)
    arrivals = video_arrivals(rng, 12.0, start_abs, start_ms, congestion=seed % 2 == 0)
    late = arrivals[-1][0] + 5000  # the publisher stopped 5 s, then went on
    arrivals += video_arrivals(rng, 4.0, rng.randrange(1 << 24), late, congestion=True)
    python, native = RemoteBitrateEstimator(), fastpath.BitrateEstimator()
    expected = estimates_of(python, arrivals)
    got = estimates_of(native, arrivals)
    assert sum(e is not None for e in expected) > 20
    assert len({e[0] for e in expected if e is not None}) > 5  # type: ignore[index]
    assert got == [(e[0], e[1]) if e is not None else None for e in expected]  # type: ignore[index]


@settings(max_examples=300, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(
            st.integers(0, 5000),  # ms since the previous packet
            st.integers(0, (1 << 24) - 1),
            st.integers(1, 1500),
            st.sampled_from((1, 2, 0xFFFFFFFF)),
        ),
        max_size=200,
    )
)
def test_the_bitrate_estimator_agrees_on_arbitrary_arrivals(
    arrivals: list[tuple[int, int, int, int]],
) -> None:
    """Any arrival times, abs-send-times (out of order, wrapping) and sizes: the same
    estimates as aiortc's, and no crash."""
    from aiortc.rate import RemoteBitrateEstimator

    python, native = RemoteBitrateEstimator(), fastpath.BitrateEstimator()
    now = 1000
    for gap, abs_send, size, ssrc in arrivals:
        now += gap
        assert native.add(now, abs_send, size, ssrc) == python.add(now, abs_send, size, ssrc)


def test_the_bitrate_estimator_survives_what_aiortcs_does_not() -> None:
    """Empty packets (a bitrate of 0 made aiortc divide by zero), time going backwards,
    more SSRCs than a REMB names, wrong arguments."""
    estimator = fastpath.BitrateEstimator()
    results = [estimator.add(1000 + 40 * i, (i * 10486) & 0xFFFFFF, 0, i) for i in range(400)]
    results += [estimator.add(500 - i, i, 1200, 7) for i in range(100)]
    assert any(r is not None for r in results)
    assert all(len(r[1]) <= 16 for r in results if r is not None)
    with pytest.raises(TypeError):
        estimator.add("now", 1, 2, 3)
    with pytest.raises(TypeError):
        fastpath.BitrateEstimator(1)


# -- Reception and Nacks (rtc/_reception.c): a receiver's statistics and NACK generator ----


def receive_order(rng: random.Random, start: int, count: int) -> list[int]:
    """Sequence numbers as a publisher's packets arrive: in order, with gaps (losses),
    reordering, duplicates, late retransmissions, and a jump; wrapping past 65535."""
    seqs: list[int] = []
    seq = start
    while len(seqs) < count:
        r = rng.random()
        if r < 0.05:
            seq += rng.randrange(2, 6)  # lost
        elif r < 0.08 and seqs:
            seqs.append(seqs[-rng.randrange(1, min(len(seqs), 40) + 1)])  # late or duplicate
            continue
        elif r < 0.082:
            seq += rng.randrange(129, 3000)  # a jump past the NACK history
        elif r < 0.083:
            seq -= rng.randrange(200, 40000)  # a restarted stream
        seqs.append(seq & 0xFFFF)
        seq += 1
    return seqs


@pytest.mark.parametrize("seed", range(6))
def test_reception_statistics_and_nacks_are_aiortcs(seed: int, monkeypatch) -> None:
    """Packet by packet, the C statistics read as aiortc's StreamStatistics (what receiver
    reports and getStats carry) and the C NACKs as aiortc's NackGenerator bounded by
    `_bound_nacks`, through wrap-around, loss, reordering, jumps and an SSRC change."""
    from aiortc import rtcrtpreceiver
    from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics

    rng = random.Random(seed)
    seqs = receive_order(rng, 65536 - rng.randrange(1, 3000), 3000)
    python, native = StreamStatistics(90000), fastpath.Reception(90000)
    generator, nacks = NackGenerator(), fastpath.Nacks()
    clock = [1_700_000_000.0]
    monkeypatch.setattr(rtcrtpreceiver.time, "time", lambda: clock[0])
    media_ssrc = None
    gaps = 0
    for i, seq in enumerate(seqs):
        clock[0] += rng.uniform(0, 0.02)
        ssrc = 0x1111 if i < 2000 else 0x2222
        timestamp = (seq * 3000 + rng.randrange(0, 200)) & 0xFFFFFFFF
        packet = RtpPacket(96, 0, seq, timestamp, ssrc, b"x")
        python.add(packet)
        native.add(seq, timestamp, clock[0])
        aiortc_internals._bound_nacks(generator, packet, media_ssrc)
        expected_gap = generator.add(packet)
        media_ssrc = ssrc
        assert nacks.add(seq, ssrc) == expected_gap
        gaps += expected_gap
        assert nacks.missing() == sorted(generator.missing)
        assert nacks.max_seq == generator.max_seq
        if i % 37 == 0:
            for name in ("max_seq", "base_seq", "cycles", "packets_received", "jitter"):
                assert getattr(native, name) == getattr(python, name), name
            assert native.packets_expected == python.packets_expected
            assert native.packets_lost == python.packets_lost
            assert native.fraction_lost == python.fraction_lost
    assert gaps > 10 and python.jitter > 0 and python.cycles > 0


@settings(max_examples=300, deadline=None)
@given(
    seqs=st.lists(st.integers(0, 0xFFFF), max_size=300),
    ssrcs=st.lists(st.sampled_from((1, 2)), min_size=1, max_size=300),
)
def test_nacks_agree_on_arbitrary_sequence_numbers(seqs: list[int], ssrcs: list[int]) -> None:
    from aiortc.rtcrtpreceiver import NackGenerator

    generator, nacks = NackGenerator(), fastpath.Nacks()
    media_ssrc = None
    for i, seq in enumerate(seqs):
        ssrc = ssrcs[i % len(ssrcs)]
        packet = RtpPacket(96, 0, seq, 0, ssrc, b"")
        aiortc_internals._bound_nacks(generator, packet, media_ssrc)
        media_ssrc = ssrc
        assert nacks.add(seq, ssrc) == generator.add(packet)
        assert nacks.missing() == sorted(generator.missing)


def test_reception_and_nacks_refuse_wrong_arguments() -> None:
    with pytest.raises(ValueError):
        fastpath.Reception(90000).add(70000, 1)
    with pytest.raises(ValueError):
        fastpath.Nacks().add(-1, 1)
    with pytest.raises(TypeError):
        fastpath.Nacks().add("1", 1)
    with pytest.raises(TypeError):
        fastpath.Reception()
    reception = fastpath.Reception(48000)
    assert reception.max_seq is None and reception.base_seq is None
    reception.add(5, 960)
    assert (reception.packets_expected, reception.packets_lost, reception.jitter) == (1, 0, 0)


def test_the_receive_step_forwards_an_armed_stream_in_c_and_hands_the_rest_to_python() -> None:
    """rtc/_ingress.c on its own, on real sockets and SRTP: `pump` reads what waits; the
    armed Sink's stream (its SSRC and payload type) is unprotected, counted in the
    receiver's statistics and sent through the Route rewritten, with no Python call; every
    other SRTP packet's plaintext goes to `plain`, everything else (STUN, RTCP, unknown
    senders) to `slow`. Then 3,000 datagrams of garbage (random, and SRTP-protected with
    the right key: any header, the armed SSRC among them) raise nothing, and what the
    Route sends is always a well-formed RTP packet of its SSRC."""
    tx, rx = sessions()
    server, publisher, subscriber = udp(), udp(), udp()
    subscriber.settimeout(0.2)
    plain: list[bytes] = []
    slow: list[bytes] = []
    events: list[tuple[str, object]] = []
    ingress = fastpath.Ingress(lambda data, arrival_ms: plain.append(data))
    ingress.arm(rx, aiortc_internals._srtp_pointer(rx), 0, 0)
    table = {fastpath.key(server.fileno(), *publisher.getsockname()): ingress}
    reception, nacks = fastpath.Reception(90000), fastpath.Nacks()
    sink = fastpath.Sink(True, lambda kind, value: events.append((kind, value)))
    sink.bind(0x1234, 96, reception, nacks, None)
    ingress.attach(sink)
    route = fastpath.Route(0xBEEF)
    route.configure(96, b"", 0, 0)
    route.aim(subscriber.fileno(), 0, aiortc_internals._sockaddr(subscriber.getsockname()))
    route.start(5000, 0, 1000, 999, 5999, 0, 0.0)
    sink.arm([route], 1e12, lambda now: 1e12)

    def pump() -> int:
        return fastpath.pump(server.fileno(), 64, table, lambda data, addr: slow.append(data))

    def sent() -> list[bytes]:
        out = []
        while True:
            try:
                out.append(subscriber.recv(4096))
            except TimeoutError:
                return out

    for seq in range(1000, 1010):
        publisher.sendto(tx.protect(packet(seq)), server.getsockname())
    publisher.sendto(tx.protect(rtp_header(0, 97, 1010, 0, 0x1234, b"")), server.getsockname())
    publisher.sendto(tx.protect(rtp_header(0, 96, 7, 0, 0x9999, b"")), server.getsockname())
    publisher.sendto(b"\x00\x01" + bytes(18), server.getsockname())  # STUN-like
    assert pump() == 13
    copies = sent()
    assert [struct.unpack_from("!HII", c, 2) for c in copies] == [
        (6000 + i, (1000 + i) * 3000, 0xBEEF) for i in range(10)
    ]
    assert ingress.fast == 10 and reception.packets_received == 10 and not events
    assert len(plain) == 2 and plain[0][1] & 0x7F == 97 and len(slow) == 1
    assert sink.take()[0] == 10 and route.forwarded == 10
    # a gap asks Python for a NACK; a deadline passed asks `recheck`, None disarms
    publisher.sendto(tx.protect(packet(1012)), server.getsockname())
    pump()
    assert events == [("nack", 0x1234)] and nacks.missing() == [1010, 1011]
    sink.arm([route], 0.0, lambda now: None)
    publisher.sendto(tx.protect(packet(1013)), server.getsockname())
    pump()
    assert not sink.armed and plain[-1] == packet(1013) and ingress.fast == 11

    sink.arm([route], 1e12, lambda now: 1e12)
    rng = random.Random(1)
    for i in range(3000):
        data = bytes([0x80 | rng.randrange(0x40)]) + rng.randbytes(rng.randrange(300))
        if i % 3 == 0:  # the armed stream's SSRC and payload type, any other bytes
            data = data[:1] + b"\x60" + data[2:8] + b"\x00\x00\x12\x34" + data[12:]
        if i % 4:
            try:
                data = tx.protect(data)
            except Error:
                continue
        publisher.sendto(data, server.getsockname())
        if i % 50 == 0:
            while pump():
                pass
    while pump():
        pass
    for copy in sent():
        assert (
            len(copy) >= 12 and copy[0] >> 6 == 2 and struct.unpack_from("!I", copy, 8)[0] == 0xBEEF
        )
    assert ingress.fast > 11 + 100
