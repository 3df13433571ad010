"""Checking the Chain (`chain.jsonl`) itself: every entry's shape, sequence number, link and
hash, and every Checkpoint, Gap and Seal signature against the trusted key; which recording id
the signatures bind (the folder may have been renamed); that after a Seal only an addendum
closed by a new Seal comes; and, when the Chain is unsealed, how far its signed part reaches.
`index_chain` then turns the well-formed entries into the `ChainView` by which the Segment
files are judged: each Segment's `ChainedPart`s (its init segment and Fragments as the Chain
names them), the Gaps a crashed recorder left and the `segment_ended` events.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tiaojie.archive.chain import (
    ADDENDUM_KINDS,
    ENTRY_TYPES,
    SIGNED_TYPES,
    key_id,
    signed_statement,
    verify_entries,
)
from tiaojie.archive.layout import CHAIN_FILE, SEGMENT_PATH, SEGMENTS_DIR
from tiaojie.archive.report import Finding, Findings, Problem, iso
from tiaojie.archive.verify.report import GapReport

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class ChainedPart:
    """One chained init segment or Fragment: where the Chain puts it in its Segment file."""

    seq: int
    kind: str
    offset: int
    length: int
    sha256: str
    time: Any


@dataclass
class ChainView:
    """What the Chain says, as needed to judge the Segment files."""

    folder: Path
    entries: list[dict[str, Any]]
    parts: dict[str, list[ChainedPart]]  # segment -> its parts, in Chain order
    gap_seqs: list[int]
    sealed: bool
    gaps: dict[int, GapReport]
    ended: dict[str, int]  # segment -> seq of its `segment_ended` event
    found: Findings
    types: dict[str, int]  # how many entries of each type


def shape_problem(entry: Any) -> str | None:
    """Why an entry cannot even be checked (wrong field types), or None."""
    if not isinstance(entry, dict):
        return "is not a JSON object"
    if not isinstance(entry.get("seq"), int) or isinstance(entry.get("seq"), bool):
        return "has no integer seq"
    kind = entry.get("type")
    if kind not in ENTRY_TYPES:
        return f"has an unknown type {kind!r}"
    for name in ("prev", "hash"):
        if not isinstance(entry.get(name), str) or not _HEX64.fullmatch(entry[name]):
            return f"has no valid {name!r}"
    if kind in ("init", "fragment"):
        segment = entry.get("segment")
        if not isinstance(segment, str):
            return "names no segment"
        for name in ("offset", "length"):
            value = entry.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return f"has no valid {name!r}"
        if not isinstance(entry.get("sha256"), str) or not _HEX64.fullmatch(entry["sha256"]):
            return "has no valid 'sha256'"
    if kind in SIGNED_TYPES:
        for name in ("head", "key_id", "signature"):
            if not isinstance(entry.get(name), str):
                return f"has no {name!r}"
        try:
            base64.b64decode(entry["signature"], validate=True)
        except (binascii.Error, ValueError):
            return "has a signature that is not base64"
    return None


def signature_ok(entry: dict[str, Any], recording: str, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(
            base64.b64decode(entry["signature"]),
            signed_statement(recording, entry["seq"], entry["head"]),
        )
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
    return True


def choose_recording_id(
    entries: list[dict[str, Any]], candidates: list[str], key: Ed25519PublicKey
) -> str:
    """The id the signatures bind: the folder name, unless an id named in the chain's events
    or the summary is the one that verifies (a renamed folder). Trying candidates is safe:
    only the true id can make a valid signature."""
    first_signed = next(
        (e for e in entries if e.get("type") in SIGNED_TYPES and shape_problem(e) is None),
        None,
    )
    if first_signed is not None:
        for candidate in candidates:
            if signature_ok(first_signed, candidate, key):
                return candidate
    return candidates[0]


def check_chain(
    entries: list[dict[str, Any]],
    read_found: list[Finding],
    recording: str,
    key: Ed25519PublicKey,
    found: Findings,
) -> tuple[int, int, int]:
    """Problems of the Chain itself (`read_found`: what reading its lines found). Returns
    (entries verified, entries covered by a valid signature, index of the Seal or -1)."""
    shaped = len(entries)
    for index, entry in enumerate(entries):
        why = shape_problem(entry)
        if why is not None:
            seq = entry.get("seq") if isinstance(entry, dict) else None
            found.problem(
                Problem.ENTRY_MALFORMED,
                f"malformed entry (the {index + 1}th line that parses {why}); it and the "
                "entries after it cannot be checked",
                seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            )
            shaped = index
            break
    verified = shaped
    first_bad = next(iter(verify_entries(entries[:shaped], recording, key)), None)
    if first_bad is not None:
        # verify_entries stops at its first problem: every entry before it has seq == index
        if first_bad.code is Problem.ENTRY_OUT_OF_SEQUENCE:
            verified = next((i for i, e in enumerate(entries) if e.get("seq") != i), shaped)
        else:
            verified = first_bad.seq if isinstance(first_bad.seq, int) else shaped
        found.problem(
            first_bad.code,
            _explain(first_bad, entries, verified, key),
            seq=first_bad.seq,
        )
    for finding in read_found:
        if (
            finding.code is Problem.CHAIN_LINE_INCOMPLETE
            and verified == len(entries)
            and not any(e.get("type") == "seal" for e in entries)
        ):
            found.warning(finding.code, f"{finding.reason}: the recorder stopped while writing it")
        else:
            found.add(finding)
    last_signed = _last_signed(entries, verified)
    seals = [i for i in range(verified) if entries[i]["type"] == "seal"]
    seal = seals[-1] if seals else -1
    _check_after_seals(entries, seals, found)
    if not entries:
        found.problem(Problem.CHAIN_EMPTY, f"{CHAIN_FILE} has no entries")
    elif verified == len(entries) and seal < 0:
        _report_unsealed(entries, last_signed, found)
    return verified, last_signed + 1, seal


def _last_signed(entries: list[dict[str, Any]], verified: int) -> int:
    """The index of the last Checkpoint, Gap or Seal among the verified entries, or -1."""
    return max((i for i in range(verified) if entries[i]["type"] in SIGNED_TYPES), default=-1)


def _explain(
    bad: Finding, entries: list[dict[str, Any]], verified: int, key: Ed25519PublicKey
) -> str:
    """The reason of the Chain's first problem, worded for an archivist, with how much of
    the Chain is left without a valid signature."""
    entry = entries[verified] if verified < len(entries) else {}
    kind = entry.get("type")
    if bad.code is Problem.SIGNATURE_WRONG_KEY:
        reason = (
            f"{kind} signed by another key (key id {str(entry.get('key_id'))[:16]}…), "
            f"not the trusted key ({key_id(key)[:16]}…): forged"
        )
    elif bad.code is Problem.SIGNATURE_WRONG_HEAD:
        reason = f"{kind} signs another head than the previous entry"
    elif bad.code is Problem.SIGNATURE_INVALID:
        reason = f"{kind} {bad.reason}"
    else:
        reason = bad.reason
    last_signed = _last_signed(entries, verified)
    return reason + (
        f"; entries {last_signed + 1}..{len(entries) - 1} are not covered by a valid"
        " signature (last valid signature: "
        + (f"entry {last_signed})" if last_signed >= 0 else "none)")
    )


def _check_after_seals(entries: list[dict[str, Any]], seals: list[int], found: Findings) -> None:
    """After a Seal only an addendum (e.g. the signed agreement), closed by a new Seal."""
    for first, following in zip(seals, [*seals[1:], len(entries)][: len(seals)], strict=True):
        after = entries[first + 1 : following]
        if following == len(entries) and after:
            stray = first + 1
        else:
            stray = next(
                (
                    first + 1 + k
                    for k, e in enumerate(after)
                    if e.get("type") != "event"
                    or (e.get("event") or {}).get("kind") not in ADDENDUM_KINDS
                ),
                -1,
            )
        if stray >= 0:
            found.problem(
                Problem.ENTRY_AFTER_SEAL,
                f"entries {first + 1}..{following - 1} follow the seal (entry {first}); "
                "after a seal only an addendum closed by a new seal may come",
                seq=stray,
            )
            return


def _report_unsealed(entries: list[dict[str, Any]], last_signed: int, found: Findings) -> None:
    """An unsealed Chain: how far its signed part reaches, and what comes after it."""
    time = iso(entries[last_signed].get("time")) if last_signed >= 0 else None
    signed_part = (
        f"the chain verifies up to the {entries[last_signed]['type']} at entry "
        f"{last_signed} ({time})"
        if last_signed >= 0
        else "no entry is signed"
    )
    found.problem(
        Problem.NOT_SEALED,
        "not sealed: the recording did not end with a seal (the recorder or server "
        f"stopped, or the chain was cut short); {signed_part}",
    )
    if last_signed < len(entries) - 1:
        counts: dict[str, int] = {}
        for e in entries[last_signed + 1 :]:
            counts[e["type"]] = counts.get(e["type"], 0) + 1
        which = (
            f"entry {last_signed + 1}"
            if last_signed + 1 == len(entries) - 1
            else f"entries {last_signed + 1}..{len(entries) - 1}"
        )
        found.problem(
            Problem.ENTRIES_UNSIGNED,
            f"{which} ({', '.join(f'{n} {t}' for t, n in sorted(counts.items()))}) "
            "come after the last signature: not covered by a signature",
            seq=last_signed + 1,
        )


def index_chain(
    folder: Path,
    entries: list[dict[str, Any]],
    sealed: bool,
    found: Findings,
) -> ChainView:
    """What the well-formed entries say about the Segment files: each one's chained parts, the
    Gaps, the `segment_ended` events, and how many entries of each type. An entry that names a
    Segment outside `segments/` is a problem."""
    parts: dict[str, list[ChainedPart]] = {}
    gap_seqs: list[int] = []
    gaps: dict[int, GapReport] = {}
    ended: dict[str, int] = {}
    types: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if shape_problem(entry) is not None:
            break
        types[entry["type"]] = types.get(entry["type"], 0) + 1
        if entry["type"] == "gap":
            gap_seqs.append(entry["seq"])
            gaps[entry["seq"]] = GapReport(
                seq=entry["seq"],
                time=iso(entry.get("time")),
                reason=str(entry.get("reason", "")),
                after=iso(entries[index - 1].get("time")) if index > 0 else None,
                interrupted=[str(n) for n in entry.get("interrupted") or [] if isinstance(n, str)],
            )
        event = entry.get("event") if entry["type"] == "event" else None
        if isinstance(event, dict) and event.get("kind") == "segment_ended":
            ended.setdefault(str(event.get("segment")), entry["seq"])
        if entry["type"] in ("init", "fragment"):
            name = entry["segment"]
            if not SEGMENT_PATH.fullmatch(name) or name.endswith(("/.", "/..")):
                found.problem(
                    Problem.ENTRY_OUTSIDE_SEGMENTS,
                    f"names a segment outside {SEGMENTS_DIR}/: {name!r}",
                    seq=entry["seq"],
                )
                continue
            parts.setdefault(name, []).append(
                ChainedPart(
                    entry["seq"],
                    entry["type"],
                    entry["offset"],
                    entry["length"],
                    entry["sha256"],
                    entry.get("time"),
                )
            )
    return ChainView(folder, entries, parts, gap_seqs, sealed, gaps, ended, found, types)
