"""`tiaojie verify RECORDING`: the command-line face of tiaojie.archive.verify.

Exit codes: 0 authentic, 1 not authentic, 2 could not run (message on stderr; with
`--json`, stdout also gets the report's shared JSON shape with `"verdict": "cannot_verify"`,
`"authentic": null` and the `error`, so a machine always reads JSON).
"""

from __future__ import annotations

from pathlib import Path

from tiaojie.archive.report import run_verification
from tiaojie.archive.report_words import Words
from tiaojie.archive.verify.recording import verify_recording
from tiaojie.archive.verify.report import RecordingReport
from tiaojie.archive.verify.trust import load_certificates, load_public_key


def verify_recording_trusting(
    path: Path, trust: Path | None, tsa_trust: Path | None, previous: Path | None = None
) -> RecordingReport:
    """`verify_recording` with the trust given as files (`--trust`, `--tsa-trust`), and
    the recording it follows (`--previous`)."""
    key = load_public_key(trust) if trust is not None else None
    roots = load_certificates(tsa_trust) if tsa_trust is not None else None
    source = f"--trust {trust}" if trust else "--trust"
    return verify_recording(path, key, roots, trusted_source=source, previous=previous)


def verify_recording_cli(
    path: Path,
    trust: Path | None,
    tsa_trust: Path | None,
    as_json: bool,
    words: Words | None = None,
    previous: Path | None = None,
) -> int:
    """Verify a Recording folder or one of its Segment MP4s and print the report (text in
    the language and time zone of `words`); `previous`: the folder of the recording it
    follows (a lost or drained node's), whose link is checked too."""
    return run_verification(
        RecordingReport.subject,
        path,
        lambda: verify_recording_trusting(path, trust, tsa_trust, previous),
        as_json,
        words,
    )
