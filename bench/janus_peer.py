"""Janus (Debian's `janus`, VideoRoom) as the peer of bench/forwarding.py: the same load.

What it holds: `janus_server()` starts Janus in a network namespace of its own (Janus
gathers no ICE candidate on a loopback interface) reachable over a veth pair, with a
minimal configuration (VideoRoom and the HTTP transport only, rooms 1-N for H264
42e01f + Opus, no bitrate cap); `JanusParticipant` joins a room as a publisher of a
FileSource and subscribes to the room's other publishers, over Janus's HTTP API with
aiortc, so the load generator measures it as it measures Tiaojie.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

NAMESPACE = "tjjanus"
HOST_VETH, JANUS_VETH = "tjj0", "tjj1"
HOST_ADDRESS, JANUS_ADDRESS = "10.214.0.1", "10.214.0.2"
PORT = 8088
PLUGINS = "/usr/lib/x86_64-linux-gnu/janus"

JANUS_JCFG = """general: {{
  configs_folder = "{folder}"
  plugins_folder = "{plugins}/plugins"
  transports_folder = "{plugins}/transports"
  events_folder = "{plugins}/events"
  loggers_folder = "{plugins}/loggers"
  debug_level = 2
}}
media: {{ rtp_port_range = "30000-39999" }}
nat: {{ ice_ignore_list = "vmnet" }}
plugins: {{ disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,\
libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,\
libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so" }}
transports: {{ disable = "libjanus_websockets.so,libjanus_mqtt.so,libjanus_nanomsg.so,\
libjanus_pfunix.so,libjanus_rabbitmq.so" }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
events: {{ broadcast = false }}
"""
HTTP_JCFG = """general: {{ json = "compact" base_path = "/janus" http = true port = {port} }}
admin: {{ admin_http = false }}
"""
ROOM_JCFG = (
    'room-{n}: {{ description = "bench {n}" publishers = 6 bitrate = 0 fir_freq = 0 '
    'audiocodec = "opus" videocodec = "h264" h264_profile = "42e01f" }}\n'
)


def _ip(*argv: str, namespace: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    subprocess.run([*prefix, "ip", *argv], check=False, capture_output=True)


@contextlib.contextmanager
def janus_server(rooms: int, cpu: int | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """Janus in its namespace, pinned to `cpu`; yields the process and its API URL."""
    folder = Path(tempfile.mkdtemp(prefix="janus-bench-"))
    (folder / "janus.jcfg").write_text(JANUS_JCFG.format(folder=folder, plugins=PLUGINS))
    (folder / "janus.transport.http.jcfg").write_text(HTTP_JCFG.format(port=PORT))
    (folder / "janus.plugin.videoroom.jcfg").write_text(
        "general: {}\n" + "".join(ROOM_JCFG.format(n=n) for n in range(1, rooms + 1))
    )
    _ip("netns", "del", NAMESPACE)
    _ip("link", "del", HOST_VETH)
    _ip("netns", "add", NAMESPACE)
    _ip("link", "add", HOST_VETH, "type", "veth", "peer", "name", JANUS_VETH)
    _ip("link", "set", JANUS_VETH, "netns", NAMESPACE)
    _ip("addr", "add", f"{HOST_ADDRESS}/24", "dev", HOST_VETH)
    _ip("link", "set", HOST_VETH, "up")
    _ip("addr", "add", f"{JANUS_ADDRESS}/24", "dev", JANUS_VETH, namespace=NAMESPACE)
    _ip("link", "set", JANUS_VETH, "up", namespace=NAMESPACE)
    _ip("link", "set", "lo", "up", namespace=NAMESPACE)
    process = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            NAMESPACE,
            "janus",
            "-F",
            str(folder),
            "-C",
            str(folder / "janus.jcfg"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{JANUS_ADDRESS}:{PORT}/janus"
    try:
        if cpu is not None:  # `ip netns exec` execs janus in place: the same pid
            os.sched_setaffinity(process.pid, {cpu})
        _wait_http(url)
        yield process, url
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        _ip("netns", "del", NAMESPACE)
        _ip("link", "del", HOST_VETH)


def _wait_http(url: str) -> None:
    import json
    import urllib.request

    for _ in range(100):
        try:
            body = json.dumps({"janus": "info", "transaction": "x"}).encode()
            urllib.request.urlopen(urllib.request.Request(url, body), timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("Janus did not start")


class JanusSession:
    """One Janus session over HTTP with long-polled events (a task per session)."""

    def __init__(self, http: Any, url: str) -> None:
        self.http = http
        self.url = url
        self.id = 0
        self._events: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._poll: asyncio.Task[None] | None = None

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"transaction": uuid.uuid4().hex, **body}
        async with self.http.post(self.url + path, json=body) as response:
            return await response.json(content_type=None)

    async def start(self) -> None:
        self.id = (await self.post("", {"janus": "create"}))["data"]["id"]
        self._poll = asyncio.ensure_future(self._polling())

    async def attach(self) -> int:
        reply = await self.post(
            f"/{self.id}", {"janus": "attach", "plugin": "janus.plugin.videoroom"}
        )
        handle = reply["data"]["id"]
        self._events[handle] = asyncio.Queue()
        return handle

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send a request; its (asynchronous) event, or its synchronous answer."""
        transaction = uuid.uuid4().hex
        request: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            request["jsep"] = jsep
        reply = await self.post(f"/{self.id}/{handle}", request)
        if reply.get("janus") != "ack":
            return reply
        while True:  # other events reach the handle too (publishers joining ...)
            event = await asyncio.wait_for(self._events[handle].get(), 20)
            if event.get("janus") == "event" and event.get("transaction") == transaction:
                return event

    async def _polling(self) -> None:
        while True:
            try:
                async with self.http.get(f"{self.url}/{self.id}?maxev=10") as response:
                    events = await response.json(content_type=None)
            except Exception:
                await asyncio.sleep(0.1)
                continue
            for event in events if isinstance(events, list) else [events]:
                queue = self._events.get(event.get("sender", 0))
                if queue is not None:
                    queue.put_nowait(event)

    async def close(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
        with contextlib.suppress(Exception):
            await self.post(f"/{self.id}", {"janus": "destroy"})


async def publish(
    session: JanusSession,
    room: int,
    name: str,
    tracks: list[Any],
    prefer_h264: Callable[[Any], None],
) -> tuple[Any, int]:
    """Join `room` as a publisher of `tracks`: (its RTCPeerConnection, its feed id)."""
    from aiortc import RTCPeerConnection

    handle = await session.attach()
    pc = RTCPeerConnection()
    for track in tracks:
        pc.addTrack(track)
    prefer_h264(pc)
    await pc.setLocalDescription(await pc.createOffer())
    joined = await session.message(
        handle, {"request": "join", "ptype": "publisher", "room": room, "display": name}
    )
    feed = joined["plugindata"]["data"]["id"]
    configured = await session.message(
        handle,
        {"request": "configure", "audio": True, "video": True},
        {"type": "offer", "sdp": pc.localDescription.sdp},
    )
    from aiortc import RTCSessionDescription

    await pc.setRemoteDescription(RTCSessionDescription(**configured["jsep"]))
    return pc, feed


async def subscribe(
    session: JanusSession, room: int, feeds: list[int], on_track: Callable[[Any, Any, int], None]
) -> Any:
    """Subscribe to `feeds` in `room` over one connection; `on_track(track, receiver,
    feed)`. Retries while Janus does not offer them yet (a publisher still connecting)."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    joined: dict[str, Any] = {}
    for _ in range(50):
        handle = await session.attach()
        joined = await session.message(
            handle,
            {
                "request": "join",
                "ptype": "subscriber",
                "room": room,
                "streams": [{"feed": f} for f in feeds],
            },
        )
        if "jsep" in joined:
            break
        await asyncio.sleep(0.2)
    else:
        raise RuntimeError(f"Janus did not offer the feeds: {joined}")
    streams = joined["plugindata"]["data"].get("streams", [])
    feed_of = {str(s["mid"]): s.get("feed_id") for s in streams if "mid" in s}
    pc = RTCPeerConnection()

    @pc.on("track")
    def track(track: Any) -> None:
        transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
        on_track(track, transceiver.receiver, feed_of.get(str(transceiver.mid), 0))

    await pc.setRemoteDescription(RTCSessionDescription(**joined["jsep"]))
    await pc.setLocalDescription(await pc.createAnswer())
    await session.message(
        handle, {"request": "start"}, {"type": "answer", "sdp": pc.localDescription.sdp}
    )
    return pc
