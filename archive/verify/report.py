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
from tiaojie.archive.report_words import Words


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
    #: the recording this one continues (a lost or drained node's) and whether the link
    #: was checked (archive/verify/follows_check.py); None: it continues none
    follows: dict[str, Any] | None = None

    @property
    def verdict(self) -> Verdict:
        if self.problems or not self.sealed:
            return Verdict.NOT_AUTHENTIC
        return Verdict.AUTHENTIC

    def details(self) -> dict[str, Any]:
        data = asdict(self)
        del data["path"], data["findings"]
        return data

    def to_text(self, words: Words | None = None) -> str:
        return render_text(self, words)


# -- text report -----------------------------------------------------------------------------


def _follows_line(follows: dict[str, Any], w: Words) -> str:
    seal, seen = follows.get("seal"), follows.get("seen")
    if isinstance(seal, dict):
        mark = w("follows_seal", seq=seal.get("seq"), hash=seal.get("hash"))
    elif isinstance(seen, dict):
        mark = w("follows_seen", seq=seen.get("seq"), hash=seen.get("hash"))
    else:
        mark = w("follows_none")
    return w(
        "follows",
        id=follows.get("recording_id"),
        node=follows.get("node"),
        reason=follows.get("reason"),
        mark=mark,
        link=w(f"link.{follows.get('link')}"),
    )


def render_text(report: RecordingReport, words: Words | None = None) -> str:
    """The human report: verdict, what was checked, the first bad thing and why; in the
    language and time zone of `words` (English and UTC by default)."""
    w = words or Words()
    out: list[str] = []
    what = w("segment") if report.mode == "segment" else w("recording")
    out.append(f"{what} {report.path}  ({w('recording_id')} {report.recording})")
    if w.tz is not None:
        out.append(w("time_zone", zone=getattr(w.tz, "key", str(w.tz))))
    out.append(w("result_ok") if report.authentic else w("result_bad", n=len(report.problems)))
    if report.problems:
        out.append(w("first_problem", p=w.finding(report.problems[0])))
    out.append("")
    out.append(w("checked"))
    types = ", ".join(f"{n} {t}" for t, n in sorted(report.entry_types.items()))
    out.append(w("chain", entries=report.entries, types=types, verified=report.entries_verified))
    out.append(
        w(
            "signatures",
            n=report.signatures_verified,
            key=report.key_id[:16],
            source=report.trusted_key_source,
            trust="" if report.key_trusted else w("not_trusted"),
            covered=report.entries_signed,
        )
    )
    if report.sealed:
        out.append(w("seal", seq=report.seal_seq, time=w.time(report.seal_time), head=report.head))
    else:
        out.append(w("no_seal"))
    if report.follows is not None:
        out.append(_follows_line(report.follows, w))
    ts = report.timestamp
    if ts is not None:
        state = w("ts_valid") if ts.signature_valid and ts.imprint_matches else w("ts_invalid")
        trust_text = {
            None: w("tsa_unchecked"),
            True: w("tsa_trusted"),
            False: w("tsa_untrusted"),
        }[ts.trusted]
        out.append(w("timestamp", time=w.time(ts.time), tsa=ts.tsa, state=state, trust=trust_text))
    else:
        out.append(w("no_timestamp"))
    checked = [s for s in report.segments if s.checked]
    out.append(
        w(
            "segments",
            files=len(checked),
            fragments=sum(s.fragments_verified for s in checked),
            bytes=sum(s.bytes_verified for s in checked),
        )
    )
    for s in report.segments:
        if not s.checked:
            state = w("not_checked") if s.present else w("missing")
            out.append(
                w(
                    "segment_unchecked",
                    path=s.path,
                    state=state,
                    fragments=s.fragments,
                    bytes=s.bytes,
                )
            )
            continue
        line = w(
            "segment_line",
            path=s.path,
            init=w("init") if s.init_verified else "",
            verified=s.fragments_verified,
            fragments=s.fragments,
            bytes_verified=s.bytes_verified,
            bytes=s.bytes,
        )
        if s.first_time:
            line += f", {w.time(s.first_time)} .. {w.time(s.last_time)}"
        if s.unchained_bytes:
            line += w("lost_bytes", n=s.unchained_bytes)
        out.append(line)
    if report.gaps:
        out.append(w("gaps"))
        for g in report.gaps:
            lost = "; ".join(
                f"{x['segment']} {w('bytes')} {byte_range(x['offset'], x['length'])}"
                for x in g.lost
            )
            out.append(
                w("gap", seq=g.seq, time=w.time(g.time), reason=g.reason, after=w.time(g.after))
                + (w("lost", lost=lost) if lost else "")
            )
    if report.problems:
        out.append("")
        out.append(w("problems", n=len(report.problems)))
        out.extend(f"  {i}. {w.finding(p)}" for i, p in enumerate(report.problems, 1))
    if report.warnings:
        out.append("")
        out.append(w("warnings", n=len(report.warnings)))
        out.extend(f"  - {w.finding(x)}" for x in report.warnings)
    return "\n".join(out) + "\n"
