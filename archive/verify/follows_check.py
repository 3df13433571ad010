"""The link from a Recording to the one it continues (`follows`).

A recording that a node started because the room's previous node was lost (killed) or
drained names that recording in its first event (`recording_started`, signed with the
rest of its Chain): `follows` = {recording_id, node, reason, and `seal` (drained: the
previous Chain's seal, seq and hash) or `seen` (lost: the last entry its node saw
written, seq and hash; None when none was published)}. `check_follows` reads the claim
from the verified entries and, given the previous recording's folder, checks it: the
folder is that recording, and its Chain holds that entry (for `seal`, its seal).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tiaojie.archive.chain import read_entries
from tiaojie.archive.layout import CHAIN_FILE, folder_recording_id
from tiaojie.archive.report import Findings, Problem


def claimed(entries: list[dict[str, Any]], verified: int) -> dict[str, Any] | None:
    """The `follows` of the verified `recording_started` event, if any."""
    for entry in entries[:verified]:
        event = entry.get("event")
        if isinstance(event, dict) and event.get("kind") == "recording_started":
            follows = event.get("follows")
            return dict(follows) if isinstance(follows, dict) else None
    return None


def check_follows(
    follows: dict[str, Any] | None, previous: Path | None, found: Findings
) -> dict[str, Any] | None:
    """The link as reported: the claim, plus `link`: "verified" (checked against
    `previous`), "not_checked" (no folder given) or "broken" (a problem found)."""
    if follows is None:
        if previous is not None:
            found.problem(
                Problem.FOLLOWS_MISMATCH,
                f"{previous} was given as the previous recording, but this recording does "
                "not follow another one",
            )
        return None
    report = {**follows, "link": "not_checked"}
    if previous is None:
        return report
    report["link"] = "broken"
    if not (previous / CHAIN_FILE).is_file():
        found.problem(Problem.FOLLOWS_MISMATCH, f"{previous} is not a recording folder")
        return report
    name = folder_recording_id(previous)
    if name != follows.get("recording_id"):
        found.problem(
            Problem.FOLLOWS_MISMATCH,
            f"this recording follows {follows.get('recording_id')!r}; {previous} is {name!r}",
        )
        return report
    entries, _ = read_entries(previous / CHAIN_FILE)
    mark = follows.get("seal") or follows.get("seen")
    if isinstance(mark, dict):
        at = next((e for e in entries if e.get("seq") == mark.get("seq")), None)
        if at is None or at.get("hash") != mark.get("hash"):
            found.problem(
                Problem.FOLLOWS_MISMATCH,
                f"the previous recording's chain has no entry {mark.get('seq')} with hash "
                f"{mark.get('hash')} (named by this recording)",
            )
            return report
        if follows.get("seal") and at.get("type") != "seal":
            found.problem(
                Problem.FOLLOWS_MISMATCH,
                f"entry {mark.get('seq')} of the previous recording is not its seal",
            )
            return report
    report["link"] = "verified"
    return report
