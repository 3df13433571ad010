"""Signing an agreement: the PDF, one PAdES signature per Signer, then the OrganisationSeal.

`Notary(keys_dir, tsa_url).sign_agreement(...)` (blocking, a few hundred milliseconds of
CPU: the server runs it in a worker thread so its event loop keeps serving) does, in order:

1. check that every party and the mediator signed the agreement's current text (each
   `SignerMark.fingerprint` must equal `fingerprint(agreement)`: ValueError otherwise);
2. build the PDF/A-3B document (`signing.pdf`) and add one empty signature field per
   signer (`sig1_applicant`, `sig2_respondent`, ..., `sigN_mediator`) and one for the
   OrganisationSeal (`ORGANISATION_SEAL_FIELD`, named `seal` in the PDF);
3. sign each signer's field with a fresh event certificate the local CA issues for that
   signing (subject: the signer's name and role), PAdES B-LT: signature timestamp and
   that signature's validation data (certificates, CRL) in the DSS of the same revision;
4. sign the OrganisationSeal's field with the organisation's seal certificate at PAdES
   B-LTA: signature timestamp, validation data, then a document timestamp
   (`archive_timestamp`) over the whole file, with the TSA's validation data.

(A Chain's Seal, tiaojie.archive.chain, is another thing: the Notary never makes one.)

Timestamps come from `tsa_url` (any RFC 3161 TSA) or, without one, from the built-in TSA
in this process (`signing.tsa.LocalTimeStamper`), which is not a trusted third party.
"""

from __future__ import annotations

import io
import logging
from datetime import tzinfo
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from tiaojie.archive.layout import CHAIN_FILE
from tiaojie.signing.authority import Authority, PrivateKey, to_asn1_cert, to_asn1_key
from tiaojie.signing.model import PARTY_ROLES, Agreement, SignerMark, fingerprint, role_label
from tiaojie.signing.pdf import build_agreement_pdf
from tiaojie.signing.tsa import KeepAliveTimeStamper, LocalTimeStamper, TimeStampAuthority

__all__ = ["ORGANISATION_SEAL_FIELD", "TIMESTAMP_FIELD", "Notary", "SignerMark", "field_name"]

#: The OrganisationSeal's signature field (its name in the PDF stays "seal").
ORGANISATION_SEAL_FIELD = "seal"
TIMESTAMP_FIELD = "archive_timestamp"
SIGNER_KEY_USAGE = {"non_repudiation", "digital_signature"}
# The signature timestamps and the document timestamp are SHA-256 throughout.
MD = "sha256"
HASHES = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}
LEVELS = ("B-B", "B-T", "B-LTA")
RESERVED = 16_384  # hex digits reserved for one signature's CMS (8 KB of DER; ours are ~5 KB)


class _SuppliedRevinfo(logging.Filter):
    """pyhanko warns when validation data is embedded without online fetching: here that
    is the design (the local CA's CRL is supplied directly), not a problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_SuppliedRevinfo())


def field_name(index: int, role: str) -> str:
    """The signature field of the `index`-th signer (1-based), e.g. `sig1_applicant`."""
    return f"sig{index}_{role}"


class LoadedKeySigner(signers.SimpleSigner):
    """pyhanko's SimpleSigner re-parses (and for RSA, re-validates: ~50 ms) its private
    key on every signature; this one signs with the key object it was given."""

    def __init__(self, cert: x509.Certificate, key: PrivateKey, registry: object) -> None:
        super().__init__(
            signing_cert=to_asn1_cert(cert),
            signing_key=to_asn1_key(key),
            cert_registry=registry,  # type: ignore[arg-type]
        )
        self._key = key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        algorithm = mechanism["algorithm"].native
        digest = HASHES.get(digest_algorithm)
        rsa_ok = algorithm in ("rsassa_pkcs1v15", f"{digest_algorithm}_rsa")
        ecdsa_ok = algorithm in ("ecdsa", f"{digest_algorithm}_ecdsa")
        if digest and rsa_ok and isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), digest)
        if digest and ecdsa_ok and isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(digest))
        return super().sign_raw(data, digest_algorithm)


def ordered_marks(agreement: Agreement, marks: list[SignerMark]) -> list[SignerMark]:
    """`marks` checked against the agreement and put in signing order: parties, mediator.

    Every party (by name and role) and the mediator must have signed, exactly once, the
    agreement's current text; ValueError says who is missing or what is wrong.
    """
    missing = agreement.incomplete()
    if missing:
        raise ValueError(f"the agreement is not complete: {', '.join(missing)}")
    current = fingerprint(agreement)
    for mark in marks:
        if not isinstance(mark, SignerMark):
            raise ValueError("signatures must be SignerMark objects")
        if mark.fingerprint != current:
            raise ValueError(
                f"{mark.name} ({mark.role}) signed another version of the text "
                f"({mark.fingerprint[:12]}, the current one is {current[:12]}): "
                "they must read and sign the current text again"
            )
    by_signer: dict[tuple[str, str], SignerMark] = {}
    for mark in marks:
        key = (mark.name, mark.role)
        if key in by_signer:
            raise ValueError(f"{mark.name} ({mark.role}) signed twice")
        by_signer[key] = mark
    expected = [(p.name, p.role) for p in agreement.parties] + [(agreement.mediator, "mediator")]
    if len(set(expected)) != len(expected):
        raise ValueError("two parties have the same name and role: they cannot be told apart")
    for key in expected:
        if key not in by_signer:
            raise ValueError(f"{key[0]} ({key[1]}) has not signed")
    extra = set(by_signer) - set(expected)
    if extra:
        who = ", ".join(f"{n} ({r})" for n, r in sorted(extra))
        raise ValueError(f"not a party or the mediator of this agreement: {who}")
    assert all(r in (*PARTY_ROLES, "mediator") for _, r in expected)
    return [by_signer[key] for key in expected]


class Notary:
    """Signs agreements (each Signer, then the OrganisationSeal) with the authority under
    `keys_dir` and a TSA.

    `tsa_url`: an RFC 3161 TSA; None: the built-in TSA in this process (its certificate
    is issued by the local CA: not a trusted third party). `tsa_roots`: extra trust roots
    for an external TSA's certificate (its revocation data is then fetched online).
    """

    def __init__(
        self,
        keys_dir: Path,
        tsa_url: str | None = None,
        tsa_roots: list[x509.Certificate] | None = None,
    ) -> None:
        self.authority = Authority.load_or_create(Path(keys_dir))
        self.tsa_url = tsa_url
        self.tsa_roots = list(tsa_roots or [])
        self._local_tsa = TimeStampAuthority(self.authority.tsa_key, self.authority.tsa_cert)
        self._timestamper: tuple[str, TimeStamper] | None = None
        self._ca = to_asn1_cert(self.authority.ca_cert)

    def timestamper(self) -> TimeStamper:
        """The TSA client; kept per URL, since pyhanko caches a size-estimate token in it."""
        key = self.tsa_url or ""
        if self._timestamper is None or self._timestamper[0] != key:
            client: TimeStamper = (
                KeepAliveTimeStamper(self.tsa_url)
                if self.tsa_url
                else LocalTimeStamper(self._local_tsa)
            )
            self._timestamper = (key, client)
        return self._timestamper[1]

    def validation_context(self) -> ValidationContext:
        """Trust: the local CA (and `tsa_roots`); revocation: required, from a fresh CRL."""
        return ValidationContext(
            trust_roots=[self._ca, *(to_asn1_cert(c) for c in self.tsa_roots)],
            crls=[self.authority.asn1_crl()],
            allow_fetching=bool(self.tsa_roots),
            revocation_mode="require",
        )

    def sign_agreement(
        self,
        agreement: Agreement,
        signatures: list[SignerMark],
        status_url: str,
        manifest: bytes | None,
        manifest_name: str = CHAIN_FILE,
        *,
        level: str = "B-LTA",
        timezone: tzinfo | None = None,
    ) -> bytes:
        """The signed PDF (bytes); see the module docstring. Blocking: from async code, run
        it in a worker thread (asyncio.to_thread). `timezone`: of the signature times
        printed on the page (default: TIAOJIE_TIMEZONE, else Asia/Shanghai).

        `level`: "B-LTA" (the default, and what agreements get); "B-T" (signature
        timestamps, no validation data or document timestamp) and "B-B" (no timestamps)
        exist for benchmarks and tests.
        """
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}")
        marks = ordered_marks(agreement, signatures)
        pdf = build_agreement_pdf(
            agreement,
            marks,
            status_url,
            manifest,
            manifest_name,
            organisation=self.authority.organisation,
            timezone=timezone,
        )
        names = [field_name(i, m.role) for i, m in enumerate(marks, 1)]
        pdf = self._add_fields(pdf, [*names, ORGANISATION_SEAL_FIELD])
        lta = level == "B-LTA"
        context = self.validation_context() if lta else None
        timestamper = self.timestamper() if level != "B-B" else None
        registry = SimpleCertificateStore.from_certs([self._ca])
        for name, mark in zip(names, marks, strict=True):
            key, cert = self.authority.issue_event_certificate(mark.name, mark.role)
            signer = LoadedKeySigner(cert, key, registry)
            label = role_label("en", mark.role)
            reason = f"{label} {mark.name} agrees to the text sha256:{mark.fingerprint}"
            # B-T: the OrganisationSeal's validation data below (the CA certificate and its
            # CRL, which covers every certificate the CA issued) serves these too.
            pdf = self._sign(pdf, name, signer, timestamper, None, reason, mark.name, lta=False)
        organisation_seal = LoadedKeySigner(
            self.authority.organisation_seal_cert, self.authority.organisation_seal_key, registry
        )
        reason = f"Sealed by {self.authority.organisation}: text sha256:{fingerprint(agreement)}"
        return self._sign(
            pdf,
            ORGANISATION_SEAL_FIELD,
            organisation_seal,
            timestamper,
            context,
            reason,
            self.authority.organisation,
            lta=lta,
        )

    @staticmethod
    def _add_fields(pdf: bytes, names: list[str]) -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        for name in names:
            fields.append_signature_field(writer, fields.SigFieldSpec(sig_field_name=name))
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()

    @staticmethod
    def _sign(
        pdf: bytes,
        name: str,
        signer: signers.Signer,
        timestamper: TimeStamper | None,
        context: ValidationContext | None,
        reason: str,
        signer_name: str,
        *,
        lta: bool,
    ) -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        placement = (
            SigDSSPlacementPreference.TOGETHER_WITH_NEXT_TS
            if lta
            else SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE
        )
        meta = signers.PdfSignatureMetadata(
            field_name=name,
            md_algorithm=MD,
            subfilter=SigSeedSubFilter.PADES,
            reason=reason,
            name=signer_name,
            embed_validation_info=context is not None,
            use_pades_lta=lta and context is not None,
            timestamp_field_name=TIMESTAMP_FIELD if lta else None,
            validation_context=context,
            signer_key_usage=SIGNER_KEY_USAGE,
            dss_settings=DSSContentSettings(placement=placement, include_vri=False),
        )
        pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=timestamper)
        try:
            # A generous fixed reservation skips pyhanko's size estimate (a dry-run
            # signature: ~15 % of the signing time); a larger CMS (an external TSA
            # with a long chain) falls back to the estimate.
            out = pdf_signer.sign_pdf(writer, bytes_reserved=RESERVED)
        except SigningError:
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
            out = pdf_signer.sign_pdf(writer)
        return out.getvalue()
