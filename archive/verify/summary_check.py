"""Cross-checking `recording.json`, the recorder's summary of a Recording, against the Chain:
the segments it lists (with the fragment and byte counts of closed ones) and the seal it
names. The summary is not evidence, so a disagreement is only ever a warning. It is read
before the Chain is checked, because the recording id it names is one of the candidates the
signatures may bind (tiaojie.archive.layout.summary_recording_id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tiaojie.archive.layout import SUMMARY_FILE, load_summary
from tiaojie.archive.report import Findings, Problem
from tiaojie.archive.verify.chain_check import ChainedPart


def read_summary(folder: Path, found: Findings) -> dict[str, Any] | None:
    """The folder's summary, or None (with a warning when it cannot be read)."""
    try:
        return load_summary(folder)
    except ValueError as error:
        found.warning(Problem.SUMMARY_UNREADABLE, str(error))
        return None


def check_summary(
    summary: dict[str, Any] | None,
    chained_parts: dict[str, list[ChainedPart]],
    entries: list[dict[str, Any]],
    seal: int,
    found: Findings,
) -> None:
    """`recording.json` against the Chain: warnings only (the summary is not evidence)."""
    if summary is None:
        return
    listed = summary.get("segments")
    if isinstance(listed, list):
        names: set[str] = set()
        for item in listed:
            if isinstance(item, str):
                names.add(item)
                continue
            if not isinstance(item, dict):
                continue
            name = next((item[k] for k in ("name", "path", "segment", "file") if k in item), None)
            if not isinstance(name, str):
                continue
            # a segment that never got media, or was cut by a crash, may have no entries
            if item.get("status") not in ("empty", "interrupted") or name in chained_parts:
                names.add(name)
            chained = chained_parts.get(name, [])
            fragments = sum(c.kind == "fragment" for c in chained)
            size = sum(c.length for c in chained)
            if item.get("status") == "closed" and (
                item.get("fragments", fragments) != fragments or item.get("bytes", size) != size
            ):
                found.warning(
                    Problem.SUMMARY_COUNTS_DIFFER,
                    f"{SUMMARY_FILE} says {item.get('fragments')} fragments, "
                    f"{item.get('bytes')} bytes; the chain has {fragments}, {size}",
                    segment=name,
                )
        if names - set(chained_parts):
            found.warning(
                Problem.SUMMARY_SEGMENTS_DIFFER,
                f"{SUMMARY_FILE} lists segments the chain does not name: "
                + ", ".join(sorted(names - set(chained_parts))),
            )
        if set(chained_parts) - names:
            found.warning(
                Problem.SUMMARY_SEGMENTS_DIFFER,
                f"{SUMMARY_FILE} does not list segments the chain names: "
                + ", ".join(sorted(set(chained_parts) - names)),
            )
    claimed = summary.get("seal")
    if isinstance(claimed, dict):
        claimed = claimed.get("hash") or claimed.get("head")
    if isinstance(claimed, str) and claimed:
        if seal < 0:
            found.warning(
                Problem.SUMMARY_SEAL_DIFFERS,
                f"{SUMMARY_FILE} says the recording was sealed ({claimed[:16]}…) but the "
                "chain has no seal: the chain may have been cut short",
            )
        elif claimed not in (entries[seal].get("hash"), entries[seal].get("head")):
            found.warning(
                Problem.SUMMARY_SEAL_DIFFERS,
                f"{SUMMARY_FILE} names another seal ({claimed[:16]}…) than the chain's "
                f"({str(entries[seal].get('hash'))[:16]}…)",
            )
