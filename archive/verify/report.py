"""The Recording verifier's report, what `tiaojie verify RECORDING` prints:
`RecordingReport`, a `VerificationReport` (tiaojie.archive.report: the verdict, the
findings, the JSON shape shared with the agreement verifier) with what was checked: the
Chain and its signatures, each Segment file as a `SegmentReport`, each Gap as a
`GapReport`, the Seal's timestamp as a `TimestampReport`. It renders itself as JSON
(`to_json`, for machines) or as text (`render_text`, for people).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from tiaojie.archive.report import Verdict, VerificationReport, byte_range


@dataclass
class SegmentReport:
    path: str
    present: bool
    checked: bool  # False: another Segment's file in single-MP4 mode
    fragments: int  # Fragments the Chain names
    fragments_verified: int
    init_verified: bool
    bytes: int  # bytes the Chain names
    bytes_verified: int
    first_time: str | None
    last_time: str | None
    unchained_bytes: int = 0  # lost in a Gap (in flight at a crash)


@dataclass
class GapReport:
    seq: int
    time: str | None
    reason: str
    after: str | None  # time of the last entry the crashed recorder wrote
    interrupted: list[str] = field(default_factory=list)  # segments it names as cut short
    lost: list[dict[str, Any]] = field(default_factory=list)  # segment, offset, length


@dataclass
class TimestampReport:
    time: str | None
    tsa: str | None  # the TSA certificate's subject
    imprint_matches: bool
    signature_valid: bool
    trusted: bool | None  # None: no --tsa-trust given


@dataclass(kw_only=True)
class RecordingReport(VerificationReport):
    """A Recording (or one of its Segments) verified. Authentic when the Chain ends with a
    valid Seal and no finding is a problem."""

    subject: ClassVar[str] = "recording"
    mode: str  # "recording" or "segment" (a single MP4)
    recording: str | None
    sealed: bool
    seal_seq: int | None
    seal_time: str | None
    head: str | None  # hash of the last signed entry that verified
    key_id: str
    trusted_key_source: str
    key_trusted: bool  # False: the key came from the folder itself
    entries: int
    entries_verified: int  # links, hashes and signatures verified
    entries_signed: int  # covered by a valid Checkpoint, Gap or Seal signature
    entry_types: dict[str, int]
    signatures_verified: int
    gaps: list[GapReport]
    segments: list[SegmentReport]
    timestamp: TimestampReport | None

    @property
    def verdict(self) -> Verdict:
        if self.problems or not self.sealed:
            return Verdict.NOT_AUTHENTIC
        return Verdict.AUTHENTIC

    def details(self) -> dict[str, Any]:
        data = asdict(self)
        del data["path"], data["findings"]
        return data

    def to_text(self) -> str:
        return render_text(self)


# -- text report -----------------------------------------------------------------------------


def render_text(report: RecordingReport) -> str:
    """The human report: verdict, what was checked, the first bad thing and why."""
    out: list[str] = []
    what = "Segment " + report.path if report.mode == "segment" else "Recording " + report.path
    out.append(f"{what}  (recording id {report.recording})")
    out.append(
        "Result: AUTHENTIC"
        if report.authentic
        else f"Result: NOT AUTHENTIC ({len(report.problems)} problem(s))"
    )
    if report.problems:
        out.append(f"  First problem: {report.problems[0].describe()}")
    out.append("")
    out.append("Checked:")
    types = ", ".join(f"{n} {t}" for t, n in sorted(report.entry_types.items()))
    out.append(
        f"  Chain: {report.entries} entries ({types}); links, hashes and sequence "
        f"verified for {report.entries_verified}"
    )
    trust = "" if report.key_trusted else " -- NOT independently trusted"
    out.append(
        f"  Signatures: {report.signatures_verified} valid (Ed25519, key id "
        f"{report.key_id[:16]}…, from {report.trusted_key_source}){trust}; "
        f"{report.entries_signed} entries covered"
    )
    if report.sealed:
        out.append(f"  Seal: entry {report.seal_seq} at {report.seal_time} (head {report.head})")
    else:
        out.append("  Seal: none (the recording is not sealed)")
    ts = report.timestamp
    if ts is not None:
        state = "valid" if ts.signature_valid and ts.imprint_matches else "NOT valid"
        trust_text = {
            None: "TSA certificate not checked against a trusted root",
            True: "TSA certificate trusted",
            False: "TSA certificate NOT trusted",
        }[ts.trusted]
        out.append(f"  Timestamp: {ts.time} by {ts.tsa!r}: {state}; {trust_text}")
    else:
        out.append("  Timestamp: none (no seal.tsr)")
    checked = [s for s in report.segments if s.checked]
    out.append(
        f"  Segments: {len(checked)} file(s) checked, "
        f"{sum(s.fragments_verified for s in checked)} fragments and "
        f"{sum(s.bytes_verified for s in checked)} bytes re-hashed from their MP4 boxes "
        "and matched to the chain"
    )
    for s in report.segments:
        if not s.checked:
            state = "not checked" if s.present else "MISSING"
            out.append(f"    {s.path}: {state} ({s.fragments} fragments, {s.bytes} bytes)")
            continue
        init = "init + " if s.init_verified else ""
        line = (
            f"    {s.path}: {init}{s.fragments_verified}/{s.fragments} fragments verified, "
            f"{s.bytes_verified}/{s.bytes} bytes"
        )
        if s.first_time:
            line += f", {s.first_time} .. {s.last_time}"
        if s.unchained_bytes:
            line += f"; {s.unchained_bytes} bytes never chained (lost in a crash)"
        out.append(line)
    if report.gaps:
        out.append("  Gaps (the recorder restarted after a crash):")
        for g in report.gaps:
            lost = "; ".join(
                f"{x['segment']} bytes {byte_range(x['offset'], x['length'])}" for x in g.lost
            )
            out.append(
                f"    entry {g.seq} at {g.time} ({g.reason}); last entry before it at "
                f"{g.after}" + (f"; lost: {lost}" if lost else "")
            )
    if report.problems:
        out.append("")
        out.append(f"Problems ({len(report.problems)}):")
        out.extend(f"  {i}. {p.describe()}" for i, p in enumerate(report.problems, 1))
    if report.warnings:
        out.append("")
        out.append(f"Warnings ({len(report.warnings)}):")
        out.extend(f"  - {w.describe()}" for w in report.warnings)
    return "\n".join(out) + "\n"
