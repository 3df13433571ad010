"""Cutting a Segment MP4 exactly as the recorder's writer cut it, from its top-level box
headers alone (size and type, 64-bit largesize): the init segment is everything before the
first `moof`, then each Fragment runs up to and including the `mdat` that follows a `moof`.
Each range is a `Cut`, hashed with sha256 in the same single sequential pass, in large reads;
`hash_files` cuts many files in parallel threads (file reads and hashlib release the GIL).
Nothing here knows the Chain: segments_check compares the Cuts with it.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

READ_SIZE = 1 << 20  # read unit for hashing: large reads, hashlib releases the GIL


@dataclass
class Cut:
    """A byte range of a Segment file as its MP4 boxes delimit it, with its sha256."""

    kind: str  # "init" or "fragment"
    offset: int
    length: int
    sha256: str
    complete: bool  # False: the file ends inside a box, or a box header is invalid


def cut_segment(path: Path, buffer: bytearray | None = None) -> list[Cut]:
    """Re-cut a Segment file from its top-level boxes (size/type, 64-bit largesize) the way
    the recorder's writer did, hashing each range in the same single sequential pass."""
    buffer = buffer if buffer is not None else bytearray(READ_SIZE)
    view = memoryview(buffer)
    cuts: list[Cut] = []
    with path.open("rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        pos = start = 0
        hasher = hashlib.sha256()
        init_done = in_fragment = False
        complete = True

        def take(n: int) -> int:
            """Hash the next n bytes of the file into the current range."""
            done = 0
            while done < n:
                got = f.readinto(view[: min(len(view), n - done)])
                if not got:
                    break
                hasher.update(view[:got])
                done += got
            return done

        def close_range(kind: str, end: int) -> None:
            nonlocal hasher, start
            cuts.append(Cut(kind, start, end - start, hasher.hexdigest(), True))
            hasher, start = hashlib.sha256(), end

        while pos < size:
            header = f.read(min(16, size - pos))
            box_size = 0
            kind = b""
            if len(header) >= 8:
                box_size, kind = struct.unpack_from(">I4s", header)
                if box_size == 1:
                    box_size = struct.unpack_from(">Q", header, 8)[0] if len(header) == 16 else 0
            if box_size < 8 or pos + box_size > size:
                # an invalid header, or the file ends inside this box: the rest is one range
                hasher.update(header)
                take(size - pos - len(header))
                pos, complete = size, False
                break
            if kind == b"moof":
                if not init_done:
                    if pos > start:
                        close_range("init", pos)
                    init_done = True
                in_fragment = True
            if box_size < len(header):  # a box smaller than the 16 bytes read ahead
                hasher.update(header[:box_size])
                f.seek(pos + box_size)
            else:
                hasher.update(header)
                take(box_size - len(header))
            pos += box_size
            if kind == b"mdat" and in_fragment:
                close_range("fragment", pos)
                in_fragment = False
        if pos > start or not complete:
            cuts.append(Cut("fragment" if init_done else "init", start, pos - start, "", complete))
            cuts[-1].sha256 = hasher.hexdigest()
    return cuts


def hash_files(paths: list[Path], workers: int | None) -> dict[Path, list[Cut] | OSError]:
    """Cut and hash Segment files in parallel: hashlib and file reads release the GIL."""
    results: dict[Path, list[Cut] | OSError] = {}
    if not paths:
        return results
    workers = workers or min(len(paths), os.cpu_count() or 1, 8)

    def work(path: Path) -> list[Cut] | OSError:
        try:
            return cut_segment(path)
        except OSError as error:
            return error

    if workers <= 1:
        return {path: work(path) for path in paths}
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for path, result in zip(paths, pool.map(work, paths), strict=True):
            results[path] = result
    return results
