"""`tiaojie verify COURT-BUNDLE.zip`: a court bundle (tiaojie.archive.court_bundle)
verified offline, with its signed agreement's PAdES signatures checked here
(signing.validator) against its recording's Chain in the bundle.

`--trust` is the server's Ed25519 public key (the log, the manifest, the Chains), `--ca`
the CA certificate of the agreement (default: the local CA, as for a PDF; without one the
agreement is checked against the case log only, and the report says so).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from tiaojie.archive.court_bundle import CourtBundleReport, verify_court_bundle
from tiaojie.archive.layout import CHAIN_FILE
from tiaojie.archive.report import VerificationReport, run_verification
from tiaojie.archive.report_words import Words
from tiaojie.archive.verify.trust import load_public_key
from tiaojie.signing.validator import default_trust_path, verify_agreement

AgreementChecker = Callable[[bytes, str, bytes | None, str | None], VerificationReport]


def agreement_checker(ca: Path | None) -> AgreementChecker | None:
    """The check of one agreement PDF of a bundle against its Chain, or None without a CA."""
    if ca is None and default_trust_path().is_file():
        ca = default_trust_path()
    if ca is None:
        return None

    def check(
        pdf: bytes, name: str, chain: bytes | None, recording_id: str | None
    ) -> VerificationReport:
        with tempfile.TemporaryDirectory(prefix="tiaojie-court-") as tmp:
            file = Path(tmp) / "agreement.pdf"
            file.write_bytes(pdf)
            folder = None
            if chain is not None and recording_id:
                folder = Path(tmp) / str(recording_id)
                folder.mkdir()
                (folder / CHAIN_FILE).write_bytes(chain)
            report = verify_agreement(file, ca, folder)
            report.path = name
            return report

    return check


def verify_court_bundle_cli(
    path: Path, trust: Path | None, ca: Path | None, as_json: bool, words: Words | None = None
) -> int:
    def verify() -> CourtBundleReport:
        key = load_public_key(trust) if trust is not None else None
        return verify_court_bundle(path, key, agreement_checker(ca))

    return run_verification(CourtBundleReport.subject, path, verify, as_json, words)
