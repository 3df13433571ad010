"""`tiaojie verify RECORDING.zip`: a recording bundle (tiaojie.archive.bundle, what the
recordings page downloads) verified offline: its Recording (tiaojie.archive.verify) and
each signed agreement in it against that Recording (signing.validator).

The recording's trust is `--trust` (the recorder's public key) as for a folder; the
agreements' is `--ca` (the CA certificate), by default the local CA as for a PDF. Without
a CA certificate the agreements are listed but not checked. The verdict is the worst of
the reports: exit 0 when all are authentic, 1 when one is not, 2 when one cannot run.
The JSON report is one object: the shared envelope (`subject` "bundle") and `reports`,
the Recording's first.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tiaojie.archive import bundle
from tiaojie.archive.report import CannotVerify, Verdict, VerificationReport, envelope
from tiaojie.archive.report_words import Words
from tiaojie.archive.verify.cli import verify_recording_trusting
from tiaojie.signing.validator import default_trust_path, verify_agreement

SUBJECT = "bundle"


def _cannot(path: Path, error: object, as_json: bool) -> int:
    print(f"tiaojie verify: {error}", file=sys.stderr)
    if as_json:
        data = envelope(SUBJECT, str(path), Verdict.CANNOT_VERIFY, [], error=str(error))
        print(json.dumps(data, ensure_ascii=False, indent=2))
    return Verdict.CANNOT_VERIFY.exit_code


def verify_bundle_cli(
    path: Path,
    trust: Path | None,
    tsa_trust: Path | None,
    ca: Path | None,
    as_json: bool,
    words: Words | None = None,
) -> int:
    """Unpack the bundle into a temporary folder, verify what it holds, print the reports."""
    words = words or Words()
    if not path.is_file():
        return _cannot(path, f"{path}: no such file", as_json)
    with tempfile.TemporaryDirectory(prefix="tiaojie-verify-") as tmp:
        try:
            unpacked = bundle.extract(path, Path(tmp))
        except (ValueError, OSError) as error:
            return _cannot(path, error, as_json)
        shown = path / unpacked.recording.name
        try:
            recording = verify_recording_trusting(unpacked.recording, trust, tsa_trust)
        except CannotVerify as error:
            return _cannot(path, error, as_json)
        recording.path = str(shown)
        reports: list[VerificationReport] = [recording]
        if ca is None and default_trust_path().is_file():
            ca = default_trust_path()
        unchecked = []
        for pdf in unpacked.agreements:
            if ca is None:
                unchecked.append(pdf.name)
                continue
            try:
                agreement = verify_agreement(pdf, ca, unpacked.recording)
            except CannotVerify as error:
                return _cannot(path, error, as_json)
            agreement.path = str(path / bundle.AGREEMENTS / pdf.name)
            if agreement.recording is not None:
                agreement.recording["directory"] = str(shown)
            reports.append(agreement)
    worst = max((r.verdict for r in reports), key=lambda v: v.exit_code)
    if as_json:
        data: dict[str, Any] = envelope(SUBJECT, str(path), worst, [])
        data["reports"] = [r.to_dict() for r in reports]
        data["unchecked_agreements"] = unchecked
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        out = [words("archive", path=path, n=len(unpacked.agreements))]
        if unchecked:
            out.append(words("archive_no_ca"))
        sys.stdout.write("\n".join(out) + "\n\n" + "\n".join(r.to_text(words) for r in reports))
    return worst.exit_code
