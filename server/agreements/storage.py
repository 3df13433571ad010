"""The agreement's files: the folder layout under `DATA/agreements/<code>/`.

`code` is the agreement's unguessable public code (the one in the QR code, `/a/{code}`).
Each folder holds:

- `marks/<sha256>.png`: the handwritten marks, content-addressed (server/agreements/marks.py);
- `agreement.pdf`: the signed PDF, once sealed;
- `log.jsonl`: the agreement log, one JSON object a line, appended on every step;
- `status.json`: the room id and the public status, rewritten on every change, so the
  public status outlives the room, with the agreement's rows of the archive index
  (server/archive_index/), so the index can be rebuilt from the folder.

Whole files are written atomically (a temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from tiaojie.archive.jsontext import escape_surrogates, utf8
from tiaojie.archive.layout import (
    AGREEMENT_LOG_FILE,
    AGREEMENT_MARKS_DIR,
    AGREEMENT_PDF_FILE,
    AGREEMENT_STATUS_FILE,
    AGREEMENTS_DIR,
)

PDF_FILE = AGREEMENT_PDF_FILE
LOG_FILE = AGREEMENT_LOG_FILE
STATUS_FILE = AGREEMENT_STATUS_FILE
MARKS_DIR = AGREEMENT_MARKS_DIR


def folder(data_dir: str | Path, code: str) -> Path:
    """`DATA/agreements/<code>/`."""
    return Path(data_dir) / AGREEMENTS_DIR / code


def mark_path(folder: Path, mark_sha256: str) -> Path:
    return folder / MARKS_DIR / f"{mark_sha256}.png"


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def append_line(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("a", encoding="utf-8") as f:
        f.write(escape_surrogates(json.dumps(entry, ensure_ascii=False, sort_keys=True)) + "\n")


def append_log(folder: Path, kind: str, **fields: Any) -> dict[str, Any]:
    """One entry of `log.jsonl`: when, what, and its details (returned)."""
    entry = {"at": round(time.time(), 3), "kind": kind, **fields}
    append_line(folder / LOG_FILE, entry)
    return entry


def write_snapshot(
    folder: Path, room_id: str, public: dict[str, Any], index: dict[str, Any] | None = None
) -> None:
    """`status.json`: the room holding the agreement, its public status and (`index`) its
    rows in the archive index, which `tiaojie reindex` reads back."""
    data: dict[str, Any] = {"room_id": room_id, "public": public}
    if index is not None:
        data["index"] = index
    write_atomic(folder / STATUS_FILE, utf8(json.dumps(data, ensure_ascii=False, indent=1)))


def read_snapshot(folder: Path) -> dict[str, Any]:
    """The `status.json` of `folder`; OSError or ValueError when missing or unreadable."""
    snapshot: dict[str, Any] = json.loads((folder / STATUS_FILE).read_bytes())
    return snapshot
