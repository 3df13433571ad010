"""How late the event loop runs a task that asked to wake up: a probe of a stalled loop.

The test's server runs on the test's own event loop, so anything that blocks the server's
loop delays the probe by as long.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class LoopLag:
    """`async with LoopLag() as lag:` ... `lag.worst`: the longest the loop was late (s)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.worst = 0.0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.worst = max(self.worst, loop.time() - before - self.interval)
            self.samples += 1

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.ensure_future(self._probe())
        await asyncio.sleep(0)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
