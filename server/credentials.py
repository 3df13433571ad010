"""Secrets kept in the data directory: the token secret and the admin token.

Generated on first run (files mode 0600). `TIAOJIE_SECRET_KEY` and `TIAOJIE_ADMIN_TOKEN`
override them, which is how several nodes behind Redis share one secret. A secret given
by hand must be strong enough (`check_secret`): a guessed secret key forges every token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SECRET_FILE = "secret_key"
ADMIN_TOKEN_FILE = "admin_token"
SECRET_KEY_ENV = "TIAOJIE_SECRET_KEY"
ADMIN_TOKEN_ENV = "TIAOJIE_ADMIN_TOKEN"
#: 128 bits: 22 base64url characters (132 bits) or 32 hex characters.
MIN_SECRET_CHARS = 22
MIN_SECRET_BYTES = 16


class WeakSecret(ValueError):
    """A secret too short to resist guessing; the message names where it came from, never
    the value."""


@dataclass(frozen=True)
class Credentials:
    token_secret: bytes
    admin_token: str
    #: True when the admin token was generated now: print it once.
    admin_token_new: bool = False


def check_secret(value: str, source: str) -> str:
    """`value`, if it is at least as long as 128 random bits written in base64url (22
    characters; 32 hex characters are 128 bits too) and not one repeated character.

    Length stands in for entropy: we cannot measure how a person chose a secret, but a
    short one is certainly guessable. `source` (a variable or file name) is what the
    error names."""
    if len(value) < MIN_SECRET_CHARS or len(set(value)) < 2:
        raise WeakSecret(
            f"{source} is too weak: use at least {MIN_SECRET_CHARS} random characters "
            "(128 bits), e.g. the output of `openssl rand -base64 32`, or unset it to "
            "have one generated in the data directory"
        )
    return value


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


def _secret_from_file(path: Path) -> bytes:
    text, _ = _read_or_create(path, base64.b64encode(secrets.token_bytes(32)).decode())
    try:
        secret = base64.b64decode(text)
    except binascii.Error:
        raise WeakSecret(f"{path} is not base64: delete it to have a new one made") from None
    if len(secret) < MIN_SECRET_BYTES or len(set(secret)) < 2:
        raise WeakSecret(f"{path} holds a weak secret: delete it to have a new one made")
    return secret


def load_credentials(
    data_dir: Path, secret_key: str | None = None, admin_token: str | None = None
) -> Credentials:
    """The secrets from the environment (checked) or the data directory (made if absent).

    Raises `WeakSecret` (a ValueError) for a weak secret, OSError for an unusable folder."""
    if secret_key:
        check_secret(secret_key, SECRET_KEY_ENV)
    if admin_token:
        check_secret(admin_token, ADMIN_TOKEN_ENV)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    if secret_key:
        secret = hashlib.sha256(secret_key.encode()).digest()
    else:
        secret = _secret_from_file(data_dir / SECRET_FILE)
    if admin_token:
        return Credentials(secret, admin_token)
    token, new = _read_or_create(data_dir / ADMIN_TOKEN_FILE, secrets.token_urlsafe(32))
    return Credentials(secret, check_secret(token, str(data_dir / ADMIN_TOKEN_FILE)), new)
