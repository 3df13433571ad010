"""Verifying a sealed agreement PDF, offline: `tiaojie verify agreement.pdf`.

`verify_agreement(pdf, trust, recording)` checks, and reports:

1. every signature (each signer's, the organisation seal) with pyhanko's PAdES long-term
   validation (ETSI EN 319 102-1 LTA): intact, cryptographically valid, its certificate
   chains to the trust root, revocation data (the CA's CRL in the document security
   store) says it was not revoked, each signature timestamp and the document timestamp
   are valid, and no change after a signature goes beyond what PAdES permits (DSS and
   timestamps). The last document timestamp must cover the whole file;
2. the signature fields are the ones a Tiaojie agreement has (one per signer, in order,
   then `seal`, then a document timestamp), and each signer's event certificate names
   the signer (CN) and role (title) that `agreement.json` records;
3. the embedded `agreement.json`: its text is the canonical text of its fields, and the
   fingerprint every signer consented to is that text's, and is in each signature's
   signed /Reason; the embedded recording manifest (AFRelationship Source) has the
   sha256 `agreement.json` records and contains the chain head the text names;
4. with `recording`: the manifest is the beginning of that recording's `chain.jsonl`,
   the chain links up, and after the manifest it has the entry the server appends when
   it files the agreement (`AGREEMENT_EVENT`) naming this PDF's sha256.

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
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.validation import SignatureCoverageLevel, async_validate_pdf_timestamp
from pyhanko.sign.validation.ades import ades_lta_validation
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

from tiaojie.archive.chain import GENESIS, entry_hash, read_entries
from tiaojie.archive.layout import CHAIN_FILE
from tiaojie.signing.authority import load_certificate, to_asn1_cert
from tiaojie.signing.model import Agreement, canonical_text, fingerprint
from tiaojie.signing.pdf import AGREEMENT_FILE
from tiaojie.signing.signer import SEAL_FIELD, field_name

# The chain entry the server appends when it files a sealed agreement:
#   {"type": "event", "event": {"kind": "agreement", "sha256": <sha256 of the PDF file>,
#    "fingerprint": <text fingerprint>, "case_number": ..., "bytes": <PDF size>}}
AGREEMENT_EVENT = "agreement"

EXIT_AUTHENTIC, EXIT_NOT_AUTHENTIC, EXIT_CANNOT_RUN = 0, 1, 2


class CannotVerify(Exception):
    """The verification could not run (missing file, no trust root): exit status 2."""


@dataclass
class SignatureReport:
    field: str
    kind: str  # "signer" | "seal" | "document timestamp"
    subject: str
    name: str | None = None
    role: str | None = None
    time: str | None = None  # best known signing time (timestamp), ISO 8601 UTC
    intact: bool = False
    valid: bool = False
    trusted: bool = False
    ltv: str = ""  # "passed" or the AdES sub-indication
    coverage: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class AgreementReport:
    path: str
    sha256: str = ""
    trust_root: str = ""
    case_number: str | None = None
    fingerprint: str | None = None
    recording_id: str | None = None
    chain_head: str | None = None
    signatures: list[SignatureReport] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    recording: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def authentic(self) -> bool:
        return not self.problems and all(s.ok for s in self.signatures)

    def all_problems(self) -> list[str]:
        out = list(self.problems)
        for s in self.signatures:
            out += [f"{s.field}: {p}" for p in s.problems]
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["authentic"] = self.authentic
        d["problems"] = self.all_problems()
        for s, sd in zip(self.signatures, d["signatures"], strict=True):
            sd["ok"] = s.ok
        return d


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
    sig: EmbeddedPdfSignature, spec: PdfSignatureValidationSpec, kind: str
) -> SignatureReport:
    cert = sig.signer_cert
    report = SignatureReport(
        field=str(sig.field_name),
        kind=kind,
        subject=cert.subject.human_friendly,
        name=_subject_attr(cert, "common_name"),
        role=_subject_attr(cert, "title"),
    )
    result = await ades_lta_validation(sig, spec)
    status = result.api_status
    if status is not None:
        report.intact, report.valid = bool(status.intact), bool(status.valid)
        report.trusted = status.trust_problem_indic is None and bool(status.valid)
        report.coverage = status.coverage.name.lower().replace("_", " ") if status.coverage else ""
        if not status.docmdp_ok:
            report.problems.append(
                f"the file was changed after this signature beyond what PAdES allows "
                f"({status.modification_level})"
            )
    report.time = _utc(result.best_signature_time)
    if result.ades_subindic == AdESPassed.OK:
        report.ltv = "passed"
    else:
        report.ltv = str(result.ades_subindic.name).lower()
        if not report.intact:
            report.problems.append("the signed bytes were changed (digest does not match)")
        elif not report.valid:
            report.problems.append("the signature does not verify")
        detail = f": {result.failure_msg}" if result.failure_msg else ""
        report.problems.append(f"long-term validation failed ({report.ltv}){detail}")
    return report


async def _check_timestamp(sig: EmbeddedPdfSignature, root: x509.Certificate) -> SignatureReport:
    cert = sig.signer_cert
    report = SignatureReport(
        field=str(sig.field_name), kind="document timestamp", subject=cert.subject.human_friendly
    )
    context = ValidationContext(trust_roots=[to_asn1_cert(root)], allow_fetching=False)
    status = await async_validate_pdf_timestamp(sig, validation_context=context)
    report.intact, report.valid = bool(status.intact), bool(status.valid)
    report.trusted = bool(status.trusted)
    report.time = _utc(status.timestamp)
    report.coverage = status.coverage.name.lower().replace("_", " ") if status.coverage else ""
    report.ltv = "passed" if status.intact and status.valid and status.trusted else "failed"
    if not status.intact:
        report.problems.append("the timestamped bytes were changed (digest does not match)")
    elif not status.valid:
        report.problems.append("the timestamp's signature does not verify")
    elif not status.trusted:
        report.problems.append("the TSA certificate does not chain to the trust root")
    return report


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
    report: AgreementReport, files: dict[str, tuple[bytes, str | None]]
) -> dict[str, Any] | None:
    if AGREEMENT_FILE not in files:
        report.problems.append(f"no embedded {AGREEMENT_FILE}: not a Tiaojie agreement")
        return None
    try:
        record = json.loads(files[AGREEMENT_FILE][0])
        agreement = Agreement.from_dict(record["agreement"])
    except (ValueError, KeyError, TypeError) as e:
        report.problems.append(f"embedded {AGREEMENT_FILE} is unreadable: {e}")
        return None
    text_fp = fingerprint(agreement)
    report.case_number = agreement.case_number
    report.fingerprint = text_fp
    report.recording_id = agreement.recording_id
    report.chain_head = agreement.chain_head
    if record.get("canonical_text") != canonical_text(agreement):
        report.problems.append(f"{AGREEMENT_FILE}: the text is not the text of its fields")
    if record.get("fingerprint") != text_fp:
        report.problems.append(f"{AGREEMENT_FILE}: the fingerprint is not the text's")
    for signer in record.get("signers", []):
        if signer.get("fingerprint") != text_fp:
            report.problems.append(
                f"{signer.get('name')} ({signer.get('role')}) signed another text version"
            )
    record["_agreement"] = agreement
    return record


def _check_manifest(
    report: AgreementReport,
    record: dict[str, Any] | None,
    files: dict[str, tuple[bytes, str | None]],
) -> bytes | None:
    if record is None:
        return None
    declared = record.get("manifest")
    if declared is None:
        if report.recording_id:
            report.problems.append("the agreement names a recording but embeds no manifest")
        return None
    name = declared.get("name")
    if name not in files:
        report.problems.append(f"the recording manifest {name} is not embedded")
        return None
    data, relationship = files[name]
    digest = hashlib.sha256(data).hexdigest()
    entries = [line for line in data.split(b"\n") if line]
    report.manifest = {
        "name": name,
        "sha256": digest,
        "bytes": len(data),
        "entries": len(entries),
        "af_relationship": relationship,
    }
    if relationship != "Source":
        report.problems.append(f"{name}: AFRelationship is {relationship}, not Source")
    if digest != declared.get("sha256"):
        report.problems.append(f"{name}: its sha256 is not the one {AGREEMENT_FILE} records")
    if report.chain_head:
        hashes = set()
        for line in entries:
            try:
                hashes.add(json.loads(line).get("hash"))
            except (ValueError, AttributeError):
                report.problems.append(f"{name}: a line is not a JSON chain entry")
                break
        if report.chain_head not in hashes:
            report.problems.append(
                f"{name}: the chain head the text names ({report.chain_head[:12]}) "
                "is not in the manifest"
            )
    return data


def _check_recording(
    report: AgreementReport, directory: Path, manifest: bytes | None, pdf_sha256: str
) -> None:
    chain_path = directory / CHAIN_FILE
    if not chain_path.is_file():
        raise CannotVerify(f"{directory} has no {CHAIN_FILE}: not a recording folder")
    chain = chain_path.read_bytes()
    info: dict[str, Any] = {"directory": str(directory)}
    report.recording = info
    if report.recording_id and report.recording_id != _recording_id(directory):
        report.problems.append(
            f"the agreement was reached in recording {report.recording_id}, "
            f"not in {_recording_id(directory)}"
        )
    if manifest is None:
        report.problems.append("no embedded manifest to compare with the recording")
        return
    if not chain.startswith(manifest) or not manifest.endswith(b"\n"):
        report.problems.append(
            f"the embedded manifest is not the beginning of {chain_path} "
            "(it belongs to another recording, or one of them was changed)"
        )
        return
    entries, problems = read_entries(chain_path)
    for problem in problems:
        report.problems.append(f"{CHAIN_FILE}: {problem.reason}")
    prefix = manifest.count(b"\n")
    info["manifest_entries"] = prefix
    info["chain_entries"] = len(entries)
    prev = GENESIS
    for entry in entries:
        if entry.get("prev") != prev or entry.get("hash") != entry_hash(entry):
            report.problems.append(
                f"{CHAIN_FILE}: entry {entry.get('seq')} does not link up "
                "(run `tiaojie verify` on the recording)"
            )
            return
        prev = entry["hash"]
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
            and event.get("sha256") == pdf_sha256
        ):
            info["agreement_entry_seq"] = entry["seq"]
            if event.get("fingerprint") not in (None, report.fingerprint):
                report.problems.append(
                    f"{CHAIN_FILE}: entry {entry['seq']} names this PDF with another text "
                    "fingerprint"
                )
            return
    report.problems.append(
        f"the recording's chain has no `{AGREEMENT_EVENT}` event naming this PDF "
        f"(sha256 {pdf_sha256[:12]}...) after the embedded manifest"
    )


def _recording_id(directory: Path) -> str:
    summary = directory / "recording.json"
    if summary.is_file():
        try:
            data = json.loads(summary.read_text())
            for key in ("recording_id", "id", "recording"):
                if isinstance(data.get(key), str):
                    return data[key]
        except (ValueError, AttributeError):
            pass
    return directory.resolve().name


async def _validate_signatures(
    signatures: list[EmbeddedPdfSignature], root: x509.Certificate
) -> list[SignatureReport]:
    spec = _policy(root)
    reports = []
    regular = [s for s in signatures if s.sig_object_type != "/DocTimeStamp"]
    for i, sig in enumerate(regular, 1):
        kind = "seal" if sig.field_name == SEAL_FIELD else "signer"
        try:
            sig_report = await _check_signature(sig, spec, kind)
        except Exception as e:  # a damaged signature can fail anywhere in pyhanko
            sig_report = SignatureReport(field=str(sig.field_name), kind=kind, subject="?")
            sig_report.problems.append(f"cannot be validated: {e}")
        if kind == "signer" and sig.field_name != field_name(i, sig_report.role or "?"):
            sig_report.problems.append("the field does not match the signer's order and role")
        reports.append(sig_report)
    for sig in signatures:
        if sig.sig_object_type != "/DocTimeStamp":
            continue
        try:
            reports.append(await _check_timestamp(sig, root))
        except Exception as e:
            kind = "document timestamp"
            ts_report = SignatureReport(field=str(sig.field_name), kind=kind, subject="?")
            ts_report.problems.append(f"cannot be validated: {e}")
            reports.append(ts_report)
    return reports


def _verify(pdf: Path, root: x509.Certificate, recording: Path | None) -> AgreementReport:
    data = pdf.read_bytes()
    report = AgreementReport(path=str(pdf), sha256=hashlib.sha256(data).hexdigest())
    report.trust_root = root.subject.rfc4514_string()
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = list(reader.embedded_signatures)
        files = _embedded_files(reader)
    except Exception as e:  # pyhanko raises many kinds on a damaged file
        report.problems.append(f"not a readable PDF: {e}")
        return report
    report.signatures = asyncio.run(_validate_signatures(signatures, root))
    _check_structure(report, signatures)
    record = _check_record(report, files)
    if record is not None:
        regular = [s for s in signatures if s.sig_object_type != "/DocTimeStamp"]
        _check_signers(report, record, regular)
    manifest = _check_manifest(report, record, files)
    if recording is not None:
        _check_recording(report, recording, manifest, report.sha256)
    return report


def _check_structure(report: AgreementReport, signatures: list[EmbeddedPdfSignature]) -> None:
    if not signatures:
        report.problems.append("the PDF is not signed")
        return
    kinds = [s.kind for s in report.signatures]
    if "seal" not in kinds:
        report.problems.append("there is no organisation seal")
    if "document timestamp" not in kinds:
        report.problems.append("there is no document timestamp (not PAdES B-LTA)")
    last = signatures[-1]
    if last.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        report.problems.append("the file was changed after its last signature or timestamp")


def _check_signers(
    report: AgreementReport, record: dict[str, Any], regular: list[EmbeddedPdfSignature]
) -> None:
    signers = record.get("signers", [])
    parties = [s for s in report.signatures if s.kind == "signer"]
    if len(parties) != len(signers):
        report.problems.append(
            f"{AGREEMENT_FILE} lists {len(signers)} signers, the PDF has {len(parties)} signatures"
        )
        return
    for signer, sig_report, sig in zip(signers, parties, regular, strict=False):
        if (sig_report.name, sig_report.role) != (signer.get("name"), signer.get("role")):
            sig_report.problems.append(
                f"its certificate names {sig_report.name} ({sig_report.role}), "
                f"{AGREEMENT_FILE} {signer.get('name')} ({signer.get('role')})"
            )
        reason = str(sig.sig_object.get("/Reason", ""))
        if f"sha256:{report.fingerprint}" not in reason:
            sig_report.problems.append("its signed reason does not name the text's fingerprint")


def verify_agreement(
    pdf: Path, trust: Path | None = None, recording: Path | None = None
) -> AgreementReport:
    """Verify a sealed agreement PDF (see the module docstring). Raises CannotVerify."""
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


def format_report(report: AgreementReport) -> str:
    lines = [
        f"Agreement   {report.path}",
        f"  sha256    {report.sha256}",
        f"  trust     {report.trust_root}",
    ]
    if report.case_number:
        lines.append(f"  case      {report.case_number}")
    if report.fingerprint:
        lines.append(
            f"  text      sha256 {report.fingerprint} (shown as {report.fingerprint[:12]})"
        )
    if report.recording_id:
        lines.append(f"  recording {report.recording_id}, chain head {report.chain_head or '-'}")
    lines.append("Signatures")
    for s in report.signatures:
        who = f"{s.name} ({s.role})" if s.kind == "signer" else s.subject
        mark = "OK  " if s.ok else "FAIL"
        lines.append(f"  {mark} {s.field:<20} {s.kind:<18} {who}")
        lines.append(
            f"       time {s.time or '-'}; intact {_yn(s.intact)}, valid {_yn(s.valid)}, "
            f"trusted {_yn(s.trusted)}; long-term validation {s.ltv or '-'}; {s.coverage}"
        )
    if report.manifest:
        m = report.manifest
        lines.append(
            f"Manifest    {m['name']} (AFRelationship {m['af_relationship']}): "
            f"{m['entries']} entries, sha256 {m['sha256']}"
        )
    if report.recording:
        r = report.recording
        lines.append(f"Recording   {r['directory']}")
        if "manifest_entries" in r:
            lines.append(
                f"  the manifest is the first {r['manifest_entries']} of "
                f"{r.get('chain_entries', '?')} chain entries"
            )
        if r.get("agreement_entry_seq") is not None:
            lines.append(f"  chain entry {r['agreement_entry_seq']} names this PDF")
    problems = report.all_problems()
    if problems:
        lines.append("NOT AUTHENTIC")
        lines += [f"  - {p}" for p in problems]
    else:
        lines.append(
            "AUTHENTIC: every signature is valid at PAdES B-LTA and trusted; "
            "the text, manifest and recording agree"
        )
    return "\n".join(lines)


def _yn(value: bool) -> str:
    return "yes" if value else "NO"


def verify_agreement_cli(
    path: Path, trust: Path | None, recording: Path | None, as_json: bool
) -> int:
    """`tiaojie verify agreement.pdf`: 0 authentic, 1 not authentic, 2 could not run."""
    try:
        report = verify_agreement(path, trust, recording)
    except CannotVerify as e:
        if as_json:
            print(json.dumps({"path": str(path), "error": str(e), "authentic": None}))
        else:
            print(f"cannot verify: {e}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(format_report(report))
    return EXIT_AUTHENTIC if report.authentic else EXIT_NOT_AUTHENTIC
