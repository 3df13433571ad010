"""Comparing each Segment file's bytes with the Chain: the file is split again at its own
MP4 boxes (boxes.py) and each `SegmentPart` is matched, in order, with the Chain's parts of
that file (its `init`/`fragment` entries); a mismatch is diagnosed as altered, removed,
reordered, truncated or appended bytes, and `segments/` must hold exactly the files the
Chain names (else an extra or missing Segment). Unchained bytes that a crashed recorder can
have left (at most one Fragment, or a lone init segment, at the end of the Segment it was
writing, before a Gap or an unsealed end) are reported as lost in the Gap, not as tampering.
"""

from __future__ import annotations

from tiaojie.archive.layout import SEGMENT_EXTENSIONS, SEGMENTS_DIR, segment_number
from tiaojie.archive.report import Problem, byte_range, iso, part_name
from tiaojie.archive.verify.boxes import SegmentPart, split_segments
from tiaojie.archive.verify.chain_check import ChainedPart, ChainView
from tiaojie.archive.verify.report import SegmentReport

MAX_ALTERED_PER_SEGMENT = 10


def check_segments(ctx: ChainView, only: str | None, workers: int | None) -> list[SegmentReport]:
    """Check every Segment file the Chain names or `segments/` holds (or only ONLY, one Segment
    in single-MP4 mode), splitting and hashing the files with WORKERS threads."""
    folder, chained_parts, found = ctx.folder, ctx.parts, ctx.found
    segments_dir = folder / SEGMENTS_DIR
    on_disk: list[str] = []
    if only is None and segments_dir.is_dir():
        for child in sorted(segments_dir.iterdir()):
            if child.suffix.lower() in SEGMENT_EXTENSIONS and child.is_file():
                on_disk.append(f"{SEGMENTS_DIR}/{child.name}")
            else:
                found.warning(
                    Problem.OTHER_FILE,
                    "not a segment file (ignored)",
                    segment=f"{SEGMENTS_DIR}/{child.name}",
                )
    names = sorted(set(chained_parts) | set(on_disk)) if only is None else [only]
    split = split_segments([folder / n for n in names if (folder / n).is_file()], workers)

    reports: list[SegmentReport] = []
    for name in sorted(set(chained_parts) | set(names)):
        chained = chained_parts.get(name, [])
        file = folder / name
        checked = name in names
        parts = split.get(file)
        if not checked or not file.is_file() or parts is None or isinstance(parts, OSError):
            report = _segment_report(name, chained, present=file.is_file(), checked=False)
            reports.append(report)
            if checked and isinstance(parts, OSError):
                found.problem(Problem.SEGMENT_UNREADABLE, f"cannot be read: {parts}", segment=name)
            elif checked and not file.exists():
                found.problem(
                    Problem.SEGMENT_MISSING,
                    f"the segment file is missing (deleted): the chain names it in entries "
                    f"{chained[0].seq}..{chained[-1].seq} "
                    f"({report.fragments} fragments, {report.bytes} bytes)",
                    seq=chained[0].seq,
                    segment=name,
                )
            continue
        size = file.stat().st_size
        if not chained:
            _check_unnamed(ctx, name, parts, size)
            report = _segment_report(name, chained, present=True, checked=True)
            report.unchained_bytes = size
            reports.append(report)
            continue
        reports.append(_check_segment(ctx, name, chained, parts, size))
    return reports


def _segment_report(
    name: str, chained: list[ChainedPart], *, present: bool, checked: bool
) -> SegmentReport:
    """What the Chain says of a Segment, nothing verified yet."""
    return SegmentReport(
        path=name,
        present=present,
        checked=checked,
        fragments=sum(c.kind == "fragment" for c in chained),
        fragments_verified=0,
        init_verified=False,
        bytes=sum(c.length for c in chained),
        bytes_verified=0,
        first_time=iso(chained[0].time) if chained else None,
        last_time=iso(chained[-1].time) if chained else None,
    )


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
    ctx: ChainView,
    segment: str,
    chained: list[ChainedPart],
    parts: list[SegmentPart],
    size: int,
) -> SegmentReport:
    """Compare a Segment file's own parts with the Chain's parts of it, in order."""
    report = _segment_report(segment, chained, present=True, checked=True)
    numbers: list[int] = []  # each chained part's number: 0 the init segment, 1... Fragments
    number = 0 if chained and chained[0].kind == "init" else 1
    expected = 0
    for c in chained:
        numbers.append(number)
        number += 1
        if c.offset != expected:
            ctx.found.problem(
                Problem.RANGES_NOT_CONTIGUOUS,
                f"chain entry {c.seq} puts {c.kind} bytes at offset {c.offset}, but this "
                f"segment's previous range ends at {expected}",
                seq=c.seq,
                segment=segment,
            )
        expected = c.offset + c.length
    by_hash: dict[str, int] = {}
    for i, c in enumerate(chained):
        by_hash.setdefault(c.sha256, i)
    file_hashes = {p.sha256: i for i, p in reversed(list(enumerate(parts)))}
    altered = 0
    stopped = False

    def problem(code: Problem, reason: str, i: int, c: ChainedPart) -> None:
        ctx.found.problem(
            code,
            reason,
            seq=c.seq,
            segment=segment,
            fragment=numbers[i],
            offset=c.offset,
            length=c.length,
        )

    for i, c in enumerate(chained):
        if i >= len(parts):
            last = chained[-1]
            problem(
                Problem.SEGMENT_TRUNCATED,
                f"truncated: the file ends at byte {size}; this range and "
                f"{len(chained) - i - 1} more after it (entries {c.seq}..{last.seq}, "
                f"{last.offset + last.length - c.offset} bytes) are missing",
                i,
                c,
            )
            stopped = True
            break
        p = parts[i]
        if (p.offset, p.length, p.sha256) == (c.offset, c.length, c.sha256):
            report.bytes_verified += c.length
            if c.kind == "init":
                report.init_verified = True
            else:
                report.fragments_verified += 1
            continue
        j = by_hash.get(p.sha256)
        if i == len(parts) - 1 and p.offset == c.offset and size < c.offset + c.length:
            problem(
                Problem.SEGMENT_TRUNCATED,
                f"truncated: the file ends at byte {size}, inside this range of chain entry "
                f"{c.seq} ({c.offset + c.length - size} bytes of it missing, and all later "
                f"ranges of this segment)",
                i,
                c,
            )
            stopped = True
            break
        if j is not None and j > i:
            later = file_hashes.get(c.sha256)
            if later is not None and later > i:
                problem(
                    Problem.FRAGMENTS_REORDERED,
                    f"the file has the bytes of chained {part_name(numbers[j])} (entry "
                    f"{chained[j].seq}) here; the bytes of chain entry {c.seq} are later, at "
                    f"file bytes {byte_range(parts[later].offset, parts[later].length)} "
                    "(fragments reordered)",
                    i,
                    c,
                )
            else:
                more = (
                    f" with the ranges after it up to {part_name(numbers[j - 1])}"
                    if j > i + 1
                    else ""
                )
                problem(
                    Problem.FRAGMENT_REMOVED,
                    f"missing{more} (chain entry {c.seq}"
                    + (f"..{chained[j - 1].seq}" if j > i + 1 else "")
                    + f"): at byte {p.offset} the file has chained {part_name(numbers[j])} "
                    f"(entry {chained[j].seq}) instead (fragment removed)",
                    i,
                    c,
                )
            stopped = True
            break
        if j is not None:
            problem(
                Problem.FRAGMENT_REPEATED,
                f"the file repeats chained {part_name(numbers[j])} (entry {chained[j].seq}) "
                f"here instead of the bytes of chain entry {c.seq} (fragments duplicated or "
                "reordered)",
                i,
                c,
            )
            stopped = True
            break
        if p.offset == c.offset and p.length == c.length and p.complete:
            altered += 1
            if altered <= MAX_ALTERED_PER_SEGMENT:
                code = (
                    Problem.INIT_SEGMENT_HASH_MISMATCH
                    if c.kind == "init"
                    else Problem.FRAGMENT_HASH_MISMATCH
                )
                problem(code, f"sha256 differs from chain entry {c.seq} (content altered)", i, c)
            continue
        problem(
            Problem.BOXES_MISMATCH,
            f"the file's MP4 boxes from byte {p.offset} do not match chain entry {c.seq}: "
            f"the file has a {'complete' if p.complete else 'broken'} range of {p.length} "
            f"bytes there, the chain {c.length} bytes (bytes altered, inserted or removed)",
            i,
            c,
        )
        stopped = True
        break
    if altered > MAX_ALTERED_PER_SEGMENT:
        ctx.found.problem(
            Problem.FRAGMENT_HASH_MISMATCH,
            f"{altered - MAX_ALTERED_PER_SEGMENT} more ranges of this segment are altered",
            segment=segment,
        )
    if not stopped and len(parts) > len(chained):
        _check_tail(ctx, report, segment, chained, parts[len(chained) :], size)
    return report


def _check_tail(
    ctx: ChainView,
    report: SegmentReport,
    segment: str,
    chained: list[ChainedPart],
    tail: list[SegmentPart],
    size: int,
) -> None:
    """Bytes after a Segment's last chained part: lost in a Gap, or added."""
    offset = tail[0].offset
    length = size - offset
    gap = _in_gap(ctx, segment, chained[-1].seq) if chained else None
    if gap is not None and len(tail) == 1:
        where = _record_lost(ctx, gap, segment, offset, length)
        report.unchained_bytes = length
        ctx.found.warning(
            Problem.LOST_IN_GAP,
            f"{length} bytes after the last chained range were never chained: {where} "
            "(at most one fragment, as a crash leaves; not evidence)",
            segment=segment,
            offset=offset,
            length=length,
        )
        return
    if gap is not None:
        context = f"more than the one fragment a crash can leave ({len(tail)} ranges)"
    elif segment in ctx.ended:
        context = f"the chain says this segment ended (entry {ctx.ended[segment]})"
    else:
        context = "no gap follows this segment's last chain entry and the chain is sealed"
    ctx.found.problem(
        Problem.BYTES_APPENDED,
        f"{length} bytes after the last chained range are not in the chain (added): {context}",
        seq=chained[-1].seq if chained else None,
        segment=segment,
        offset=offset,
        length=length,
    )


def _check_unnamed(ctx: ChainView, segment: str, parts: list[SegmentPart], size: int) -> None:
    """A `.mp4` in segments/ that the Chain never names."""
    if size == 0:
        ctx.found.warning(
            Problem.SEGMENT_EMPTY,
            "an empty segment file that the chain never names (no media was written)",
            segment=segment,
        )
        return
    small = len(parts) <= 2 and all(p.kind == "init" for p in parts[:1])
    if small and (ctx.gap_seqs or not ctx.sealed):
        number = segment_number(segment)
        gap = -1 if not ctx.sealed else ctx.gap_seqs[-1]
        named = [g for g in ctx.gap_seqs if segment in ctx.gaps[g].interrupted]
        if named:
            gap = named[0]
        elif number is not None:
            later = [
                cs[0].seq
                for name, cs in ctx.parts.items()
                if cs and (segment_number(name) or 0) > number
            ]
            before = [g for g in ctx.gap_seqs if later and g < min(later)]
            if before:
                gap = before[0]
        where = _record_lost(ctx, gap, segment, 0, size)
        ctx.found.warning(
            Problem.LOST_IN_GAP,
            f"a segment file the chain never names, {size} bytes (at most an init segment "
            f"and one fragment): {where}; not evidence",
            segment=segment,
            offset=0,
            length=size,
        )
        return
    ctx.found.problem(
        Problem.SEGMENT_EXTRA,
        f"extra segment: this file ({size} bytes) was never recorded: the chain does not name it",
        segment=segment,
    )
