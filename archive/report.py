"""The verification report model that `tiaojie verify` gives for a Recording and for an
agreement PDF alike: the `Verdict` (authentic, not authentic, cannot verify: exit 0, 1, 2),
coded `Problem`s, each `Finding` (what, where, how severe) gathered by a `Findings`
collector, `VerificationReport` (the base of the Recording's and the agreement's reports, and
the JSON shape they share), `CannotVerify` (the verifier cannot run) and `run_verification`,
the command-line face of any verifier. The small formatters (`iso`, `byte_range`,
`part_name`) word times, byte ranges and Segment parts the same way in every finding.

The JSON shape (docs/ARCHIVE.md, "Verifying"): `subject` ("recording", "agreement" or
"dossier"),
`path`, `verdict` ("authentic", "not_authentic", "cannot_verify"), `authentic` (true,
false, or null when the verifier could not run), `result` (the verdict in words), `error`
(why it could not run, else null), `problems` and `warnings` (findings), then the fields
of what was verified.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar


class CannotVerify(Exception):
    """The verifier cannot run: no such path, not a Recording or agreement, no usable trust
    root or key (exit 2)."""


class Verdict(StrEnum):
    AUTHENTIC = "authentic"
    NOT_AUTHENTIC = "not_authentic"
    CANNOT_VERIFY = "cannot_verify"

    @property
    def exit_code(self) -> int:
        return {"authentic": 0, "not_authentic": 1, "cannot_verify": 2}[self.value]

    @property
    def authentic(self) -> bool | None:
        """The JSON `authentic`: None when nothing could be said (the verifier did not run)."""
        return None if self is Verdict.CANNOT_VERIFY else self is Verdict.AUTHENTIC

    @property
    def words(self) -> str:
        return self.value.replace("_", " ")


class Severity(StrEnum):
    PROBLEM = "problem"  # the evidence is not authentic
    WARNING = "warning"  # worth knowing; never changes the verdict


class Problem(StrEnum):
    """What a finding is about, as a stable code (the JSON `code`). Each code also has a
    coarser `kind` (the JSON `kind`: "altered", "signature", "timestamp", ...) that groups
    codes the way docs/ARCHIVE.md and docs/SIGNING.md list them."""

    kind: str

    def __new__(cls, code: str, kind: str) -> Problem:
        member = str.__new__(cls, code)
        member._value_ = code
        member.kind = kind
        return member

    # -- the key and the folder (recordings) --
    KEY_UNTRUSTED = "untrusted-key", "untrusted-key"
    KEY_FILE_MISMATCH = "key-file", "key-file"
    FOLDER_RENAMED = "folder-name", "folder-name"
    # -- the Chain's lines and entries --
    CHAIN_EMPTY = "chain-empty", "chain"
    CHAIN_LINE_INCOMPLETE = "chain-line-incomplete", "chain"
    CHAIN_LINE_NOT_JSON = "chain-line-not-json", "chain"
    ENTRY_MALFORMED = "entry-malformed", "chain"
    ENTRY_OUT_OF_SEQUENCE = "entry-out-of-sequence", "chain"
    ENTRY_UNLINKED = "entry-unlinked", "chain"
    ENTRY_HASH_MISMATCH = "entry-hash-mismatch", "chain"
    ENTRY_OUTSIDE_SEGMENTS = "entry-outside-segments", "chain"
    RANGES_NOT_CONTIGUOUS = "ranges-not-contiguous", "chain"
    ENTRY_AFTER_SEAL = "entry-after-seal", "after-seal"
    NOT_SEALED = "not-sealed", "not-sealed"
    ENTRIES_UNSIGNED = "entries-unsigned", "unsigned"
    # -- signatures (Chain signatures and PDF signatures) --
    SIGNATURE_WRONG_KEY = "signature-wrong-key", "signature"
    SIGNATURE_WRONG_HEAD = "signature-wrong-head", "signature"
    SIGNATURE_INVALID = "signature-invalid", "signature"
    SIGNATURE_UNCHECKABLE = "signature-uncheckable", "signature"
    SIGNED_BYTES_CHANGED = "signed-bytes-changed", "signature"
    CHANGED_AFTER_SIGNATURE = "changed-after-signature", "signature"
    LONG_TERM_VALIDATION_FAILED = "long-term-validation-failed", "signature"
    SIGNATURE_FIELD_MISMATCH = "signature-field-mismatch", "signature"
    SIGNER_MISMATCH = "signer-mismatch", "signature"
    REASON_WITHOUT_FINGERPRINT = "reason-without-fingerprint", "signature"
    # -- Segment files (recordings) --
    INIT_SEGMENT_HASH_MISMATCH = "init-segment-hash-mismatch", "altered"
    FRAGMENT_HASH_MISMATCH = "fragment-hash-mismatch", "altered"
    BOXES_MISMATCH = "boxes-mismatch", "altered"
    FRAGMENT_REMOVED = "fragment-removed", "removed"
    FRAGMENTS_REORDERED = "fragments-reordered", "reordered"
    FRAGMENT_REPEATED = "fragment-repeated", "reordered"
    SEGMENT_TRUNCATED = "segment-truncated", "truncated"
    BYTES_APPENDED = "bytes-appended", "appended"
    SEGMENT_MISSING = "segment-missing", "missing-segment"
    SEGMENT_UNREADABLE = "segment-unreadable", "missing-segment"
    SEGMENT_EXTRA = "segment-extra", "extra-segment"
    SEGMENT_EMPTY = "segment-empty", "empty-segment"
    OTHER_FILE = "other-file", "other-file"
    LOST_IN_GAP = "lost-in-gap", "lost-in-gap"
    FOLLOWS_MISMATCH = "follows-mismatch", "follows"
    # -- RFC 3161 timestamps --
    TIMESTAMP_MISSING = "timestamp-missing", "timestamp"
    TIMESTAMP_WITHOUT_SEAL = "timestamp-without-seal", "timestamp"
    TIMESTAMP_UNREADABLE = "timestamp-unreadable", "timestamp"
    TIMESTAMP_OTHER_DATA = "timestamp-other-data", "timestamp"
    TIMESTAMP_SIGNATURE_INVALID = "timestamp-signature-invalid", "timestamp"
    TIMESTAMP_UNTRUSTED = "timestamp-untrusted", "timestamp"
    TIMESTAMP_TRUST_UNCHECKED = "timestamp-trust-unchecked", "timestamp"
    TIMESTAMP_BEFORE_SEAL = "timestamp-before-seal", "timestamp"
    # -- recording.json (never evidence: warnings only) --
    SUMMARY_UNREADABLE = "summary-unreadable", "summary"
    SUMMARY_COUNTS_DIFFER = "summary-counts-differ", "summary"
    SUMMARY_SEGMENTS_DIFFER = "summary-segments-differ", "summary"
    SUMMARY_SEAL_DIFFERS = "summary-seal-differs", "summary"
    # -- the agreement PDF as a document --
    PDF_UNREADABLE = "pdf-unreadable", "document"
    PDF_NOT_SIGNED = "pdf-not-signed", "document"
    ORGANISATION_SEAL_MISSING = "organisation-seal-missing", "document"
    DOCUMENT_TIMESTAMP_MISSING = "document-timestamp-missing", "document"
    CHANGED_AFTER_LAST_SIGNATURE = "changed-after-last-signature", "document"
    # -- the agreement's embedded agreement.json --
    AGREEMENT_RECORD_MISSING = "agreement-record-missing", "agreement"
    AGREEMENT_RECORD_UNREADABLE = "agreement-record-unreadable", "agreement"
    AGREEMENT_TEXT_MISMATCH = "agreement-text-mismatch", "agreement"
    FINGERPRINT_MISMATCH = "fingerprint-mismatch", "agreement"
    SIGNER_FINGERPRINT_MISMATCH = "signer-fingerprint-mismatch", "agreement"
    SIGNER_COUNT_MISMATCH = "signer-count-mismatch", "agreement"
    # -- the agreement's embedded recording manifest, and the Recording it names --
    MANIFEST_MISSING = "manifest-missing", "manifest"
    MANIFEST_NOT_SOURCE = "manifest-not-source", "manifest"
    MANIFEST_HASH_MISMATCH = "manifest-hash-mismatch", "manifest"
    CHAIN_HEAD_NOT_IN_MANIFEST = "chain-head-not-in-manifest", "manifest"
    MANIFEST_NOT_IN_CHAIN = "manifest-not-in-chain", "recording"
    RECORDING_ID_MISMATCH = "recording-id-mismatch", "recording"
    AGREEMENT_EVENT_MISSING = "agreement-event-missing", "recording"
    AGREEMENT_EVENT_MISMATCH = "agreement-event-mismatch", "recording"
    # -- a case's dossier (tiaojie.archive.dossier) --
    DOSSIER_FILE_MISSING = "dossier-file-missing", "missing"
    DOSSIER_FILE_ALTERED = "dossier-file-altered", "altered"
    DOSSIER_FILE_EXTRA = "dossier-file-extra", "other-file"
    DOSSIER_MANIFEST_SIGNATURE = "dossier-manifest-signature", "signature"
    DOSSIER_LOG_MISMATCH = "dossier-log-mismatch", "chain"
    CASE_RECORD_ALTERED = "case-record-altered", "altered"
    # -- a court bundle (tiaojie.archive.court_bundle) --
    RECORDING_REPORT_MISMATCH = "recording-report-mismatch", "recording"
    RECORDING_REPORT_NOT_AUTHENTIC = "recording-report-not-authentic", "recording"


@dataclass
class Finding:
    """One problem or warning, located as precisely as the evidence allows: a Chain entry
    (`seq`), a byte range of a Segment file (`segment`; `fragment` 0 for its init segment, 1,
    2, ... for its Fragments; `offset`/`length`), a PDF signature field (`signature_field`)
    or a file (`file`: e.g. an embedded `agreement.json`)."""

    code: Problem
    reason: str
    severity: Severity = Severity.PROBLEM
    seq: int | None = None
    segment: str | None = None
    fragment: int | None = None
    offset: int | None = None
    length: int | None = None
    signature_field: str | None = None
    file: str | None = None

    @property
    def kind(self) -> str:
        return self.code.kind

    def where(self) -> str:
        if self.segment is not None:
            where = self.segment
            if self.fragment is not None:
                where += f" {part_name(self.fragment)}"
            if self.offset is not None and self.length:
                where += f" (bytes {byte_range(self.offset, self.length)})"
            return where
        if self.signature_field is not None:
            return self.signature_field
        if self.file is not None:
            return self.file + (f" entry {self.seq}" if self.seq is not None else "")
        return f"chain entry {self.seq}" if self.seq is not None else ""

    def describe(self) -> str:
        where = self.where()
        return f"{where}: {self.reason}" if where else self.reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "kind": self.kind,
            "severity": self.severity.value,
            "reason": self.reason,
            "message": self.describe(),
            "seq": self.seq,
            "segment": self.segment,
            "fragment": self.fragment,
            "offset": self.offset,
            "length": self.length,
            "signature_field": self.signature_field,
            "file": self.file,
        }


@dataclass
class Findings:
    """The findings of one verification, in the order the checks made them."""

    items: list[Finding] = field(default_factory=list)

    def problem(self, code: Problem, reason: str, **where: Any) -> Finding:
        return self.add(Finding(code, reason, Severity.PROBLEM, **where))

    def warning(self, code: Problem, reason: str, **where: Any) -> Finding:
        return self.add(Finding(code, reason, Severity.WARNING, **where))

    def add(self, finding: Finding) -> Finding:
        self.items.append(finding)
        return finding


def of_severity(findings: list[Finding], severity: Severity) -> list[Finding]:
    return [f for f in findings if f.severity is severity]


def envelope(
    subject: str,
    path: str,
    verdict: Verdict,
    findings: list[Finding],
    error: str | None = None,
) -> dict[str, Any]:
    """The part of the JSON report that every verifier writes the same way."""
    return {
        "subject": subject,
        "path": path,
        "verdict": verdict.value,
        "authentic": verdict.authentic,
        "result": verdict.words,
        "error": error,
        "problems": [f.to_dict() for f in of_severity(findings, Severity.PROBLEM)],
        "warnings": [f.to_dict() for f in of_severity(findings, Severity.WARNING)],
    }


@dataclass(kw_only=True)
class VerificationReport:
    """What every verification report has: what was verified (`subject`, `path`) and the
    findings. Authentic when no finding is a problem (a subclass may ask for more)."""

    subject: ClassVar[str]
    path: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return of_severity(self.findings, Severity.PROBLEM)

    @property
    def warnings(self) -> list[Finding]:
        return of_severity(self.findings, Severity.WARNING)

    @property
    def verdict(self) -> Verdict:
        return Verdict.NOT_AUTHENTIC if self.problems else Verdict.AUTHENTIC

    @property
    def authentic(self) -> bool:
        return self.verdict is Verdict.AUTHENTIC

    def details(self) -> dict[str, Any]:
        """The JSON fields of what was verified, after the shared ones."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        return envelope(self.subject, self.path, self.verdict, self.findings) | self.details()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_text(self, words: Any = None) -> str:
        """The report for people, in the language and zone of `words`
        (tiaojie.archive.report_words.Words; English and UTC by default)."""
        raise NotImplementedError


def run_verification(
    subject: str,
    path: Path,
    verify: Callable[[], VerificationReport],
    as_json: bool,
    words: Any = None,
) -> int:
    """Run a verifier and print its report (JSON with `as_json`, else text in the words of
    `words`); the exit code of the verdict. When it cannot run: the reason on stderr and,
    with `as_json`, the shared JSON shape with `verdict` "cannot_verify", `authentic` null
    and `error` on stdout."""
    try:
        report = verify()
    except CannotVerify as error:
        print(f"tiaojie verify: {error}", file=sys.stderr)
        if as_json:
            data = envelope(subject, str(path), Verdict.CANNOT_VERIFY, [], error=str(error))
            print(json.dumps(data, ensure_ascii=False, indent=2))
        return Verdict.CANNOT_VERIFY.exit_code
    sys.stdout.write(report.to_json() + "\n" if as_json else report.to_text(words))
    return report.verdict.exit_code


# -- formatting ------------------------------------------------------------------------------


def iso(t: Any) -> str | None:
    """Unix seconds as ISO 8601 UTC with milliseconds, or None when `t` is not a time."""
    if not isinstance(t, int | float) or isinstance(t, bool):
        return None
    try:
        moment = datetime.fromtimestamp(t, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def byte_range(offset: int, length: int) -> str:
    return f"{offset}-{offset + length - 1}" if length > 0 else f"{offset}-{offset}"


def part_name(fragment: int) -> str:
    """A Segment's part by number: 0 is its init segment, 1, 2, ... its Fragments."""
    return "init segment" if fragment == 0 else f"fragment {fragment}"
