"""A small socket.io test client that records every event it receives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import socketio

#: How long a client waits for an acknowledgement, an event or its connection before the
#: test fails (as tests/conftest.py EXPECT_TIMEOUT_MS for Playwright). 5 s was too short
#: on the shared 2-core machine with two test workers (an `agreement_request_signatures`
#: that makes the PDF was acknowledged later); an answer that comes returns at once, so the
#: longer bound costs nothing when things work. Checks that something does NOT come pass
#: their own, shorter timeout.
WAIT_S = 15.0


class Refused(Exception):
    def __init__(self, data: Any) -> None:
        super().__init__(data)
        # python-socketio hands over {"message": code, "data": {...}}; JS gets err.data.
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        self.data = data
        self.code = data.get("error") if isinstance(data, dict) else None


class SignalClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._seen = 0
        self._changed = asyncio.Event()
        self.refusal: Any = None
        self.disconnected = asyncio.Event()
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)

    async def _record(self, event: str, *args: Any) -> None:
        data = args[0] if args else None
        self.events.append((event, data))
        if event == "room_state" and isinstance(data, dict) and data.get("subscriber_offer"):
            # the first subscriber offer comes in room_state (docs/PROTOCOL.md): recorded
            # as the notification it stands for, as a client handles it
            self.events.append(("subscriber_offer", data["subscriber_offer"]))
        self._changed.set()

    async def _on_connect_error(self, data: Any) -> None:
        self.refusal = data

    async def _on_disconnect(self, *args: Any) -> None:
        self.disconnected.set()
        self._changed.set()

    async def connect(self, auth: Any) -> SignalClient:
        """Connect; a `redirect` (several nodes: the room's media is on another node) is
        followed, as every client does, and `base_url` is then that node's."""
        for _ in range(3):
            self.refusal = None
            try:
                await self.sio.connect(
                    self.base_url, auth=auth, transports=["websocket"], wait_timeout=WAIT_S
                )
            except socketio.exceptions.ConnectionError:
                for _ in range(10):
                    if self.refusal is not None:
                        break
                    await asyncio.sleep(0.05)
                refused = Refused(self.refusal)
                if refused.code != "redirect":
                    raise refused from None
                self.base_url = refused.data["url"]
                continue
            return self
        raise Refused(self.refusal)

    async def wait_for(
        self, event: str, where: Callable[[Any], bool] | None = None, timeout: float = WAIT_S
    ) -> Any:
        """The first event named `event` (matching `where`) received, waiting if need be."""

        async def find() -> Any:
            while True:
                for name, data in self.events:
                    if name == event and (where is None or where(data)):
                        return data
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    def received(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def call(self, event: str, *payload: Any) -> Any:
        data = payload[0] if len(payload) == 1 else tuple(payload)
        return await self.sio.call(event, data, timeout=WAIT_S)

    async def close(self) -> None:
        """Leave, as a person closing the page does: `leave`, then disconnect. (A connection
        that just breaks keeps its seat for the reconnect grace, server/signalling.py.)"""
        if self.sio.connected:
            with contextlib.suppress(Exception):  # refused (room ended...) or already closing
                await self.sio.call("leave", {}, timeout=2)
        if self.sio.connected:
            await self.sio.disconnect()
