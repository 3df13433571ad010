"""The CaseLog: a case's history as a Chain (tiaojie.archive.chain), signed under the name
`case:<case id>` (`case_chain_name`).

Every change of a case is one `event` entry (`event`: {"kind": ..., "actor": ..., ...})
followed by one signed `checkpoint`, both written in the database transaction that makes
the change, so the head of a case's log is always signed. The kinds today are
EVENT_KINDS; the report a resident or a member of staff made is named in the `reported`
event by `report_sha256` (sha256 of its canonical JSON, `report_digest`), and each
attachment by its sha256, so a dossier's copy of them can be checked against the log.

`log_bytes` writes entries as the Chain's JSON lines (a dossier's `case-log.jsonl`);
`verify_case_log` checks links, hashes and signatures and that the last entry is signed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tiaojie.archive.chain import (
    SIGNED_TYPES,
    canonical,
    case_chain_name,
    verify_signed_by_any,
)
from tiaojie.archive.report import Finding, Findings, Problem

#: What a case's log records (the dossier verifier reads `reported`, `attachment_added`,
#: `recording_sealed` and `agreement_sealed`).
EVENT_KINDS = frozenset(
    {
        "reported",
        "accepted",
        "dispatched",
        "taken",
        "returned",
        "transferred",
        "closed",
        "withdrawn",
        "followed_up",
        "attachment_added",
        # sessions and what happens in their rooms (recordings and agreements by hash)
        "session_scheduled",
        "session_held",
        "session_ended",
        "recording_started",
        "recording_stopped",
        "recording_sealed",
        "agreement_signed",
        "agreement_sealed",
    }
)
#: The entry types a case's log holds.
CASE_LOG_TYPES = frozenset({"event", "checkpoint"})


def report_digest(report: dict[str, Any]) -> str:
    """sha256 (hex) of a report's canonical JSON: what the `reported` event names."""
    return hashlib.sha256(canonical(report)).hexdigest()


def log_bytes(entries: Iterable[dict[str, Any]]) -> bytes:
    """The entries as a Chain file: canonical JSON lines."""
    return b"".join(canonical(entry) + b"\n" for entry in entries)


def verify_case_log(
    entries: Sequence[dict[str, Any]], case_id: str, trusted: Iterable[Ed25519PublicKey]
) -> list[Finding]:
    """Problems of a case's log: links, hashes and checkpoint signatures (by any of
    `trusted`), entry types, and a last entry that is not a signed checkpoint."""
    found = Findings()
    if not entries:
        found.problem(Problem.CHAIN_EMPTY, "the case log has no entries")
        return found.items
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("type") not in CASE_LOG_TYPES:
            seq = entry.get("seq") if isinstance(entry, dict) else None
            found.problem(Problem.ENTRY_MALFORMED, "not an event or a checkpoint", seq=seq)
            return found.items
    found.items.extend(verify_signed_by_any(entries, case_chain_name(case_id), trusted))
    if not found.items and entries[-1].get("type") not in SIGNED_TYPES:
        found.problem(
            Problem.ENTRIES_UNSIGNED,
            "the last entries are not covered by a signed checkpoint",
            seq=entries[-1].get("seq"),
        )
    return found.items


def events(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `event` payloads of a log, each with its entry's `seq` and `time`."""
    out = []
    for entry in entries:
        event = entry.get("event")
        if entry.get("type") == "event" and isinstance(event, dict):
            out.append({**event, "seq": entry.get("seq"), "time": entry.get("time")})
    return out
