"""The agreements in the archive: `GET /api/agreements` lists the agreements of the rooms
the caller may read (server/http_auth.py, `HttpAuth.reader`), from the archive index
(server/archive_index/), the most recently changed first; `?q=` searches the case number,
the room's title, the signers' names.

The signed PDF itself is `GET /api/agreements/{code}/pdf` (server/agreements/http.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tiaojie.server.agreements.state import AgreementStatus
from tiaojie.server.agreements.storage import PDF_FILE


def listed(row: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """An agreement as the archive API shows it, from its index row."""
    pdf = data_dir / row["folder"] / PDF_FILE
    return {
        "code": row["code"],
        "status": row["status"],
        "case_number": row["case_number"],
        "signers": row["signers"],
        "pdf_sha256": row["pdf_sha256"],
        "sealed_at": row["sealed_at"],
        "updated_at": row["updated_at"],
        "room_id": row["room_id"],
        "room_title": row["room_title"],
        "recording_id": row["recording_id"],
        "version": row["version"],
        "pdf_available": (
            row["status"] == AgreementStatus.SIGNED
            and row["pdf_sha256"] is not None
            and pdf.is_file()
            and not pdf.is_symlink()
        ),
    }
