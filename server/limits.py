"""What one client may hold of the server: time to send a request, its size, connections.

* Headers: aiohttp's keep-alive timer starts when a connection opens, so a connection
  without a complete request head after `request_timeout` seconds is closed (slowloris);
  the same timer closes idle keep-alive connections (server/listener.py sets it).
* Body: `body_limits`, a middleware: a declared Content-Length above the body cap is
  refused at once with 413, before a byte of it is read; a body that has not fully
  arrived `request_timeout` seconds after its headers gets 408. Both close the connection.
  (A chunked body has no declared length: over 128 KiB it stalls and gets the 408.)
* Connections: `ConnectionGuard` wraps aiohttp's protocol factory, counts open
  connections per peer address and answers the one over the limit with a 503 and closes
  it, before aiohttp sees it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger(__name__)

REFUSAL_TEXT = b"Too many connections from your address; try again later.\n"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\nRetry-After: 10\r\n\r\n%s"
    % (len(REFUSAL_TEXT), REFUSAL_TEXT)
)


def _closing(exc: web.HTTPException) -> web.HTTPException:
    exc.force_close()
    return exc


def body_limits(max_bytes: int, timeout: float, streamed: dict[str, int]) -> Middleware:
    """Refuse an announced body over the cap (413) and one slower than `timeout` (408).

    The cap is `max_bytes`, or `streamed[prefix]` for paths under a prefix whose handler
    reads its body as a stream (engine.io's polling POSTs, up to its own message size):
    there the whole handler gets `timeout`, as it reads the body first and answers at
    once. Elsewhere the body is awaited before the handler runs."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)
        prefix = next((p for p in streamed if request.path.startswith(p)), None)
        cap = max_bytes if prefix is None else streamed[prefix]
        length = request.content_length
        if length is not None and length > cap:
            raise _closing(web.HTTPRequestEntityTooLarge(cap, length))
        try:
            async with asyncio.timeout(timeout):
                if prefix is not None:
                    return await handler(request)
                # Up to 128 KiB stays buffered without a reader (aiohttp's high-water
                # mark), more than the cap; the handler then reads it from memory.
                await request.content.wait_eof()
        except TimeoutError:
            raise _closing(web.HTTPRequestTimeout()) from None
        return await handler(request)

    return middleware


class ConnectionGuard:
    """A protocol factory: aiohttp's, for at most `limit` open connections per address."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        limit: int,
        exempt: Callable[[str], bool] = lambda _address: False,
    ) -> None:
        self.factory = factory
        self.limit = limit
        #: addresses not held to the limit (trusted reverse proxies: everyone's connections)
        self.exempt = exempt
        self._open: Counter[str] = Counter()
        self._full: set[str] = set()

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self)

    def open(self, address: str) -> int:
        """How many connections `address` holds now."""
        return self._open[address]

    def admit(self, address: str) -> bool:
        if self._open[address] >= self.limit and not self.exempt(address):
            if address not in self._full:  # one line per episode, not per connection
                self._full.add(address)
                log.warning(
                    "%s holds %d connections, the limit: refusing more", address, self.limit
                )
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]
        if self._open[address] < self.limit:
            self._full.discard(address)


class _Guarded(asyncio.Protocol):
    """One connection: counted and handed to aiohttp's protocol, or refused."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard
        self._inner: asyncio.Protocol | None = None
        self._address = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._guard.admit(address):
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(REFUSAL)
            transport.close()
            return
        self._address = address
        self._inner = self._guard.factory()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is None:
            return
        self._guard.release(self._address)
        inner, self._inner = self._inner, None
        inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()
