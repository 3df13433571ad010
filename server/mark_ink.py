"""Whether a handwritten mark's PNG decodes, and has ink on it; and the worker process
that answers that question for the server (server/agreements/marks.py).

The worker (`python -m tiaojie.server.mark_ink`) imports Pillow and nothing else of the
server. It reads requests from stdin (4 bytes big-endian length, then the PNG) and
answers each with one line: a word from `ink`. Words, not exceptions: Tiaojie's errors
do not cross a process boundary. Its address space is capped at `MEMORY_LIMIT`, so no
image can make it take the machine's memory.
"""

from __future__ import annotations

import io
import sys
from typing import BinaryIO

OK = "ok"
INVALID = "invalid"
EMPTY = "empty"
#: The largest request the worker reads (bytes of PNG; the server sends at most 200 KiB).
MAX_REQUEST = 1024 * 1024
MEMORY_LIMIT = 1024 * 1024 * 1024


def ink(png: bytes) -> str:
    """OK if `png` decodes and has something darker than light grey on white paper,
    EMPTY if nothing is drawn (transparent or white), else INVALID. Blocking."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as image:
            if image.format != "PNG":
                return INVALID
            rgba = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, MemoryError):
        return INVALID
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    drawn = Image.alpha_composite(paper, rgba).convert("L").point(lambda v: 255 if v < 200 else 0)
    return EMPTY if drawn.getbbox() is None else OK


def serve(requests: BinaryIO, answers: BinaryIO) -> int:
    """Answer requests until stdin closes (module docstring)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = 16_000_000  # the server checks the header first; belt and braces
    while True:
        header = requests.read(4)
        if len(header) < 4:
            return 0
        size = int.from_bytes(header, "big")
        if size > MAX_REQUEST:
            return 2
        png = requests.read(size)
        answers.write(ink(png).encode() + b"\n")
        answers.flush()


def _cap_memory() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass  # not on this platform: the server's size checks still bound the decode


if __name__ == "__main__":
    _cap_memory()
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))
