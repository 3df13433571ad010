"""Writing a case's dossier (卷宗) ZIP, in the layout of tiaojie.archive.dossier: the case
record, its log, the printable summary (server/cases/summary.py: PDF with the case QR
code), its attachments, the public key, and a manifest signed with the key that signs
the log. (Agreements and recordings' manifests join it once sessions belong to cases.)
Built in memory: a case holds at most 50 attachments of 5 MB.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from datetime import tzinfo
from typing import Any

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
) -> bytes:
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
    manifest = {
        "format": FORMAT,
        "case_id": case.id,
        "case_number": case.number,
        "exported_at": round(now, 3),
        "log": {"entries": len(entries), "head": entries[-1]["hash"] if entries else None},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }
    signature = {
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest_statement(manifest))).decode(),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in [
            (MANIFEST, _json(manifest)),
            (SIGNATURE, _json(signature)),
            *members.items(),
        ]:
            compress = (
                zipfile.ZIP_STORED if name.startswith("attachments/") else zipfile.ZIP_DEFLATED
            )
            archive.writestr(name, data, compress_type=compress)
    return out.getvalue()
