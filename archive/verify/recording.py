"""`verify_recording`, the Recording verifier's entry point: it locates the Recording folder
(`locate`: PATH is the folder, or one Segment MP4 inside its `segments/`), chooses the key to
check signatures with (the trusted one, else the folder's own `recorder.pub.pem`, with a
warning), reads the Chain and the summary, works out which recording id the signatures bind,
runs the checks in order (chain_check, segments_check, timestamp_check, summary_check,
follows_check: the recording it continues) and builds the `RecordingReport`. A Recording
is authentic when its Chain ends with a valid Seal and no check found a problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tiaojie.archive.chain import SIGNED_TYPES, key_id, read_entries
from tiaojie.archive.layout import CHAIN_FILE, PUBLIC_KEY_FILE, SEGMENTS_DIR, summary_recording_id
from tiaojie.archive.report import CannotVerify, Findings, Problem, iso
from tiaojie.archive.verify.chain_check import check_chain, choose_recording_id, index_chain
from tiaojie.archive.verify.follows_check import check_follows, claimed
from tiaojie.archive.verify.report import RecordingReport
from tiaojie.archive.verify.segments_check import check_segments
from tiaojie.archive.verify.summary_check import check_summary, read_summary
from tiaojie.archive.verify.timestamp_check import check_timestamp
from tiaojie.archive.verify.trust import load_public_key


def locate(path: Path) -> tuple[Path, str | None]:
    """The Recording folder, and the one Segment to check when PATH is an MP4."""
    if not path.exists():
        raise CannotVerify(f"no such file or folder: {path}")
    if path.is_dir():
        if not (path / CHAIN_FILE).is_file():
            raise CannotVerify(f"{path} is not a recording: it has no {CHAIN_FILE}")
        return path, None
    folder = path.resolve().parent.parent
    if path.resolve().parent.name != SEGMENTS_DIR or not (folder / CHAIN_FILE).is_file():
        raise CannotVerify(
            f"{path} is not in a recording's {SEGMENTS_DIR}/ folder next to a {CHAIN_FILE}"
        )
    return folder, f"{SEGMENTS_DIR}/{path.name}"


def verify_recording(
    path: Path,
    trusted: Ed25519PublicKey | None = None,
    tsa_trust: Sequence[asn1_x509.Certificate] | None = None,
    *,
    trusted_source: str = "--trust",
    workers: int | None = None,
    previous: Path | None = None,
) -> RecordingReport:
    """Verify a Recording folder, or one Segment MP4 inside its `segments/` (then the Chain
    in full and only that file's bytes); with `previous`, the folder of the recording it
    follows, check that link too. Raises CannotVerify when it cannot run."""
    folder, only = locate(path)
    found = Findings()

    folder_key_path = folder / PUBLIC_KEY_FILE
    if trusted is None:
        if not folder_key_path.exists():
            raise CannotVerify(
                f"no key to check signatures with: {folder_key_path} is missing; "
                "pass --trust with the recorder's public key"
            )
        key = load_public_key(folder_key_path)
        source = f"{PUBLIC_KEY_FILE} in the recording folder"
        found.warning(
            Problem.KEY_UNTRUSTED,
            f"signatures were checked with the {PUBLIC_KEY_FILE} found in the recording "
            "folder: the key was not independently trusted (whoever rewrote the folder "
            "could have replaced it); pass --trust with the recorder's public key",
        )
    else:
        key, source = trusted, trusted_source
        if folder_key_path.exists():
            try:
                folder_key = load_public_key(folder_key_path)
            except CannotVerify:
                folder_key = None
            if folder_key is None or key_id(folder_key) != key_id(key):
                found.warning(
                    Problem.KEY_FILE_MISMATCH,
                    f"the {PUBLIC_KEY_FILE} in the recording folder is not the trusted key",
                )

    try:
        entries, read_found = read_entries(folder / CHAIN_FILE)
    except OSError as error:
        raise CannotVerify(f"cannot read {folder / CHAIN_FILE}: {error}") from error
    summary = read_summary(folder, found)
    candidates = [folder.resolve().name]
    for entry in entries[:50]:  # the recorder names the recording in its first event
        event = entry.get("event") if isinstance(entry, dict) else None
        if isinstance(event, dict) and isinstance(event.get("recording_id"), str):
            candidates.append(event["recording_id"])
    candidates.append(summary_recording_id(summary) or candidates[0])
    candidates = list(dict.fromkeys(candidates))
    recording = choose_recording_id(entries, candidates, key)
    if recording != candidates[0]:
        found.warning(
            Problem.FOLDER_RENAMED,
            f"the folder is named {candidates[0]!r}, the signatures name {recording!r}",
        )

    verified, signed, seal = check_chain(entries, read_found, recording, key, found)
    sealed = seal >= 0 and verified > seal

    ctx = index_chain(folder, entries, sealed, found)
    reports = check_segments(ctx, only, workers)

    timestamp = check_timestamp(folder, entries, seal, tsa_trust, found)
    check_summary(summary, ctx.parts, entries, seal, found)
    follows = check_follows(claimed(entries, verified), previous, found)
    head = entries[signed - 1]["hash"] if signed > 0 else None
    return RecordingReport(
        path=str(path),
        findings=found.items,
        mode="recording" if only is None else "segment",
        recording=recording,
        sealed=sealed,
        seal_seq=entries[seal]["seq"] if sealed else None,
        seal_time=iso(entries[seal].get("time")) if sealed else None,
        head=head,
        key_id=key_id(key),
        trusted_key_source=source,
        key_trusted=trusted is not None,
        entries=len(entries),
        entries_verified=verified,
        entries_signed=signed,
        entry_types=ctx.types,
        signatures_verified=sum(1 for e in entries[:verified] if e.get("type") in SIGNED_TYPES),
        gaps=[ctx.gaps[s] for s in ctx.gap_seqs],
        segments=reports,
        timestamp=timestamp,
        follows=follows,
    )
