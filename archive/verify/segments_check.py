"""Comparing each Segment file's bytes with the Chain: the file is re-cut from its own MP4
boxes (boxes.py) and each Cut is matched, in order, with the Chain's `init`/`fragment` entries
for that file; a mismatch is diagnosed as altered, removed, reordered, truncated or appended
bytes, and `segments/` must hold exactly the files the Chain names (else an extra or missing
Segment). Unchained bytes that a crashed recorder can have left (at most one Fragment, or a
lone init segment, at the end of the Segment it was writing, before a Gap or an unsealed end)
are reported as lost in the Gap, not as tampering.
"""

from __future__ import annotations

from tiaojie.archive.layout import SEGMENTS_DIR
from tiaojie.archive.verify.boxes import Cut, hash_files
from tiaojie.archive.verify.chain_check import ChainView, Range
from tiaojie.archive.verify.layout import segment_number
from tiaojie.archive.verify.report import Finding, SegmentReport, byte_range, iso, part_name

MAX_ALTERED_PER_SEGMENT = 10


def check_segments(ctx: ChainView, only: str | None, workers: int | None) -> list[SegmentReport]:
    """Check every Segment file the Chain names or `segments/` holds (or only ONLY, one Segment
    in single-MP4 mode), cutting and hashing the files with WORKERS threads."""
    folder, ranges, problems, warnings = ctx.folder, ctx.ranges, ctx.problems, ctx.warnings
    segments_dir = folder / SEGMENTS_DIR
    on_disk: list[str] = []
    if only is None and segments_dir.is_dir():
        for child in sorted(segments_dir.iterdir()):
            if child.suffix.lower() == ".mp4" and child.is_file():
                on_disk.append(f"{SEGMENTS_DIR}/{child.name}")
            else:
                warnings.append(
                    Finding(
                        "other-file",
                        "not a segment file (ignored)",
                        segment=f"{SEGMENTS_DIR}/{child.name}",
                    )
                )
    names = sorted(set(ranges) | set(on_disk)) if only is None else [only]
    to_hash = [folder / n for n in names if (folder / n).is_file()]
    hashed = hash_files(to_hash, workers)

    reports: list[SegmentReport] = []
    for name in sorted(set(ranges) | set(names)):
        chained = ranges.get(name, [])
        file = folder / name
        checked = name in names
        result = hashed.get(file)
        if not checked or not file.is_file() or isinstance(result, OSError) or result is None:
            reports.append(
                SegmentReport(
                    path=name,
                    present=file.is_file(),
                    checked=False,
                    fragments=sum(r.kind == "fragment" for r in chained),
                    fragments_verified=0,
                    init_verified=False,
                    bytes=sum(r.length for r in chained),
                    bytes_verified=0,
                    first_time=iso(chained[0].time) if chained else None,
                    last_time=iso(chained[-1].time) if chained else None,
                )
            )
            if checked and isinstance(result, OSError):
                problems.append(
                    Finding("missing-segment", f"cannot be read: {result}", segment=name)
                )
            elif checked and not file.exists():
                problems.append(
                    Finding(
                        "missing-segment",
                        f"the segment file is missing (deleted): the chain names it in entries "
                        f"{chained[0].seq}..{chained[-1].seq} "
                        f"({reports[-1].fragments} fragments, {reports[-1].bytes} bytes)",
                        seq=chained[0].seq,
                        segment=name,
                    )
                )
            continue
        size = file.stat().st_size
        if not chained:
            _check_unnamed(ctx, name, result, size)
            reports.append(SegmentReport(name, True, True, 0, 0, False, 0, 0, None, None, size))
            continue
        reports.append(_check_segment(ctx, name, chained, result, size))
    return reports


def _in_gap(ctx: ChainView, segment: str, last_seq: int) -> int | None:
    """Whether a Segment was still being written when the recorder crashed: the Gap entry
    after its last chained entry (-1: the unsealed end), unless the Chain says the Segment
    ended before that (a `segment_ended` event). None: no unchained bytes are excusable."""
    gap = next((g for g in ctx.gap_seqs if g > last_seq), None)
    if gap is None and ctx.sealed:
        return None
    ended = ctx.ended.get(segment)
    if ended is not None and (gap is None or ended < gap):
        return None
    return gap if gap is not None else -1


def _record_lost(ctx: ChainView, gap: int, segment: str, offset: int, length: int) -> str:
    lost = {"segment": segment, "offset": offset, "length": length}
    if gap >= 0 and gap in ctx.gaps:
        ctx.gaps[gap].lost.append(lost)
        return f"lost in the gap at entry {gap} ({ctx.gaps[gap].time})"
    return "in flight when the recording stopped without a seal"


def _check_segment(
    ctx: ChainView, segment: str, ranges: list[Range], cuts: list[Cut], size: int
) -> SegmentReport:
    """Compare a Segment file's own cuts with the Chain's ranges for it, in order."""
    report = SegmentReport(
        path=segment,
        present=True,
        checked=True,
        fragments=sum(r.kind == "fragment" for r in ranges),
        fragments_verified=0,
        init_verified=False,
        bytes=sum(r.length for r in ranges),
        bytes_verified=0,
        first_time=iso(ranges[0].time) if ranges else None,
        last_time=iso(ranges[-1].time) if ranges else None,
    )
    numbers: list[int] = []
    fragment = 0 if ranges and ranges[0].kind == "init" else 1
    expected = 0
    for r in ranges:
        numbers.append(fragment)
        fragment += 1
        if r.offset != expected:
            ctx.problems.append(
                Finding(
                    "chain",
                    f"chain entry {r.seq} puts {r.kind} bytes at offset {r.offset}, but this "
                    f"segment's previous range ends at {expected}",
                    seq=r.seq,
                    segment=segment,
                )
            )
        expected = r.offset + r.length
    by_hash: dict[str, int] = {}
    for i, r in enumerate(ranges):
        by_hash.setdefault(r.sha256, i)
    file_hashes = {c.sha256: i for i, c in reversed(list(enumerate(cuts)))}
    altered = 0
    stopped = False

    def problem(kind: str, reason: str, i: int, r: Range) -> None:
        ctx.problems.append(Finding(kind, reason, r.seq, segment, numbers[i], r.offset, r.length))

    for i, r in enumerate(ranges):
        if i >= len(cuts):
            last = ranges[-1]
            problem(
                "truncated",
                f"truncated: the file ends at byte {size}; this range and "
                f"{len(ranges) - i - 1} more after it (entries {r.seq}..{last.seq}, "
                f"{last.offset + last.length - r.offset} bytes) are missing",
                i,
                r,
            )
            stopped = True
            break
        c = cuts[i]
        if (c.offset, c.length, c.sha256) == (r.offset, r.length, r.sha256):
            report.bytes_verified += r.length
            if r.kind == "init":
                report.init_verified = True
            else:
                report.fragments_verified += 1
            continue
        j = by_hash.get(c.sha256)
        if i == len(cuts) - 1 and c.offset == r.offset and size < r.offset + r.length:
            problem(
                "truncated",
                f"truncated: the file ends at byte {size}, inside this range of chain entry "
                f"{r.seq} ({r.offset + r.length - size} bytes of it missing, and all later "
                f"ranges of this segment)",
                i,
                r,
            )
            stopped = True
            break
        if j is not None and j > i:
            later = file_hashes.get(r.sha256)
            if later is not None and later > i:
                problem(
                    "reordered",
                    f"the file has the bytes of chained {part_name(numbers[j])} (entry "
                    f"{ranges[j].seq}) here; the bytes of chain entry {r.seq} are later, at "
                    f"file bytes {byte_range(cuts[later].offset, cuts[later].length)} "
                    "(fragments reordered)",
                    i,
                    r,
                )
            else:
                more = (
                    f" with the ranges after it up to {part_name(numbers[j - 1])}"
                    if j > i + 1
                    else ""
                )
                problem(
                    "removed",
                    f"missing{more} (chain entry {r.seq}"
                    + (f"..{ranges[j - 1].seq}" if j > i + 1 else "")
                    + f"): at byte {c.offset} the file has chained {part_name(numbers[j])} "
                    f"(entry {ranges[j].seq}) instead (fragment removed)",
                    i,
                    r,
                )
            stopped = True
            break
        if j is not None:
            problem(
                "reordered",
                f"the file repeats chained {part_name(numbers[j])} (entry {ranges[j].seq}) "
                f"here instead of the bytes of chain entry {r.seq} (fragments duplicated or "
                "reordered)",
                i,
                r,
            )
            stopped = True
            break
        if c.offset == r.offset and c.length == r.length and c.complete:
            altered += 1
            if altered <= MAX_ALTERED_PER_SEGMENT:
                problem(
                    "altered",
                    f"sha256 differs from chain entry {r.seq} (content altered)",
                    i,
                    r,
                )
            continue
        problem(
            "altered",
            f"the file's MP4 boxes from byte {c.offset} do not match chain entry {r.seq}: "
            f"the file has a {'complete' if c.complete else 'broken'} range of {c.length} "
            f"bytes there, the chain {r.length} bytes (bytes altered, inserted or removed)",
            i,
            r,
        )
        stopped = True
        break
    if altered > MAX_ALTERED_PER_SEGMENT:
        ctx.problems.append(
            Finding(
                "altered",
                f"{altered - MAX_ALTERED_PER_SEGMENT} more ranges of this segment are altered",
                segment=segment,
            )
        )
    if not stopped and len(cuts) > len(ranges):
        _check_tail(ctx, report, segment, ranges, cuts[len(ranges) :], size)
    return report


def _check_tail(
    ctx: ChainView,
    report: SegmentReport,
    segment: str,
    ranges: list[Range],
    tail: list[Cut],
    size: int,
) -> None:
    """Bytes after a Segment's last chained range: lost in a Gap, or added."""
    offset = tail[0].offset
    length = size - offset
    gap = _in_gap(ctx, segment, ranges[-1].seq) if ranges else None
    if gap is not None and len(tail) == 1:
        where = _record_lost(ctx, gap, segment, offset, length)
        report.unchained_bytes = length
        ctx.warnings.append(
            Finding(
                "lost-in-gap",
                f"{length} bytes after the last chained range were never chained: {where} "
                "(at most one fragment, as a crash leaves; not evidence)",
                segment=segment,
                offset=offset,
                length=length,
            )
        )
        return
    if gap is not None:
        context = f"more than the one fragment a crash can leave ({len(tail)} ranges)"
    elif segment in ctx.ended:
        context = f"the chain says this segment ended (entry {ctx.ended[segment]})"
    else:
        context = "no gap follows this segment's last chain entry and the chain is sealed"
    ctx.problems.append(
        Finding(
            "appended",
            f"{length} bytes after the last chained range are not in the chain (added): {context}",
            seq=ranges[-1].seq if ranges else None,
            segment=segment,
            offset=offset,
            length=length,
        )
    )


def _check_unnamed(ctx: ChainView, segment: str, cuts: list[Cut], size: int) -> None:
    """A `.mp4` in segments/ that the Chain never names."""
    if size == 0:
        ctx.warnings.append(
            Finding(
                "empty-segment",
                "an empty segment file that the chain never names (no media was written)",
                segment=segment,
            )
        )
        return
    small = len(cuts) <= 2 and all(c.kind == "init" for c in cuts[:1])
    if small and (ctx.gap_seqs or not ctx.sealed):
        number = segment_number(segment)
        gap = -1 if not ctx.sealed else ctx.gap_seqs[-1]
        named = [g for g in ctx.gap_seqs if segment in ctx.gaps[g].interrupted]
        if named:
            gap = named[0]
        elif number is not None:
            later = [
                rs[0].seq
                for name, rs in ctx.ranges.items()
                if rs and (segment_number(name) or 0) > number
            ]
            before = [g for g in ctx.gap_seqs if later and g < min(later)]
            if before:
                gap = before[0]
        where = _record_lost(ctx, gap, segment, 0, size)
        ctx.warnings.append(
            Finding(
                "lost-in-gap",
                f"a segment file the chain never names, {size} bytes (at most an init segment "
                f"and one fragment): {where}; not evidence",
                segment=segment,
                offset=0,
                length=size,
            )
        )
        return
    ctx.problems.append(
        Finding(
            "extra-segment",
            f"extra segment: this file ({size} bytes) was never recorded: the chain does not "
            "name it",
            segment=segment,
        )
    )
