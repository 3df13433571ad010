"""Serving the application on a TCP port: what `tiaojie serve` runs.

aiohttp's `AppRunner` with the redacting access log (server/access_log.py), the request
timeout as aiohttp's keep-alive timeout (which also bounds the wait for a request's
headers) and the per-address connection guard (server/limits.py) around its protocol
factory. `web.run_app` cannot take a protocol factory, so `run` does what it does: serve
until SIGINT or SIGTERM, then shut the application down gracefully: first the work the
application registered under `BEFORE_STOP` (several nodes: moving its rooms to other
nodes) while the port still takes connections, then, with new connections refused, the
work under `BEFORE_CLOSE` (stopping its recordings), while every connection still works,
then aiohttp's shutdown.

With --tls-cert/--tls-key the port serves HTTPS, and a second, loopback-only plain HTTP
port (picked by the kernel) serves this machine's recorder processes and the built-in
TSA: they reach the server at `Settings.local_url` without having to trust a certificate
issued for the public name (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web

from tiaojie.server.access_log import RedactingAccessLogger
from tiaojie.server.config import Settings
from tiaojie.server.forwarded import Forwarded, parse_trusted_proxies
from tiaojie.server.limits import ConnectionGuard

#: After a refused or timed-out request, how long aiohttp reads and drops what the client
#: still sends (so it can read the answer) before closing.
LINGER_SECONDS = 2.0

#: Work to do when the server is asked to stop, before aiohttp shuts down: from then on
#: socket.io round trips are no longer answered (an acknowledgement waits for its
#: timeout), so what still needs them runs here. New connections are refused already.
StopWork = Callable[[], Awaitable[None]]
BEFORE_CLOSE = web.AppKey("before_close", list[StopWork])
#: Work to do first, while new connections are still accepted: several nodes move their
#: rooms away (a drain), and the clients that reconnect here are sent to the new node.
BEFORE_STOP = web.AppKey("before_stop", list[StopWork])


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context, or None without --tls-cert; ValueError naming the files
    when they cannot be used."""
    if settings.tls_cert is None and settings.tls_key is None:
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        raise ValueError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(
            f"cannot use --tls-cert {settings.tls_cert} with --tls-key {settings.tls_key}: {error}"
        ) from None
    return context


def internal_socket() -> socket.socket:
    """With TLS, the loopback-only plain HTTP socket for this machine's recorder and
    built-in TSA (bound before the app is made: its port goes into the settings)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Listener:
    """The application, listening; `close` shuts it down as run_app does."""

    def __init__(
        self, runner: web.AppRunner, server: asyncio.Server, internal: asyncio.Server | None
    ) -> None:
        self.runner = runner
        self.server = server
        self.internal = internal

    @classmethod
    async def start(
        cls, app: web.Application, settings: Settings, internal: socket.socket | None = None
    ) -> Listener:
        runner = web.AppRunner(
            app,
            access_log_class=RedactingAccessLogger,
            keepalive_timeout=settings.request_timeout,
            lingering_time=LINGER_SECONDS,
        )
        await runner.setup()
        try:
            handler = cast(web.Server, runner.server)
            limit = settings.max_connections_per_ip
            proxies = Forwarded(parse_trusted_proxies(settings.trusted_proxies))
            factory = ConnectionGuard(handler, limit, proxies.is_trusted) if limit else handler
            loop = asyncio.get_running_loop()
            server = await loop.create_server(
                factory, settings.host, settings.port, ssl=tls_context(settings)
            )
            local = await loop.create_server(factory, sock=internal) if internal else None
        except BaseException:
            await runner.cleanup()
            raise
        return cls(runner, server, local)

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for work in self.runner.app.get(BEFORE_STOP, []):
            await work()
        self.server.close()
        for work in self.runner.app.get(BEFORE_CLOSE, []):
            await work()
        if self.internal is not None:
            self.internal.close()
        await self.runner.cleanup()


def freeze_what_startup_made() -> None:
    """Keep the objects made so far (modules, the app, its services: hundreds of thousands)
    out of the cyclic garbage collector's full collections: each of those walked them all,
    and a walk took ~280 ms on this 2-core machine, a stall of the event loop (a join, a
    packet batch) every time it ran. They live as long as the process anyway; what rooms
    and connections make afterwards is collected as before."""
    gc.collect()
    gc.freeze()


async def serve_until_stopped(
    app: web.Application, settings: Settings, internal: socket.socket | None = None
) -> None:
    listener = await Listener.start(app, settings, internal)
    freeze_what_startup_made()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await listener.close()


def run(app: web.Application, settings: Settings, internal: socket.socket | None = None) -> None:
    """Serve `app` until SIGINT or SIGTERM. Raises OSError if the port cannot be bound."""
    asyncio.run(serve_until_stopped(app, settings, internal))
