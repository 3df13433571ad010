"""REST API of recordings: start/stop a room's recording, and the archive.

Who may read a recording: the admin, an archivist token (`tiaojie archivist-token`), or
a mediator's invite token of the recording's room (server/http_auth.py). The list and
each recording's room come from the archive index (server/archive_index/), with the room's
title and the agreements bound to the recording; `?q=` searches it. One recording's
details add what its folder says now (segments). Files are served from an allowlist of
names inside the recording folder (server/recordings/archive.py). An HTML5 <video>
cannot send headers, so players get a playback ticket for one recording
(`POST .../ticket`) and pass it as `?ticket=`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from tiaojie.archive.bundle import agreement_file, recording_files
from tiaojie.archive.layout import AGREEMENT_PDF_FILE, RECORDING_ID_PATTERN
from tiaojie.archive.localtime import DEFAULT_TIMEZONE
from tiaojie.server.archive_index.rows import agreement_folder
from tiaojie.server.errors import TiaojieError, bad_request, not_found
from tiaojie.server.http_auth import READERS, Caller, HttpAuth, json_response
from tiaojie.server.recordings.access import ArchiveAuth
from tiaojie.server.recordings.archive import CONTENT_TYPES
from tiaojie.server.recordings.download import stream_bundle
from tiaojie.server.recordings.service import Recordings
from tiaojie.server.recordings.state import view
from tiaojie.server.schemas import ID_PATTERN

ROOM_RECORDING = "/api/rooms/{room_id:" + ID_PATTERN + "}/recording"
RECORDING = "/api/recordings/{recording_id:" + RECORDING_ID_PATTERN + "}"
FILE_NAME_PATTERN = "(segments/)?[A-Za-z0-9_.-]+"


class RecordingRoutes:
    """The REST handlers of recordings and of the recordings archive."""

    def __init__(
        self,
        recordings: Recordings,
        auth: HttpAuth,
        archive_auth: ArchiveAuth,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> None:
        #: The zone the archive's readers see times in (--timezone), given with the list.
        self.timezone = timezone
        self.recordings = recordings
        self.archive = recordings.archive
        self.auth = auth
        self.archive_auth = archive_auth

    def install(self, router: web.UrlDispatcher) -> None:
        router.add_post(ROOM_RECORDING, self.start)
        router.add_delete(ROOM_RECORDING, self.stop)
        router.add_get(ROOM_RECORDING, self.state)
        router.add_get("/api/recordings", self.list)
        router.add_get(RECORDING, self.get)
        router.add_post(RECORDING + "/ticket", self.ticket)
        router.add_get(RECORDING + "/files/{name:" + FILE_NAME_PATTERN + "}", self.file)
        router.add_get(RECORDING + "/archive.zip", self.bundle)

    # -- start / stop ----------------------------------------------------------------------
    async def start(self, request: web.Request) -> web.Response:
        caller = self.auth.caller(request)
        room = await self.auth.room_for(request, caller, manage=True)
        started_by = caller.claims.invite_id if caller.claims else "admin"
        if caller.account is not None:  # a staff account (server/accounts/)
            started_by = f"account:{caller.account.id}"
        return json_response(await self.recordings.start(room.id, started_by), 201)

    async def stop(self, request: web.Request) -> web.Response:
        room = await self.auth.room_for(request, self.auth.caller(request), manage=True)
        return json_response(await self.recordings.stop(room.id))

    async def state(self, request: web.Request) -> web.Response:
        caller = self.auth.caller(request)
        room = await self.auth.room_for(request, caller, manage=False)
        consents = caller.admin or caller.is_mediator_of(room)
        return json_response({"recording": view(room.recording, consents)})

    # -- the archive -----------------------------------------------------------------------
    async def _entry(self, request: web.Request, reader: Caller | None) -> dict[str, Any]:
        """The index row of the recording in the path, if `reader` may read it (None:
        a playback ticket for this recording was checked)."""
        entry = await self.recordings.index.recording(request.match_info["recording_id"])
        if entry is None or (reader is not None and not reader.may_read(entry["room_id"])):
            # the same answer for a recording that is not the reader's as for none at all
            raise not_found("recording_not_found", "No such recording (or not yours to read).")
        return entry

    async def list(self, request: web.Request) -> web.Response:
        """The recordings the caller may read, the newest first; `?q=` searches the room's
        title or id, the recording's id, who was in it, the agreements' case numbers."""
        reader = await self.auth.reader(request)
        search = _search(request)
        room_id = reader.claims.room_id if reader.claims is not None else None
        rows = await self.recordings.index.recordings(room_id, search)
        data_dir = self.archive.root.parent
        found = [listed(row, data_dir) for row in rows if reader.may_read(row["room_id"])]
        return json_response({"recordings": found, "timezone": self.timezone}, headers=PRIVATE)

    async def get(self, request: web.Request) -> web.Response:
        """One recording: its index row, and what its folder says now (segments)."""
        reader = await self.auth.reader(request)
        entry = await self._entry(request, reader)
        details = await asyncio.to_thread(self.archive.details, entry["recording_id"])
        shown = listed(entry, self.archive.root.parent)
        if entry["status"] != "recording":  # finished: the index has the seal
            details = {k: v for k, v in details.items() if v is not None and k != "status"}
        return json_response({**shown, **details}, headers=PRIVATE)

    async def ticket(self, request: web.Request) -> web.Response:
        reader = await self.auth.reader(request)
        entry = await self._entry(request, reader)
        ticket, expires_at = self.archive_auth.ticket(entry["recording_id"])
        return json_response({"ticket": ticket, "expires_at": expires_at}, 201)

    async def _reader_or_ticket(self, request: web.Request) -> Caller | None:
        """Who reads: a token, or (None) a playback ticket for the recording in the path."""
        ticket = request.query.get("ticket")
        if ticket is not None:
            self.archive_auth.check_ticket(ticket, request.match_info["recording_id"])
            return None
        return await self.auth.reader(request)

    async def bundle(self, request: web.Request) -> web.StreamResponse:
        """The whole recording as one ZIP (tiaojie.archive.bundle): its folder and the
        signed agreements bound to it, for `tiaojie verify` offline. Once it is sealed."""
        entry = await self._entry(request, await self._reader_or_ticket(request))
        recording_id = entry["recording_id"]
        if entry["status"] == "recording":
            raise TiaojieError(
                "recording_in_progress",
                "The recording is still running: download it once it has been stopped.",
                409,
            )
        data_dir = self.archive.root.parent
        directory = self.archive.directory(recording_id)
        agreements = [bound(a, data_dir) for a in entry["agreements"]]

        def gather() -> list[tuple[str, Path]]:
            files = recording_files(directory)
            for agreement in agreements:
                if agreement["pdf_available"]:
                    pdf = data_dir / agreement_folder(agreement["code"]) / AGREEMENT_PDF_FILE
                    files.append(agreement_file(agreement["code"], pdf))
            return files

        files = await asyncio.to_thread(gather)
        return await stream_bundle(request, files, f"{recording_id}.zip")

    async def file(self, request: web.Request) -> web.StreamResponse:
        reader = await self._reader_or_ticket(request)
        recording_id = (await self._entry(request, reader))["recording_id"]
        path = self.archive.file(recording_id, request.match_info["name"])
        disposition = "attachment" if request.query.get("download") == "1" else "inline"
        return web.FileResponse(
            path,
            headers={
                "Content-Type": CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
                "Content-Disposition": f'{disposition}; filename="{recording_id}-{path.name}"',
                "Cache-Control": "private, no-store",
            },
        )


PRIVATE = {"Cache-Control": "private, no-store"}
#: The longest search text (`?q=`).
MAX_SEARCH = 200


def _search(request: web.Request) -> str | None:
    search = request.query.get("q", "").strip()
    if len(search) > MAX_SEARCH:
        raise bad_request(f"Search for at most {MAX_SEARCH} characters.")
    return search or None


def listed(row: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """A recording as the archive API shows it, from its index row."""
    recording_id = row["recording_id"]
    return {
        "recording_id": recording_id,
        "room_id": row["room_id"],
        "room_title": row["room_title"],
        "started_at": row["started_at"],
        "stopped_at": row["ended_at"],
        "status": row["status"],
        "seal_reason": row["seal_reason"],
        "seal": (
            {"seq": row["seal_seq"], "hash": row["seal_hash"], "time": row["sealed_at"]}
            if row["seal_hash"]
            else None
        ),
        "chain_head": row["seal_hash"],
        "chain_sha256": row["chain_sha256"],
        "addenda": row["addenda"],
        "key_id": row["key_id"],
        "timestamp": row["timestamp"],
        "participants": row["participants"],
        "agreements": [bound(a, data_dir) for a in row.get("agreements", [])],
        "archive": f"/api/recordings/{recording_id}/archive.zip",
    }


def bound(agreement: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """An agreement bound to a recording, as the recordings list shows it."""
    pdf = data_dir / agreement["folder"] / AGREEMENT_PDF_FILE
    return {
        "code": agreement["code"],
        "status": agreement["status"],
        "case_number": agreement["case_number"],
        "pdf_sha256": agreement["pdf_sha256"],
        "sealed_at": agreement["sealed_at"],
        "pdf_available": bool(agreement["pdf_path"]) and pdf.is_file() and not pdf.is_symlink(),
    }


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of these routes (merged into /api/openapi.json)."""
    room_id = {
        "name": "room_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
    }
    recording_id = {
        "name": "recording_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{RECORDING_ID_PATTERN}$"},
    }

    def op(summary: str, ok: int, *errors: int, content: str = "application/json") -> Any:
        responses: dict[str, Any] = {str(ok): {"description": "success", "content": {content: {}}}}
        for status in errors:
            responses[str(status)] = {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        return {"summary": summary, "responses": responses}

    # 410: the room has ended (a mediator's invite of an ended room no longer manages it,
    # and reads the archive only while the link is live)
    return {
        "/api/rooms/{room_id}/recording": {
            "parameters": [room_id],
            "post": op(
                "Start recording the room (admin or its mediator)", 201, 401, 403, 404, 409, 410
            ),
            "delete": op("Stop recording: the chain is sealed", 200, 401, 403, 404, 409, 410),
            "get": op("Whether the room is being recorded", 200, 401, 403, 404, 410),
        },
        "/api/recordings": {
            "get": {
                **op(f"Recordings the caller may read ({READERS})", 200, 400, 401, 403, 410),
                "parameters": [
                    {
                        "name": "q",
                        "in": "query",
                        "required": False,
                        "description": "search: the room's title or id, the recording's id, a "
                        "participant's name, an agreement's case number or code",
                        "schema": {"type": "string", "maxLength": MAX_SEARCH},
                    }
                ],
            }
        },
        "/api/recordings/{recording_id}": {
            "parameters": [recording_id],
            "get": op(
                "A recording's summary: participants, segments, seal", 200, 401, 403, 404, 410
            ),
        },
        "/api/recordings/{recording_id}/ticket": {
            "parameters": [recording_id],
            "post": op(
                "A 10-minute playback ticket for <video> (?ticket=)", 201, 401, 403, 404, 410
            ),
        },
        "/api/recordings/{recording_id}/archive.zip": {
            "parameters": [recording_id],
            "get": op(
                "The whole recording as one ZIP (its folder and the signed agreements bound "
                "to it) for `tiaojie verify`; a token or ?ticket=; 409 while recording",
                200,
                401,
                403,
                404,
                409,
                410,
                content="application/zip",
            ),
        },
        "/api/recordings/{recording_id}/files/{name}": {
            "parameters": [
                recording_id,
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "recording.json, chain.jsonl, recorder.pub.pem, seal.tsr or "
                    "segments/NNNN-<participant>-<camera|screen>.mp4; ?download=1 to save",
                    "schema": {"type": "string", "pattern": f"^{FILE_NAME_PATTERN}$"},
                },
            ],
            "get": op(
                "A file of the recording (Range requests work)",
                200,
                401,
                403,
                404,
                410,
                content="application/octet-stream",
            ),
        },
    }
