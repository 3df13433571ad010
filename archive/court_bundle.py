"""The court bundle (司法确认申请材料): what a mediator hands to a court for the judicial
confirmation of a successful mediation, as a ZIP, and its offline verifier
(`tiaojie verify court-bundle.zip`).

Layout (FORMAT): a dossier's (tiaojie.archive.dossier: the signed `manifest.json` and
`manifest.sig`, `case-log.jsonl`, `keys/<key_id>.pem`) holding, instead of the whole
case,

    application.pdf                          the pre-filled application (申请书) and the
                                             checklist of the materials the rules require
    agreements/<code>.pdf                    the signed agreement it asks to confirm
    recordings/<id>/chain.jsonl              the session's recording's Chain (its head)
    recordings/<id>/verification.json        the recording verified on the server (the
                                             JSON report of `tiaojie verify`, Segments too)
    attachments/<sha256>                     the identity documents, proofs of property
                                             and powers of attorney chosen

The manifest's `application` names what is asked (`court`, `agreement_code`,
`recording_ids`, `missing`: the checklist's items still missing). What is checked: all
a dossier's checks that apply (the log, the manifest's signature and every file's
sha256, the agreement and the Chains against the log), plus that the application is
there and each recording's report is authentic and about the Chain in the bundle. The
agreement's PAdES signatures are checked by the signing layer (signing/court_verify.py)
and reported in `agreements`.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tiaojie.archive.dossier import DossierReport, FileStatus, verify_members
from tiaojie.archive.dossier_evidence import recording_name
from tiaojie.archive.report import (
    CannotVerify,
    Finding,
    Problem,
    Verdict,
    VerificationReport,
)
from tiaojie.archive.report_words import Words

FORMAT = "tiaojie-court-bundle/1"
APPLICATION = "application.pdf"
REPORT_FILE = "verification.json"
MAX_REPORT = 8 * 1024 * 1024


def report_name(recording_id: str) -> str:
    return recording_name(recording_id, REPORT_FILE)


def is_court_bundle(path: Path) -> bool:
    """A ZIP whose manifest is in this format."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("manifest.json")
            if info.file_size > MAX_REPORT:
                return False
            return bool(json.loads(archive.read(info)).get("format") == FORMAT)
    except (OSError, KeyError, ValueError, AttributeError, zipfile.BadZipFile):
        return False


@dataclass(kw_only=True)
class CourtBundleReport(DossierReport):
    subject: ClassVar[str] = "court_bundle"
    court: str | None = None
    agreement_code: str | None = None
    missing_items: list[str] = field(default_factory=list)
    agreements: list[VerificationReport] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        verdicts = [super().verdict, *(r.verdict for r in self.agreements)]
        return max(verdicts, key=lambda v: v.exit_code)

    def details(self) -> dict[str, Any]:
        return super().details() | {
            "court": self.court,
            "agreement_code": self.agreement_code,
            "missing_items": self.missing_items,
            "agreements": [r.to_dict() for r in self.agreements],
        }

    def to_text(self, words: Words | None = None) -> str:
        w = words or Words()
        body = super().to_text(w).rstrip("\n").split("\n")[1:-1]
        lines = [
            w("court_bundle", path=self.path, number=self.case_number or "?"),
            w("court_court", court=self.court or "-"),
            *body,
        ]
        if self.missing_items:
            lines.append(w("court_missing", items="、".join(self.missing_items)))
        text = "\n".join(lines) + "\n"
        for agreement in self.agreements:
            text += "\n" + agreement.to_text(w)
        bad = len(self.problems) + sum(len(r.problems) for r in self.agreements)
        final = w("court_ok") if self.verdict is Verdict.AUTHENTIC else w("court_bad", n=bad)
        return text + final + "\n"


#: Checks a signed agreement PDF (its bytes, its name in the bundle) against the Chain of
#: its recording (bytes, or None): the signing layer's verifier, given by the command.
AgreementCheck = Any


def verify_court_bundle(
    path: Path, trusted: Ed25519PublicKey | None, check_agreement: AgreementCheck = None
) -> CourtBundleReport:
    """Verify a court bundle ZIP (module docstring); CannotVerify when it is not one."""
    if not path.is_file():
        raise CannotVerify(f"no such file: {path}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise CannotVerify(f"{path} is not a ZIP file: {error}") from error
    with archive:
        report = CourtBundleReport(path=str(path))
        verify_members(archive, path, trusted, fmt=FORMAT, report=report, selective=True)
        manifest = json.loads(archive.read("manifest.json"))
        application = manifest.get("application")
        if not isinstance(application, dict):
            application = {}
        report.court = str(application.get("court") or "") or None
        code = application.get("agreement_code")
        report.agreement_code = code if isinstance(code, str) else None
        report.missing_items = [str(m) for m in application.get("missing") or []]
        names = set(archive.namelist())
        statuses = {f.file: f for f in report.files}
        listed = manifest.get("files") or {}
        found = report.findings

        def problem(code: Problem, reason: str, file: str) -> None:
            found.append(Finding(code, reason, file=file))

        if APPLICATION not in listed:
            problem(
                Problem.DOSSIER_FILE_MISSING, "the application is not in the bundle", APPLICATION
            )
        if APPLICATION in statuses:
            statuses[APPLICATION].kind = "application"
        for recording_id in application.get("recording_ids") or []:
            name = report_name(str(recording_id))
            chain = recording_name(str(recording_id))
            status = statuses.get(name)
            if status is not None:
                status.kind, status.facts = "recording_report", {"recording": recording_id}
            if name not in names or chain not in names:
                continue
            try:
                verified = json.loads(archive.read(name))
                chain_lines = archive.read(chain).splitlines()
                head = json.loads(chain_lines[-1]).get("hash") if chain_lines else None
            except (ValueError, AttributeError) as error:
                problem(Problem.RECORDING_REPORT_MISMATCH, f"unreadable: {error}", name)
                continue
            if not isinstance(verified, dict) or verified.get("head") != head:
                problem(
                    Problem.RECORDING_REPORT_MISMATCH,
                    "the verification report is not about the Chain in this bundle "
                    f"(its head {str((verified or {}).get('head'))[:16]}…, the Chain's "
                    f"{str(head)[:16]}…)",
                    name,
                )
            elif verified.get("verdict") != Verdict.AUTHENTIC.value:
                first = (verified.get("problems") or [{}])[0].get("message", "")
                problem(
                    Problem.RECORDING_REPORT_NOT_AUTHENTIC,
                    f"the recording did not verify on the server: {first}",
                    name,
                )
            if status is not None and found and found[-1].file == name:
                status.status = "altered"
        if check_agreement is not None and isinstance(code, str):
            pdf_name = f"agreements/{code}.pdf"
            if pdf_name in names:
                recording = application.get("agreement_recording_id")
                bound = recording_name(str(recording)) if recording else None
                chain_bytes = archive.read(bound) if bound and bound in names else None
                agreement = check_agreement(
                    archive.read(pdf_name), pdf_name, chain_bytes, recording
                )
                if agreement is not None:
                    report.agreements.append(agreement)
        report.files = sorted(statuses.values(), key=lambda f: f.file)
        if APPLICATION not in statuses and APPLICATION not in listed:
            report.files.append(FileStatus(APPLICATION, "missing", "application"))
        return report
