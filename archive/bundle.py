"""A Recording as one ZIP file: what an archivist downloads to verify it offline
(`GET /api/recordings/{id}/archive.zip`) and `tiaojie verify` accepts.

    <recording_id>/                 the Recording folder, as on the server (layout.py):
        recording.json, chain.jsonl, recorder.pub.pem, seal.tsr, segments/NNNN-....mp4
    agreements/<code>.pdf           the signed agreements bound to the Recording

Only those names are written, and only those are extracted: `extract` refuses anything
else (a path out of the folder, a link, an unknown file), so unpacking a ZIP never
writes outside the folder it is given. The trust roots (the recorder's public key, the
CA certificate) are not in it: the archivist gets them from the operator.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tiaojie.archive.layout import (
    AGREEMENT_CODE_PATTERN,
    RECORDING_FILES,
    SEGMENT_NAME,
    SEGMENTS_DIR,
    is_recording_id,
)

AGREEMENTS = "agreements"
_AGREEMENT_NAME = re.compile(rf"{AGREEMENTS}/{AGREEMENT_CODE_PATTERN}\.pdf")
#: Already compressed: stored as they are.
_STORED = (".mp4", ".webm", ".pdf", ".tsr")
#: The most a bundle may unpack to (declared sizes; zipfile stops at them).
MAX_UNPACKED = 64 * 1024**3


def recording_files(directory: Path) -> list[tuple[str, Path]]:
    """The files of a Recording folder that go into its bundle, as (name in the ZIP,
    path): the allowlisted names only, never a link."""
    recording_id = directory.name
    found: list[tuple[str, Path]] = []
    for name in sorted(RECORDING_FILES):
        path = directory / name
        if path.is_file() and not path.is_symlink():
            found.append((f"{recording_id}/{name}", path))
    segments = directory / SEGMENTS_DIR
    if segments.is_dir() and not segments.is_symlink():
        for path in sorted(segments.iterdir()):
            if SEGMENT_NAME.fullmatch(path.name) and path.is_file() and not path.is_symlink():
                found.append((f"{recording_id}/{SEGMENTS_DIR}/{path.name}", path))
    return found


def agreement_file(code: str, pdf: Path) -> tuple[str, Path]:
    return f"{AGREEMENTS}/{code}.pdf", pdf


def write(out: IO[bytes], files: Iterable[tuple[str, Path]]) -> None:
    """Write the bundle of `files` (see `recording_files`) to `out`, which need not be
    seekable (a response being streamed)."""
    with zipfile.ZipFile(out, "w", allowZip64=True) as bundle:
        for name, path in files:
            method = zipfile.ZIP_STORED if name.endswith(_STORED) else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo.from_file(path, name)
            info.compress_type = method
            info.external_attr = (stat.S_IFREG | 0o600) << 16
            with path.open("rb") as source, bundle.open(info, "w", force_zip64=True) as target:
                shutil.copyfileobj(source, target, 1 << 20)


#: What marks a case dossier (archive/dossier.py), the other ZIP `tiaojie verify` reads.
DOSSIER_MARK = "case.json"


def is_bundle(path: Path) -> bool:
    """A ZIP that is not a case dossier (which holds `case.json` at its top) and holds
    something a bundle holds (a ZIP of neither goes to the dossier verifier, which says
    it is not a dossier)."""
    if path.suffix.lower() != ".zip":
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            return (
                DOSSIER_MARK not in names
                and "manifest.json" not in names
                and any(_allowed(n) is not None for n in names)
            )
    except (OSError, zipfile.BadZipFile):
        return True  # the bundle reader says what is wrong with it


@dataclass
class Unpacked:
    """What a bundle held, unpacked."""

    recording: Path
    agreements: list[Path] = field(default_factory=list)


def _allowed(name: str) -> str | None:
    """The recording id of a member name a bundle may hold ("" for an agreement), or None."""
    if _AGREEMENT_NAME.fullmatch(name):
        return ""
    head, _, rest = name.partition("/")
    if not is_recording_id(head):
        return None
    if rest in RECORDING_FILES:
        return head
    folder, _, file = rest.partition("/")
    if folder == SEGMENTS_DIR and SEGMENT_NAME.fullmatch(file):
        return head
    return None


def extract(bundle: Path, dest: Path) -> Unpacked:
    """Unpack the bundle at `bundle` into the empty folder `dest`; ValueError (nothing of
    what it says is trusted) when it is not a bundle of one Recording."""
    try:
        archive = zipfile.ZipFile(bundle)
    except (OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{bundle} is not a ZIP file: {error}") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        recordings = set()
        for member in members:
            kind = _allowed(member.filename)
            if kind is None:
                raise ValueError(f"{bundle}: {member.filename!r} is not part of a recording bundle")
            if kind:
                recordings.add(kind)
            if stat.S_ISLNK(member.external_attr >> 16):
                raise ValueError(f"{bundle}: {member.filename!r} is a link")
        if len(recordings) != 1:
            raise ValueError(f"{bundle} holds {len(recordings)} recordings, not one")
        if sum(m.file_size for m in members) > MAX_UNPACKED:
            raise ValueError(f"{bundle} unpacks to more than {MAX_UNPACKED} bytes")
        (recording_id,) = recordings
        unpacked = Unpacked(dest / recording_id)
        unpacked.recording.mkdir(parents=True)
        for member in members:
            target = dest / member.filename  # checked: no "..", no absolute path
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, target.open("xb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            if member.filename.startswith(f"{AGREEMENTS}/"):
                unpacked.agreements.append(target)
    return unpacked
