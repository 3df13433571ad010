"""Splitting a Segment MP4 into its parts exactly as the recorder's writer cut it, from its
top-level box headers alone (size and type, 64-bit largesize): the init segment is
everything before the first `moof`, then each Fragment runs up to and including the `mdat`
that follows a `moof`. Each part is a `SegmentPart`, hashed with sha256 in the same single
sequential pass, in large reads (`split_segment`); `split_segments` does many files in
parallel threads (file reads and hashlib release the GIL). Nothing here knows the Chain:
segments_check compares the parts with it.

A `.webm` Segment (VP8 video: ffmpeg's MP4 muxer has no VP8) is cut at its EBML elements
the same way (archive/ebml.py): the init part is everything before the first Cluster
(the Segment element's header included), then each Cluster is one Fragment.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from tiaojie.archive import ebml

READ_SIZE = 1 << 20  # read unit for hashing: large reads, hashlib releases the GIL


@dataclass
class SegmentPart:
    """The init segment or one Fragment of a Segment file, as its MP4 boxes delimit it,
    with its sha256."""

    kind: str  # "init" or "fragment", as the Chain's entry types
    offset: int
    length: int
    sha256: str
    complete: bool  # False: the file ends inside a box, or a box header is invalid


def split_segment(path: Path, buffer: bytearray | None = None) -> list[SegmentPart]:
    """Split a Segment file at its top-level boxes (size/type, 64-bit largesize) the way
    the recorder's writer cut it, hashing each part in the same single sequential pass."""
    buffer = buffer if buffer is not None else bytearray(READ_SIZE)
    if path.suffix.lower() == ".webm":
        return _split_webm(path, buffer)
    view = memoryview(buffer)
    parts: list[SegmentPart] = []
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
            parts.append(SegmentPart(kind, start, end - start, hasher.hexdigest(), True))
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
            last = "fragment" if init_done else "init"
            parts.append(SegmentPart(last, start, pos - start, hasher.hexdigest(), complete))
    return parts


def split_segments(
    paths: list[Path], workers: int | None
) -> dict[Path, list[SegmentPart] | OSError]:
    """Split and hash Segment files in parallel: hashlib and file reads release the GIL."""
    results: dict[Path, list[SegmentPart] | OSError] = {}
    if not paths:
        return results
    workers = workers or min(len(paths), os.cpu_count() or 1, 8)

    def work(path: Path) -> list[SegmentPart] | OSError:
        try:
            return split_segment(path)
        except OSError as error:
            return error

    if workers <= 1:
        return {path: work(path) for path in paths}
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for path, result in zip(paths, pool.map(work, paths), strict=True):
            results[path] = result
    return results


def _split_webm(path: Path, buffer: bytearray) -> list[SegmentPart]:
    """`split_segment` for a WebM Segment: at its Clusters (module docstring)."""
    view = memoryview(buffer)
    parts: list[SegmentPart] = []
    with path.open("rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        pos = start = 0
        hasher = hashlib.sha256()
        init_done = False
        complete = True

        def hash_through(end: int) -> None:
            """Hash the file from `pos` up to `end` into the current range."""
            f.seek(pos)
            left = end - pos
            while left > 0:
                got = f.readinto(view[: min(len(view), left)])
                if not got:
                    break
                hasher.update(view[:got])
                left -= got

        def close_range(kind: str, end: int) -> None:
            nonlocal hasher, start
            parts.append(SegmentPart(kind, start, end - start, hasher.hexdigest(), True))
            hasher, start = hashlib.sha256(), end

        while pos < size:
            f.seek(pos)
            head = f.read(min(ebml.MAX_HEADER, size - pos))
            try:
                header = ebml.element_header(head)
            except ValueError:
                header = None
            if header is None or (header[2] < 0 and header[0] != ebml.SEGMENT_ID):
                hash_through(size)  # not EBML, or the file ends inside a header
                pos, complete = size, False
                break
            element, header_length, length = header
            end = pos + header_length + (0 if element == ebml.SEGMENT_ID else length)
            if end > size:  # the file ends inside this element: the rest is one range
                hash_through(size)
                pos, complete = size, False
                break
            if element == ebml.CLUSTER_ID and not init_done:
                if pos > start:
                    close_range("init", pos)
                init_done = True
            hash_through(end)
            pos = end
            if element == ebml.CLUSTER_ID:
                close_range("fragment", pos)
        if pos > start or not complete:
            last = "fragment" if init_done else "init"
            parts.append(SegmentPart(last, start, pos - start, hasher.hexdigest(), complete))
    return parts
