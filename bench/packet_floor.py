"""The per-packet floor under the forwarding path, in this process, on loopback.

    .venv/bin/python bench/packet_floor.py [--packets 20000]

Times, per 1200-byte RTP packet, pinned to one CPU:

* `sendto` alone on a UDP socket (the syscall every forwarded copy pays; Python has no
  `sendmmsg`, so this is also the batching floor we cannot go under from Python);
* SRTP protect (pylibsrtp, AES-128-CM/HMAC-SHA1-80 as negotiated with browsers) + `sendto`;
* the packet plane's copy: StreamMapping + header bytes + SRTP + `sendto`
  (what PacketSender.send does, without aiortc's objects around it);
* aiortc's way of sending a packet it packetized: an RtpPacket with header extensions,
  `serialize`, SRTP, `sendto` (the frames plane, per packet, packetization not counted);
* the receive side: `recvfrom` + SRTP unprotect + `RtpPacket.parse`;
* the floor the native path (rtc/_fastpath.c) can reach, C doing the loop: copies
  SRTP-protected and sent with one `sendmmsg` per received packet (three copies: a room of
  4), and a burst of 64 datagrams read with one `recvmmsg`, each unprotected and its header
  parsed; and what that floor is per RTP packet handled (in + out) in a room of 4, the
  figure `bench/forwarding.py` prints for each server.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters  # noqa: E402
from aiortc.rtp import HeaderExtensionsMap, RtpPacket  # noqa: E402
from pylibsrtp import Policy, Session  # noqa: E402

from tiaojie.rtc import aiortc_internals  # noqa: E402
from tiaojie.rtc.rewrite import (  # noqa: E402
    StreamMapping,
    abs_send_time,
    extension_block,
    extension_element,
    rtp_header,
)

PAYLOAD = bytes(1200)


def timed(label: str, count: int, step: Callable[[int], None]) -> float:
    start = time.process_time()
    for i in range(count):
        step(i)
    per = (time.process_time() - start) / count * 1e6
    print(f"{label:<62} {per:6.2f} us/packet")
    return per


def session(key: bytes, direction: int) -> Session:
    policy = Policy(
        key=key, ssrc_type=direction, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    )
    policy.allow_repeat_tx = True
    return Session(policy)


def native_floor(count: int, key: bytes, sink: socket.socket) -> None:
    """The system calls and SRTP alone, in C (rtc/_fastpath.c), per packet."""
    fast = aiortc_internals.FASTPATH
    if fast is None:
        print("rtc/_fastpath.c is not built: no native floor")
        return
    tx = session(key, Policy.SSRC_ANY_OUTBOUND)
    rx = session(key, Policy.SSRC_ANY_INBOUND)
    tx_pointer = aiortc_internals._srtp_pointer(tx)
    rx_pointer = aiortc_internals._srtp_pointer(rx)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host, port = sink.getsockname()
    address = (
        struct.pack("=H", socket.AF_INET)
        + struct.pack("!H", port)
        + socket.inet_aton(host)
        + bytes(8)
    )
    fd = out.fileno()
    copies = 3

    def send(i: int) -> None:
        seq, ts = i & 0xFFFF, i * 3000
        fast.send(
            [
                (fd, tx_pointer, address, rtp_header(0, 102, seq, ts, 10 + c), PAYLOAD)
                for c in range(copies)
            ]
        )

    def drain() -> None:
        while fast.recv(sink.fileno(), 64):
            pass

    sending = 0.0
    for chunk in range(0, count, 64):
        begin = time.process_time()
        for i in range(chunk, min(chunk + 64, count)):
            send(i)
        sending += time.process_time() - begin
        drain()  # not timed: the receiver's side, measured below
    send_us = sending / (count * copies) * 1e6
    label = f"C: SRTP protect + one sendmmsg for {copies} copies (per copy)"
    print(f"{label:<62} {send_us:6.2f} us/packet")

    protected = [tx.protect(rtp_header(0, 102, i & 0xFFFF, i, 20) + PAYLOAD) for i in range(count)]
    receiving = 0.0
    received = 0
    for chunk in range(0, count, 64):
        for data in protected[chunk : chunk + 64]:
            out.sendto(data, sink.getsockname())
        begin = time.process_time()
        for data, _ in fast.recv(sink.fileno(), 64):
            packet = fast.unprotect(rx_pointer, data)
            if packet is not None and fast.parse(packet) is not None:
                received += 1
        receiving += time.process_time() - begin
    receive_us = receiving / max(received, 1) * 1e6
    label = "C: recvmmsg (64) + SRTP unprotect + header parse"
    print(f"{label:<62} {receive_us:6.2f} us/packet ({received} of {count} read)")
    handled = (receive_us + copies * send_us) / (1 + copies)
    print(
        f"native floor per RTP packet handled (in + out, a room of 4): {handled:.2f} us; "
        "compare with bench/forwarding.py's 'us per RTP packet handled' for each server"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    count = args.packets
    key = os.urandom(30)
    tx = session(key, Policy.SSRC_ANY_OUTBOUND)
    rx = session(key, Policy.SSRC_ANY_INBOUND)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    address = sink.getsockname()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
            ]
        )
    )
    plain = rtp_header(0, 102, 1, 0, 0x1234) + PAYLOAD

    def drain() -> None:
        sink.setblocking(False)
        try:
            while True:
                sink.recv(2048)
        except BlockingIOError:
            pass

    print(f"{count} packets of {len(PAYLOAD)} bytes payload, CPU time of this process on CPU 0")
    bare = timed("sendto", count, lambda i: out.sendto(plain, address))
    drain()
    timed(
        "SRTP protect + sendto",
        count,
        lambda i: out.sendto(tx.protect(rtp_header(0, 102, i & 0xFFFF, i, 1) + PAYLOAD), address),
    )
    drain()
    mapping = StreamMapping(90000, 100, 1000)
    mid = extension_element(1, b"3")

    def packet_plane(i: int) -> None:
        seq, ts = mapping.map(i & 0xFFFF, i * 3000, 0.0) or (0, 0)
        block = extension_block(mid + bytes((0x22,)) + abs_send_time(i << 20))
        out.sendto(tx.protect(rtp_header(0, 102, seq, ts, 2, block) + PAYLOAD), address)

    ours = timed("packet plane: map + header + SRTP + sendto", count, packet_plane)
    drain()

    def aiortc_way(i: int) -> None:
        packet = RtpPacket(payload_type=102, sequence_number=i & 0xFFFF, timestamp=i, ssrc=3)
        packet.payload = PAYLOAD
        packet.extensions.mid = "3"
        packet.extensions.abs_send_time = i & 0xFFFFFF
        out.sendto(tx.protect(packet.serialize(extensions)), address)

    theirs = timed("aiortc: RtpPacket + serialize + SRTP + sendto", count, aiortc_way)
    drain()
    sink.setblocking(True)
    sent = [tx.protect(rtp_header(0, 102, i & 0xFFFF, i, 4) + PAYLOAD) for i in range(count)]
    receiving = 0.0
    for chunk in range(0, count, 2000):
        for data in sent[chunk : chunk + 2000]:
            out.sendto(data, address)
        start = time.process_time()
        for _ in sent[chunk : chunk + 2000]:
            RtpPacket.parse(rx.unprotect(sink.recv(2048)), extensions)
        receiving += time.process_time() - start
    label = "receive: recv + SRTP unprotect + RtpPacket.parse"
    print(f"{label:<62} {receiving / count * 1e6:6.2f} us/packet")
    print(
        f"the packet plane's copy costs {ours / bare:.1f}x a bare sendto; aiortc's way "
        f"{theirs / bare:.1f}x"
    )
    native_floor(count, key, sink)


if __name__ == "__main__":
    main()
