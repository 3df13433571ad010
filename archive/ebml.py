"""EBML (Matroska/WebM) element headers, for cutting a WebM Segment file the way an MP4 is
cut at its boxes: the init part is everything before the first Cluster, then each
Cluster is one Fragment. The recorder's writer and the verifier both read headers only.
"""

from __future__ import annotations

#: The Segment element: its header is read, then its children (it is written with an
#: unknown size by a muxer that cannot seek back).
SEGMENT_ID = 0x18538067
CLUSTER_ID = 0x1F43B675
#: An element header is at most 4 bytes of ID and 8 of size.
MAX_HEADER = 12


def _vint_length(first: int) -> int:
    """Bytes of a variable-length integer from its first byte (0: invalid)."""
    for length in range(1, 9):
        if first & (0x80 >> (length - 1)):
            return length
    return 0


def element_header(
    data: bytes | bytearray | memoryview, pos: int = 0
) -> tuple[int, int, int] | None:
    """(element id, header length, data size; -1 if unknown) of the element at `pos`, or
    None if `data` ends inside the header. ValueError for a header that is not EBML."""
    if pos >= len(data):
        return None
    id_length = _vint_length(data[pos])
    if not 1 <= id_length <= 4:
        raise ValueError(f"not an EBML element ID at byte {pos}")
    if pos + id_length >= len(data):
        return None
    size_length = _vint_length(data[pos + id_length])
    if size_length == 0:
        raise ValueError(f"not an EBML element size at byte {pos + id_length}")
    end = pos + id_length + size_length
    if end > len(data):
        return None
    element = int.from_bytes(data[pos : pos + id_length], "big")
    raw = int.from_bytes(data[pos + id_length : end], "big") & ((1 << (7 * size_length)) - 1)
    size = -1 if raw == (1 << (7 * size_length)) - 1 else raw
    return element, id_length + size_length, size
