"""The offline Recording verifier (`tiaojie verify RECORDING`), independent of the recorder.

What it checks, in order (docs/ARCHIVE.md, "Verifying"):

1. the Chain (`chain.jsonl`): every entry's shape, sequence number, link and hash, and
   every Checkpoint, Gap and Seal signature against the trusted Ed25519 key (`--trust`,
   else the folder's own `recorder.pub.pem`, which proves nothing about who wrote it);
2. every Segment file, re-cut from its own top-level MP4 boxes exactly as the recorder cut
   it (init segment = everything before the first `moof`; then each Fragment = up to and
   including the `mdat` that follows a `moof`), each range hashed and compared, in order,
   with the Chain's `init`/`fragment` entries for that file. A mismatch is diagnosed as
   altered, removed, reordered, truncated or appended bytes;
3. that `segments/` holds exactly the files the Chain names;
4. Gaps: a crashed recorder can leave at most one unchained Fragment (or a lone init
   segment) at the end of the Segment it was writing; when a signed `gap` entry follows
   that Segment's last entry (or the Chain is unsealed) and no `segment_ended` event says
   the Segment had ended, that is reported as lost, not as tampering;
5. `seal.tsr`: an RFC 3161 timestamp token over the Seal's line, as stored (no newline);
6. `recording.json` against the Chain: only warnings, since the summary is not evidence.

A Recording is authentic when the Chain ends with a valid Seal and nothing above found a
problem. An unsealed Chain (the recorder or server stopped without sealing) is never
authentic: its end cannot be told apart from a Chain cut short by a forger, so the report
says how far the signed part reaches and the exit code is 1.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import re
import struct
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import cms, pem, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from recorder.manifest import (
    ADDENDUM_KINDS,
    CHAIN_FILE,
    ENTRY_TYPES,
    SIGNED_TYPES,
    key_id,
    read_entries,
    signed_statement,
    verify_entries,
)

PUBLIC_KEY_FILE = "recorder.pub.pem"
SUMMARY_FILE = "recording.json"
SEAL_TIMESTAMP_FILE = "seal.tsr"
SEGMENTS_DIR = "segments"
READ_SIZE = 1 << 20  # read unit for hashing: large reads, hashlib releases the GIL
MAX_ALTERED_PER_SEGMENT = 10
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SEGMENT_PATH = re.compile(r"segments/[^/\\]+")
_SEGMENT_NUMBER = re.compile(r"(\d+)-")
T = TypeVar("T")


class VerifyError(Exception):
    """The verifier cannot run: no such path, not a Recording, no usable key (exit 2)."""


@dataclass
class Finding:
    """One problem or warning, located as precisely as the evidence allows.

    `fragment` is 0 for a Segment's init segment and 1, 2, ... for its Fragments;
    `offset`/`length` are the byte range in the Segment file.
    """

    kind: str
    reason: str
    seq: int | None = None
    segment: str | None = None
    fragment: int | None = None
    offset: int | None = None
    length: int | None = None

    def describe(self) -> str:
        where = ""
        if self.segment is not None:
            where = self.segment
            if self.fragment is not None:
                where += f" {_part_name(self.fragment)}"
            if self.offset is not None and self.length:
                where += f" (bytes {_byte_range(self.offset, self.length)})"
        elif self.seq is not None:
            where = f"chain entry {self.seq}"
        return f"{where}: {self.reason}" if where else self.reason


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


@dataclass
class Report:
    path: str
    mode: str  # "recording" or "segment" (a single MP4)
    recording: str | None
    authentic: bool
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
    problems: list[Finding]
    warnings: list[Finding]
    gaps: list[GapReport]
    segments: list[SegmentReport]
    timestamp: TimestampReport | None

    def to_json(self) -> str:
        data = asdict(self)
        data["result"] = "authentic" if self.authentic else "not authentic"
        for finding in data["problems"] + data["warnings"]:
            finding["message"] = Finding(**finding).describe()
        return json.dumps(data, ensure_ascii=False, indent=2)

    def to_text(self) -> str:
        return render_text(self)


# -- keys and certificates ---------------------------------------------------------------


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file; VerifyError if unreadable or another kind."""
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise VerifyError(f"cannot read the public key {path}: {error}") from error
    if not isinstance(key, Ed25519PublicKey):
        raise VerifyError(f"{path} is not an Ed25519 public key")
    return key


def load_certificates(path: Path) -> list[asn1_x509.Certificate]:
    """X.509 certificates from a PEM (one or more) or DER file."""
    try:
        data = path.read_bytes()
        if pem.detect(data):
            certs = [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, True)]
        else:
            certs = [asn1_x509.Certificate.load(data)]
        for cert in certs:
            _ = cert.subject.human_friendly  # parse now: asn1crypto is lazy
    except (OSError, ValueError, TypeError) as error:
        raise VerifyError(f"cannot read the certificate(s) {path}: {error}") from error
    if not certs:
        raise VerifyError(f"no certificate in {path}")
    return certs


# -- helpers -------------------------------------------------------------------------------


def _iso(t: Any) -> str | None:
    if not isinstance(t, int | float) or isinstance(t, bool):
        return None
    try:
        moment = datetime.fromtimestamp(t, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _byte_range(offset: int, length: int) -> str:
    return f"{offset}-{offset + length - 1}" if length > 0 else f"{offset}-{offset}"


def _part_name(fragment: int) -> str:
    return "init segment" if fragment == 0 else f"fragment {fragment}"


def _segment_number(name: str) -> int | None:
    match = _SEGMENT_NUMBER.match(Path(name).name)
    return int(match.group(1)) if match else None


def _shape_problem(entry: Any) -> str | None:
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


def _signature_ok(entry: dict[str, Any], recording: str, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(
            base64.b64decode(entry["signature"]),
            signed_statement(recording, entry["seq"], entry["head"]),
        )
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
    return True


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """pyhanko logs every failed path build at WARNING: the report says it instead."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async pyhanko call from sync code, even when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


# -- cutting Segment files into init segment and Fragments -----------------------------------


@dataclass
class Cut:
    """A byte range of a Segment file as its MP4 boxes delimit it, with its sha256."""

    kind: str  # "init" or "fragment"
    offset: int
    length: int
    sha256: str
    complete: bool  # False: the file ends inside a box, or a box header is invalid


def cut_segment(path: Path, buffer: bytearray | None = None) -> list[Cut]:
    """Re-cut a Segment file from its top-level boxes (size/type, 64-bit largesize) the way
    the recorder's writer did, hashing each range in the same single sequential pass."""
    buffer = buffer if buffer is not None else bytearray(READ_SIZE)
    view = memoryview(buffer)
    cuts: list[Cut] = []
    with path.open("rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        pos = start = 0
        hasher = hashlib.sha256()
        init_done = in_fragment = False
        complete = True

        def take(n: int) -> int:
            """Hash the next n bytes of the file into the current range."""
            done = 0
            while done < n:
                got = f.readinto(view[: min(len(view), n - done)])
                if not got:
                    break
                hasher.update(view[:got])
                done += got
            return done

        def close_range(kind: str, end: int) -> None:
            nonlocal hasher, start
            cuts.append(Cut(kind, start, end - start, hasher.hexdigest(), True))
            hasher, start = hashlib.sha256(), end

        while pos < size:
            header = f.read(min(16, size - pos))
            box_size = 0
            kind = b""
            if len(header) >= 8:
                box_size, kind = struct.unpack_from(">I4s", header)
                if box_size == 1:
                    box_size = struct.unpack_from(">Q", header, 8)[0] if len(header) == 16 else 0
            if box_size < 8 or pos + box_size > size:
                # an invalid header, or the file ends inside this box: the rest is one range
                hasher.update(header)
                take(size - pos - len(header))
                pos, complete = size, False
                break
            if kind == b"moof":
                if not init_done:
                    if pos > start:
                        close_range("init", pos)
                    init_done = True
                in_fragment = True
            if box_size < len(header):  # a box smaller than the 16 bytes read ahead
                hasher.update(header[:box_size])
                f.seek(pos + box_size)
            else:
                hasher.update(header)
                take(box_size - len(header))
            pos += box_size
            if kind == b"mdat" and in_fragment:
                close_range("fragment", pos)
                in_fragment = False
        if pos > start or not complete:
            cuts.append(Cut("fragment" if init_done else "init", start, pos - start, "", complete))
            cuts[-1].sha256 = hasher.hexdigest()
    return cuts


# -- the verifier ----------------------------------------------------------------------------


@dataclass
class _Range:
    seq: int
    kind: str
    offset: int
    length: int
    sha256: str
    time: Any


@dataclass
class _Context:
    """What the Chain says, as needed to judge the Segment files."""

    folder: Path
    entries: list[dict[str, Any]]
    ranges: dict[str, list[_Range]]
    gap_seqs: list[int]
    sealed: bool
    gaps: dict[int, GapReport]
    ended: dict[str, int]  # segment -> seq of its `segment_ended` event
    problems: list[Finding]
    warnings: list[Finding]


def _locate(path: Path) -> tuple[Path, str | None]:
    """The Recording folder, and the one Segment to check when PATH is an MP4."""
    if not path.exists():
        raise VerifyError(f"no such file or folder: {path}")
    if path.is_dir():
        if not (path / CHAIN_FILE).is_file():
            raise VerifyError(f"{path} is not a recording: it has no {CHAIN_FILE}")
        return path, None
    folder = path.resolve().parent.parent
    if path.resolve().parent.name != SEGMENTS_DIR or not (folder / CHAIN_FILE).is_file():
        raise VerifyError(
            f"{path} is not in a recording's {SEGMENTS_DIR}/ folder next to a {CHAIN_FILE}"
        )
    return folder, f"{SEGMENTS_DIR}/{path.name}"


def _read_summary(folder: Path, warnings: list[Finding]) -> dict[str, Any] | None:
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


def _summary_id(summary: dict[str, Any] | None) -> str | None:
    if summary is None:
        return None
    for name in ("id", "recording_id", "recording"):
        if isinstance(summary.get(name), str):
            return str(summary[name])
    return None


def _choose_recording_id(
    entries: list[dict[str, Any]], candidates: list[str], key: Ed25519PublicKey
) -> str:
    """The id the signatures bind: the folder name, unless an id named in the chain's events
    or the summary is the one that verifies (a renamed folder). Trying candidates is safe:
    only the true id can make a valid signature."""
    first_signed = next(
        (e for e in entries if e.get("type") in SIGNED_TYPES and _shape_problem(e) is None),
        None,
    )
    if first_signed is not None:
        for candidate in candidates:
            if _signature_ok(first_signed, candidate, key):
                return candidate
    return candidates[0]


def _check_chain(
    entries: list[dict[str, Any]],
    read_problems: list[str],
    recording: str,
    key: Ed25519PublicKey,
    problems: list[Finding],
    warnings: list[Finding],
) -> tuple[int, int, int]:
    """Problems of the Chain itself. Returns (entries verified, entries covered by a valid
    signature, index of the Seal or -1)."""
    shaped = len(entries)
    for index, entry in enumerate(entries):
        why = _shape_problem(entry)
        if why is not None:
            seq = entry.get("seq") if isinstance(entry, dict) else None
            problems.append(
                Finding(
                    "chain",
                    f"malformed entry (the {index + 1}th line that parses {why}); it and the "
                    "entries after it cannot be checked",
                    seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
                )
            )
            shaped = index
            break
    found = verify_entries(entries[:shaped], recording, key)
    verified = shaped
    if found:
        bad = found[0]
        # verify_entries stops at its first problem: every entry before it has seq == index
        if bad.reason.startswith("expected entry"):
            verified = next((i for i, e in enumerate(entries) if e.get("seq") != i), shaped)
        else:
            verified = bad.seq if isinstance(bad.seq, int) else shaped
        entry = entries[verified] if verified < len(entries) else {}
        reason, kind = bad.reason, "chain"
        if entry.get("type") in SIGNED_TYPES and bad.reason.startswith("signed by an untrusted"):
            kind = "signature"
            if entry.get("key_id") != key_id(key):
                reason = (
                    f"{entry.get('type')} signed by another key (key id "
                    f"{str(entry.get('key_id'))[:16]}…), not the trusted key "
                    f"({key_id(key)[:16]}…): forged"
                )
            else:
                reason = f"{entry.get('type')} signs another head than the previous entry"
        elif "signature" in bad.reason:
            kind = "signature"
            reason = f"{entry.get('type')} {bad.reason}"
        last_signed = max(
            (i for i in range(verified) if entries[i]["type"] in SIGNED_TYPES), default=-1
        )
        reason += (
            f"; entries {last_signed + 1}..{len(entries) - 1} are not covered by a valid"
            f" signature (last valid signature: "
            + (f"entry {last_signed})" if last_signed >= 0 else "none)")
        )
        problems.append(Finding(kind, reason, seq=bad.seq))
    for message in read_problems:
        if (
            "incomplete" in message
            and verified == len(entries)
            and not any(e.get("type") == "seal" for e in entries)
        ):
            warnings.append(Finding("chain", f"{message}: the recorder stopped while writing it"))
        else:
            problems.append(Finding("chain", message))
    last_signed = max(
        (i for i in range(verified) if entries[i]["type"] in SIGNED_TYPES), default=-1
    )
    seals = [i for i in range(verified) if entries[i]["type"] == "seal"]
    seal = seals[-1] if seals else -1
    for first, following in zip(seals, [*seals[1:], len(entries)][: len(seals)], strict=True):
        # after a seal only an addendum (e.g. the signed agreement), closed by a new seal
        after = entries[first + 1 : following]
        if following == len(entries) and after:
            bad = first + 1
        else:
            bad = next(
                (
                    first + 1 + k
                    for k, e in enumerate(after)
                    if e.get("type") != "event"
                    or (e.get("event") or {}).get("kind") not in ADDENDUM_KINDS
                ),
                -1,
            )
        if bad >= 0:
            problems.append(
                Finding(
                    "after-seal",
                    f"entries {first + 1}..{following - 1} follow the seal (entry {first}); "
                    "after a seal only an addendum closed by a new seal may come",
                    seq=bad,
                )
            )
            break
    if not entries:
        problems.append(Finding("chain", f"{CHAIN_FILE} has no entries"))
    elif verified == len(entries) and seal < 0:
        time = _iso(entries[last_signed].get("time")) if last_signed >= 0 else None
        signed_part = (
            f"the chain verifies up to the {entries[last_signed]['type']} at entry "
            f"{last_signed} ({time})"
            if last_signed >= 0
            else "no entry is signed"
        )
        problems.append(
            Finding(
                "not-sealed",
                "not sealed: the recording did not end with a seal (the recorder or server "
                f"stopped, or the chain was cut short); {signed_part}",
            )
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
            problems.append(
                Finding(
                    "unsigned",
                    f"{which} ({', '.join(f'{n} {t}' for t, n in sorted(counts.items()))}) "
                    "come after the last signature: not covered by a signature",
                    seq=last_signed + 1,
                )
            )
    return verified, last_signed + 1, seal


def _in_gap(ctx: _Context, segment: str, last_seq: int) -> int | None:
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


def _record_lost(ctx: _Context, gap: int, segment: str, offset: int, length: int) -> str:
    lost = {"segment": segment, "offset": offset, "length": length}
    if gap >= 0 and gap in ctx.gaps:
        ctx.gaps[gap].lost.append(lost)
        return f"lost in the gap at entry {gap} ({ctx.gaps[gap].time})"
    return "in flight when the recording stopped without a seal"


def _check_segment(
    ctx: _Context, segment: str, ranges: list[_Range], cuts: list[Cut], size: int
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
        first_time=_iso(ranges[0].time) if ranges else None,
        last_time=_iso(ranges[-1].time) if ranges else None,
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

    def problem(kind: str, reason: str, i: int, r: _Range) -> None:
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
                    f"the file has the bytes of chained {_part_name(numbers[j])} (entry "
                    f"{ranges[j].seq}) here; the bytes of chain entry {r.seq} are later, at "
                    f"file bytes {_byte_range(cuts[later].offset, cuts[later].length)} "
                    "(fragments reordered)",
                    i,
                    r,
                )
            else:
                more = (
                    f" with the ranges after it up to {_part_name(numbers[j - 1])}"
                    if j > i + 1
                    else ""
                )
                problem(
                    "removed",
                    f"missing{more} (chain entry {r.seq}"
                    + (f"..{ranges[j - 1].seq}" if j > i + 1 else "")
                    + f"): at byte {c.offset} the file has chained {_part_name(numbers[j])} "
                    f"(entry {ranges[j].seq}) instead (fragment removed)",
                    i,
                    r,
                )
            stopped = True
            break
        if j is not None:
            problem(
                "reordered",
                f"the file repeats chained {_part_name(numbers[j])} (entry {ranges[j].seq}) "
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
    ctx: _Context,
    report: SegmentReport,
    segment: str,
    ranges: list[_Range],
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


def _check_unnamed(ctx: _Context, segment: str, cuts: list[Cut], size: int) -> None:
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
        number = _segment_number(segment)
        gap = -1 if not ctx.sealed else ctx.gap_seqs[-1]
        named = [g for g in ctx.gap_seqs if segment in ctx.gaps[g].interrupted]
        if named:
            gap = named[0]
        elif number is not None:
            later = [
                rs[0].seq
                for name, rs in ctx.ranges.items()
                if rs and (_segment_number(name) or 0) > number
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


def _check_timestamp(
    folder: Path,
    entries: list[dict[str, Any]],
    seal: int,
    tsa_trust: Sequence[asn1_x509.Certificate] | None,
    problems: list[Finding],
    warnings: list[Finding],
) -> TimestampReport | None:
    path = folder / SEAL_TIMESTAMP_FILE
    if not path.exists():
        if tsa_trust:
            warnings.append(
                Finding("timestamp", f"no {SEAL_TIMESTAMP_FILE}: the seal has no timestamp")
            )
        return None
    if seal < 0:
        problems.append(
            Finding("timestamp", f"{SEAL_TIMESTAMP_FILE} is present but the chain has no seal")
        )
        return None
    try:
        signed_data, tst_info = _parse_token(path.read_bytes())
        algorithm = tst_info["message_imprint"]["hash_algorithm"]["algorithm"].native
        imprint = tst_info["message_imprint"]["hashed_message"].native
        gen_time = tst_info["gen_time"].native
    except (OSError, ValueError, TypeError, KeyError) as error:
        problems.append(
            Finding("timestamp", f"{SEAL_TIMESTAMP_FILE} is not an RFC 3161 token: {error}")
        )
        return None
    # the token is over the last seal, or over an earlier one that an addendum followed
    seals = [i for i in range(seal + 1) if entries[i].get("type") == "seal"]
    for candidate in reversed(seals):
        seal_line = _raw_line(folder / CHAIN_FILE, entries[candidate]["seq"])
        try:
            expected = hashlib.new(algorithm, seal_line or b"").digest()
        except (ValueError, TypeError):
            expected = None
        if expected == imprint:
            seal = candidate
            break
    else:
        seal_line = _raw_line(folder / CHAIN_FILE, entries[seal]["seq"])
    report = TimestampReport(
        time=gen_time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        tsa=None,
        imprint_matches=seal_line is not None and expected == imprint,
        signature_valid=False,
        trusted=None,
    )
    if not report.imprint_matches:
        problems.append(
            Finding(
                "timestamp",
                f"{SEAL_TIMESTAMP_FILE} does not timestamp this seal: its message imprint "
                f"({algorithm}) is not the hash of the seal's line in {CHAIN_FILE}",
                seq=entries[seal]["seq"],
            )
        )
    try:
        status = _validate_token(signed_data, seal_line or b"", gen_time, tsa_trust)
    except Exception as error:  # pyhanko raises many kinds on malformed tokens: all mean "bad"
        problems.append(
            Finding("timestamp", f"the timestamp token's signature cannot be checked: {error}")
        )
        return report
    report.tsa = status["signing_cert"].subject.human_friendly
    report.signature_valid = bool(status["valid"] and status["intact"])
    if not report.signature_valid:
        problems.append(
            Finding("timestamp", "the timestamp token's CMS signature is not valid (altered)")
        )
    if tsa_trust:
        report.trusted = status["trust_problem_indic"] is None
        if not report.trusted:
            problems.append(
                Finding(
                    "timestamp",
                    "the TSA certificate does not chain to the --tsa-trust certificate(s) "
                    f"at the timestamp's time ({status['trust_problem_indic']})",
                )
            )
    else:
        warnings.append(Finding("timestamp", "TSA certificate not checked against a trusted root"))
    seal_time = entries[seal].get("time")
    if isinstance(seal_time, int | float) and gen_time.timestamp() < seal_time - 300:
        warnings.append(
            Finding(
                "timestamp",
                "the TSA time is more than 5 minutes before the seal's own time "
                "(the recorder's clock was ahead)",
            )
        )
    return report


def _raw_line(chain: Path, seq: int) -> bytes | None:
    """A Chain line exactly as stored, without its newline (what the TSA timestamped)."""
    lines = chain.read_bytes().split(b"\n")
    for line in reversed(lines[:-1]):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("seq") == seq and entry.get("type") == "seal":
            return line
    return None


def _parse_token(data: bytes) -> tuple[cms.SignedData, tsp.TSTInfo]:
    """A TimeStampToken (CMS ContentInfo), or a whole TimeStampResp holding one."""
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    token = cms.ContentInfo.load(data)
    try:
        is_signed_data = token["content_type"].native == "signed_data"
    except (ValueError, TypeError):
        is_signed_data = False
    if not is_signed_data:
        response = tsp.TimeStampResp.load(data)
        token = response["time_stamp_token"]
        if token.native is None:
            raise ValueError("the timestamp response holds no token")
    signed_data = token["content"]
    content = signed_data["encap_content_info"]
    if content["content_type"].native != "tst_info":
        raise ValueError("the token does not hold a TSTInfo")
    tst_info = content["content"].parsed
    if not isinstance(tst_info, tsp.TSTInfo):
        raise ValueError("the token does not hold a TSTInfo")
    return signed_data, tst_info


def _validate_token(
    signed_data: cms.SignedData,
    message: bytes,
    moment: datetime,
    tsa_trust: Sequence[asn1_x509.Certificate] | None,
) -> dict[str, Any]:
    """pyhanko's RFC 3161 token validation; the certificate path is judged at the token's
    own time (archives outlive TSA certificates), offline (no revocation fetching)."""
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    context = ValidationContext(
        trust_roots=list(tsa_trust or []), moment=moment, allow_fetching=False
    )

    async def validate() -> dict[str, Any]:
        return await validate_tst_signed_data(
            signed_data, context, lambda algorithm: hashlib.new(algorithm, message).digest()
        )

    with _quiet("pyhanko", "pyhanko_certvalidator"):
        return _run_coroutine(validate)


def _check_summary(
    summary: dict[str, Any] | None,
    ranges: dict[str, list[_Range]],
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


def _hash_files(paths: list[Path], workers: int | None) -> dict[Path, list[Cut] | OSError]:
    """Cut and hash Segment files in parallel: hashlib and file reads release the GIL."""
    results: dict[Path, list[Cut] | OSError] = {}
    if not paths:
        return results
    workers = workers or min(len(paths), os.cpu_count() or 1, 8)

    def work(path: Path) -> list[Cut] | OSError:
        try:
            return cut_segment(path)
        except OSError as error:
            return error

    if workers <= 1:
        return {path: work(path) for path in paths}
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for path, result in zip(paths, pool.map(work, paths), strict=True):
            results[path] = result
    return results


def verify_recording(
    path: Path,
    trusted: Ed25519PublicKey | None = None,
    tsa_trust: Sequence[asn1_x509.Certificate] | None = None,
    *,
    trusted_source: str = "--trust",
    workers: int | None = None,
) -> Report:
    """Verify a Recording folder, or one Segment MP4 inside its `segments/` (then the Chain
    in full and only that file's bytes). Raises VerifyError when it cannot run."""
    folder, only = _locate(path)
    problems: list[Finding] = []
    warnings: list[Finding] = []

    folder_key_path = folder / PUBLIC_KEY_FILE
    if trusted is None:
        if not folder_key_path.exists():
            raise VerifyError(
                f"no key to check signatures with: {folder_key_path} is missing; "
                "pass --trust with the recorder's public key"
            )
        key = load_public_key(folder_key_path)
        source = f"{PUBLIC_KEY_FILE} in the recording folder"
        warnings.append(
            Finding(
                "untrusted-key",
                f"signatures were checked with the {PUBLIC_KEY_FILE} found in the recording "
                "folder: the key was not independently trusted (whoever rewrote the folder "
                "could have replaced it); pass --trust with the recorder's public key",
            )
        )
    else:
        key, source = trusted, trusted_source
        if folder_key_path.exists():
            try:
                folder_key = load_public_key(folder_key_path)
            except VerifyError:
                folder_key = None
            if folder_key is None or key_id(folder_key) != key_id(key):
                warnings.append(
                    Finding(
                        "key-file",
                        f"the {PUBLIC_KEY_FILE} in the recording folder is not the trusted key",
                    )
                )

    try:
        entries, read_found = read_entries(folder / CHAIN_FILE)
    except OSError as error:
        raise VerifyError(f"cannot read {folder / CHAIN_FILE}: {error}") from error
    summary = _read_summary(folder, warnings)
    candidates = [folder.resolve().name]
    for entry in entries[:50]:  # the recorder names the recording in its first event
        event = entry.get("event") if isinstance(entry, dict) else None
        if isinstance(event, dict) and isinstance(event.get("recording_id"), str):
            candidates.append(event["recording_id"])
    candidates.append(_summary_id(summary) or candidates[0])
    candidates = list(dict.fromkeys(candidates))
    recording = _choose_recording_id(entries, candidates, key)
    if recording != candidates[0]:
        warnings.append(
            Finding(
                "folder-name",
                f"the folder is named {candidates[0]!r}, the signatures name {recording!r}",
            )
        )

    verified, signed, seal = _check_chain(
        entries, [p.reason for p in read_found], recording, key, problems, warnings
    )
    sealed = seal >= 0 and verified > seal

    ranges: dict[str, list[_Range]] = {}
    gap_seqs: list[int] = []
    gaps: dict[int, GapReport] = {}
    ended: dict[str, int] = {}
    types: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if _shape_problem(entry) is not None:
            break
        types[entry["type"]] = types.get(entry["type"], 0) + 1
        if entry["type"] == "gap":
            gap_seqs.append(entry["seq"])
            gaps[entry["seq"]] = GapReport(
                seq=entry["seq"],
                time=_iso(entry.get("time")),
                reason=str(entry.get("reason", "")),
                after=_iso(entries[index - 1].get("time")) if index > 0 else None,
                interrupted=[str(n) for n in entry.get("interrupted") or [] if isinstance(n, str)],
            )
        event = entry.get("event") if entry["type"] == "event" else None
        if isinstance(event, dict) and event.get("kind") == "segment_ended":
            ended.setdefault(str(event.get("segment")), entry["seq"])
        if entry["type"] in ("init", "fragment"):
            name = entry["segment"]
            if not _SEGMENT_PATH.fullmatch(name) or name.endswith(("/.", "/..")):
                problems.append(
                    Finding(
                        "chain",
                        f"names a segment outside {SEGMENTS_DIR}/: {name!r}",
                        seq=entry["seq"],
                    )
                )
                continue
            ranges.setdefault(name, []).append(
                _Range(
                    entry["seq"],
                    entry["type"],
                    entry["offset"],
                    entry["length"],
                    entry["sha256"],
                    entry.get("time"),
                )
            )
    ctx = _Context(folder, entries, ranges, gap_seqs, sealed, gaps, ended, problems, warnings)

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
    hashed = _hash_files(to_hash, workers)

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
                    first_time=_iso(chained[0].time) if chained else None,
                    last_time=_iso(chained[-1].time) if chained else None,
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

    timestamp = _check_timestamp(folder, entries, seal, tsa_trust, problems, warnings)
    _check_summary(summary, ranges, entries, seal, warnings)
    head = entries[signed - 1]["hash"] if signed > 0 else None
    return Report(
        path=str(path),
        mode="recording" if only is None else "segment",
        recording=recording,
        authentic=not problems and sealed,
        sealed=sealed,
        seal_seq=entries[seal]["seq"] if sealed else None,
        seal_time=_iso(entries[seal].get("time")) if sealed else None,
        head=head,
        key_id=key_id(key),
        trusted_key_source=source,
        key_trusted=trusted is not None,
        entries=len(entries),
        entries_verified=verified,
        entries_signed=signed,
        entry_types=types,
        signatures_verified=sum(1 for e in entries[:verified] if e.get("type") in SIGNED_TYPES),
        problems=problems,
        warnings=warnings,
        gaps=[gaps[s] for s in gap_seqs],
        segments=reports,
        timestamp=timestamp,
    )


# -- text report -----------------------------------------------------------------------------


def render_text(report: Report) -> str:
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
                f"{x['segment']} bytes {_byte_range(x['offset'], x['length'])}" for x in g.lost
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
