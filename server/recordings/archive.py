"""The recordings on disk: `DATA/recordings/`, `index.jsonl`, each recording's summary and
the files of a recording folder that may be served (docs/ARCHIVE.md).

`index.jsonl` says which recording belongs to which room, with the room's title (one JSON
object a line, appended when a recording starts); the archive index in the database
(server/archive_index/) is what the server reads, and is rebuilt from these files.
Files are served from an allowlist of names inside the recording folder: no path from a
request reaches the file system unchecked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tiaojie.archive.jsontext import escape_surrogates
from tiaojie.archive.layout import RECORDINGS_INDEX_FILE, load_summary
from tiaojie.server.errors import not_found

INDEX_FILE = RECORDINGS_INDEX_FILE
FILE_NAMES = {"recording.json", "chain.jsonl", "recorder.pub.pem", "seal.tsr"}
SEGMENT_NAME = re.compile(r"[0-9]{4}-[A-Za-z0-9_-]{1,64}-(camera|screen)\.(mp4|webm)")
CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".pem": "application/x-pem-file",
    ".tsr": "application/timestamp-reply",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}


class RecordingArchive:
    """`DATA/recordings/`: one folder per recording, and the index."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, recording_id: str) -> Path:
        return self.root / recording_id

    def add(self, entry: dict[str, Any]) -> None:
        """Note a new recording in index.jsonl: `recording_id`, `room_id`, `room_title`,
        `started_at`, `started_by`, `node`, and `follows` for one that continues a lost
        or drained node's recording."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / INDEX_FILE).open("a", encoding="utf-8") as f:
            f.write(escape_surrogates(json.dumps(entry, ensure_ascii=False)) + "\n")

    def details(self, recording_id: str) -> dict[str, Any]:
        """What the recording's folder says now (blocking): its `recording.json` (the
        recorder writes it as it goes) and the segment files there are."""
        directory = self.directory(recording_id)
        try:
            summary = load_summary(directory) or {"status": "starting", "segments": []}
        except ValueError:
            summary = {"status": "starting", "segments": []}
        files = (
            sorted(
                p.name for p in (directory / "segments").iterdir() if p.suffix in (".mp4", ".webm")
            )
            if (directory / "segments").is_dir()
            else []
        )
        return {
            "status": summary.get("status"),
            "started_at": summary.get("started_at"),
            "stopped_at": summary.get("stopped_at"),
            "participants": summary.get("participants", {}),
            "segments": summary.get("segments", []),
            "segment_files": files,
            "seal": summary.get("seal"),
            "timestamp": summary.get("timestamp"),
            "key_id": summary.get("key_id"),
            "chain_head": summary.get("chain_head"),
        }

    def file(self, recording_id: str, name: str) -> Path:
        """The file `name` of a recording folder, from the allowlist only."""
        if name.startswith("segments/"):
            if not SEGMENT_NAME.fullmatch(name.removeprefix("segments/")):
                raise not_found("file_not_found", "No such file in this recording.")
        elif name not in FILE_NAMES:
            raise not_found("file_not_found", "No such file in this recording.")
        path = self.directory(recording_id) / name
        if not path.is_file() or path.is_symlink():
            raise not_found("file_not_found", "No such file in this recording.")
        return path
