"""The evidence of a case in its Dossier: the signed agreements' PDFs and the recordings'
manifests (their Chains, and optionally their Segments), named in the dossier as

    agreements/<code>.pdf                       each agreement the case log seals
    recordings/<recording id>/chain.jsonl       each recording the case log seals
    recordings/<recording id>/recording.json    its summary
    recordings/<recording id>/segments/...      its Segments (optional)

and checked against the case log (tiaojie.archive.caselog), which names them by hash:
an agreement by its PDF's sha256 (`agreement_sealed`), a recording by the hash of its
Seal (`recording_sealed`). A PDF whose sha256 is not the logged one was swapped or
changed; a Chain that does not verify, or does not hold the logged Seal at its place,
was changed; a Segment present in the dossier is checked fragment by fragment against
its Chain. Missing evidence the log names is reported as missing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tiaojie.archive.chain import parse_entries, verify_signed_by_any
from tiaojie.archive.layout import AGREEMENT_CODE_PATTERN, CHAIN_FILE, SEGMENT_PATH, SUMMARY_FILE
from tiaojie.archive.report import Problem

AGREEMENTS = "agreements/"
RECORDINGS = "recordings/"
_CODE = re.compile(AGREEMENT_CODE_PATTERN)
_RECORDING_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def agreement_name(code: str) -> str:
    return f"{AGREEMENTS}{code}.pdf"


def recording_name(recording_id: str, file: str = CHAIN_FILE) -> str:
    return f"{RECORDINGS}{recording_id}/{file}"


def sealed_agreements(logged: list[dict[str, Any]]) -> dict[str, str]:
    """agreement code -> the sha256 of its signed PDF, as the case log names them."""
    found: dict[str, str] = {}
    for event in logged:
        code, sha256 = event.get("agreement_code"), event.get("sha256")
        if (
            event.get("kind") == "agreement_sealed"
            and isinstance(code, str)
            and _CODE.fullmatch(code)
            and isinstance(sha256, str)
        ):
            found[code] = sha256
    return found


def sealed_recordings(logged: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """recording id -> its `recording_sealed` event (the Seal's hash and seq)."""
    found: dict[str, dict[str, Any]] = {}
    for event in logged:
        recording_id = event.get("recording_id")
        if (
            event.get("kind") == "recording_sealed"
            and isinstance(recording_id, str)
            and _RECORDING_ID.fullmatch(recording_id)
        ):
            found[recording_id] = event
    return found


@dataclass
class Judged:
    """One file of the evidence: authentic, missing or altered, what it is (a `kind` of
    tiaojie.archive.dossier's FILE_KINDS, with its `facts`), and why."""

    file: str
    status: str
    kind: str
    facts: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None
    reason: str = ""


def check_evidence(
    read: Callable[[str], bytes | None],
    names: list[str],
    logged: list[dict[str, Any]],
    keys: list[Ed25519PublicKey],
    codes: set[str] | None = None,
    recordings: set[str] | None = None,
) -> list[Judged]:
    """Every agreement and recording the case log seals (or those of them in `codes` and
    `recordings`: a court bundle's), as the dossier holds them (`read` a member, or
    None; `names` the members)."""
    judged: list[Judged] = []
    for code, sha256 in sealed_agreements(logged).items():
        if codes is not None and code not in codes:
            continue
        name = agreement_name(code)
        facts = {"code": code[:8]}
        data = read(name)
        if data is None:
            reason = "the signed agreement the case log names (agreement_sealed) is missing"
            problem = Problem.DOSSIER_FILE_MISSING
            judged.append(Judged(name, "missing", "agreement", facts, problem, reason))
        elif hashlib.sha256(data).hexdigest() != sha256:
            reason = (
                "this is not the signed PDF the case log names: its sha256 is not the "
                f"logged {sha256[:16]}… (the agreement was swapped or changed)"
            )
            problem = Problem.DOSSIER_FILE_ALTERED
            judged.append(Judged(name, "altered", "agreement", facts, problem, reason))
        else:
            judged.append(Judged(name, "authentic", "agreement", facts))
    for recording_id, event in sealed_recordings(logged).items():
        if recordings is not None and recording_id not in recordings:
            continue
        judged += _recording(read, names, recording_id, event, keys)
    return judged


def _recording(
    read: Callable[[str], bytes | None],
    names: list[str],
    recording_id: str,
    event: dict[str, Any],
    keys: list[Ed25519PublicKey],
) -> list[Judged]:
    name = recording_name(recording_id)
    facts = {"recording": recording_id}
    data = read(name)
    if data is None:
        reason = "the recording's manifest the case log names (recording_sealed) is missing"
        problem = Problem.DOSSIER_FILE_MISSING
        return [Judged(name, "missing", "recording_chain", facts, problem, reason)]
    entries, problems = parse_entries(data)
    problems = problems or verify_signed_by_any(entries, recording_id, keys)
    if problems:
        reason = f"the recording's Chain does not verify: {problems[0].describe()}"
        problem = Problem.DOSSIER_FILE_ALTERED
        return [Judged(name, "altered", "recording_chain", facts, problem, reason)]
    seq, seal = event.get("seal_seq"), event.get("seal_hash")
    held = entries[seq] if isinstance(seq, int) and 0 <= seq < len(entries) else None
    if held is None or held.get("type") != "seal" or held.get("hash") != seal:
        reason = (
            f"the Chain does not hold the Seal the case log names (entry {seq}, hash "
            f"{str(seal)[:16]}…): it is another recording's, or was cut short"
        )
        problem = Problem.DOSSIER_FILE_ALTERED
        return [Judged(name, "altered", "recording_chain", facts, problem, reason)]
    judged = [Judged(name, "authentic", "recording_chain", facts)]
    summary = recording_name(recording_id, SUMMARY_FILE)
    if summary in names:  # a reading copy: the signed manifest says whether it changed
        judged.append(Judged(summary, "authentic", "recording_summary", facts))
    judged += _segments(read, names, recording_id, entries)
    return judged


def _segments(
    read: Callable[[str], bytes | None],
    names: list[str],
    recording_id: str,
    entries: list[dict[str, Any]],
) -> list[Judged]:
    """The Segments the dossier holds (optional), each fragment against its Chain entry."""
    prefix = recording_name(recording_id, "")
    parts: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        segment = entry.get("segment")
        kind = entry.get("type")
        if (
            kind in ("init", "fragment")
            and isinstance(segment, str)
            and SEGMENT_PATH.fullmatch(segment)
        ):
            parts.setdefault(segment, []).append(entry)
    judged = []
    for segment, chained in parts.items():
        name = prefix + segment
        if name not in names:
            continue  # segments are optional in a dossier
        data = read(name) or b""
        facts = {"recording": recording_id}
        bad = next(
            (
                e
                for e in chained
                if hashlib.sha256(data[e["offset"] : e["offset"] + e["length"]]).hexdigest()
                != e.get("sha256")
            ),
            None,
        )
        if bad is not None:
            reason = (
                f"its bytes at {bad['offset']} ({bad['length']} bytes) are not the ones the "
                f"Chain's entry {bad.get('seq')} names (changed)"
            )
            problem = Problem.DOSSIER_FILE_ALTERED
            judged.append(Judged(name, "altered", "segment", facts, problem, reason))
        else:
            judged.append(Judged(name, "authentic", "segment", facts))
    return judged
