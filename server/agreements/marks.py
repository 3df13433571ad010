"""The handwritten marks: checking the PNG a signer draws, storing it.

A mark arrives as a `data:image/png;base64,` URL in `agreement_sign`. `decode_mark` does
the cheap checks on the event loop: size, base64, the PNG signature and the image size
its header (IHDR) announces, so a small file that would decode to a huge image is
refused before it is decoded. `MarkChecker` then decodes it in a worker process (a
4-megapixel decode takes a tenth of a second and holds the GIL: it must not stall the
event loop) to see that something is drawn. A mark is stored content-addressed
(`marks/<sha256>.png` in the agreement's folder) and read back, checked against its
sha256, when the signed PDF is made.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import sys
from pathlib import Path

from tiaojie.server import mark_ink
from tiaojie.server.agreements.storage import mark_path, write_atomic
from tiaojie.server.errors import TiaojieError, bad_request

log = logging.getLogger(__name__)

#: The largest handwritten mark accepted (decoded PNG bytes).
MAX_MARK_BYTES = 200 * 1024
#: The largest mark image: pixels per side, and in all (a 2x screen's signing pad is
#: about 1.5 megapixels; 4 megapixels of RGBA decode to 16 MB).
MAX_MARK_SIDE = 4000
MAX_MARK_PIXELS = 4_000_000
MARK_PREFIX = "data:image/png;base64,"
#: Seconds the worker gets for one mark (a 4-megapixel mark takes a tenth of that).
CHECK_TIMEOUT = 10.0
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_mark(data_url: str) -> bytes:
    """The PNG bytes of a `data:image/png;base64,` mark, checked without decoding the
    image: size, base64, the PNG signature and the image size in its header."""
    if not data_url.startswith(MARK_PREFIX):
        raise bad_request("mark must be a data:image/png;base64, URL")
    encoded = data_url[len(MARK_PREFIX) :]
    if len(encoded) * 3 // 4 > MAX_MARK_BYTES + 3:
        raise _mark_too_large()
    try:
        png = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("mark is not valid base64") from None
    if len(png) > MAX_MARK_BYTES:
        raise _mark_too_large()
    if not png.startswith(_PNG_SIGNATURE):
        raise bad_request("mark is not a PNG image")
    width, height = png_size(png)
    if not (0 < width <= MAX_MARK_SIDE and 0 < height <= MAX_MARK_SIDE):
        raise bad_request(f"mark must be at most {MAX_MARK_SIDE} pixels on each side")
    if width * height > MAX_MARK_PIXELS:
        raise bad_request(f"mark must be at most {MAX_MARK_PIXELS // 1_000_000} megapixels")
    return png


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header: its first chunk, IHDR (PNG spec 11.2.2)."""
    if len(png) < 33 or png[12:16] != b"IHDR":
        raise bad_request("mark is not a valid PNG image")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _mark_too_large() -> TiaojieError:
    return TiaojieError(
        "mark_too_large",
        f"The handwritten mark is too large (at most {MAX_MARK_BYTES // 1024} KiB).",
        413,
    )


def _raise_for(found: str) -> None:
    if found == mark_ink.EMPTY:
        raise TiaojieError("mark_empty", "Draw your handwritten mark first.", 400)
    if found != mark_ink.OK:
        raise bad_request("mark is not a valid PNG image")


class MarkChecker:
    """Decodes marks in a worker process (`python -m tiaojie.server.mark_ink`), started
    on first use and replaced if it dies or takes longer than CHECK_TIMEOUT.

    Not a thread: Pillow's PNG decoder holds the GIL (0.1 s for 4 megapixels), so in a
    thread it would stall the event loop all the same. One worker, one mark at a time.
    """

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._starting: asyncio.Task[None] | None = None

    async def _start(self) -> asyncio.subprocess.Process:
        if self._process is None or self._process.returncode is not None:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                mark_ink.__name__,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        return self._process

    def warm_up(self) -> None:
        """Start the worker now (signatures were requested), so the first mark does not
        wait for it."""
        if self._process is None and self._starting is None:
            self._starting = asyncio.ensure_future(self._warm_up())

    async def _warm_up(self) -> None:
        async with self._lock:
            with contextlib.suppress(OSError):
                await self._start()

    async def check(self, png: bytes) -> None:
        """A decodable PNG with something drawn on it, else `mark_empty` or bad_request."""
        async with self._lock:
            process = await self._start()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(len(png).to_bytes(4, "big") + png)
                await process.stdin.drain()
                line = await asyncio.wait_for(process.stdout.readline(), CHECK_TIMEOUT)
            except (OSError, TimeoutError):
                line = b""
            if not line:
                log.warning("the mark-checking process failed on a mark; starting another")
                await self.close()
                raise TiaojieError(
                    "mark_unchecked", "The mark could not be checked; draw it again.", 400
                )
        _raise_for(line.decode(errors="replace").strip())

    async def close(self) -> None:
        process, self._process = self._process, None
        if self._starting is not None:
            self._starting.cancel()
            self._starting = None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()


def store_mark(folder: Path, mark_sha256: str, png: bytes) -> None:
    """Write the mark into the agreement's folder, named by its sha256."""
    write_atomic(mark_path(folder, mark_sha256), png)


def load_mark(folder: Path, mark_sha256: str, name: str) -> bytes:
    """The stored mark of `name`, checked against the sha256 their signature binds."""
    png = mark_path(folder, mark_sha256).read_bytes()
    if hashlib.sha256(png).hexdigest() != mark_sha256:
        raise TiaojieError("mark_corrupt", f"The mark of {name} changed on disk.")
    return png
