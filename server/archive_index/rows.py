"""The archive index's rows, made from what the server already holds: a room document
(its running recording, its agreement) or the files of the archive.

Pure functions, no I/O: server/archive_index/index.py writes the rows, and
server/archive_index/files.py reads the files. The shapes read here are the room
document's (server/model.py: `Room.recording`, server/recordings/state.py; `Room.agreement`,
server/agreements/state.py `AgreementState.to_json`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tiaojie.archive.layout import (
    AGREEMENT_PDF_FILE,
    AGREEMENTS_DIR,
    RECORDINGS_DIR,
    is_recording_id,
)

Row = dict[str, Any]
Document = dict[str, Any]

#: Agreement statuses, as server/agreements/state.py has them.
SIGNED = "signed"


def recording_folder(recording_id: str) -> str:
    return f"{RECORDINGS_DIR}/{recording_id}"


def agreement_folder(code: str) -> str:
    return f"{AGREEMENTS_DIR}/{code}"


def new_recording(room_id: str, room_title: str, recording: Document) -> Row:
    """The row of a recording that has just started (`Room.recording`)."""
    recording_id = recording["id"]
    return {
        "recording_id": recording_id,
        "room_id": room_id,
        "room_title": room_title,
        "node": str(recording.get("node") or ""),
        "started_by": str(recording.get("started_by") or "")[:64],
        "status": "recording",
        "started_at": _time(recording.get("started_at")),
        "ended_at": None,
        "seal_reason": None,
        "seal_hash": None,
        "seal_seq": None,
        "sealed_at": None,
        "chain_sha256": None,
        "addenda": 0,
        "key_id": None,
        "timestamp": None,
        "participants": {},
        "folder": recording_folder(recording_id),
        "indexed_at": time.time(),
    }


def agreement_rows(room_id: str, room_title: str, state: Document) -> tuple[Row, list[Row]]:
    """The agreement's row and its signatures' rows, from its state (`Room.agreement`)."""
    code = state["code"]
    draft = state.get("draft") or {}
    status = str(state["status"])
    pdf_sha256 = state.get("pdf_sha256")
    recording_id = draft.get("recording_id")
    row = {
        "code": code,
        "room_id": room_id,
        "room_title": room_title,
        "recording_id": recording_id if is_recording_id(recording_id) else None,
        "status": status,
        "version": int(state.get("version") or 1),
        "fingerprint": str(state.get("fingerprint") or ""),
        "case_number": str(draft.get("case_number") or ""),
        "signers": signer_lines(draft, state.get("signatures") or []),
        "created_at": _time(state.get("created_at")),
        "updated_at": _time(state.get("updated_at")),
        "sealed_at": _time(state.get("sealed_at")),
        "seal_error": state.get("seal_error"),
        "pdf_path": (
            f"{agreement_folder(code)}/{AGREEMENT_PDF_FILE}"
            if status == SIGNED and pdf_sha256
            else None
        ),
        "pdf_sha256": pdf_sha256,
        "folder": agreement_folder(code),
        "indexed_at": time.time(),
    }
    signatures = [
        {
            "code": code,
            "seq": seq,
            "role": str(s["role"]),
            "party_index": s.get("party_index"),
            "name": str(s.get("name") or ""),
            "typed_name": str(s.get("typed_name") or ""),
            "participant_id": str(s.get("participant_id") or ""),
            "fingerprint": str(s.get("fingerprint") or ""),
            "signed_at": float(s["signed_at"]),
            "mark_sha256": str(s.get("mark_sha256") or ""),
        }
        for seq, s in enumerate(state.get("signatures") or [])
    ]
    return row, signatures


def signer_lines(draft: Document, signatures: list[Document]) -> list[Row]:
    """Every signer line in signing order (the parties, then the mediator) and when it
    was signed, as server/agreements/state.py `AgreementState.signers` has them."""
    signed = {(s.get("role"), s.get("party_index")): s.get("signed_at") for s in signatures}
    lines = [
        {
            "role": str(party.get("role") or ""),
            "name": str(party.get("name") or ""),
            "signed_at": _time(signed.get((party.get("role"), i))),
        }
        for i, party in enumerate(draft.get("parties") or [])
        if isinstance(party, dict)
    ]
    lines.append(
        {
            "role": "mediator",
            "name": str(draft.get("mediator") or ""),
            "signed_at": _time(signed.get(("mediator", None))),
        }
    )
    return lines


@dataclass
class RoomChanges:
    """What a change of one room means for the index."""

    #: A recording started: its new row.
    started: Row | None = None
    #: Recordings taken off the room (stopped), with when.
    stopped: list[tuple[str, float]] = field(default_factory=list)
    #: The agreement changed: its row and signatures.
    agreement: tuple[Row, list[Row]] | None = None
    #: The room's title changed: the new one, for every row of the room.
    title: str | None = None

    def __bool__(self) -> bool:
        return bool(self.started or self.stopped or self.agreement or self.title is not None)


def room_changes(before: Document | None, after: Document) -> RoomChanges:
    """What the index must write when a room goes from `before` (None: new) to `after`."""
    changes = RoomChanges()
    room_id, title = after["id"], after["title"]
    was = (before or {}).get("recording")
    now = after.get("recording")
    old_id = was["id"] if was else None
    new_id = now["id"] if now else None
    if old_id != new_id:
        if old_id is not None:
            changes.stopped.append((old_id, time.time()))
        if now is not None:
            changes.started = new_recording(room_id, title, now)
    agreement = after.get("agreement")
    if agreement and agreement != (before or {}).get("agreement"):
        changes.agreement = agreement_rows(room_id, title, agreement)
    if before is not None and before["title"] != title:
        changes.title = title
    return changes


def _time(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def storable(text: str) -> str:
    """`text` as every database stores it: a lone surrogate (text stored before the text
    rules existed) or a NUL (PostgreSQL refuses it) as its JSON escape."""
    if all(not ("\ud800" <= c <= "\udfff" or c == "\x00") for c in text):
        return text
    return "".join(
        f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" or c == "\x00" else c for c in text
    )


def recording_search(row: Row) -> str:
    """What a search of recordings looks in: the room's title and id, the recording's id,
    the participants' names."""
    names = [
        str(p.get("name") or "")
        for p in (row.get("participants") or {}).values()
        if isinstance(p, dict)
    ]
    words = [row.get("room_title") or "", row["room_id"], row["recording_id"], *names]
    return storable("\n".join(w for w in words if w).casefold())


def agreement_search(row: Row, signatures: list[Row]) -> str:
    """What a search of agreements looks in: the case number, the room's title and id, the
    code, the recording's id, the signers' names."""
    words = [
        row.get("case_number") or "",
        row.get("room_title") or "",
        row["room_id"],
        row["code"],
        row.get("recording_id") or "",
        *(str(s.get("name") or "") for s in row.get("signers") or [] if isinstance(s, dict)),
        *(str(s.get("typed_name") or "") for s in signatures),
    ]
    return storable("\n".join(w for w in words if w).casefold())
