"""The evidence of a case's sessions, as its dossier carries it (tiaojie.archive.
dossier_evidence has the layout and the checks): what the case log names as sealed,
found in the data directory.

- each agreement sealed in a session (`agreement_sealed`): its signed PDF;
- each recording sealed in a session (`recording_sealed`): its Chain (the manifest, read
  once: a sealed Chain may still get an addendum) and its summary, and with `segments`
  its Segments (sealed: they no longer change).

A file this node does not have (another node recorded it, a folder was removed) is left
out, and the verifier reports it missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tiaojie.archive.caselog import events
from tiaojie.archive.dossier_evidence import (
    agreement_name,
    recording_name,
    sealed_agreements,
    sealed_recordings,
)
from tiaojie.archive.layout import (
    AGREEMENT_PDF_FILE,
    AGREEMENTS_DIR,
    CHAIN_FILE,
    RECORDINGS_DIR,
    SEGMENT_NAME,
    SEGMENTS_DIR,
    SUMMARY_FILE,
)


def evidence_files(
    data_dir: Path, entries: list[dict[str, Any]], segments: bool
) -> dict[str, bytes | Path]:
    """Dossier member name -> the bytes (small files) or the file (large ones)."""
    logged = events(entries)
    found: dict[str, bytes | Path] = {}
    for code in sealed_agreements(logged):
        pdf = data_dir / AGREEMENTS_DIR / code / AGREEMENT_PDF_FILE
        if pdf.is_file():
            found[agreement_name(code)] = pdf
    for recording_id in sealed_recordings(logged):
        folder = data_dir / RECORDINGS_DIR / recording_id
        for file in (CHAIN_FILE, SUMMARY_FILE):
            path = folder / file
            if path.is_file():
                found[recording_name(recording_id, file)] = path.read_bytes()
        if segments and (folder / SEGMENTS_DIR).is_dir():
            for segment in sorted((folder / SEGMENTS_DIR).iterdir()):
                if SEGMENT_NAME.fullmatch(segment.name) and segment.is_file():
                    found[recording_name(recording_id, f"{SEGMENTS_DIR}/{segment.name}")] = segment
    return found
