"""The agreement's files: the folder layout under `DATA/agreements/<code>/`.

`code` is the agreement's unguessable public code (the one in the QR code, `/a/{code}`).
Each folder holds:

- `marks/<sha256>.png`: the handwritten marks, content-addressed (server/agreements/marks.py);
- `agreement.pdf`: the signed PDF, once sealed;
- `log.jsonl`: the agreement log, one JSON object a line, appended on every step;
- `status.json`: the room id and the public status, rewritten on every change, so the
  public status outlives the room (server/agreements/archive.py lists these).

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

PDF_FILE = "agreement.pdf"
LOG_FILE = "log.jsonl"
STATUS_FILE = "status.json"
MARKS_DIR = "marks"


def folder(data_dir: str | Path, code: str) -> Path:
    """`DATA/agreements/<code>/`."""
    return Path(data_dir) / "agreements" / code


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


def append_log(folder: Path, kind: str, **fields: Any) -> None:
    """One entry of `log.jsonl`: when, what, and its details."""
    entry = {"at": round(time.time(), 3), "kind": kind, **fields}
    append_line(folder / LOG_FILE, entry)


def write_snapshot(folder: Path, room_id: str, public: dict[str, Any]) -> None:
    """`status.json`: the room holding the agreement and its public status."""
    data = {"room_id": room_id, "public": public}
    write_atomic(folder / STATUS_FILE, utf8(json.dumps(data, ensure_ascii=False, indent=1)))


def read_snapshot(folder: Path) -> dict[str, Any]:
    """The `status.json` of `folder`; OSError or ValueError when missing or unreadable."""
    snapshot: dict[str, Any] = json.loads((folder / STATUS_FILE).read_bytes())
    return snapshot
