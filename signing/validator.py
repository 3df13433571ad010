"""Verifying a signed agreement PDF, offline: `tiaojie verify agreement.pdf`.

`verify_agreement(pdf, trust, recording)` checks, and reports as an `AgreementReport`
(signing.agreement_report; its verdict, coded problems and JSON shape are
tiaojie.archive.report's, shared with the Recording verifier):

1. every signature (each Signer's, the OrganisationSeal) with pyhanko's PAdES long-term
   validation (ETSI EN 319 102-1 LTA): intact, cryptographically valid, its certificate
   chains to the trust root, revocation data (the CA's CRL in the document security
   store) says it was not revoked, each signature timestamp and the document timestamp
   are valid, and no change after a signature goes beyond what PAdES permits (DSS and
   timestamps). The last document timestamp must cover the whole file;
2. the signature fields are the ones a Tiaojie agreement has (one per Signer, in order,
   then the OrganisationSeal's, then a document timestamp), and each Signer's event
   certificate names the Signer (CN) and role (title) that `agreement.json` records;
3. the embedded `agreement.json`: its text is the canonical text of its fields, and the
   fingerprint every Signer consented to is that text's, and is in each signature's
   signed /Reason; the embedded recording manifest (AFRelationship Source) has the
   sha256 `agreement.json` records and contains the chain head the text names;
4. with `recording`: the manifest is the beginning of that Recording's Chain, the Chain
   links up (tiaojie.archive.chain), the Recording's id (tiaojie.archive.layout) is the
   one the text names, and after the manifest the Chain has the entry the server appends
   when it files the agreement (`AGREEMENT_EVENT`) naming this PDF's sha256.

Trust root: `trust` (a PEM/DER CA certificate), by default the local CA at
`$TIAOJIE_DATA/keys/ca.cert.pem` (`./data` when TIAOJIE_DATA is unset). Using the local
CA's own certificate proves the agreement came from this installation, nothing more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.validation import SignatureCoverageLevel, async_validate_pdf_timestamp
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.generic_cms import validate_sig_integrity
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

from tiaojie.archive.chain import parse_entries, verify_links
from tiaojie.archive.layout import CHAIN_FILE, folder_recording_id
from tiaojie.archive.report import CannotVerify, Findings, Problem, run_verification
from tiaojie.archive.report_words import Words
from tiaojie.signing.agreement_report import (
    DOCUMENT_TIMESTAMP,
    ORGANISATION_SEAL,
    SIGNER,
    AgreementReport,
    SignatureReport,
)
from tiaojie.signing.authority import load_certificate, to_asn1_cert
from tiaojie.signing.model import Agreement, canonical_text, fingerprint
from tiaojie.signing.pdf import AGREEMENT_FILE
from tiaojie.signing.signer import ORGANISATION_SEAL_FIELD, field_name

# The chain entry the server appends when it files a signed agreement:
#   {"type": "event", "event": {"kind": "agreement", "sha256": <sha256 of the PDF file>,
#    "fingerprint": <text fingerprint>, "case_number": ..., "bytes": <PDF size>}}
AGREEMENT_EVENT = "agreement"


def default_trust_path() -> Path:
    return Path(os.environ.get("TIAOJIE_DATA", "./data")) / "keys" / "ca.cert.pem"


def _policy(root: x509.Certificate) -> PdfSignatureValidationSpec:
    cert_policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[to_asn1_cert(root)]),
        revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy.from_legacy("require")),
    )
    return PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=cert_policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
        )
    )


def _utc(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def _subject_attr(cert: Any, name: str) -> str | None:
    value = cert.subject.native.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value is not None else None


async def _check_signature(
    sig: EmbeddedPdfSignature, spec: PdfSignatureValidationSpec, kind: str, found: Findings
) -> SignatureReport:
    cert = sig.signer_cert
    report = SignatureReport(
        field_name=str(sig.field_name),
        kind=kind,
        subject=cert.subject.human_friendly,
        name=_subject_attr(cert, "common_name"),
        role=_subject_attr(cert, "title"),
    )
    where = report.field_name
    result = await ades_lta_validation(sig, spec)
    status = result.api_status
    if status is not None:
        report.intact, report.valid = bool(status.intact), bool(status.valid)
        report.trusted = status.trust_problem_indic is None and bool(status.valid)
        report.coverage = status.coverage.name.lower().replace("_", " ") if status.coverage else ""
        if not status.docmdp_ok:
            found.problem(
                Problem.CHANGED_AFTER_SIGNATURE,
                f"the file was changed after this signature beyond what PAdES allows "
                f"({status.modification_level})",
                signature_field=where,
            )
    report.time = _utc(result.best_signature_time)
    if result.ades_subindic == AdESPassed.OK:
        report.ltv = "passed"
    else:
        report.ltv = str(result.ades_subindic.standard_name).lower()
        if not report.intact:
            found.problem(
                Problem.SIGNED_BYTES_CHANGED,
                "the signed bytes were changed (digest does not match)",
                signature_field=where,
            )
        elif not report.valid:
            found.problem(
                Problem.SIGNATURE_INVALID, "the signature does not verify", signature_field=where
            )
        detail = f": {result.failure_msg}" if result.failure_msg else ""
        found.problem(
            Problem.LONG_TERM_VALIDATION_FAILED,
            f"long-term validation failed ({report.ltv}){detail}",
            signature_field=where,
        )
    return report


async def _check_document_timestamp(
    sig: EmbeddedPdfSignature, root: x509.Certificate, found: Findings
) -> SignatureReport:
    cert = sig.signer_cert
    report = SignatureReport(
        field_name=str(sig.field_name),
        kind=DOCUMENT_TIMESTAMP,
        subject=cert.subject.human_friendly,
    )
    context = ValidationContext(trust_roots=[to_asn1_cert(root)], allow_fetching=False)
    status = await async_validate_pdf_timestamp(sig, validation_context=context)
    report.intact, report.valid = bool(status.intact), bool(status.valid)
    report.trusted = bool(status.trusted)
    report.time = _utc(status.timestamp)
    report.coverage = status.coverage.name.lower().replace("_", " ") if status.coverage else ""
    report.ltv = "passed" if status.intact and status.valid and status.trusted else "failed"
    where = report.field_name
    if not status.intact:
        found.problem(
            Problem.SIGNED_BYTES_CHANGED,
            "the timestamped bytes were changed (digest does not match)",
            signature_field=where,
        )
    elif not status.valid:
        found.problem(
            Problem.TIMESTAMP_SIGNATURE_INVALID,
            "the timestamp's signature does not verify",
            signature_field=where,
        )
    elif not status.trusted:
        found.problem(
            Problem.TIMESTAMP_UNTRUSTED,
            "the TSA certificate does not chain to the trust root",
            signature_field=where,
        )
    return report


def _unvalidated(
    sig: EmbeddedPdfSignature, kind: str, content_type: str = "data"
) -> SignatureReport:
    """What can still be said of a signature the validator failed on: who its certificate
    names, and whether the signed bytes are intact and the signature verifies with the
    certificate's own key (checked apart from the certificate path)."""
    report = SignatureReport(field_name=str(sig.field_name), kind=kind, subject="?")
    try:
        cert = sig.signer_cert
        report.subject = cert.subject.human_friendly
        report.name = _subject_attr(cert, "common_name")
        report.role = _subject_attr(cert, "title")
        report.intact, report.valid = validate_sig_integrity(
            sig.signer_info, cert, content_type, sig.compute_digest()
        )
    except Exception:  # nothing more can be said
        pass
    report.ltv = "not validated"
    return report


def _why_unvalidated(sig: EmbeddedPdfSignature, root: x509.Certificate, error: Exception) -> str:
    """Why pyhanko could not validate a signature, in words: whose certificate it is and
    how it stands to the trust root; else the validator's own error (pyhanko fails some
    foreign certificates with a bare AssertionError)."""
    try:
        leaf = x509.load_der_x509_certificate(sig.signer_cert.dump())
    except Exception:
        leaf = None
    trust_root = root.subject.rfc4514_string()
    if leaf is not None and leaf.issuer == root.subject:
        try:
            leaf.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature) as mismatch:
            why = str(mismatch) or "the signature does not verify"
            return (
                f"its certificate names the trust root ({trust_root}) as its issuer, but the "
                f"trust root did not sign it ({why}): it was issued by another CA of the "
                "same name"
            )
    elif leaf is not None:
        return (
            f"its certificate was issued by {leaf.issuer.rfc4514_string()}, which does not "
            f"chain to the trust root ({trust_root})"
        )
    detail = str(error).strip()
    return f"the validator failed: {type(error).__name__}" + (f": {detail}" if detail else "")


def _embedded_files(reader: PdfFileReader) -> dict[str, tuple[bytes, str | None]]:
    """The PDF/A-3 associated files: name -> (content, AFRelationship)."""
    files: dict[str, tuple[bytes, str | None]] = {}
    for ref in reader.root.get("/AF", generic.ArrayObject()):
        spec = ref.get_object()
        name = str(spec.get("/UF", spec.get("/F", "")))
        stream = spec["/EF"]["/F"].get_object()
        relationship = spec.get("/AFRelationship")
        files[name] = (stream.data, str(relationship)[1:] if relationship else None)
    return files


def _check_record(
    report: AgreementReport, found: Findings, files: dict[str, tuple[bytes, str | None]]
) -> dict[str, Any] | None:
    """`agreement.json`, checked against the text it renders; None when unreadable."""
    if AGREEMENT_FILE not in files:
        found.problem(
            Problem.AGREEMENT_RECORD_MISSING,
            f"no embedded {AGREEMENT_FILE}: not a Tiaojie agreement",
        )
        return None
    try:
        record = json.loads(files[AGREEMENT_FILE][0])
        agreement = Agreement.from_dict(record["agreement"])
    except (ValueError, KeyError, TypeError) as e:
        found.problem(
            Problem.AGREEMENT_RECORD_UNREADABLE, f"embedded {AGREEMENT_FILE} is unreadable: {e}"
        )
        return None
    text_fp = fingerprint(agreement)
    report.case_number = agreement.case_number
    report.fingerprint = text_fp
    report.recording_id = agreement.recording_id
    report.chain_head = agreement.chain_head
    if record.get("canonical_text") != canonical_text(agreement):
        found.problem(
            Problem.AGREEMENT_TEXT_MISMATCH,
            "the text is not the text of its fields",
            file=AGREEMENT_FILE,
        )
    if record.get("fingerprint") != text_fp:
        found.problem(
            Problem.FINGERPRINT_MISMATCH, "the fingerprint is not the text's", file=AGREEMENT_FILE
        )
    for signer in record.get("signers", []):
        if signer.get("fingerprint") != text_fp:
            found.problem(
                Problem.SIGNER_FINGERPRINT_MISMATCH,
                f"{signer.get('name')} ({signer.get('role')}) signed another text version",
                file=AGREEMENT_FILE,
            )
    return dict(record)


def _check_manifest(
    report: AgreementReport,
    found: Findings,
    record: dict[str, Any] | None,
    files: dict[str, tuple[bytes, str | None]],
) -> bytes | None:
    """The embedded recording manifest (the Chain's first lines), as `agreement.json`
    declares it; its bytes, or None when there is none."""
    if record is None:
        return None
    declared = record.get("manifest")
    if declared is None:
        if report.recording_id:
            found.problem(
                Problem.MANIFEST_MISSING, "the agreement names a recording but embeds no manifest"
            )
        return None
    name = declared.get("name")
    if name not in files:
        found.problem(Problem.MANIFEST_MISSING, f"the recording manifest {name} is not embedded")
        return None
    data, relationship = files[name]
    digest = hashlib.sha256(data).hexdigest()
    entries, read_found = parse_entries(data)
    report.manifest = {
        "name": name,
        "sha256": digest,
        "bytes": len(data),
        "entries": len(entries),
        "af_relationship": relationship,
    }
    if relationship != "Source":
        found.problem(
            Problem.MANIFEST_NOT_SOURCE, f"AFRelationship is {relationship}, not Source", file=name
        )
    if digest != declared.get("sha256"):
        found.problem(
            Problem.MANIFEST_HASH_MISMATCH,
            f"its sha256 is not the one {AGREEMENT_FILE} records",
            file=name,
        )
    if report.chain_head:
        for finding in read_found:
            found.add(replace(finding, file=name))
        hashes = {e.get("hash") for e in entries if isinstance(e, dict)}
        if report.chain_head not in hashes:
            found.problem(
                Problem.CHAIN_HEAD_NOT_IN_MANIFEST,
                f"the chain head the text names ({report.chain_head[:12]}) is not in the manifest",
                file=name,
            )
    return data


def _check_recording(
    report: AgreementReport,
    found: Findings,
    directory: Path,
    manifest: bytes | None,
) -> None:
    """The Recording the agreement was reached in: its Chain begins with the manifest,
    links up, and names this PDF after it."""
    chain_path = directory / CHAIN_FILE
    if not chain_path.is_file():
        raise CannotVerify(f"{directory} has no {CHAIN_FILE}: not a recording folder")
    chain = chain_path.read_bytes()
    info: dict[str, Any] = {"directory": str(directory)}
    report.recording = info
    recording_id = folder_recording_id(directory)
    if report.recording_id and report.recording_id != recording_id:
        found.problem(
            Problem.RECORDING_ID_MISMATCH,
            f"the agreement was reached in recording {report.recording_id}, not in {recording_id}",
        )
    if manifest is None:
        found.problem(
            Problem.MANIFEST_MISSING, "no embedded manifest to compare with the recording"
        )
        return
    if not chain.startswith(manifest) or not manifest.endswith(b"\n"):
        found.problem(
            Problem.MANIFEST_NOT_IN_CHAIN,
            f"the embedded manifest is not the beginning of {chain_path} "
            "(it belongs to another recording, or one of them was changed)",
        )
        return
    entries, read_found = parse_entries(chain)
    for finding in read_found:
        found.add(replace(finding, file=CHAIN_FILE))
    prefix = manifest.count(b"\n")
    info["manifest_entries"] = prefix
    info["chain_entries"] = len(entries)
    for finding in verify_links(entries):
        found.problem(
            finding.code,
            f"{finding.reason} (run `tiaojie verify` on the recording)",
            file=CHAIN_FILE,
            seq=finding.seq,
        )
        return
    if report.chain_head:
        info["chain_head_seq"] = next(
            (e["seq"] for e in entries[:prefix] if e.get("hash") == report.chain_head), None
        )
    for entry in entries[prefix:]:
        event = entry.get("event")
        if (
            entry.get("type") == "event"
            and isinstance(event, dict)
            and event.get("kind") == AGREEMENT_EVENT
            and event.get("sha256") == report.sha256
        ):
            info["agreement_entry_seq"] = entry["seq"]
            if event.get("fingerprint") not in (None, report.fingerprint):
                found.problem(
                    Problem.AGREEMENT_EVENT_MISMATCH,
                    "names this PDF with another text fingerprint",
                    file=CHAIN_FILE,
                    seq=entry["seq"],
                )
            return
    found.problem(
        Problem.AGREEMENT_EVENT_MISSING,
        f"the recording's chain has no `{AGREEMENT_EVENT}` event naming this PDF "
        f"(sha256 {report.sha256[:12]}...) after the embedded manifest",
    )


async def _validate_signatures(
    signatures: list[EmbeddedPdfSignature], root: x509.Certificate, found: Findings
) -> list[SignatureReport]:
    spec = _policy(root)
    reports = []
    regular = [s for s in signatures if s.sig_object_type != "/DocTimeStamp"]
    for i, sig in enumerate(regular, 1):
        kind = ORGANISATION_SEAL if sig.field_name == ORGANISATION_SEAL_FIELD else SIGNER
        try:
            sig_report = await _check_signature(sig, spec, kind, found)
        except Exception as e:  # a damaged signature can fail anywhere in pyhanko
            sig_report = _unvalidated(sig, kind)
            found.problem(
                Problem.SIGNATURE_UNCHECKABLE,
                f"cannot be validated: {_why_unvalidated(sig, root, e)}",
                signature_field=sig_report.field_name,
            )
        if kind == SIGNER and sig.field_name != field_name(i, sig_report.role or "?"):
            found.problem(
                Problem.SIGNATURE_FIELD_MISMATCH,
                "the field does not match the signer's order and role",
                signature_field=sig_report.field_name,
            )
        reports.append(sig_report)
    for sig in signatures:
        if sig.sig_object_type != "/DocTimeStamp":
            continue
        try:
            reports.append(await _check_document_timestamp(sig, root, found))
        except Exception as e:
            ts_report = _unvalidated(sig, DOCUMENT_TIMESTAMP, content_type="tst_info")
            found.problem(
                Problem.SIGNATURE_UNCHECKABLE,
                f"cannot be validated: {_why_unvalidated(sig, root, e)}",
                signature_field=ts_report.field_name,
            )
            reports.append(ts_report)
    return reports


def _verify(pdf: Path, root: x509.Certificate, recording: Path | None) -> AgreementReport:
    data = pdf.read_bytes()
    report = AgreementReport(path=str(pdf), sha256=hashlib.sha256(data).hexdigest())
    report.trust_root = root.subject.rfc4514_string()
    found = Findings(report.findings)
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = list(reader.embedded_signatures)
        files = _embedded_files(reader)
    except Exception as e:  # pyhanko raises many kinds on a damaged file
        found.problem(Problem.PDF_UNREADABLE, f"not a readable PDF: {e}")
        return report
    report.signatures = asyncio.run(_validate_signatures(signatures, root, found))
    _check_structure(report, found, signatures)
    record = _check_record(report, found, files)
    if record is not None:
        regular = [s for s in signatures if s.sig_object_type != "/DocTimeStamp"]
        _check_signers(report, found, record, regular)
    manifest = _check_manifest(report, found, record, files)
    if recording is not None:
        _check_recording(report, found, recording, manifest)
    return report


def _check_structure(
    report: AgreementReport, found: Findings, signatures: list[EmbeddedPdfSignature]
) -> None:
    if not signatures:
        found.problem(Problem.PDF_NOT_SIGNED, "the PDF is not signed")
        return
    kinds = [s.kind for s in report.signatures]
    if ORGANISATION_SEAL not in kinds:
        found.problem(Problem.ORGANISATION_SEAL_MISSING, "there is no organisation seal")
    if DOCUMENT_TIMESTAMP not in kinds:
        found.problem(
            Problem.DOCUMENT_TIMESTAMP_MISSING, "there is no document timestamp (not PAdES B-LTA)"
        )
    last = signatures[-1]
    if last.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        found.problem(
            Problem.CHANGED_AFTER_LAST_SIGNATURE,
            "the file was changed after its last signature or timestamp",
        )


def _check_signers(
    report: AgreementReport,
    found: Findings,
    record: dict[str, Any],
    regular: list[EmbeddedPdfSignature],
) -> None:
    signers = record.get("signers", [])
    parties = [s for s in report.signatures if s.kind == SIGNER]
    if len(parties) != len(signers):
        found.problem(
            Problem.SIGNER_COUNT_MISMATCH,
            f"{AGREEMENT_FILE} lists {len(signers)} signers, the PDF has {len(parties)} signatures",
        )
        return
    for signer, sig_report, sig in zip(signers, parties, regular, strict=False):
        if (sig_report.name, sig_report.role) != (signer.get("name"), signer.get("role")):
            found.problem(
                Problem.SIGNER_MISMATCH,
                f"its certificate names {sig_report.name} ({sig_report.role}), "
                f"{AGREEMENT_FILE} {signer.get('name')} ({signer.get('role')})",
                signature_field=sig_report.field_name,
            )
        reason = str(sig.sig_object.get("/Reason", ""))
        if f"sha256:{report.fingerprint}" not in reason:
            found.problem(
                Problem.REASON_WITHOUT_FINGERPRINT,
                "its signed reason does not name the text's fingerprint",
                signature_field=sig_report.field_name,
            )


def verify_agreement(
    pdf: Path, trust: Path | None = None, recording: Path | None = None
) -> AgreementReport:
    """Verify a signed agreement PDF (see the module docstring). Raises CannotVerify."""
    pdf = Path(pdf)
    if not pdf.is_file():
        raise CannotVerify(f"{pdf}: no such file")
    trust_path = Path(trust) if trust is not None else default_trust_path()
    if not trust_path.is_file():
        hint = (
            "" if trust is not None else " (the local CA; pass --trust CA.pem or set TIAOJIE_DATA)"
        )
        raise CannotVerify(f"trust root {trust_path} not found{hint}")
    try:
        root = load_certificate(trust_path)
    except ValueError as e:
        raise CannotVerify(f"{trust_path} is not a certificate: {e}") from e
    if recording is not None and not Path(recording).is_dir():
        raise CannotVerify(f"{recording}: not a directory")
    report = _verify(pdf, root, Path(recording) if recording else None)
    report.trust_root += f" ({trust_path})"
    return report


def verify_agreement_cli(
    path: Path,
    trust: Path | None,
    recording: Path | None,
    as_json: bool,
    words: Words | None = None,
) -> int:
    """`tiaojie verify agreement.pdf`: 0 authentic, 1 not authentic, 2 could not run (text
    in the language and time zone of `words`)."""
    return run_verification(
        AgreementReport.subject,
        path,
        lambda: verify_agreement(path, trust, recording),
        as_json,
        words,
    )
