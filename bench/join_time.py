"""Join time: invite link opened in Chromium -> first remote video frame decoded.

    .venv/bin/python bench/join_time.py [--runs 10] [--cold-only] [--baseline DIR]
                                        [--instant-click]

A Chromium page (fake camera) publishes in the room, as a real participant would: it
answers keyframe requests, which a pre-encoded file cannot. Each run opens a new party
link in a fresh browser context (a first visit: empty cache), clicks join as soon as the
button can be clicked, and waits until a frame of the publisher's video is decoded; then
(unless --cold-only) it opens another new link in the same context (a second visit: the
cache of the first). Each sample is a fresh page load.

The page marks each step of joining on its performance timeline (`tiaojie:*` marks:
web/js/join.js, subscriber.js, publisher.js); a poller in the page reads getStats every
10 ms for the first video packet and the first decoded frame. On loopback a message
takes well under a millisecond, so the marks of messages received are the server's send
times too. Prints p50/p95 per kind of visit, their ratio to the goal (p95 < 700 ms), the
median time of each step, what the page loaded over the network, and the load average.

The poll runs on the page's thread, which is busy around the first frame (the room view's
modules run, the room is drawn), and getStats itself waits for WebRTC's threads: the poll
can see a frame tens of ms after it was decoded. So the bench also gives the remote video
a sink of its own (a hidden <video>) and prints, beside the goal's figure, when the first
frame was presented (requestVideoFrameCallback's `presentationTime`, the compositor's time,
whenever the callback runs).

`--baseline DIR`: a second server runs the code of another checkout (e.g. a worktree of
main: `git worktree add --detach ../base main`) with this one's Python environment, and
the runs alternate between the two, so that both see the same load; the ratios of their
p50/p95 are printed too. (A baseline page without the marks shows totals only.)

`--instant-click`: the page clicks join itself the moment the join screen shows, for a
person who clicks at once; Playwright's click (the default) waits for its actionability
checks, CDP round trips that take 100-500 ms on a loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ADMIN, api  # noqa: E402
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

GOAL_MS = 700.0

#: Run in the page before joining: resolves with the times (performance.now()) of the
#: first video packet and the first decoded frame from `publisher` on pcSub.
POLL_JS = """async ([publisher, click]) => {
  const out = {rtp: null, frame: null, presented: null};
  const deadline = performance.now() + 20000;
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  while (click && performance.now() < deadline) {  // --instant-click
    const button = document.getElementById("join-button");
    if (document.body.dataset.screen === "join" && button && !button.disabled) {
      button.click();
      break;
    }
    await pause(5);
  }
  let watched = false;
  while (performance.now() < deadline) {
    const t = window.tiaojie;
    if (t && t.pcSub) {
      if (!watched) watched = watch(t.pcSub);
      for (const s of await t.inbound()) {
        if (s.kind !== "video" || s.participantId !== publisher) continue;
        if (out.rtp === null && s.packetsReceived > 0) out.rtp = performance.now();
        if (s.framesDecoded > 0) out.frame = performance.now();
      }
      if (out.frame !== null) break;
    }
    await pause(10);
  }
  // the callback runs on the page's thread, maybe after the poll saw the frame
  const until = performance.now() + 1000;
  while (watched && out.frame !== null && out.presented === null && performance.now() < until) {
    await pause(10);
  }
  return out;

  // A sink of the bench's own for the remote video (one publisher: one video receiver):
  // requestVideoFrameCallback's presentationTime is when the first frame was handed to
  // the compositor, whenever the page's thread gets to run the callback or the poll.
  function watch(pc) {
    const receiver = pc.getReceivers().find((r) => r.track && r.track.kind === "video");
    if (!receiver) return false;
    const video = document.createElement("video");
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.style.position = "fixed";
    video.style.width = "2px";
    video.style.height = "2px";
    video.style.opacity = "0";
    video.style.pointerEvents = "none";
    video.srcObject = new MediaStream([receiver.track]);
    document.body.append(video);
    video.requestVideoFrameCallback((now, meta) => { out.presented = meta.presentationTime; });
    return true;
  }
}"""

#: Resolves once the page publishes.
PUBLISHED_JS = """async () => {
  while (window.tiaojie?.publisherState !== "published") {
    await new Promise((r) => setTimeout(r, 50));
  }
}"""

#: After the frame: the page's marks, navigation timing and what came over the network.
TIMELINE_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const statics = res.filter((r) => new URL(r.name).pathname.startsWith("/static/"));
  return {
    origin: performance.timeOrigin,
    html: nav ? nav.responseEnd : null,
    load: nav ? nav.loadEventEnd : null,
    marks: performance.getEntriesByType("mark")
      .filter((m) => m.name.startsWith("tiaojie:"))
      .map((m) => [m.name.slice(8), m.startTime]),
    assets: statics.length,
    fetched: statics.filter((r) => r.transferSize > 0).length,
    bytes: statics.reduce((n, r) => n + (r.transferSize || 0), 0),
  };
}"""

#: The steps printed, in the order they happen: (label, mark).
STEPS = [
    ("HTML received", "html"),
    ("invite check asked (invite-check.js)", "me_asked"),
    ("modules loaded and run", "modules"),
    ("invite checked (/api/me)", "me"),
    ("join screen shown", "join_screen"),
    ("(the media's modules loaded)", "room_modules"),
    ("join clicked", "join"),
    ("CONNECT sent", "connect_sent"),
    ("socket.io connected", "connected"),
    ("welcome", "welcome"),
    ("room_state taken (first handler)", "room_state_in"),
    ("room_state handled (last handler)", "room_state"),
    ("subscriber offer received", "sub_offer"),
    ("answer created", "sub_local"),
    ("answer sent (ICE gathered)", "sub_gathered"),
    ("ICE connected", "sub_iceConnection_connected"),
    ("DTLS connected", "sub_connection_connected"),
    ("answer acknowledged", "sub_answered"),
    ("room view's modules run", "view_modules"),
    ("room drawn", "room_drawn"),
    ("first video packet", "rtp"),
    ("first frame decoded (as the poll saw it)", "frame"),
    ("(first frame presented: requestVideoFrameCallback)", "presented"),
    ("(preview live)", "preview"),
    ("(publish offer sent)", "pub_offer"),
    ("(publish answered)", "pub_answered"),
]


@dataclass
class Sample:
    total_ms: float  # from page.goto to the first decoded frame, measured by this script
    presented_ms: float | None  # from page.goto to the first frame's presentationTime (rVFC)
    at: dict[str, float]  # mark -> ms since navigation start
    fetched: int  # static files that came over the network (not from the cache)
    assets: int
    kbytes: float


@dataclass
class Visits:
    samples: list[Sample] = field(default_factory=list)
    failed: int = 0  # no frame decoded in 20 s

    def times(self) -> list[float]:
        return sorted(s.total_ms for s in self.samples)

    def presented(self) -> list[float]:
        return sorted(s.presented_ms for s in self.samples if s.presented_ms is not None)


@contextlib.contextmanager
def _server(root: Path) -> Iterator[str]:
    """`tiaojie serve` with the code of checkout `root` (this Python environment); its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tempfile.mkdtemp(prefix="tiaojie-join-")
    command = [sys.executable, "-m", "tiaojie", "serve", "--port", str(port), "--data", data]
    server = subprocess.Popen(
        command,
        cwd=root,
        env={**os.environ, "TIAOJIE_ADMIN_TOKEN": ADMIN, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def _p95(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


async def _visit(context: Any, link: str, publisher: str, instant: bool) -> Sample | None:
    page = await context.new_page()
    started = time.time()
    await page.goto(link)
    poll = asyncio.ensure_future(page.evaluate(POLL_JS, [publisher, instant]))
    if not instant:
        await page.click("#join-button")
    first = await poll
    timeline = await page.evaluate(TIMELINE_JS)
    if first["frame"] is None:  # counted, and its marks shown
        print(f"no frame decoded in 20 s; marks: {timeline['marks']}", flush=True)
        await page.close()
        return None
    at = {name: t for name, t in timeline["marks"]}
    at.update(
        html=timeline["html"], rtp=first["rtp"], frame=first["frame"], presented=first["presented"]
    )
    await page.close()
    return Sample(
        total_ms=timeline["origin"] + first["frame"] - 1000 * started,
        presented_ms=(
            None
            if first["presented"] is None
            else timeline["origin"] + first["presented"] - 1000 * started
        ),
        at={k: v for k, v in at.items() if v is not None},
        fetched=timeline["fetched"],
        assets=timeline["assets"],
        kbytes=timeline["bytes"] / 1000,
    )


class Room:
    """A server, a room on it and a publishing browser page."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.room = api(base, "/api/rooms", {"title": "join time", "lobby": False})
        self.publisher = api(
            base, f"/api/rooms/{self.room['id']}/invites", {"role": "mediator", "name": "publisher"}
        )

    def link(self, name: str) -> str:
        body = {"role": "party", "name": name}
        return str(api(self.base, f"/api/rooms/{self.room['id']}/invites", body)["url"])

    async def publish(self, browser: Any) -> None:
        page = await (await browser.new_context()).new_page()
        await page.goto(self.publisher["url"])
        await page.click("#join-button")
        # (not wait_for_function: it evaluates a string, which the page's CSP forbids)
        await page.evaluate(PUBLISHED_JS)


async def measure(
    runs: int, warm: bool, baseline: Path | None, instant: bool
) -> dict[str, dict[str, Visits]]:
    from playwright.async_api import async_playwright

    roots = {"this checkout": ROOT} | ({"baseline": baseline} if baseline else {})
    results = {name: {"first visit": Visits(), "second visit": Visits()} for name in roots}
    kinds = ["first visit", "second visit"] if warm else ["first visit"]
    with contextlib.ExitStack() as stack:
        rooms = {name: Room(stack.enter_context(_server(root))) for name, root in roots.items()}
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for room in rooms.values():
                await room.publish(browser)
            await asyncio.sleep(2)  # publishing, past the first keyframes
            for i in range(runs):
                for name, room in rooms.items():
                    context = await browser.new_context()
                    for kind in kinds:
                        link = room.link(f"viewer {i} {kind}")
                        sample = await _visit(context, link, room.publisher["invite_id"], instant)
                        if sample is None:
                            results[name][kind].failed += 1
                            continue
                        results[name][kind].samples.append(sample)
                        a = sample.at
                        print(
                            f"run {i + 1} {name}, {kind}: {sample.total_ms:.0f} ms (join "
                            f"clicked +{a.get('join', 0):.0f}, room_state "
                            f"+{a.get('room_state', 0):.0f}, ICE connected "
                            f"+{a.get('sub_iceConnection_connected', 0):.0f}; "
                            f"{sample.fetched}/{sample.assets} files fetched, "
                            f"{sample.kbytes:.0f} kB) load {_load()}",
                            flush=True,
                        )
                    await context.close()
            await browser.close()
    return {
        name: {k: v for k, v in visits.items() if v.samples} for name, visits in results.items()
    }


def report(results: dict[str, dict[str, Visits]], load_before: str, load_after: str) -> None:
    print(f"\nload average before {load_before}, after {load_after} (1/5/15 min)")
    print("\nmedian time since navigation start, ms")
    columns = {f"{name}, {kind}": v for name, vs in results.items() for kind, v in vs.items()}
    print("| step | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for label, mark in STEPS:
        cells = []
        for v in columns.values():
            ats = [s.at[mark] for s in v.samples if mark in s.at]
            if not ats:
                cells.append("-")
                continue
            cells.append(f"{statistics.median(ats):.0f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    for column, v in columns.items():
        times = v.times()
        p50, p95 = statistics.median(times), _p95(times)
        fetched = statistics.median(s.fetched for s in v.samples)
        print(
            f"{column}: {len(times)} runs, p50 {p50:.0f} ms, p95 {p95:.0f} ms; "
            f"p95 / goal {GOAL_MS:.0f} ms = {p95 / GOAL_MS:.2f}x "
            f"({'met' if p95 < GOAL_MS else 'missed'}); static files over the network: "
            f"{fetched:.0f} of {v.samples[0].assets}; no frame in 20 s: {v.failed}"
        )
        after = sorted(s.at["frame"] - s.at["sub_local"] for s in v.samples if "sub_local" in s.at)
        shown = sorted(
            s.at["presented"] - s.at["sub_local"]
            for s in v.samples
            if "sub_local" in s.at and "presented" in s.at
        )
        if after and shown:
            print(
                f"{column}: from the answer created (the server's ICE, DTLS and first packet, "
                f"the browser's decoding): to the frame seen p50 {statistics.median(after):.0f} "
                f"ms, p95 {_p95(after):.0f} ms; to the frame presented p50 "
                f"{statistics.median(shown):.0f} ms, p95 {_p95(shown):.0f} ms"
            )
        presented = v.presented()
        if presented:
            print(
                f"{column}: first frame presented (requestVideoFrameCallback), "
                f"{len(presented)} runs: p50 {statistics.median(presented):.0f} ms, "
                f"p95 {_p95(presented):.0f} ms"
            )
    if "baseline" in results:
        for kind, v in results["this checkout"].items():
            base = results["baseline"][kind].times()
            new = v.times()
            print(
                f"{kind}, this checkout / baseline: p50 "
                f"{statistics.median(new) / statistics.median(base):.2f}x, "
                f"p95 {_p95(new) / _p95(base):.2f}x"
            )
            new_p, base_p = v.presented(), results["baseline"][kind].presented()
            if new_p and base_p:
                print(
                    f"{kind}, first frame presented, this checkout / baseline: p50 "
                    f"{statistics.median(new_p) / statistics.median(base_p):.2f}x, "
                    f"p95 {_p95(new_p) / _p95(base_p):.2f}x"
                )
    print(
        "(a browser publisher; the server asks it for a keyframe for each new subscriber; "
        "'join clicked' includes Playwright's click unless --instant-click)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--cold-only", action="store_true", help="first visits only (no second visit per run)"
    )
    parser.add_argument(
        "--baseline", type=Path, help="a checkout to compare with, run by turns in the same run"
    )
    parser.add_argument(
        "--instant-click",
        action="store_true",
        help="the page clicks join itself as soon as the join screen shows (no Playwright "
        "click: its actionability checks take 100-500 ms of CDP round trips under load)",
    )
    args = parser.parse_args()
    before = _load()
    results = asyncio.run(measure(args.runs, not args.cold_only, args.baseline, args.instant_click))
    report(results, before, _load())


if __name__ == "__main__":
    main()
