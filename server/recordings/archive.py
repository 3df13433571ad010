"""The recordings on disk: `DATA/recordings/`, its index, each recording's summary and
the files of a recording folder that may be served (docs/ARCHIVE.md).

`index.jsonl` says which recording belongs to which room (one JSON object a line,
appended when a recording starts): the access checks go by it. Files are served from an
allowlist of names inside the recording folder: no path from a request reaches the file
system unchecked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tiaojie.server.errors import not_found

INDEX_FILE = "index.jsonl"
FILE_NAMES = {"recording.json", "chain.jsonl", "recorder.pub.pem", "seal.tsr"}
SEGMENT_NAME = re.compile(r"[0-9]{4}-[A-Za-z0-9_-]{1,64}-(camera|screen)\.mp4")
CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".pem": "application/x-pem-file",
    ".tsr": "application/timestamp-reply",
    ".mp4": "video/mp4",
}


class RecordingArchive:
    """`DATA/recordings/`: one folder per recording, and the index."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, recording_id: str) -> Path:
        return self.root / recording_id

    def add(self, entry: dict[str, Any]) -> None:
        """Index a new recording: `recording_id`, `room_id`, `started_at`."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / INDEX_FILE).open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def index(self) -> list[dict[str, Any]]:
        try:
            lines = (self.root / INDEX_FILE).read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def find(self, recording_id: str) -> dict[str, Any] | None:
        """The index entry of a recording, if there is one."""
        for entry in self.index():
            if entry["recording_id"] == recording_id:
                return entry
        return None

    def summary(self, entry: dict[str, Any]) -> dict[str, Any]:
        """What the archive API says of a recording: its `recording.json` (the recorder
        writes it), and the segment files there are."""
        directory = self.directory(entry["recording_id"])
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
