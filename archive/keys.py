"""The recorder's Ed25519 signing key, kept under DATA/keys/ (generated on first use)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

PRIVATE_FILE = "recorder_ed25519.pem"
PUBLIC_FILE = "recorder_ed25519.pub.pem"


def keys_dir(data_dir: Path) -> Path:
    path = data_dir / "keys"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def load_or_create(directory: Path) -> Ed25519PrivateKey:
    """The key in `directory`, made (mode 0600) with its public half if there is none."""
    private = directory / PRIVATE_FILE
    try:
        key = load_pem_private_key(private.read_bytes(), password=None)
    except FileNotFoundError:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        try:
            fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return load_or_create(directory)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{private} is not an Ed25519 private key")
    public = directory / PUBLIC_FILE
    if not public.exists():
        public.write_bytes(public_pem(key.public_key()))
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    key = load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key
