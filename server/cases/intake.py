"""Reading a new case from a request (`POST /api/cases`), and the flood limits of the
public report.

A body is either JSON (the report or case, attachments as base64 in `attachments`) or
multipart/form-data, the way the /report page sends it: first a part named `case` holding
that JSON without attachments, then one part named `attachment` per file, each streamed
to disk (server/cases/attachments.py), so a photo is never held in memory whole.

Public reports are limited (`IntakeLimits`): per address (a phone-network NAT holds many
residents: generous), per phone number (tight), and in all (what the database is asked
to take), each a token bucket (server/ratelimit.py) in this process. The address is
taken before the body is read, the phone once the report is valid, so a flood costs
the server a refusal, not a body. JSON bodies have a smaller cap than multipart ones:
they are held in memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from tiaojie.server import json_input
from tiaojie.server.cases.attachments import MAX_PER_REPORT, AttachmentFiles, Upload
from tiaojie.server.errors import TiaojieError, bad_request
from tiaojie.server.ratelimit import RateLimit
from tiaojie.server.validation import Schema, validate

CHUNK = 64 * 1024
#: The JSON of a case (without attachments), as a body or as the `case` part.
MAX_CASE_JSON = 64 * 1024
#: A JSON body with base64 attachments (held in memory while it is read).
MAX_JSON_BODY = 8 * 1024 * 1024
#: A multipart body: the case and MAX_PER_REPORT files of MAX_BYTES each, with headers.
MAX_MULTIPART_BODY = MAX_PER_REPORT * (5 * 1024 * 1024 + 4096) + MAX_CASE_JSON
#: The cap body_limits applies to the path before any handler reads (server/app.py).
MAX_BODY = max(MAX_JSON_BODY, MAX_MULTIPART_BODY)


@dataclass(frozen=True)
class IntakeLimits:
    """The token buckets of public reports (per address, per phone, in all)."""

    per_address: RateLimit
    per_phone: RateLimit
    overall: RateLimit
    #: Public bodies being read at once (each may be megabytes).
    readers: asyncio.Semaphore

    @classmethod
    def default(cls) -> IntakeLimits:
        return cls(
            per_address=RateLimit("reports from your network", rate=1 / 60, burst=10),
            per_phone=RateLimit("reports for this phone number", rate=1 / 600, burst=3),
            overall=RateLimit("reports right now", rate=5, burst=100),
            readers=asyncio.Semaphore(16),
        )


def phone_key(phone: str) -> str:
    """One key per number however it is written (+86 or not)."""
    digits = re.sub(r"[^0-9]", "", phone)
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


def too_many_attachments() -> TiaojieError:
    return TiaojieError(
        "too_many_attachments", f"A report may carry at most {MAX_PER_REPORT} attachments.", 413
    )


async def _read_capped(part: Any, cap: int, what: str) -> bytes:
    data = bytearray()
    async for chunk in _chunks(part):
        data += chunk
        if len(data) > cap:
            raise TiaojieError("payload_too_large", f"{what} is too large.", 413)
    return bytes(data)


async def _read_body(request: web.Request, cap: int) -> bytes:
    data = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        data += chunk
        if len(data) > cap:
            raise TiaojieError("payload_too_large", "The request body is too large.", 413)
    return bytes(data)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


class Intake:
    """Reads a case and its attachments from a request (module docstring)."""

    def __init__(self, files: AttachmentFiles) -> None:
        self.files = files

    async def read(
        self, request: web.Request, schema: Schema, *, before_files: Any = None
    ) -> tuple[dict[str, Any], list[Upload]]:
        """The validated case and its received uploads. `before_files(case)` runs once the
        case is valid, before any file is read (the per-phone limit)."""
        if request.content_type == "multipart/form-data":
            return await self._multipart(request, schema, before_files)
        if request.content_type != "application/json":
            raise TiaojieError(
                "unsupported_media_type",
                "Send JSON (application/json) or a form (multipart/form-data).",
                415,
            )
        body = json_input.loads(await _read_body(request, MAX_JSON_BODY))
        if not isinstance(body, dict):
            raise bad_request("The body must be a JSON object.")
        case = validate(schema, body, "body")
        if before_files is not None:
            before_files(case)
        uploads: list[Upload] = []
        try:
            for item in case.pop("attachments", []):
                try:
                    data = base64.b64decode(item["data"], validate=True)
                except (binascii.Error, ValueError):
                    raise bad_request("attachments[].data is not base64.") from None
                uploads.append(await self.files.receive(_one(data), item.get("filename")))
        except BaseException:
            self.files.discard(uploads)
            raise
        return case, uploads

    async def _multipart(
        self, request: web.Request, schema: Schema, before_files: Any
    ) -> tuple[dict[str, Any], list[Upload]]:
        uploads: list[Upload] = []
        try:
            reader = await request.multipart()
            part = await reader.next()
            if isinstance(part, BodyPartReader) and part.name == "case":
                raw = await _read_capped(part, MAX_CASE_JSON, "The case")
                body = json_input.loads(raw)
                if not isinstance(body, dict):
                    raise bad_request("The 'case' part must be a JSON object.")
                if "attachments" in body:
                    raise bad_request("In a form, attachments are parts named 'attachment'.")
                part = await reader.next()
            elif schema.get("required"):
                raise bad_request("The form's first part must be 'case' (the case as JSON).")
            else:
                body = {}
            case = validate(schema, body, "case")
            case.pop("attachments", None)
            if before_files is not None:
                before_files(case)
            while part is not None:
                if not isinstance(part, BodyPartReader) or part.name != "attachment":
                    raise bad_request("Besides 'case', a form holds only parts named 'attachment'.")
                if len(uploads) >= MAX_PER_REPORT:
                    raise too_many_attachments()
                uploads.append(await self.files.receive(_chunks(part), part.filename))
                part = await reader.next()
        except (ValueError, AssertionError) as error:  # aiohttp on a malformed form
            self.files.discard(uploads)
            raise bad_request(f"The form cannot be read: {error}") from None
        except BaseException:
            self.files.discard(uploads)
            raise
        return case, uploads


async def _chunks(part: Any) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk
