"""What the archive's files say, as index rows: a Recording folder (its summary and its
Chain: how and when it was sealed) and an Agreement folder (`status.json`, `log.jsonl`).

Blocking (reads files): callers run these in a thread. The files are the server's and
the recorder's own, but an index must not trust them blindly: only known fields of the
expected types are taken, and a folder that cannot be read is skipped (None).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiaojie.archive.layout import (
    AGREEMENT_CODE_PATTERN,
    AGREEMENT_LOG_FILE,
    AGREEMENT_STATUS_FILE,
    CHAIN_FILE,
    RECORDINGS_INDEX_FILE,
    is_recording_id,
    load_summary,
)
from tiaojie.server.archive_index.rows import Row, agreement_folder, recording_folder
from tiaojie.server.archive_index.schema import agreement_signatures, agreements
from tiaojie.server.schemas import ID_PATTERN

log = logging.getLogger(__name__)

#: A status.json larger than this is not one the server wrote.
MAX_STATUS_BYTES = 256 * 1024
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
AGREEMENT_CODE = re.compile(AGREEMENT_CODE_PATTERN)
ROOM_ID = re.compile(ID_PATTERN)
#: What the index keeps of a participant in a recording's summary.
PERSON_FIELDS = ("name", "role", "consent", "consent_at")
AGREEMENT_STATUSES = frozenset({"drafting", "signing", "sealing", "signed"})
SIGNER_ROLES = frozenset({"applicant", "respondent", "mediator"})


def _time(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _text(value: Any, limit: int = 200) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _hash(value: Any) -> str | None:
    return value if isinstance(value, str) and SHA256_HEX.fullmatch(value) else None


# -- recordings ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainFacts:
    """How a Chain ends: whether it is sealed, why, and its last Seal."""

    sealed: bool
    reason: str | None
    #: When the recorder sealed (the first Seal).
    ended_at: float | None
    seal_hash: str | None
    seal_seq: int | None
    seal_time: float | None
    addenda: int
    sha256: str | None


def chain_facts(path: Path) -> ChainFacts | None:
    """Read the Chain at `path` (complete lines only); None when there is none."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    lines = data.split(b"\n")[:-1]  # the last one may be in flight
    last_type = None
    reason = seal_hash = None
    seal_seq: int | None = None
    seal_time: float | None = None
    ended_at: float | None = None
    addenda = 0
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        last_type = entry.get("type")
        if last_type != "seal":
            continue
        why = _text(entry.get("reason"), 64)
        if why == "addendum":
            addenda += 1
        elif reason is None:
            reason, ended_at = why, _time(entry.get("time"))
        seal_hash = _hash(entry.get("hash"))
        seal_seq = entry.get("seq") if isinstance(entry.get("seq"), int) else None
        seal_time = _time(entry.get("time"))
    sealed = last_type == "seal"
    consumed = b"".join(line + b"\n" for line in lines)
    return ChainFacts(
        sealed=sealed,
        reason=reason,
        ended_at=ended_at,
        seal_hash=seal_hash,
        seal_seq=seal_seq,
        seal_time=seal_time,
        addenda=addenda,
        sha256=hashlib.sha256(consumed).hexdigest() if sealed else None,
    )


def recording_facts(directory: Path, *, running: bool = False) -> Row:
    """The columns of a recording's row that its folder decides: status (`sealed`;
    `recording` while `running`; else `unsealed`), times, the Seal, who was in it.
    Always a row: a folder with nothing readable in it is an unsealed recording."""
    try:
        summary = load_summary(directory) or {}
    except ValueError as error:
        log.warning("recording %s: %s", directory.name, error)
        summary = {}
    chain = chain_facts(directory / CHAIN_FILE)
    sealed = chain is not None and chain.sealed
    people = summary.get("participants")
    participants: dict[str, dict[str, Any]] = {}
    if isinstance(people, dict):
        for pid, person in list(people.items())[:1000]:
            if isinstance(pid, str) and isinstance(person, dict):
                participants[pid[:64]] = {
                    k: person[k]
                    for k in PERSON_FIELDS
                    if isinstance(person.get(k), str | int | float)
                    and not isinstance(person.get(k), bool)
                }
    timestamp = summary.get("timestamp")
    return {
        "status": "sealed" if sealed else ("recording" if running else "unsealed"),
        "started_at": _time(summary.get("started_at")),
        "ended_at": (chain.ended_at if chain else None) or _time(summary.get("stopped_at")),
        "seal_reason": chain.reason if chain else None,
        "seal_hash": chain.seal_hash if chain and sealed else None,
        "seal_seq": chain.seal_seq if chain and sealed else None,
        "sealed_at": chain.seal_time if chain and sealed else None,
        "chain_sha256": chain.sha256 if chain else None,
        "addenda": chain.addenda if chain else 0,
        "key_id": _text(summary.get("key_id"), 64),
        "timestamp": (
            {k: v for k, v in timestamp.items() if k in ("file", "tsa_url", "error")}
            if isinstance(timestamp, dict)
            else None
        ),
        "participants": participants,
    }


def started_recordings(root: Path) -> dict[str, dict[str, Any]]:
    """`DATA/recordings/index.jsonl`: recording id -> {room_id, room_title?, started_at}."""
    try:
        lines = (root / RECORDINGS_INDEX_FILE).read_bytes().splitlines()
    except OSError:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and is_recording_id(entry.get("recording_id")):
            found[entry["recording_id"]] = entry
    return found


def recording_from_folder(
    directory: Path, started: dict[str, Any] | None, room_title: str | None
) -> Row | None:
    """A whole row for the Recording folder `directory` (reindex), or None when it is not
    one: `started` is its line of index.jsonl, `room_title` what the database says."""
    recording_id = directory.name
    if not is_recording_id(recording_id) or directory.is_symlink() or not directory.is_dir():
        return None
    facts = recording_facts(directory)
    try:
        summary = load_summary(directory) or {}
    except ValueError:
        summary = {}
    started = started or {}
    room_id = _text(started.get("room_id"), 64) or _text(summary.get("room_id"), 64)
    if not room_id or not ROOM_ID.fullmatch(room_id):
        log.warning("recording %s: no room id in index.jsonl or its summary", recording_id)
        return None
    return {
        "recording_id": recording_id,
        "room_id": room_id,
        "room_title": room_title or _text(started.get("room_title"), 500) or "",
        "node": _text(started.get("node"), 200) or "",
        "started_by": _text(started.get("started_by"), 64) or "",
        **facts,
        "started_at": facts["started_at"] or _time(started.get("started_at")),
        "folder": recording_folder(recording_id),
        "indexed_at": time.time(),
    }


# -- agreements ------------------------------------------------------------------------------
def read_status(folder: Path) -> dict[str, Any] | None:
    """An agreement's `status.json`, or None (missing, too large, not an object)."""
    path = folder / AGREEMENT_STATUS_FILE
    try:
        if folder.is_symlink() or path.is_symlink() or path.stat().st_size > MAX_STATUS_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_log(folder: Path) -> list[Row]:
    """`log.jsonl` of an agreement, as `agreement_events` rows (without `code`)."""
    try:
        lines = (folder / AGREEMENT_LOG_FILE).read_bytes().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("kind"), str):
            events.append(log_row(entry))
    return [{**event, "seq": seq} for seq, event in enumerate(events)]


def log_row(entry: dict[str, Any]) -> Row:
    """One line of the agreement log as a row (without `code` and `seq`)."""
    return {
        "at": _time(entry.get("at")),
        "kind": str(entry["kind"])[:64],
        "detail": {k: v for k, v in entry.items() if k not in ("at", "kind")},
    }


def agreement_from_folder(folder: Path) -> tuple[Row, list[Row], list[Row]] | None:
    """The agreement's row, signatures and log rows from its folder (reindex), or None when
    its status.json is missing or not the server's. The snapshot the server writes holds
    the rows themselves (`index`); an older one only the public status, completed from
    the log."""
    code = folder.name
    data = read_status(folder) if AGREEMENT_CODE.fullmatch(code) else None
    if data is None:
        return None
    room_id = data.get("room_id")
    public = data.get("public")
    if (
        not isinstance(room_id, str)
        or not ROOM_ID.fullmatch(room_id)
        or not isinstance(public, dict)
        or public.get("code") != code
    ):
        return None
    events = read_log(folder)
    for event in events:
        event["code"] = code
    kept = data.get("index")
    if isinstance(kept, dict) and isinstance(kept.get("agreement"), dict):
        row = _columns(kept["agreement"], AGREEMENT_COLUMNS)
        signatures = [_columns(s, SIGNATURE_COLUMNS) for s in kept.get("signatures") or []]
        if row is not None and all(s is not None for s in signatures):
            row.update(code=code, room_id=room_id, indexed_at=time.time())
            return row, [{**s, "code": code} for s in signatures if s is not None], events
        log.warning("agreement %s: status.json has no usable index: from its log", code)
    return _from_public(code, room_id, public, events)


#: The columns a snapshot's `index` must give (the rest are the index's own).
AGREEMENT_COLUMNS = frozenset(c.name for c in agreements.columns) - {"search", "indexed_at"}
SIGNATURE_COLUMNS = frozenset(c.name for c in agreement_signatures.columns)


def _columns(value: Any, columns: frozenset[str]) -> Row | None:
    """`value` if it is a row with exactly `columns`, else None."""
    if not isinstance(value, dict) or set(value) != columns:
        return None
    return dict(value)


def _signer_line(value: Any) -> Row | None:
    if not isinstance(value, dict):
        return None
    role, name = value.get("role"), value.get("name")
    if role not in SIGNER_ROLES or not isinstance(name, str) or len(name) > 200:
        return None
    return {"role": role, "name": name, "signed_at": _time(value.get("signed_at"))}


def _from_public(
    code: str, room_id: str, public: dict[str, Any], events: list[Row]
) -> tuple[Row, list[Row], list[Row]] | None:
    """The rows of an agreement whose status.json has only the public status (an older
    server's): every field checked as the old listing did; anything off skips it."""
    status, case_number = public.get("status"), public.get("case_number", "")
    lines, pdf_sha256 = public.get("signers"), public.get("pdf_sha256")
    if (
        status not in AGREEMENT_STATUSES
        or not isinstance(case_number, str)
        or len(case_number) > 200
        or not isinstance(lines, list)
        or len(lines) > 100
        or (pdf_sha256 is not None and _hash(pdf_sha256) is None)
    ):
        return None
    signers = [_signer_line(line) for line in lines]
    if any(line is None for line in signers):
        return None
    version, fingerprint = 1, ""
    signatures: list[Row] = []
    for event in events:
        detail = event["detail"]
        if isinstance(detail.get("version"), int):
            version = detail["version"]
        if _hash(detail.get("fingerprint")) and event["kind"] != "signature":
            fingerprint = detail["fingerprint"]
        if event["kind"] == "signatures_invalidated":
            signatures = []
        if event["kind"] == "signature" and detail.get("role") in SIGNER_ROLES:
            signatures.append(
                {
                    "code": code,
                    "seq": len(signatures),
                    "role": detail["role"],
                    "party_index": None,
                    "name": _text(detail.get("name")) or "",
                    "typed_name": _text(detail.get("typed_name")) or "",
                    "participant_id": _text(detail.get("by"), 64) or "",
                    "fingerprint": _hash(detail.get("fingerprint")) or "",
                    "signed_at": _time(detail.get("signed_at")) or event["at"] or 0.0,
                    "mark_sha256": _hash(detail.get("mark_sha256")) or "",
                }
            )
    signatures = [s for s in signatures if not fingerprint or s["fingerprint"] == fingerprint]
    row = {
        "code": code,
        "room_id": room_id,
        "room_title": "",
        "recording_id": None,
        "status": status,
        "version": version,
        "fingerprint": fingerprint,
        "case_number": case_number,
        "signers": signers,
        "created_at": events[0]["at"] if events else None,
        "updated_at": _time(public.get("updated_at")),
        "sealed_at": _time(public.get("sealed_at")),
        "seal_error": None,
        "pdf_path": f"{agreement_folder(code)}/agreement.pdf"
        if status == "signed" and pdf_sha256
        else None,
        "pdf_sha256": pdf_sha256,
        "folder": agreement_folder(code),
        "indexed_at": time.time(),
    }
    return row, signatures, events
