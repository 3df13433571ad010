"""Serving the application on a TCP port: what `tiaojie serve` runs.

aiohttp's `AppRunner` with the redacting access log (server/access_log.py), the request
timeout as aiohttp's keep-alive timeout (which also bounds the wait for a request's
headers) and the per-address connection guard (server/limits.py) around its protocol
factory. `web.run_app` cannot take a protocol factory, so `run` does what it does: serve
until SIGINT or SIGTERM, then shut the application down gracefully: first the work the
application registered under `BEFORE_CLOSE` (stopping its recordings), while every
connection still works, then aiohttp's shutdown.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web

from tiaojie.server.access_log import RedactingAccessLogger
from tiaojie.server.config import Settings
from tiaojie.server.limits import ConnectionGuard

#: After a refused or timed-out request, how long aiohttp reads and drops what the client
#: still sends (so it can read the answer) before closing.
LINGER_SECONDS = 2.0

#: Work to do when the server is asked to stop, before aiohttp shuts down: from then on
#: socket.io round trips are no longer answered (an acknowledgement waits for its
#: timeout), so what still needs them runs here. New connections are refused already.
StopWork = Callable[[], Awaitable[None]]
BEFORE_CLOSE = web.AppKey("before_close", list[StopWork])


class Listener:
    """The application, listening; `close` shuts it down as run_app does."""

    def __init__(self, runner: web.AppRunner, server: asyncio.Server) -> None:
        self.runner = runner
        self.server = server

    @classmethod
    async def start(cls, app: web.Application, settings: Settings) -> Listener:
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
            factory = ConnectionGuard(handler, limit) if limit else handler
            server = await asyncio.get_running_loop().create_server(
                factory, settings.host, settings.port
            )
        except BaseException:
            await runner.cleanup()
            raise
        return cls(runner, server)

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        for work in self.runner.app.get(BEFORE_CLOSE, []):
            await work()
        await self.runner.cleanup()


async def serve_until_stopped(app: web.Application, settings: Settings) -> None:
    listener = await Listener.start(app, settings)
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


def run(app: web.Application, settings: Settings) -> None:
    """Serve `app` until SIGINT or SIGTERM. Raises OSError if the port cannot be bound."""
    asyncio.run(serve_until_stopped(app, settings))
