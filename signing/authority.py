"""The local certificate authority: CA, OrganisationSeal, TSA and per-signing event certs.

On first use `Authority.load_or_create(DATA/keys)` generates, under that directory:

    ca.key.pem / ca.cert.pem        the local root CA (RSA-3072, 20 years)
    seal.key.pem / seal.cert.pem    the OrganisationSeal (RSA-3072, 5 years)
    tsa.key.pem / tsa.cert.pem      the built-in TSA (RSA-3072, 5 years; extendedKeyUsage
                                    timeStamping, critical)
    revoked.json                    serial numbers the CA has revoked (optional)

Private keys are written with mode 0600; creation is serialised with a lock file so a
server and a CLI starting together do not make two CAs. Production replaces these files
with keys and certificates from a real CA / TSA (same file names).

Event certificates: for every signing the CA issues a fresh ECDSA P-256 key and a
certificate whose subject is the signer's name (CN) and role (title), valid for one day.
The key is used once, for that signer's signature field, and then forgotten.

Revocation: the certificates carry no CRL distribution point or OCSP address (the local
CA has no public URL). Instead the CA issues a fresh, complete CRL for every signed
agreement (`crl()`), the signer embeds it in the PDF's document security store, and validation
uses the policy "revocation information required", which this CRL satisfies for every
certificate the CA issued. So an agreement validates offline, long after the event
certificates expired, from what it carries.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

DEFAULT_ORGANISATION = "Tiaojie"
CA_YEARS = 20
LEAF_YEARS = 5
EVENT_CERT_LIFETIME = dt.timedelta(days=1)
CRL_LIFETIME = dt.timedelta(days=30)
CLOCK_SKEW = dt.timedelta(minutes=5)
RSA_BITS = 3072

CA_FILES = ("ca.key.pem", "ca.cert.pem")
ORGANISATION_SEAL_FILES = ("seal.key.pem", "seal.cert.pem")
TSA_FILES = ("tsa.key.pem", "tsa.cert.pem")
REVOKED_FILE = "revoked.json"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically write `data` to `path` with permissions `mode`."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def to_asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    """The asn1crypto form pyhanko wants."""
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def to_asn1_key(key: PrivateKey) -> asn1_keys.PrivateKeyInfo:
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return asn1_keys.PrivateKeyInfo.load(der)


def load_certificate(path: Path) -> x509.Certificate:
    """A PEM or DER certificate file."""
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def _name(common_name: str, organisation: str, **extra: str) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
    ]
    oids = {"title": NameOID.TITLE, "unit": NameOID.ORGANIZATIONAL_UNIT_NAME}
    attributes += [x509.NameAttribute(oids[k], v) for k, v in extra.items()]
    return x509.Name(attributes)


def _key_usage(*, signing: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Authority:
    """The local CA with the OrganisationSeal's key and certificate and the TSA identity
    it issued."""

    keys_dir: Path
    ca_key: PrivateKey
    ca_cert: x509.Certificate
    organisation_seal_key: PrivateKey
    organisation_seal_cert: x509.Certificate
    tsa_key: PrivateKey
    tsa_cert: x509.Certificate

    @classmethod
    def load_or_create(cls, keys_dir: Path, organisation: str = DEFAULT_ORGANISATION) -> Authority:
        """The authority under `keys_dir`, generating whatever is missing (first run)."""
        keys_dir = Path(keys_dir)
        keys_dir.mkdir(parents=True, exist_ok=True)
        with _locked(keys_dir):
            ca_key, ca_cert = _load_or(keys_dir, CA_FILES, lambda: _make_ca(organisation))
            organisation_seal_key, organisation_seal_cert = _load_or(
                keys_dir,
                ORGANISATION_SEAL_FILES,
                lambda: _make_leaf(ca_key, ca_cert, f"{organisation} seal", organisation),
            )
            tsa_key, tsa_cert = _load_or(
                keys_dir,
                TSA_FILES,
                lambda: _make_leaf(
                    ca_key,
                    ca_cert,
                    f"{organisation} built-in TSA (not a trusted third party)",
                    organisation,
                    timestamping=True,
                ),
            )
        return cls(
            keys_dir,
            ca_key,
            ca_cert,
            organisation_seal_key,
            organisation_seal_cert,
            tsa_key,
            tsa_cert,
        )

    @property
    def ca_cert_path(self) -> Path:
        return self.keys_dir / CA_FILES[1]

    @property
    def organisation(self) -> str:
        names = self.ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(names[0].value) if names else DEFAULT_ORGANISATION

    def issue_event_certificate(
        self, name: str, role: str
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A fresh key and a one-day certificate for one signer's one signing."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        subject = _name(name, self.organisation, title=role, unit="event certificate")
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + EVENT_CERT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(_aki(self.ca_cert), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        return key, cert

    def revoked_serials(self) -> dict[int, float]:
        """Revoked certificate serial -> revocation time (Unix seconds), from revoked.json."""
        path = self.keys_dir / REVOKED_FILE
        if not path.exists():
            return {}
        return {int(k): float(v) for k, v in json.loads(path.read_text()).items()}

    def revoke(self, serial: int) -> None:
        """Put `serial` on every CRL issued from now on."""
        with _locked(self.keys_dir):
            revoked = self.revoked_serials()
            revoked[serial] = _now().timestamp()
            data = json.dumps({str(k): v for k, v in revoked.items()}).encode()
            _write(self.keys_dir / REVOKED_FILE, data, 0o644)

    def crl(self) -> x509.CertificateRevocationList:
        """A fresh complete CRL from the CA (issued now, valid for CRL_LIFETIME)."""
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.ca_cert.subject)
            .last_update(now - dt.timedelta(seconds=1))
            .next_update(now + CRL_LIFETIME)
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
            .add_extension(_aki(self.ca_cert), critical=False)
        )
        for serial, when in self.revoked_serials().items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(dt.datetime.fromtimestamp(when, dt.UTC))
                .build()
            )
        return builder.sign(self.ca_key, hashes.SHA256())

    def asn1_crl(self) -> asn1_crl.CertificateList:
        return asn1_crl.CertificateList.load(self.crl().public_bytes(serialization.Encoding.DER))


def _aki(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


@contextmanager
def _locked(keys_dir: Path) -> Iterator[None]:
    with (keys_dir / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load_or(
    keys_dir: Path,
    files: tuple[str, str],
    make: Callable[[], tuple[PrivateKey, x509.Certificate]],
) -> tuple[PrivateKey, x509.Certificate]:
    key_path, cert_path = (keys_dir / f for f in files)
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: only RSA and ECDSA keys are supported")
        return key, load_certificate(cert_path)
    key, cert = make()
    _write(key_path, key_pem(key), 0o600)
    _write(cert_path, cert_pem(cert), 0o644)
    return key, cert


def _make_ca(organisation: str) -> tuple[PrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    now = _now()
    name = _name(f"{organisation} Local CA", organisation)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_leaf(
    ca_key: PrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    organisation: str,
    *,
    timestamping: bool = False,
) -> tuple[PrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organisation))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=365 * LEAF_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(_aki(ca_cert), critical=False)
    )
    if timestamping:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return key, builder.sign(ca_key, hashes.SHA256())
