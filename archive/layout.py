"""The archive's layout, in one place: the folders under the data directory, the files of a
Recording folder, how a Recording and its Segments are named, and the summary
(`recording.json`: written atomically by `save_summary`, read by `load_summary`);
docs/ARCHIVE.md.

    DATA/keys/                      the recorder key; the local CA, organisation seal, TSA keys
    DATA/recordings/index.jsonl     which room each Recording belongs to (appended at start)
    DATA/recordings/<recording id>/
        chain.jsonl                 the Chain (tiaojie.archive.chain)
        recording.json              the recorder's summary (written atomically)
        recorder.pub.pem            the public key that signed the Chain
        seal.tsr                    RFC 3161 timestamp of the Seal, when a TSA is set
        segments/NNNN-<participant>-<camera|screen>.mp4 (or .webm: VP8 video)
    DATA/agreements/<code>/         one Agreement (server/agreements/storage.py)
        agreement.pdf               the signed PDF, once sealed
        log.jsonl                   the agreement log, a line per step
        status.json                 its room and status, rewritten on every change
        marks/<sha256>.png          the handwritten marks

The server indexes both in its database (server/archive_index/), and can rebuild that
index from these files (`tiaojie reindex`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from tiaojie.archive.jsontext import utf8

KEYS_DIR = "keys"
RECORDINGS_DIR = "recordings"
RECORDINGS_INDEX_FILE = "index.jsonl"
AGREEMENTS_DIR = "agreements"
AGREEMENT_PDF_FILE = "agreement.pdf"
AGREEMENT_LOG_FILE = "log.jsonl"
AGREEMENT_STATUS_FILE = "status.json"
AGREEMENT_MARKS_DIR = "marks"
#: An agreement's code, which names its folder: 32 URL-safe characters (192 random bits).
AGREEMENT_CODE_PATTERN = r"[A-Za-z0-9_-]{32}"

CHAIN_FILE = "chain.jsonl"
SUMMARY_FILE = "recording.json"
PUBLIC_KEY_FILE = "recorder.pub.pem"
SEAL_TIMESTAMP_FILE = "seal.tsr"
SEGMENTS_DIR = "segments"
#: The files of a Recording folder besides its Segments.
RECORDING_FILES = frozenset({SUMMARY_FILE, CHAIN_FILE, PUBLIC_KEY_FILE, SEAL_TIMESTAMP_FILE})
SEGMENT_PATH = re.compile(r"segments/[^/\\]+")
#: A Segment's file name, as `segment_name` makes it.
SEGMENT_NAME = re.compile(r"[0-9]{4}-[A-Za-z0-9_-]{1,64}-(camera|screen)\.(mp4|webm)")
#: Segment file extensions: fragmented MP4 (H264, or sound alone), WebM (VP8).
SEGMENT_EXTENSIONS = (".mp4", ".webm")
_SEGMENT_NUMBER = re.compile(r"(\d+)-")
#: The keys under which a summary names its Recording (the recorder writes the first).
SUMMARY_ID_KEYS = ("recording_id", "id", "recording")

#: `rec_` and 26 base32 letters (130 bits): unguessable, and safe as a folder name.
RECORDING_ID_PATTERN = r"rec_[a-z2-7]{26}"
_RECORDING_ID = re.compile(RECORDING_ID_PATTERN)


def new_recording_id() -> str:
    return "rec_" + base64.b32encode(secrets.token_bytes(20)).decode().lower()[:26]


def is_recording_id(value: object) -> bool:
    return isinstance(value, str) and _RECORDING_ID.fullmatch(value) is not None


def recording_dir(data_dir: Path, recording_id: str) -> Path:
    """The folder of a Recording; refuses anything that is not a recording id."""
    if not is_recording_id(recording_id):
        raise ValueError("not a recording id")
    return Path(data_dir) / RECORDINGS_DIR / recording_id


def segment_name(number: int, participant_id: str, group: str, extension: str = ".mp4") -> str:
    return f"{number:04d}-{participant_id}-{group}{extension}"


def segment_number(name: str) -> int | None:
    """The number a Segment's file name starts with (its order of creation), if any."""
    match = _SEGMENT_NUMBER.match(Path(name).name)
    return int(match.group(1)) if match else None


def save_summary(directory: Path, summary: dict[str, Any]) -> None:
    """Write recording.json atomically (a reader never sees half of it); any string can be
    written (a lone surrogate as its JSON escape, tiaojie.archive.jsontext)."""
    path = directory / SUMMARY_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_bytes(utf8(json.dumps(summary, ensure_ascii=False, indent=2)))
    os.replace(temporary, path)


def load_summary(directory: Path) -> dict[str, Any] | None:
    """recording.json, or None when there is none; ValueError when it is unreadable or not
    a JSON object. Not evidence: the Chain is."""
    path = directory / SUMMARY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ValueError(f"{SUMMARY_FILE} cannot be read: {error}") from error
    try:
        summary = json.loads(data)
    except ValueError as error:
        raise ValueError(f"{SUMMARY_FILE} cannot be read: {error}") from error
    if not isinstance(summary, dict):
        raise ValueError(f"{SUMMARY_FILE} is not a JSON object")
    return summary


def summary_recording_id(summary: dict[str, Any] | None) -> str | None:
    """The recording id a summary names, if any."""
    if summary is None:
        return None
    return next((summary[k] for k in SUMMARY_ID_KEYS if isinstance(summary.get(k), str)), None)


def folder_recording_id(directory: Path) -> str:
    """The recording id a Recording folder holds: its summary's, else the folder's name."""
    try:
        summary = load_summary(directory)
    except ValueError:
        summary = None
    return summary_recording_id(summary) or Path(directory).resolve().name
