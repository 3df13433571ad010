"""Writing a case's dossier (卷宗) ZIP, in the layout of tiaojie.archive.dossier: the case
record, its log, the printable summary (server/cases/summary.py: PDF with the case QR
code), its attachments, the evidence of its sessions (server/cases/evidence.py: the signed
agreements' PDFs, the recordings' Chains and summaries, and on request their Segments),
the public key, and a manifest signed with the key that signs the log. Written into
`out` (a temporary file: Segments make dossiers of hundreds of megabytes); the evidence
files are hashed and copied from the data directory, never held in memory whole.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from datetime import tzinfo
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tiaojie.archive.caselog import log_bytes
from tiaojie.archive.chain import key_id
from tiaojie.archive.dossier import (
    CASE,
    FORMAT,
    LOG,
    MANIFEST,
    SIGNATURE,
    SUMMARY,
    attachment_name,
    key_name,
    manifest_statement,
)
from tiaojie.archive.jsontext import utf8
from tiaojie.archive.keys import public_pem
from tiaojie.server.cases.attachments import AttachmentFiles
from tiaojie.server.cases.model import Case
from tiaojie.server.cases.summary import summary_pdf


def _json(data: Any) -> bytes:
    return utf8(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)) + b"\n"


def dossier_zip(
    case: Case,
    entries: list[dict[str, Any]],
    files: AttachmentFiles,
    key: Ed25519PrivateKey,
    now: float,
    *,
    progress_url: str,
    organisation_name: str,
    tz: tzinfo,
    evidence: dict[str, bytes | Path] | None = None,
    out: BinaryIO,
) -> None:
    record = {
        "case": case.staff_view(int(now), [], progress_url),
        "report": case.report(),
    }
    members: dict[str, bytes] = {
        CASE: _json(record),
        LOG: log_bytes(entries),
        SUMMARY: summary_pdf(case, entries, progress_url, organisation_name, now, tz),
        key_name(key.public_key()): public_pem(key.public_key()),
    }
    for item in case.attachments:
        path = files.path(case.id, item.sha256)
        if path.is_file():
            members[attachment_name(item.sha256)] = path.read_bytes()
    copied = evidence or {}
    manifest = {
        "format": FORMAT,
        "case_id": case.id,
        "case_number": case.number,
        "exported_at": round(now, 3),
        "log": {"entries": len(entries), "head": entries[-1]["hash"] if entries else None},
        "files": {
            **{name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
            **{name: sha256_of(data) for name, data in copied.items()},
        },
    }
    signature = {
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest_statement(manifest))).decode(),
    }
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in [
            (MANIFEST, _json(manifest)),
            (SIGNATURE, _json(signature)),
            *members.items(),
            *copied.items(),
        ]:
            stored = name.startswith("attachments/") or name.endswith((".pdf", ".mp4"))
            compress = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            if isinstance(data, Path):
                archive.write(data, name, compress_type=compress)
            else:
                archive.writestr(name, data, compress_type=compress)


def sha256_of(data: bytes | Path) -> str:
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with data.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
