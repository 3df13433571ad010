"""REST API of recordings: start/stop a room's recording, and the archive.

Who may read a recording: the admin, an archivist token (`tiaojie archivist-token`), or
a mediator's invite token of the recording's room. The same readers list the agreements
of those rooms (`GET /api/agreements`, from `DATA/agreements/<code>/status.json`); the
signed PDF itself is downloaded with `GET /api/agreements/{code}/pdf`
(server/agreements/http.py).
Files are served from an allowlist of names inside the recording folder (no path from the
request reaches the file system unchecked). An HTML5 <video> cannot send headers, so
players get a playback ticket for one recording (`POST .../ticket`) and pass it as
`?ticket=`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from tiaojie.archive.layout import RECORDING_ID_PATTERN
from tiaojie.server import rooms
from tiaojie.server.agreements import CODE_PATTERN, PDF_FILE, AgreementStatus
from tiaojie.server.api import ROOM, Caller, _bearer, _caller, _json, _room_for
from tiaojie.server.archive_auth import ArchiveAuth
from tiaojie.server.errors import TiaojieError, forbidden, not_found
from tiaojie.server.model import now
from tiaojie.server.recording import Recordings
from tiaojie.server.recording import public as public_recording
from tiaojie.server.roles import Role
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.state import app_state

log = logging.getLogger(__name__)

RECORDING = "/api/recordings/{recording_id:" + RECORDING_ID_PATTERN + "}"
FILE_NAMES = {"recording.json", "chain.jsonl", "recorder.pub.pem", "seal.tsr"}
SEGMENT_NAME = re.compile(r"[0-9]{4}-[A-Za-z0-9_-]{1,64}-(camera|screen)\.mp4")
CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".pem": "application/x-pem-file",
    ".tsr": "application/timestamp-reply",
    ".mp4": "video/mp4",
}
AGREEMENT_CODE = re.compile(CODE_PATTERN)
ROOM_ID = re.compile(ID_PATTERN)
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
AGREEMENT_STATUSES = frozenset(str(s) for s in AgreementStatus)
SIGNER_ROLES = frozenset({"applicant", "respondent", "mediator"})
#: A status.json larger than this is not one the server wrote: skipped.
MAX_STATUS_BYTES = 256 * 1024


def _recordings(request: web.Request) -> Recordings:
    recordings = app_state(request.app).recordings
    if recordings is None:
        raise TiaojieError("recording_unavailable", "Recording is not set up.", 503)
    return recordings


def _auth(request: web.Request) -> ArchiveAuth:
    return ArchiveAuth(app_state(request.app).credentials.token_secret)


class Reader:
    """Who reads the archive: everything (admin, archivist) or one room (its mediator)."""

    def __init__(self, everything: bool, room_id: str | None = None) -> None:
        self.everything = everything
        self.room_id = room_id

    def may_read(self, room_id: str) -> bool:
        return self.everything or self.room_id == room_id


async def _reader(
    request: web.Request, token: str | None = None, what: str = "recordings"
) -> Reader:
    state = app_state(request.app)
    token = token or _bearer(request)
    if hmac.compare_digest(token.encode(), state.credentials.admin_token.encode()):
        return Reader(everything=True)
    if ArchiveAuth.looks_like_archivist(token):
        _auth(request).verify_archivist(token)
        return Reader(everything=True)
    claims = state.signer.verify(token, now())
    room = await state.store.get(claims.room_id)
    if room is not None:
        invite = room.invites.get(claims.invite_id)
        if invite is None or invite.role != claims.role or invite.revoked:
            # an ended room's mediator still reads its recordings until the link expires
            rooms.check_invite(room, claims)
    if claims.role is not Role.MEDIATOR:
        raise forbidden(f"Only a mediator of the room or an archivist may read its {what}.")
    return Reader(everything=False, room_id=claims.room_id)


def _entry(request: web.Request, reader: Reader) -> dict[str, Any]:
    """The index entry of the recording in the path, if the reader may read it."""
    recording_id = request.match_info["recording_id"]
    for entry in _recordings(request).index():
        if entry["recording_id"] == recording_id:
            if not reader.may_read(entry["room_id"]):
                break  # the same answer as for a recording that does not exist
            return entry
    raise not_found("recording_not_found", "No such recording (or not yours to read).")


def _summary(recordings: Recordings, entry: dict[str, Any]) -> dict[str, Any]:
    directory = recordings.root / entry["recording_id"]
    try:
        summary: dict[str, Any] = json.loads((directory / "recording.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        summary = {"status": "starting", "segments": []}
    files = sorted(p.name for p in (directory / "segments").glob("*.mp4"))
    return {
        "recording_id": entry["recording_id"],
        "room_id": entry["room_id"],
        "started_at": summary.get("started_at") or entry.get("started_at"),
        "stopped_at": summary.get("stopped_at"),
        "status": summary.get("status"),
        "participants": summary.get("participants", {}),
        "segments": summary.get("segments", []),
        "segment_files": files,
        "seal": summary.get("seal"),
        "timestamp": summary.get("timestamp"),
        "key_id": summary.get("key_id"),
        "chain_head": summary.get("chain_head"),
    }


# -- start / stop --------------------------------------------------------------------------
async def _manager(request: web.Request) -> tuple[Caller, str]:
    caller = _caller(request)
    room = await _room_for(request, caller, manage=True)
    return caller, room.id


async def start_recording(request: web.Request) -> web.Response:
    caller, room_id = await _manager(request)
    started_by = "admin" if caller.admin else caller.claims.invite_id  # type: ignore[union-attr]
    recording = await _recordings(request).start(room_id, started_by)
    return _json(recording, 201)


async def stop_recording(request: web.Request) -> web.Response:
    _, room_id = await _manager(request)
    return _json(await _recordings(request).stop(room_id))


async def get_recording_state(request: web.Request) -> web.Response:
    caller = _caller(request)
    room = await _room_for(request, caller, manage=False)
    recording = public_recording(room.recording) if room.recording else None
    if recording is not None and not (caller.admin or caller.is_mediator_of(room)):
        recording.pop("consents", None)
    return _json({"recording": recording})


# -- the archive ---------------------------------------------------------------------------
async def list_recordings(request: web.Request) -> web.Response:
    reader = await _reader(request)
    recordings = _recordings(request)
    found = [
        _summary(recordings, entry)
        for entry in recordings.index()
        if reader.may_read(entry["room_id"])
    ]
    return _json({"recordings": found})


async def get_recording(request: web.Request) -> web.Response:
    reader = await _reader(request)
    return _json(_summary(_recordings(request), _entry(request, reader)))


async def create_ticket(request: web.Request) -> web.Response:
    reader = await _reader(request)
    entry = _entry(request, reader)
    ticket, expires_at = _auth(request).ticket(entry["recording_id"])
    return _json({"ticket": ticket, "expires_at": expires_at}, 201)


def _file(directory: Path, name: str) -> Path:
    """The file `name` of a recording folder, from the allowlist only."""
    if name.startswith("segments/"):
        if not SEGMENT_NAME.fullmatch(name.removeprefix("segments/")):
            raise not_found("file_not_found", "No such file in this recording.")
    elif name not in FILE_NAMES:
        raise not_found("file_not_found", "No such file in this recording.")
    path = directory / name
    if not path.is_file() or path.is_symlink():
        raise not_found("file_not_found", "No such file in this recording.")
    return path


async def get_file(request: web.Request) -> web.StreamResponse:
    recording_id = request.match_info["recording_id"]
    ticket = request.query.get("ticket")
    if ticket is not None:
        _auth(request).check_ticket(ticket, recording_id)
        reader = Reader(everything=True)
    else:
        reader = await _reader(request)
    entry = _entry(request, reader)
    name = request.match_info["name"]
    path = _file(_recordings(request).root / entry["recording_id"], name)
    download = request.query.get("download") == "1"
    disposition = "attachment" if download else "inline"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
            "Content-Disposition": f'{disposition}; filename="{entry["recording_id"]}-{path.name}"',
            "Cache-Control": "private, no-store",
        },
    )


# -- agreements in the archive -------------------------------------------------------------
def _time(value: Any) -> float | None:
    """A Unix time from a file, or None (booleans, NaN and other types are not times)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _signer(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    role, name = value.get("role"), value.get("name")
    if role not in SIGNER_ROLES or not isinstance(name, str) or len(name) > 200:
        return None
    return {"role": role, "name": name, "signed_at": _time(value.get("signed_at"))}


def _agreement(folder: Path) -> dict[str, Any] | None:
    """The archive entry of one `DATA/agreements/<code>/` folder, or None when its
    `status.json` is missing, unreadable or not what the server writes. Only known fields
    of the expected types (and patterns) are passed on: nothing else on disk is echoed."""
    code = folder.name
    if not AGREEMENT_CODE.fullmatch(code):
        return None
    path = folder / "status.json"
    try:
        if folder.is_symlink() or path.is_symlink() or path.stat().st_size > MAX_STATUS_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    public = data.get("public") if isinstance(data, dict) else None
    room_id = data.get("room_id") if isinstance(data, dict) else None
    if (
        not isinstance(public, dict)
        or not isinstance(room_id, str)
        or not ROOM_ID.fullmatch(room_id)
        or public.get("code") != code
        or public.get("status") not in AGREEMENT_STATUSES
    ):
        return None
    case_number = public.get("case_number", "")
    signers = public.get("signers")
    pdf_sha256 = public.get("pdf_sha256")
    if not isinstance(case_number, str) or len(case_number) > 200 or not isinstance(signers, list):
        return None
    if len(signers) > 100:
        return None
    lines = [_signer(s) for s in signers]
    if any(line is None for line in lines):
        return None
    if pdf_sha256 is not None and not (
        isinstance(pdf_sha256, str) and SHA256_HEX.fullmatch(pdf_sha256)
    ):
        return None
    pdf = folder / PDF_FILE
    status = public["status"]
    return {
        "code": code,
        "status": status,
        "case_number": case_number,
        "signers": lines,
        "pdf_sha256": pdf_sha256,
        "sealed_at": _time(public.get("sealed_at")),
        "updated_at": _time(public.get("updated_at")),
        "room_id": room_id,
        "pdf_available": (
            status == AgreementStatus.SIGNED
            and pdf_sha256 is not None
            and pdf.is_file()
            and not pdf.is_symlink()
        ),
    }


def _agreements(root: Path, reader: Reader) -> list[dict[str, Any]]:
    """The agreements under `root` that `reader` may read, the newest first."""
    try:
        folders = [p for p in root.iterdir() if AGREEMENT_CODE.fullmatch(p.name)]
    except OSError:  # no agreement yet
        return []
    found = []
    for folder in folders:
        item = _agreement(folder)
        if item is None:
            if (folder / "status.json").exists():
                log.warning("skipping the agreement folder %s: unreadable status.json", folder)
            continue
        if reader.may_read(item["room_id"]):
            found.append(item)
    found.sort(key=lambda a: (a["updated_at"] or a["sealed_at"] or 0, a["code"]), reverse=True)
    return found


async def list_agreements(request: web.Request) -> web.Response:
    reader = await _reader(request, what="agreements")
    root = Path(app_state(request.app).settings.data_dir) / "agreements"
    loop = asyncio.get_running_loop()
    found = await loop.run_in_executor(None, _agreements, root, reader)
    response = _json({"agreements": found})
    response.headers["Cache-Control"] = "private, no-store"
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_post(ROOM + "/recording", start_recording)
    app.router.add_delete(ROOM + "/recording", stop_recording)
    app.router.add_get(ROOM + "/recording", get_recording_state)
    app.router.add_get("/api/recordings", list_recordings)
    app.router.add_get(RECORDING, get_recording)
    app.router.add_post(RECORDING + "/ticket", create_ticket)
    app.router.add_get(RECORDING + "/files/{name:(segments/)?[A-Za-z0-9_.-]+}", get_file)
    app.router.add_get("/api/agreements", list_agreements)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of these routes (merged into /api/openapi.json)."""
    room_id = {"name": "room_id", "in": "path", "required": True, "schema": {"type": "string"}}
    recording_id = {
        "name": "recording_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": RECORDING_ID_PATTERN},
    }

    def op(summary: str, ok: int, *errors: int, content: str = "application/json") -> Any:
        responses: dict[str, Any] = {str(ok): {"description": "success", "content": {content: {}}}}
        for status in errors:
            responses[str(status)] = {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        return {"summary": summary, "responses": responses}

    readers = "admin, archivist token, or a mediator's invite token of the room"
    return {
        "/api/rooms/{room_id}/recording": {
            "parameters": [room_id],
            "post": op("Start recording the room (admin or its mediator)", 201, 401, 403, 404, 409),
            "delete": op("Stop recording: the chain is sealed", 200, 401, 403, 404, 409),
            "get": op("Whether the room is being recorded", 200, 401, 403, 404),
        },
        "/api/recordings": {
            "get": op(f"Recordings the caller may read ({readers})", 200, 401, 403)
        },
        "/api/recordings/{recording_id}": {
            "parameters": [recording_id],
            "get": op("A recording's summary: participants, segments, seal", 200, 401, 403, 404),
        },
        "/api/recordings/{recording_id}/ticket": {
            "parameters": [recording_id],
            "post": op("A 10-minute playback ticket for <video> (?ticket=)", 201, 401, 403, 404),
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
                    "schema": {"type": "string"},
                },
            ],
            "get": op(
                "A file of the recording (Range requests work)",
                200,
                401,
                403,
                404,
                content="application/octet-stream",
            ),
        },
        "/api/agreements": {
            "get": op(
                f"Agreements of the rooms the caller may read ({readers}), the newest first: "
                "each is an AgreementStatus with room_id and pdf_available; the PDF is "
                "GET /api/agreements/{code}/pdf",
                200,
                401,
                403,
            )
        },
    }
