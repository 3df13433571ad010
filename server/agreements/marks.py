"""The handwritten marks: decoding and checking the PNG a signer draws, storing it.

A mark arrives as a `data:image/png;base64,` URL in `agreement_sign`. It is stored
content-addressed (`marks/<sha256>.png` in the agreement's folder) and read back, checked
against its sha256, when the signed PDF is made.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from pathlib import Path

from tiaojie.server.agreements.storage import mark_path, write_atomic
from tiaojie.server.errors import TiaojieError, bad_request

#: The largest handwritten mark accepted (decoded PNG bytes).
MAX_MARK_BYTES = 200 * 1024
#: The largest mark image (pixels per side).
MAX_MARK_SIDE = 4000
MARK_PREFIX = "data:image/png;base64,"


def decode_mark(data_url: str) -> bytes:
    """The PNG bytes of a `data:image/png;base64,` mark, checked."""
    if not data_url.startswith(MARK_PREFIX):
        raise bad_request("mark must be a data:image/png;base64, URL")
    encoded = data_url[len(MARK_PREFIX) :]
    if len(encoded) * 3 // 4 > MAX_MARK_BYTES + 3:
        raise _mark_too_large()
    try:
        png = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("mark is not valid base64") from None
    if len(png) > MAX_MARK_BYTES:
        raise _mark_too_large()
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise bad_request("mark is not a PNG image")
    _check_png(png)
    return png


def _mark_too_large() -> TiaojieError:
    return TiaojieError(
        "mark_too_large",
        f"The handwritten mark is too large (at most {MAX_MARK_BYTES // 1024} KiB).",
        413,
    )


def _check_png(png: bytes) -> None:
    """A decodable PNG of sane size with something drawn on it."""
    # deferred: Pillow takes 0.1 s to import, and only signers need it
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as image:
            width, height = image.size
            if not (0 < width <= MAX_MARK_SIDE and 0 < height <= MAX_MARK_SIDE):
                raise bad_request(f"mark must be at most {MAX_MARK_SIDE} pixels on each side")
            rgba = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise bad_request("mark is not a valid PNG image") from None
    # On white paper, is anything darker than light grey? (transparent or white: nothing)
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    ink = Image.alpha_composite(paper, rgba).convert("L").point(lambda v: 255 if v < 200 else 0)
    if ink.getbbox() is None:
        raise TiaojieError("mark_empty", "Draw your handwritten mark first.", 400)


def store_mark(folder: Path, mark_sha256: str, png: bytes) -> None:
    """Write the mark into the agreement's folder, named by its sha256."""
    write_atomic(mark_path(folder, mark_sha256), png)


def load_mark(folder: Path, mark_sha256: str, name: str) -> bytes:
    """The stored mark of `name`, checked against the sha256 their signature binds."""
    png = mark_path(folder, mark_sha256).read_bytes()
    if hashlib.sha256(png).hexdigest() != mark_sha256:
        raise TiaojieError("mark_corrupt", f"The mark of {name} changed on disk.")
    return png
