"""The agreement verifier's report, what `tiaojie verify agreement.pdf` prints:
`AgreementReport`, a `VerificationReport` (tiaojie.archive.report: the verdict, the coded
findings, the JSON shape shared with the Recording verifier) with what was checked: each PDF
signature as a `SignatureReport` (a Signer's, the OrganisationSeal, the document timestamp),
the text's fingerprint, the embedded recording manifest and, given `--recording`, the
Recording it was checked against. It renders itself as JSON (`to_json`) or text (`to_text`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from tiaojie.archive.report import VerificationReport
from tiaojie.archive.report_words import Words

#: SignatureReport.kind: a Signer's signature, the OrganisationSeal, the document timestamp.
SIGNER = "signer"
ORGANISATION_SEAL = "organisation seal"
DOCUMENT_TIMESTAMP = "document timestamp"


@dataclass
class SignatureReport:
    """One signature of the PDF as pyhanko judged it; its problems are the report's findings
    that name its field (`signature_field`)."""

    field_name: str
    kind: str  # SIGNER, ORGANISATION_SEAL or DOCUMENT_TIMESTAMP
    subject: str
    name: str | None = None
    role: str | None = None
    time: str | None = None  # best known signing time (timestamp), ISO 8601 UTC
    intact: bool = False
    valid: bool = False
    trusted: bool = False
    ltv: str = ""  # "passed" or the AdES sub-indication
    coverage: str = ""


@dataclass(kw_only=True)
class AgreementReport(VerificationReport):
    """An agreement PDF verified. Authentic when no finding is a problem."""

    subject: ClassVar[str] = "agreement"
    sha256: str = ""
    trust_root: str = ""
    case_number: str | None = None
    fingerprint: str | None = None
    recording_id: str | None = None
    chain_head: str | None = None
    signatures: list[SignatureReport] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    recording: dict[str, Any] | None = None

    def signature_ok(self, signature: SignatureReport) -> bool:
        return not any(p.signature_field == signature.field_name for p in self.problems)

    def details(self) -> dict[str, Any]:
        data = asdict(self)
        del data["path"], data["findings"]
        data["signatures"] = []
        for s in self.signatures:
            signature = asdict(s)
            signature = {"field": signature.pop("field_name"), **signature}
            signature["ok"] = self.signature_ok(s)
            data["signatures"].append(signature)
        return data

    def to_text(self, words: Words | None = None) -> str:
        return render_text(self, words)


def render_text(report: AgreementReport, words: Words | None = None) -> str:
    """The human report: what the PDF is, each signature, the manifest and recording, the
    verdict and every problem; in the language and time zone of `words`."""
    w = words or Words()
    lines = [
        f"{w('agreement')}  {report.path}",
        f"  sha256    {report.sha256}",
        f"{w('trust')}{report.trust_root}",
    ]
    if w.tz is not None:
        lines.append("  " + w("time_zone", zone=getattr(w.tz, "key", str(w.tz))))
    if report.case_number:
        lines.append(f"{w('case')}{report.case_number}")
    if report.fingerprint:
        lines.append(w("text", fp=report.fingerprint, short=report.fingerprint[:12]))
    if report.recording_id:
        lines.append(w("recording_line", rid=report.recording_id, head=report.chain_head or "-"))
    lines.append(w("signatures_head"))
    for s in report.signatures:
        who = f"{s.name or '?'} ({w.role(s.role)})" if s.kind == SIGNER else s.subject
        mark = "OK  " if report.signature_ok(s) else "FAIL"
        lines.append(f"  {mark} {s.field_name:<20} {w.kind(s.kind):<18} {who}")
        lines.append(
            w(
                "sig_line",
                time=w.time(s.time),
                intact=_yn(s.intact, w),
                valid=_yn(s.valid, w),
                trusted=_yn(s.trusted, w),
                ltv=w.term("ltv", s.ltv) if s.ltv else "-",
                coverage=w.term("coverage", s.coverage),
            )
        )
    if report.manifest:
        m = report.manifest
        lines.append(
            w(
                "manifest",
                name=m["name"],
                rel=m["af_relationship"],
                entries=m["entries"],
                sha256=m["sha256"],
            )
        )
    if report.recording:
        r = report.recording
        lines.append(f"{w('recording_dir')}{r['directory']}")
        if "manifest_entries" in r:
            lines.append(
                w("manifest_prefix", n=r["manifest_entries"], total=r.get("chain_entries", "?"))
            )
        if r.get("agreement_entry_seq") is not None:
            lines.append(w("names_pdf", seq=r["agreement_entry_seq"]))
    if report.problems:
        lines.append(w("not_authentic", n=len(report.problems)))
        lines += [f"  - {w.finding(p)}" for p in report.problems]
    else:
        lines.append(w("authentic"))
    if report.warnings:
        lines.append(w("warnings", n=len(report.warnings)))
        lines += [f"  - {w.finding(x)}" for x in report.warnings]
    return "\n".join(lines) + "\n"


def _yn(value: bool, w: Words) -> str:
    return w("yes") if value else w("no")
