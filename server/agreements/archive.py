"""The agreements in the archive: `GET /api/agreements` lists the agreements of the rooms
the caller may read (server/http_auth.py, `HttpAuth.reader`), from the `status.json` of
each `DATA/agreements/<code>/` folder, the newest first.

Only known fields of the expected types (and patterns) are passed on: nothing else on
disk is echoed. The signed PDF itself is `GET /api/agreements/{code}/pdf`
(server/agreements/http.py).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import Any

from tiaojie.server.agreements.state import CODE_PATTERN, AgreementStatus
from tiaojie.server.agreements.storage import PDF_FILE, STATUS_FILE
from tiaojie.server.http_auth import Caller
from tiaojie.server.schemas import ID_PATTERN

log = logging.getLogger(__name__)

AGREEMENT_CODE = re.compile(CODE_PATTERN)
ROOM_ID = re.compile(ID_PATTERN)
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
AGREEMENT_STATUSES = frozenset(str(s) for s in AgreementStatus)
SIGNER_ROLES = frozenset({"applicant", "respondent", "mediator"})
#: A status.json larger than this is not one the server wrote: skipped.
MAX_STATUS_BYTES = 256 * 1024


def _time(value: Any) -> float | None:
    """A Unix time from a file, or None (booleans, NaN and other types are not times)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _signer(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    role, name = value.get("role"), value.get("name")
    if role not in SIGNER_ROLES or not isinstance(name, str) or len(name) > 200:
        return None
    return {"role": role, "name": name, "signed_at": _time(value.get("signed_at"))}


def entry(folder: Path) -> dict[str, Any] | None:
    """The archive entry of one `DATA/agreements/<code>/` folder, or None when its
    `status.json` is missing, unreadable or not what the server writes. Only known fields
    of the expected types (and patterns) are passed on: nothing else on disk is echoed."""
    code = folder.name
    if not AGREEMENT_CODE.fullmatch(code):
        return None
    path = folder / STATUS_FILE
    try:
        if folder.is_symlink() or path.is_symlink() or path.stat().st_size > MAX_STATUS_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    public = data.get("public") if isinstance(data, dict) else None
    room_id = data.get("room_id") if isinstance(data, dict) else None
    if (
        not isinstance(public, dict)
        or not isinstance(room_id, str)
        or not ROOM_ID.fullmatch(room_id)
        or public.get("code") != code
        or public.get("status") not in AGREEMENT_STATUSES
    ):
        return None
    case_number = public.get("case_number", "")
    signers = public.get("signers")
    pdf_sha256 = public.get("pdf_sha256")
    if not isinstance(case_number, str) or len(case_number) > 200 or not isinstance(signers, list):
        return None
    if len(signers) > 100:
        return None
    lines = [_signer(s) for s in signers]
    if any(line is None for line in lines):
        return None
    if pdf_sha256 is not None and not (
        isinstance(pdf_sha256, str) and SHA256_HEX.fullmatch(pdf_sha256)
    ):
        return None
    pdf = folder / PDF_FILE
    status = public["status"]
    return {
        "code": code,
        "status": status,
        "case_number": case_number,
        "signers": lines,
        "pdf_sha256": pdf_sha256,
        "sealed_at": _time(public.get("sealed_at")),
        "updated_at": _time(public.get("updated_at")),
        "room_id": room_id,
        "pdf_available": (
            status == AgreementStatus.SIGNED
            and pdf_sha256 is not None
            and pdf.is_file()
            and not pdf.is_symlink()
        ),
    }


def listing(root: Path, reader: Caller) -> list[dict[str, Any]]:
    """The agreements under `root` (`DATA/agreements`) that `reader` may read, the newest
    first."""
    try:
        folders = [p for p in root.iterdir() if AGREEMENT_CODE.fullmatch(p.name)]
    except OSError:  # no agreement yet
        return []
    found = []
    for folder in folders:
        item = entry(folder)
        if item is None:
            if (folder / STATUS_FILE).exists():
                log.warning("skipping the agreement folder %s: unreadable status.json", folder)
            continue
        if reader.may_read(item["room_id"]):
            found.append(item)
    found.sort(key=lambda a: (a["updated_at"] or a["sealed_at"] or 0, a["code"]), reverse=True)
    return found
