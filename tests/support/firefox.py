"""Debian's Firefox ESR in tests, driven over its built-in WebDriver BiDi.

Firefox speaks WebDriver BiDi itself (`--remote-debugging-port`): no geckodriver, no
Playwright build of Firefox, nothing downloaded. What it holds today:

- `firefox_over_bidi()`: start headless Firefox with a fresh profile (fake camera and
  microphone, granted without a prompt, autoplay allowed, no update or plug-in downloads,
  so no OpenH264: it decodes VP8/VP9/AV1 and not H264), optionally through a wrapper
  (`ip netns exec NS`: tests/support/netlab.py); `Firefox.bidi_port()` waits for its BiDi
  port on the loopback of the namespace it runs in.
- `Bidi`: the few BiDi commands the tests use, over an aiohttp websocket: a session, a tab
  per participant (`browsingContext`), `script.evaluate`, and the uncaught errors of each
  tab (`log.entryAdded`, as Playwright's `pageerror`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.chromium import _die_with_parent

FIREFOX = "/usr/bin/firefox-esr"

PREFS: dict[str, Any] = {
    # fake camera and microphone, no permission prompt
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # pages play sound without a click (several tabs share the browser)
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    # real host candidates, not mDNS names the server cannot resolve
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    # nothing fetched at run time: no OpenH264 (Firefox's only H264), no updates
    "media.gmp-manager.updateEnabled": False,
    "media.gmp-gmpopenh264.enabled": False,
    "app.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    # background tabs keep their timers
    "dom.min_background_timeout_value": 4,
}


def available() -> str | None:
    """Why Firefox cannot run here, or None when it can."""
    if shutil.which(FIREFOX) is None:
        return f"{FIREFOX} is not installed (Debian: firefox-esr; `make setup-test`)"
    return None


def _user_js(prefs: Mapping[str, Any]) -> str:
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


class Firefox:
    """A Firefox process that was started; `bidi_port()` waits until it listens."""

    def __init__(self, process: subprocess.Popen[bytes], profile: Path, timeout: float) -> None:
        self.process = process
        self.profile = profile
        self.timeout = timeout

    async def bidi_port(self) -> int:
        """Its WebDriver BiDi port, once it listens (it writes the port into the profile)."""
        server_file = self.profile / "WebDriverBiDiServer.json"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
                return int(json.loads(await asyncio.to_thread(server_file.read_text))["ws_port"])
            if loop.time() > deadline or self.process.poll() is not None:
                raise RuntimeError("firefox did not start (no WebDriverBiDiServer.json)")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def firefox_over_bidi(
    profile: Path,
    wrapper: Sequence[str] = (),
    prefs: Mapping[str, Any] | None = None,
    timeout: float = 30,
) -> AsyncIterator[Firefox]:
    """Start headless Firefox with a new profile at `profile` (PREFS, then `prefs`) and
    yield at once (it takes seconds to listen: `Firefox.bidi_port()`); stop it after."""
    process = await asyncio.to_thread(_start, profile, wrapper, {**PREFS, **(prefs or {})})
    try:
        yield Firefox(process, profile, timeout)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), 10)
        except TimeoutError:
            process.kill()


def _start(
    profile: Path, wrapper: Sequence[str], prefs: Mapping[str, Any]
) -> subprocess.Popen[bytes]:
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "user.js").write_text(_user_js(prefs))
    return subprocess.Popen(
        [
            *wrapper,
            FIREFOX,
            "--headless",
            "--no-remote",
            "--remote-debugging-port=0",
            "--profile",
            str(profile),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )


class BidiError(RuntimeError):
    """A BiDi command failed, or a script threw."""


class Bidi:
    """One WebDriver BiDi session (docs: https://w3c.github.io/webdriver-bidi/)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._next = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        #: Uncaught errors, by browsing context.
        self.errors: dict[str, list[str]] = {}
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, port: int, listening: int | None = None) -> AsyncIterator[Bidi]:
        """A session on the Firefox at 127.0.0.1:`port`; ended afterwards. `listening`:
        the port Firefox listens on, when `port` is a bridge to it (Firefox refuses a
        handshake whose Host names another)."""
        host = f"127.0.0.1:{listening or port}"
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(
                f"ws://127.0.0.1:{port}/session", max_msg_size=0, headers={"Host": host}
            ) as ws,
        ):
            bidi = cls(ws)
            try:
                await bidi.command("session.new", {"capabilities": {}})
                await bidi.command("session.subscribe", {"events": ["log.entryAdded"]})
                yield bidi
            finally:
                with contextlib.suppress(BidiError, ConnectionError, TimeoutError):
                    await asyncio.wait_for(bidi.command("session.end", {}), 5)
                bidi._reader.cancel()

    async def command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a command; its result (BidiError on an error answer)."""
        self._next += 1
        future = self._waiting[self._next] = asyncio.get_running_loop().create_future()
        await self.ws.send_json({"id": self._next, "method": method, "params": params})
        answer = await future
        if answer.get("type") == "error":
            raise BidiError(f"{method}: {answer.get('error')}: {answer.get('message')}")
        return dict(answer.get("result", {}))

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data and data["id"] in self._waiting:
                self._waiting.pop(data["id"]).set_result(data)
            elif data.get("method") == "log.entryAdded":
                entry = data["params"]
                if entry.get("type") == "javascript":  # uncaught, not console.error
                    context = entry.get("source", {}).get("context", "")
                    self.errors.setdefault(context, []).append(entry.get("text", ""))
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("the BiDi connection closed"))

    async def new_tab(self) -> Tab:
        result = await self.command("browsingContext.create", {"type": "tab"})
        return Tab(self, result["context"])


class Tab:
    """One top-level browsing context."""

    def __init__(self, bidi: Bidi, context: str) -> None:
        self.bidi = bidi
        self.context = context

    @property
    def errors(self) -> list[str]:
        """Its uncaught script errors so far."""
        return self.bidi.errors.get(self.context, [])

    async def goto(self, url: str) -> None:
        await self.bidi.command(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    async def evaluate(self, expression: str, user_gesture: bool = False) -> Any:
        """The value of `expression` (awaited if a promise) as JSON gives it back;
        `user_gesture`: as if the user had just clicked (autoplay, popups)."""
        result = await self.bidi.command(
            "script.evaluate",
            {
                "expression": f"(async () => JSON.stringify(await ({expression})))()",
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
                "userActivation": user_gesture,
            },
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BidiError(f"{expression[:80]!r} threw: {details.get('text')}")
        value = result.get("result", {})
        return json.loads(value["value"]) if value.get("type") == "string" else None

    async def click(self, selector: str) -> None:
        """Click the element `selector` names, with the user activation a click gives."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()", True)

    async def close(self) -> None:
        await self.bidi.command("browsingContext.close", {"context": self.context})
