"""A case's attachments: photos (JPEG, PNG, WebP) and PDFs, checked by their content and
kept privately under DATA/cases/<case id>/attachments/<sha256>.

What a file is comes from its bytes, never its name or the type a client claims: the
first bytes must be those of an allowed type, then an image must open in Pillow as that
format within MAX_PIXELS and pass its `verify`, and a PDF must end with `%%EOF`. A file
is received into DATA/cases/.incoming/ while its sha256 and size are counted (over
MAX_BYTES it is refused before the rest is read), and moved to its case's folder, named
by its sha256, before the transaction that records it commits. A file whose case was not
recorded is removed; a crash between the two leaves a file no case names, never a case
that names a missing file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tiaojie.server.errors import TiaojieError
from tiaojie.signing.text import clean_text

MAX_BYTES = 5 * 1024 * 1024
#: Attachments one report may carry.
MAX_PER_REPORT = 4
#: Attachments a case may hold in all.
MAX_PER_CASE = 50
MAX_PIXELS = 40_000_000
CASES_DIR = "cases"
INCOMING = ".incoming"
MAX_FILENAME = 128
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "application/pdf": "pdf",
}
PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


@dataclass(frozen=True)
class Upload:
    """A received file, checked, still in the incoming folder."""

    path: Path
    sha256: str
    size: int
    media_type: str
    filename: str


def sniff(head: bytes) -> str | None:
    """The media type the first bytes announce, if it is one we take."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if re.match(rb"%PDF-[12]\.[0-9]", head):
        return "application/pdf"
    return None


def type_refused() -> TiaojieError:
    return TiaojieError(
        "attachment_type_not_allowed",
        "Attachments may be photos (JPEG, PNG, WebP) or PDF files.",
        415,
    )


def too_large() -> TiaojieError:
    return TiaojieError(
        "attachment_too_large",
        f"An attachment may be at most {MAX_BYTES // (1024 * 1024)} MB.",
        413,
    )


def invalid(what: str) -> TiaojieError:
    return TiaojieError("attachment_invalid", f"The attachment is not a readable {what}.", 400)


def clean_filename(raw: str | None, media_type: str) -> str:
    """A name to show (never a path): the text rules, the last path part, at most
    MAX_FILENAME characters; the type's extension when there is no usable name."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    try:
        name = clean_text(name, "filename")[:MAX_FILENAME]
    except ValueError:
        name = ""
    return name or f"attachment.{EXTENSIONS[media_type]}"


def check_content(path: Path, media_type: str) -> None:
    """Raise `attachment_invalid` unless the file really is what its first bytes say
    (blocking: run it in a thread)."""
    if media_type == "application/pdf":
        size = path.stat().st_size
        with path.open("rb") as f:
            f.seek(max(0, size - 1024))
            tail = f.read()
        if b"%%EOF" not in tail:
            raise invalid("PDF file")
        return
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format != PILLOW_FORMATS[media_type]:
                raise invalid("photo")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise TiaojieError("attachment_too_large", "The photo has too many pixels.", 413)
            image.verify()
    except TiaojieError:
        raise
    except Exception:  # Pillow raises many kinds on a damaged or hostile file
        raise invalid("photo") from None


class AttachmentFiles:
    """Where attachments live: DATA/cases/<case id>/attachments/<sha256>."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / CASES_DIR

    def path(self, case_id: str, sha256: str) -> Path:
        return self.root / case_id / "attachments" / sha256

    def _incoming(self) -> Path:
        folder = self.root / INCOMING
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder

    async def receive(self, chunks: AsyncIterator[bytes], filename: str | None) -> Upload:
        """Read one file, refusing it as soon as it is too large or of a type we do not
        take, then check its content; the Upload waits in the incoming folder."""
        path = self._incoming() / secrets.token_hex(16)
        digest, size, head, media_type = hashlib.sha256(), 0, b"", None
        try:
            with path.open("xb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise too_large()
                    if media_type is None:
                        head += chunk
                        if len(head) >= 16:
                            media_type = sniff(head)
                            if media_type is None:
                                raise type_refused()
                    digest.update(chunk)
                    out.write(chunk)
            if media_type is None:
                media_type = sniff(head)
                if media_type is None:
                    raise type_refused()
            await asyncio.get_running_loop().run_in_executor(None, check_content, path, media_type)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Upload(
            path, digest.hexdigest(), size, media_type, clean_filename(filename, media_type)
        )

    def keep(self, case_id: str, uploads: list[Upload]) -> list[Path]:
        """Move checked uploads into their case's folder, named by content; the files
        that were not there before (`forget` them if the change is not recorded)."""
        placed = []
        for upload in uploads:
            final = self.path(case_id, upload.sha256)
            final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if final.exists():
                upload.path.unlink(missing_ok=True)
                continue
            os.replace(upload.path, final)
            placed.append(final)
        return placed

    @staticmethod
    def forget(placed: list[Path]) -> None:
        for path in placed:
            path.unlink(missing_ok=True)

    def discard(self, uploads: list[Upload]) -> None:
        for upload in uploads:
            upload.path.unlink(missing_ok=True)
