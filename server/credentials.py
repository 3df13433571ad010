"""Secrets kept in the data directory: the token secret and the admin token.

Generated on first run (files mode 0600). `TIAOJIE_SECRET_KEY` and `TIAOJIE_ADMIN_TOKEN`
override them, which is how several nodes behind Redis share one secret.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SECRET_FILE = "secret_key"
ADMIN_TOKEN_FILE = "admin_token"


@dataclass(frozen=True)
class Credentials:
    token_secret: bytes
    admin_token: str
    #: True when the admin token was generated now: print it once.
    admin_token_new: bool = False


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def _read_or_create(path: Path, make: str) -> tuple[str, bool]:
    try:
        return path.read_text().strip(), False
    except FileNotFoundError:
        pass
    try:
        _write_private(path, make)
        return make, True
    except FileExistsError:  # another process won the race
        return path.read_text().strip(), False


def load_credentials(
    data_dir: Path, secret_key: str | None = None, admin_token: str | None = None
) -> Credentials:
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    if secret_key:
        secret = hashlib.sha256(secret_key.encode()).digest()
    else:
        text, _ = _read_or_create(
            data_dir / SECRET_FILE, base64.b64encode(secrets.token_bytes(32)).decode()
        )
        secret = base64.b64decode(text)
    if admin_token:
        return Credentials(secret, admin_token)
    token, new = _read_or_create(data_dir / ADMIN_TOKEN_FILE, secrets.token_urlsafe(32))
    return Credentials(secret, token, new)
