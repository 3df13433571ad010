"""One download of a whole Recording: its bundle (tiaojie.archive.bundle, a ZIP of the
folder and the signed agreements bound to it) streamed as it is written, so a recording
of gigabytes needs neither memory nor a temporary file: a worker thread writes the ZIP
into a small queue that the response drains (the thread waits while the client is slow,
and stops when the client goes away).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from pathlib import Path
from typing import IO, cast

from aiohttp import web

from tiaojie.archive import bundle

log = logging.getLogger(__name__)

#: Chunks of the ZIP in flight between the writing thread and the response.
QUEUE_CHUNKS = 8
CHUNK = 256 * 1024


class _Gone(Exception):
    """The client went away: the writing thread stops."""


class _QueueWriter(io.RawIOBase):
    """A write-only, unseekable file whose bytes go to an asyncio queue in chunks."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]):
        self._loop = loop
        self._queue = queue
        self._buffer = bytearray()
        self.gone = False

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self.send(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def flush(self) -> None:
        if self._buffer and not self.closed:
            self.send(bytes(self._buffer))
            self._buffer.clear()

    def send(self, chunk: bytes | None) -> None:
        if self.gone:
            raise _Gone
        asyncio.run_coroutine_threadsafe(self._queue.put(chunk), self._loop).result()

    def finish(self) -> None:
        self.flush()
        self.send(None)


async def stream_bundle(
    request: web.Request, files: list[tuple[str, Path]], filename: str
) -> web.StreamResponse:
    """Answer `request` with the bundle of `files` as `filename` (an attachment)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        }
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_CHUNKS)
    writer = _QueueWriter(loop, queue)

    def produce() -> None:
        try:
            bundle.write(cast(IO[bytes], writer), files)
            writer.finish()
        except _Gone:
            pass
        except Exception:
            log.exception("writing the bundle %s failed", filename)
            with contextlib.suppress(_Gone):
                writer.send(None)  # the response ends (short: the client sees a bad ZIP)

    task = loop.run_in_executor(None, produce)
    try:
        while (chunk := await queue.get()) is not None:
            await response.write(chunk)
    finally:
        writer.gone = True
        while not queue.empty():  # let a thread blocked on a full queue go on, and stop
            queue.get_nowait()
        await task
    await response.write_eof()
    return response
