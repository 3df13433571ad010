"""JSON from clients: parsed strictly and no deeper than our schemas ever nest.

Python's `json` parses NaN and Infinity (not JSON) and raises RecursionError on deeply
nested input; a REST body or a socket.io event that does either is an input error, never
a 500 or a traceback. `MAX_DEPTH` is far above the deepest payload schema (the agreement
draft: object > parties array > party object), far below the recursion limit.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tiaojie.server.errors import TiaojieError, bad_request
from tiaojie.server.validation import Schema, validate

MAX_DEPTH = 16


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: bytes | str) -> Any:
    """The JSON value of `raw`, or `invalid_json` (400): not UTF-8, not JSON, NaN or
    Infinity, or nested deeper than MAX_DEPTH."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise too_deep() from None
    except (UnicodeDecodeError, ValueError) as error:
        raise TiaojieError("invalid_json", f"The body is not valid JSON: {error}.") from None
    if deeper_than(value, MAX_DEPTH):
        raise too_deep()
    return value


def too_deep() -> TiaojieError:
    return TiaojieError("invalid_json", f"JSON is nested deeper than {MAX_DEPTH} levels.")


def deeper_than(value: object, limit: int) -> bool:
    """True if `value` nests arrays and objects more than `limit` levels deep (no
    recursion, so any depth is safe to ask about)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


async def read_body(request: web.Request, schema: Schema) -> dict[str, Any]:
    """A REST request's JSON object body, validated against `schema` (defaults filled)."""
    if request.content_type != "application/json":
        raise TiaojieError("unsupported_media_type", "Send a JSON body (application/json).", 415)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TiaojieError("payload_too_large", "The request body is too large.", 413) from None
    data = loads(raw)
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object.")
    return validate(schema, data, "body")
