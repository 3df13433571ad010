"""JSON text that always encodes as UTF-8, whatever Python strings it holds.

A Python string may hold lone UTF-16 surrogates ("x\\udc80": any JSON or socket.io peer
can send "\\udc80"), which UTF-8 cannot encode, so `json.dumps(..., ensure_ascii=False)
.encode()` raises on them. Here such a character is written as its JSON escape
(`\\udc80`), as JavaScript's JSON.stringify writes it: reading the text back gives the
same string, so canonical bytes, and the hashes over them, do not change between
writing and verifying. Valid text is written exactly as before (UTF-8, unescaped).
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_surrogates(text: str) -> str:
    """JSON `text` with every lone surrogate as a `\\uXXXX` escape.

    Only for JSON text, where a raw character can only stand inside a string literal.
    A high and a low surrogate side by side are one character (JSON readers join their
    escapes too), so they are joined first.
    """
    if not _SURROGATE.search(text):
        return text
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def utf8(text: str) -> bytes:
    """JSON `text` as UTF-8 (lone surrogates escaped, see `escape_surrogates`)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return escape_surrogates(text).encode()
