"""The Chain: its format, `make_entry` (the next entry, signed where its type is),
`ChainWriter` (the recorder's and the server's addendum writer, to a file), the readers
(`read_written`, `parse_entries`, `read_entries`) and the checks of its links
(`verify_links`) and signatures (`verify_entries`, `verify_signed_by_any`), whose problems
are coded `Finding`s (tiaojie.archive.report). The recording verifier, the agreement
verifier and the case log (tiaojie.archive.caselog) use it here.

One format for every Chain: a Recording's `chain.jsonl` (the recorder writes it) and a
case's log (the CaseLog: the server keeps its lines in the database, and a dossier holds
them as `case-log.jsonl`, tiaojie.archive.caselog). A Chain holds one entry per line.
Each entry is a JSON object with
`seq` (0, 1, 2, ...), `type`, `time` (Unix seconds, wall clock), `prev` (the previous
entry's hash, 64 zeros for the first) and type-specific fields; `hash` is

    sha256(bytes.fromhex(prev) || canonical(entry without "hash"))

where canonical() is JSON with sorted keys, no spaces, UTF-8 (a lone surrogate, which
UTF-8 cannot encode, as its `\\uXXXX` escape). Entry types:

* `init` / `fragment`: a byte range of a segment file as written: `segment`, `offset`,
  `length`, `sha256` of those bytes;
* `event`: something that happened in the room (`event`: {"kind": ..., ...}): consent,
  join, leave, mute, remove, signing;
* `gap`: the recorder restarted after a crash; what was in flight is lost (`reason`);
* `checkpoint` / `seal`: a signature over the chain so far: `head` (= `prev`),
  `key_id` and `signature`, Ed25519 over canonical({"recording", "seq", "head"}), where
  "recording" holds the Chain's name: a Recording's id, or `case:<case id>` for a case's
  log (`case_chain_name`), so a signature over one Chain never passes for another's. The
  seal is the last entry of a finished recording; only an addendum (ADDENDUM_KINDS
  events, then a new seal) may follow it.

Nothing here reads media: the verifier recomputes Fragment hashes from the Segment files.
An agreement PDF embeds a Chain's first lines as its recording manifest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tiaojie.archive.jsontext import utf8
from tiaojie.archive.layout import CHAIN_FILE
from tiaojie.archive.report import Finding, Findings, Problem

GENESIS = "0" * 64
ENTRY_TYPES = frozenset({"init", "fragment", "event", "gap", "checkpoint", "seal"})
SIGNED_TYPES = frozenset({"checkpoint", "seal", "gap"})
#: Event kinds that may follow a seal, each addendum closed by a new seal (reason
#: "addendum"): the signed agreement PDF of a session whose recording had already stopped.
ADDENDUM_KINDS = frozenset({"agreement"})


def read_written(path: Path) -> bytes | None:
    """A Chain as written so far: its complete lines only (the last may be in flight)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    data = data[: data.rfind(b"\n") + 1]
    return data or None


def canonical(data: dict[str, Any]) -> bytes:
    """JSON with sorted keys, no spaces, UTF-8; a lone surrogate in a string (which UTF-8
    cannot encode) is written as its JSON escape, so any string can be chained and reads
    back to the same bytes (tiaojie.archive.jsontext)."""
    return utf8(json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(bytes.fromhex(entry["prev"]) + canonical(body)).hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    """sha256 of the raw public key, hex: names the key that signed a checkpoint."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def signed_statement(chain: str, seq: int, head: str) -> bytes:
    """What a checkpoint, gap or seal signs: the Chain's name (a recording id, or
    `case:<case id>`), the entry's place and the head before it."""
    return canonical({"recording": chain, "seq": seq, "head": head})


def case_chain_name(case_id: str) -> str:
    """The name a case's log is signed under (never a recording id: those have no colon)."""
    return f"case:{case_id}"


def make_entry(
    type_: str,
    *,
    chain: str,
    seq: int,
    head: str,
    key: Ed25519PrivateKey,
    at: float,
    **fields: Any,
) -> dict[str, Any]:
    """The next entry of a Chain named `chain` whose last entry is `seq - 1` with hash
    `head` (GENESIS and 0 for the first), written at `at` (Unix seconds): signed when its
    type is one of SIGNED_TYPES, with its `hash`. Where it is kept is the caller's."""
    if type_ not in ENTRY_TYPES:
        raise ValueError(f"unknown chain entry type {type_!r}")
    entry: dict[str, Any] = {
        "seq": seq,
        "type": type_,
        "time": round(at, 3),
        "prev": head,
        **fields,
    }
    if type_ in SIGNED_TYPES:
        entry["head"] = head
        entry["key_id"] = key_id(key.public_key())
        entry["signature"] = base64.b64encode(key.sign(signed_statement(chain, seq, head))).decode()
    entry["hash"] = entry_hash(entry)
    return entry


@dataclass
class ChainWriter:
    """Appends entries to a recording's chain, durably (fsync per entry).

    Opening an existing chain continues it: a recorder restarted after a crash first
    writes a signed `gap` entry.
    """

    directory: Path
    recording: str
    key: Ed25519PrivateKey
    head: str = GENESIS
    seq: int = 0
    _file: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        path = self.directory / CHAIN_FILE
        if path.exists():
            last = None
            with path.open("rb") as f:
                for line in f:
                    if line.endswith(b"\n"):
                        last = json.loads(line)
            if last is not None:
                self.head, self.seq = last["hash"], last["seq"] + 1
            self._truncate_partial_line(path)
        self._file = path.open("ab")

    @staticmethod
    def _truncate_partial_line(path: Path) -> None:
        """A crash mid-write leaves a partial last line: cut it (it was never complete)."""
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with path.open("r+b") as f:
                f.truncate(end)

    def append(self, type_: str, **fields: Any) -> dict[str, Any]:
        entry = make_entry(
            type_,
            chain=self.recording,
            seq=self.seq,
            head=self.head,
            key=self.key,
            at=time.time(),
            **fields,
        )
        self._file.write(canonical(entry) + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.head, self.seq = entry["hash"], self.seq + 1
        return entry

    def add_bytes(self, type_: str, segment: str, offset: int, data: bytes) -> dict[str, Any]:
        """An init segment or a fragment, as written to `segment` at `offset`."""
        return self.append(
            type_,
            segment=segment,
            offset=offset,
            length=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def parse_entries(data: bytes) -> tuple[list[dict[str, Any]], list[Finding]]:
    """The entries of a Chain's bytes, and a problem for each line that is not a complete
    JSON line (an incomplete last line ends the reading)."""
    entries: list[dict[str, Any]] = []
    found = Findings()
    *lines, tail = data.split(b"\n")
    for number, line in enumerate(lines):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            found.problem(Problem.CHAIN_LINE_NOT_JSON, f"line {number + 1} is not JSON")
    if tail:
        found.problem(
            Problem.CHAIN_LINE_INCOMPLETE, f"line {len(lines) + 1} is incomplete (truncated)"
        )
    return entries, found.items


def read_entries(path: Path) -> tuple[list[dict[str, Any]], list[Finding]]:
    """The entries of the Chain file at `path` (see `parse_entries`); OSError if unreadable."""
    return parse_entries(path.read_bytes())


def verify_links(entries: Iterable[dict[str, Any]]) -> list[Finding]:
    """Sequence numbers, links and hashes of a Chain (not its signatures, not the media
    bytes); stops at the first problem."""
    return _verify(entries, None)


def verify_entries(
    entries: Iterable[dict[str, Any]], recording: str, trusted: Ed25519PublicKey
) -> list[Finding]:
    """Sequence numbers, links, hashes and signatures of a Chain (not the media bytes);
    stops at the first problem."""
    return _verify(entries, (recording, [trusted]))


def verify_signed_by_any(
    entries: Iterable[dict[str, Any]], chain: str, trusted: Iterable[Ed25519PublicKey]
) -> list[Finding]:
    """`verify_entries` for a Chain whose signatures may come from any of several trusted
    keys (a case's log, changed on several nodes that each sign with their own key)."""
    return _verify(entries, (chain, list(trusted)))


def _verify(
    entries: Iterable[dict[str, Any]],
    signed_by: tuple[str, list[Ed25519PublicKey]] | None,
) -> list[Finding]:
    found = Findings()
    prev, expected_seq = GENESIS, 0
    keys = {key_id(k): k for k in signed_by[1]} if signed_by is not None else {}
    for entry in entries:
        seq = entry.get("seq")
        if seq != expected_seq:
            found.problem(
                Problem.ENTRY_OUT_OF_SEQUENCE,
                f"expected entry {expected_seq} here, found {seq} "
                "(entries removed, added or reordered)",
                seq=seq,
            )
            break
        if entry.get("prev") != prev:
            found.problem(Problem.ENTRY_UNLINKED, "does not link to the previous entry", seq=seq)
            break
        if entry.get("hash") != entry_hash(entry):
            found.problem(
                Problem.ENTRY_HASH_MISMATCH, "its hash does not match its content (edited)", seq=seq
            )
            break
        if signed_by is not None and entry.get("type") in SIGNED_TYPES:
            recording = signed_by[0]
            trusted = keys.get(str(entry.get("key_id")))
            if trusted is None:
                found.problem(Problem.SIGNATURE_WRONG_KEY, "signed by an untrusted key", seq=seq)
                break
            if entry.get("head") != prev:
                found.problem(Problem.SIGNATURE_WRONG_HEAD, "signed over another head", seq=seq)
                break
            try:
                trusted.verify(
                    base64.b64decode(entry.get("signature", "")),
                    signed_statement(recording, seq, prev),
                )
            except (InvalidSignature, ValueError):
                found.problem(
                    Problem.SIGNATURE_INVALID,
                    "signature is not valid (forged or edited)",
                    seq=seq,
                )
                break
        prev, expected_seq = entry["hash"], expected_seq + 1
    return found.items
