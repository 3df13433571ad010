"""Media over impaired links: a matrix of loss and delay, direct and through TURN.

    .venv/bin/python bench/network.py [--paths direct,turn] [--loss 0,1,3,10]
        [--delay 20,150,400] [--rate KBITS] [--pause-video on,off] [--measure 10]
        [--settle 3]

Runs as root (network namespaces, tests/support/netlab.py). Chromium sits in a client
namespace; the server runs in this process on the lab's link; the impairment relay runs
in the router namespace, in a process of its own, and is the only path for media:

- direct: the server announces the router's inside address (`--announce-ip`), where the
  relay listens on every port of `--rtc-ports` and forwards to the server's same port;
- turn: both pages are relay-only, their TURN URL is the relay, in front of a real coturn.

Two pages join one room: a publisher (fake camera 640x480 at 20 fps, fake microphone) and
a subscriber. Per cell the link is set to: `delay` round trip (half each way) and `loss`
on everything towards the pages (their uplinks lose nothing; `--rate` also limits what
goes towards them, with a 30 kB queue), then, after `--settle`
seconds, the subscriber's getStats are read over `--measure` seconds: frames decoded per
second, freezes (freezeCount, totalFreezesDuration), audio concealment (concealedSamples /
totalSamplesReceived), the loss and RTT the page saw; then the link is cut for 2 s and the
time until three new frames are decoded is the recovery. The pages and the room stay for
the whole matrix of a path; cells run in order (delay, then loss).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestServer  # noqa: E402

from tests.conftest import ADMIN_TOKEN, LiveServer, free_port  # noqa: E402
from tests.support import netlab  # noqa: E402
from tests.support.chromium import chromium_over_cdp  # noqa: E402
from tests.support.coturn import start_coturn  # noqa: E402
from tests.support.netlab import Impairment, RelayProcess  # noqa: E402
from tests.support.webrtc_stats import link_stats  # noqa: E402
from tiaojie.server.app import create_app  # noqa: E402
from tiaojie.server.config import Settings  # noqa: E402

RTC_PORTS = (41300, 41379)
OUTAGE_S = 2.0
RELAY_ONLY = """
(() => {
  const Native = window.RTCPeerConnection;
  function RelayOnly(config, ...rest) {
    return new Native({ ...(config || {}), iceTransportPolicy: "relay" }, ...rest);
  }
  RelayOnly.prototype = Native.prototype;
  Object.setPrototypeOf(RelayOnly, Native);
  window.RTCPeerConnection = RelayOnly;
})();
"""


def delta(after: dict[str, Any], before: dict[str, Any], kind: str, field: str) -> float:
    return float(after[kind].get(field, 0)) - float(before[kind].get(field, 0))


async def join(browser: Any, srv: LiveServer, room: str, role: str, name: str, relay: bool) -> Any:
    invite = await srv.create_invite(room, role, name)
    context = await browser.new_context(viewport={"width": 800, "height": 600})
    if relay:
        await context.add_init_script(RELAY_ONLY)
    page = await context.new_page()
    page.set_default_timeout(30_000)
    await page.goto(invite["url"])
    await page.wait_for_selector("#preview.has-video")
    await page.click("#join-button")
    await page.wait_for_selector('body[data-screen="room"]')
    return page


async def frames(page: Any) -> float:
    return float((await link_stats(page))["video"].get("framesDecoded", 0))


async def cell(
    page: Any, publisher: Any, relay: RelayProcess, loss: float, delay: float, args: Any
) -> dict:
    half = delay / 2
    rate = args.rate * 1000 if args.rate else None
    await relay.configure(
        Impairment(delay_ms=half), Impairment(loss=loss / 100, delay_ms=half, rate_bps=rate)
    )
    await asyncio.sleep(args.settle)
    before, started = await link_stats(page), time.monotonic()
    sent_before = (await link_stats(publisher))["sent"]
    relay_before = (await relay.report())["down"]
    await asyncio.sleep(args.measure)
    after, ended = await link_stats(page), time.monotonic()
    sent_after = (await link_stats(publisher))["sent"]
    encoded = sent_after.get("framesEncoded", 0) - sent_before.get("framesEncoded", 0)
    relay_after = (await relay.report())["down"]
    sent = relay_after["packets"] - relay_before["packets"]
    dropped = relay_after["lost"] - relay_before["lost"]
    overflowed = relay_after["overflowed"] - relay_before["overflowed"]
    heard = delta(after, before, "audio", "packetsReceived")
    unheard = delta(after, before, "audio", "packetsLost")
    received = delta(after, before, "video", "packetsReceived")
    lost = delta(after, before, "video", "packetsLost")
    samples = delta(after, before, "audio", "totalSamplesReceived")
    row = {
        "fps": delta(after, before, "video", "framesDecoded") / (ended - started),
        "sent_fps": encoded / (ended - started),
        "limited": sent_after.get("limitation"),
        "freezes": delta(after, before, "video", "freezeCount"),
        "frozen_s": delta(after, before, "video", "totalFreezesDuration"),
        "conceal": delta(after, before, "audio", "concealedSamples") / samples if samples else 1,
        "dropped": dropped / sent if sent else 0,
        "overflowed": overflowed / sent if sent else 0,
        "audio_lost": unheard / (heard + unheard) if heard + unheard else 0,
        "kbps": 8 * delta(after, before, "video", "bytesReceived") / (ended - started) / 1000,
        "seen_loss": lost / (received + lost) if received + lost else 0,
        "rtt_ms": 1000 * (after["rtt"].get("subPair") or 0),
        "nacks": delta(after, before, "video", "nackCount"),
        "rtx": delta(after, before, "video", "retransmittedPacketsReceived"),
    }
    # a 2-second outage, then: how long until video decodes again (three new frames)
    await relay.set_outage(True)
    await asyncio.sleep(OUTAGE_S)
    at_cut = await frames(page)
    await relay.set_outage(False)
    back = time.monotonic()
    recovery: float | None = None
    while time.monotonic() - back < 20:
        if await frames(page) >= at_cut + 3:
            recovery = time.monotonic() - back
            break
        await asyncio.sleep(0.05)
    row["recover_s"] = recovery
    return row


def show(path: str, loss: float, delay: float, row: dict) -> None:
    if row["fps"] < 0:  # pcSub's inbound streams were replaced while measuring
        print(f"| {path} | {loss:g} | {delay:g} | stats reset (the page renegotiated) |")
        return
    recover = f"{row['recover_s']:.2f}" if row["recover_s"] is not None else "none in 20"
    print(
        f"| {path} | {loss:g} | {delay:g} | {row['fps']:.1f} | {row['freezes']:.0f} | "
        f"{row['frozen_s']:.2f} | {100 * row['conceal']:.1f} | {100 * row['dropped']:.1f} | "
        f"{100 * row['seen_loss']:.1f} | "
        f"{row['rtt_ms']:.0f} | {row['nacks']:.0f} | {row['rtx']:.0f} | {recover} | "
        f"{row['kbps']:.0f} | {100 * row['overflowed']:.1f} | {100 * row['audio_lost']:.1f} | "
        f"{row['sent_fps']:.1f} | {row['limited']} |",
        flush=True,
    )


async def run_path(
    path: str, lab: netlab.NatLab, coturn: Any, browser: Any, ports: dict, args: Any, data: Path
) -> None:
    secret = coturn.secret
    if path == "direct":
        routes = [
            ((lab.gateway_ip, port), (lab.server_ip, port))
            for port in range(RTC_PORTS[0], RTC_PORTS[1] + 1)
        ]
        relay = await RelayProcess.start(namespace=lab.router, routes=routes)
        options: dict[str, Any] = {"announce_ip": lab.gateway_ip}
    else:
        relay = await RelayProcess.start(
            namespace=lab.router, routes=[((lab.gateway_ip, 0), (lab.server_ip, coturn.port))]
        )
        options = {
            "announce_ip": lab.server_ip,
            "turn_secret": secret,
            "turn_urls": f"turn:{relay.address[0]}:{relay.address[1]}?transport=udp",
        }
    path, _, guard = path.partition(":")
    port = ports[path]
    settings = Settings(
        host=lab.server_ip,
        port=port,
        data_dir=data / path,
        admin_token=ADMIN_TOKEN,
        rtc_ports=f"{RTC_PORTS[0]}-{RTC_PORTS[1]}",
        # the pages' own addresses are unreachable from here: checks only through the relay
        ice_deny=f"{lab.client_ip}/24",
        **options,
    )
    server = TestServer(create_app(settings), host=lab.server_ip, port=port)
    await server.start_server()
    srv = LiveServer(server, ADMIN_TOKEN, "sqlite")
    # --pause-video off: the SFU forwards everything, whatever the link (the baseline)
    srv.state.media.pause_video = guard != "off"
    label = f"{path}, pause {guard}" if guard else path
    pages: list[Any] = []
    try:
        room = (await srv.create_room(title=f"bench {path}", lobby=False))["id"]
        relay_only = path == "turn"
        pages.append(publisher := await join(browser, srv, room, "mediator", "pub", relay_only))
        pages.append(page := await join(browser, srv, room, "party", "subscriber", relay_only))
        deadline = time.monotonic() + 30
        while await frames(page) < 20:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path}: the subscriber decodes nothing")
            await asyncio.sleep(0.2)
        stats = await link_stats(page)
        print(f"<!-- {label}: selected local candidates {stats['rtt']} -->", flush=True)
        for delay in args.delay:
            for loss in args.loss:
                show(label, loss, delay, await cell(page, publisher, relay, loss, delay, args))
        print(f"<!-- {label} relay: {await relay.report()} -->", flush=True)
    finally:
        for made in pages:
            await made.context.close()
        await relay.close()
        await srv.close()
        await server.close()


async def main(args: Any) -> None:
    from playwright.async_api import async_playwright

    why = netlab.available()
    if why:
        raise SystemExit(why)
    with (
        tempfile.TemporaryDirectory(prefix="tiaojie-bench-net-") as tmp,
        netlab.nat_lab() as lab,
    ):
        data = Path(tmp)
        coturn = start_coturn(data / "coturn", secrets.token_urlsafe(24), host=lab.server_ip)
        ports = {path: free_port() for path in ("direct", "turn")}
        secure = ",".join(f"http://{lab.server_ip}:{port}" for port in ports.values())
        chromium = contextlib.contextmanager(chromium_over_cdp)
        try:
            with chromium(
                data / "profile",
                wrapper=lab.command(),
                extra_args=[f"--unsafely-treat-insecure-origin-as-secure={secure}"],
            ) as endpoint:
                bridge, bridge_port = await netlab.tcp_bridge(
                    lab.client, int(endpoint.rsplit(":", 1)[1])
                )
                async with bridge, async_playwright() as p:
                    browser = await p.chromium.connect_over_cdp(f"http://127.0.0.1:{bridge_port}")
                    print(f"load average at start: {os.getloadavg()}", flush=True)
                    print(
                        "| path | loss % | RTT ms | frames/s | freezes | frozen s | "
                        "concealed % | relay dropped % | video lost after repair % | RTT seen ms | "
                        "NACKs | RTX | recover s | video kbit/s | queue dropped % | audio lost % | "
                        "publisher encoded fps | publisher limited by |"
                    )
                    print("|---" * 18 + "|")
                    for path in args.paths:
                        for guard in args.pause_video:
                            await run_path(
                                f"{path}:{guard}", lab, coturn, browser, ports, args, data
                            )
                    print(f"load average at end: {os.getloadavg()}", flush=True)
                    await browser.close()
        finally:
            coturn.stop()


def numbers(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=lambda t: t.split(","), default=["direct", "turn"])
    parser.add_argument("--loss", type=numbers, default=[0, 1, 3, 10], help="percent")
    parser.add_argument("--delay", type=numbers, default=[20, 150, 400], help="round trip, ms")
    parser.add_argument("--rate", type=float, default=None, help="kbit/s towards the pages")
    parser.add_argument(
        "--pause-video",
        type=lambda t: t.split(","),
        default=["on"],
        help="on,off: with and without pausing video on congested links (same run)",
    )
    parser.add_argument("--measure", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    asyncio.run(main(parser.parse_args()))
