"""What the verifier is told to trust: the recorder's Ed25519 public key (`--trust`), which
must have signed the Chain's Checkpoints, Gaps and Seals, and the X.509 root certificates
(`--tsa-trust`) that a seal's RFC 3161 timestamp must chain to. A file that cannot be read as
such raises CannotVerify.
"""

from __future__ import annotations

from pathlib import Path

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tiaojie.archive.report import CannotVerify


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file; CannotVerify if unreadable or another kind."""
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise CannotVerify(f"cannot read the public key {path}: {error}") from error
    if not isinstance(key, Ed25519PublicKey):
        raise CannotVerify(f"{path} is not an Ed25519 public key")
    return key


def load_certificates(path: Path) -> list[asn1_x509.Certificate]:
    """X.509 certificates from a PEM (one or more) or DER file."""
    try:
        data = path.read_bytes()
        if pem.detect(data):
            certs = [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, True)]
        else:
            certs = [asn1_x509.Certificate.load(data)]
        for cert in certs:
            _ = cert.subject.human_friendly  # parse now: asn1crypto is lazy
    except (OSError, ValueError, TypeError) as error:
        raise CannotVerify(f"cannot read the certificate(s) {path}: {error}") from error
    if not certs:
        raise CannotVerify(f"no certificate in {path}")
    return certs
