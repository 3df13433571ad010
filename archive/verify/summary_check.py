"""Cross-checking `recording.json`, the recorder's summary of a Recording, against the Chain:
the segments it lists (with the fragment and byte counts of closed ones) and the seal it
names. The summary is not evidence, so a disagreement is only ever a warning. It is read
before the Chain is checked, because the recording id it names is one of the candidates the
signatures may bind (`summary_id`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tiaojie.archive.layout import SUMMARY_FILE
from tiaojie.archive.verify.chain_check import Range
from tiaojie.archive.verify.report import Finding


def read_summary(folder: Path, warnings: list[Finding]) -> dict[str, Any] | None:
    path = folder / SUMMARY_FILE
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        warnings.append(Finding("summary", f"{SUMMARY_FILE} cannot be read: {error}"))
        return None
    if not isinstance(summary, dict):
        warnings.append(Finding("summary", f"{SUMMARY_FILE} is not a JSON object"))
        return None
    return summary


def summary_id(summary: dict[str, Any] | None) -> str | None:
    if summary is None:
        return None
    for name in ("id", "recording_id", "recording"):
        if isinstance(summary.get(name), str):
            return str(summary[name])
    return None


def check_summary(
    summary: dict[str, Any] | None,
    ranges: dict[str, list[Range]],
    entries: list[dict[str, Any]],
    seal: int,
    warnings: list[Finding],
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
            if item.get("status") not in ("empty", "interrupted") or name in ranges:
                names.add(name)
            chained = ranges.get(name, [])
            fragments = sum(r.kind == "fragment" for r in chained)
            size = sum(r.length for r in chained)
            if item.get("status") == "closed" and (
                item.get("fragments", fragments) != fragments or item.get("bytes", size) != size
            ):
                warnings.append(
                    Finding(
                        "summary",
                        f"{SUMMARY_FILE} says {item.get('fragments')} fragments, "
                        f"{item.get('bytes')} bytes; the chain has {fragments}, {size}",
                        segment=name,
                    )
                )
        if names - set(ranges):
            warnings.append(
                Finding(
                    "summary",
                    f"{SUMMARY_FILE} lists segments the chain does not name: "
                    + ", ".join(sorted(names - set(ranges))),
                )
            )
        if set(ranges) - names:
            warnings.append(
                Finding(
                    "summary",
                    f"{SUMMARY_FILE} does not list segments the chain names: "
                    + ", ".join(sorted(set(ranges) - names)),
                )
            )
    claimed = summary.get("seal")
    if isinstance(claimed, dict):
        claimed = claimed.get("hash") or claimed.get("head")
    if isinstance(claimed, str) and claimed:
        if seal < 0:
            warnings.append(
                Finding(
                    "summary",
                    f"{SUMMARY_FILE} says the recording was sealed ({claimed[:16]}…) but the "
                    "chain has no seal: the chain may have been cut short",
                )
            )
        elif claimed not in (entries[seal].get("hash"), entries[seal].get("head")):
            warnings.append(
                Finding(
                    "summary",
                    f"{SUMMARY_FILE} names another seal ({claimed[:16]}…) than the chain's "
                    f"({str(entries[seal].get('hash'))[:16]}…)",
                )
            )
