"""The recording hash chain (tiaojie.archive.chain): written, verified, and every kind of
tampering caught, each as its coded problem."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tiaojie.archive.chain import (
    CHAIN_FILE,
    ChainWriter,
    entry_hash,
    read_entries,
    verify_entries,
)
from tiaojie.archive.report import Problem

RECORDING = "rec-1"


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


def write_chain(directory, key):
    writer = ChainWriter(directory, RECORDING, key)
    writer.add_bytes("init", "alice.mp4", 0, b"ftyp+moov")
    writer.append("event", event={"kind": "consent", "participant": "alice", "accepted": True})
    for i in range(5):
        writer.add_bytes("fragment", "alice.mp4", 9 + i * 100, bytes([i]) * 100)
        if i == 2:
            writer.append("checkpoint")
    writer.append("seal")
    writer.close()
    return directory / CHAIN_FILE


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def save(path, entries):
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))


def verify(path, key):
    entries, problems = read_entries(path)
    return problems + verify_entries(entries, RECORDING, key.public_key())


def test_an_untouched_chain_verifies(tmp_path, key):
    path = write_chain(tmp_path, key)
    assert verify(path, key) == []
    assert [e["type"] for e in lines(path)][-1] == "seal"


def test_edited_entry_is_caught(tmp_path, key):
    path = write_chain(tmp_path, key)
    entries = lines(path)
    entries[3]["length"] = 99
    save(path, entries)
    [problem] = verify(path, key)
    assert problem.seq == 3 and problem.code is Problem.ENTRY_HASH_MISMATCH
    assert "edited" in problem.reason


def test_edit_with_recomputed_hashes_fails_at_the_next_signature(tmp_path, key):
    path = write_chain(tmp_path, key)
    entries = lines(path)
    entries[3]["sha256"] = "0" * 64
    prev = entries[2]["hash"]
    for entry in entries[3:]:
        entry["prev"] = prev
        if "head" in entry:
            entry["head"] = prev
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
    save(path, entries)
    [problem] = verify(path, key)
    assert entries[problem.seq]["type"] == "checkpoint"
    assert problem.code is Problem.SIGNATURE_INVALID and "signature" in problem.reason


@pytest.mark.parametrize("tamper", ["remove", "swap", "duplicate"])
def test_removed_swapped_or_added_entries_are_caught(tmp_path, key, tamper):
    path = write_chain(tmp_path, key)
    entries = lines(path)
    if tamper == "remove":
        del entries[4]
    elif tamper == "swap":
        entries[4], entries[5] = entries[5], entries[4]
    else:
        entries.insert(5, dict(entries[4]))
    save(path, entries)
    [problem] = verify(path, key)
    assert problem.seq in (4, 5, 6)


def test_truncated_chain_and_forged_signature(tmp_path, key):
    path = write_chain(tmp_path, key)
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    assert any(p.code is Problem.CHAIN_LINE_INCOMPLETE for p in verify(path, key))
    path.write_bytes(data)
    forger = Ed25519PrivateKey.generate()
    assert verify(path, forger)[0].code is Problem.SIGNATURE_WRONG_KEY


def test_restarted_writer_continues_the_chain_after_a_partial_line(tmp_path, key):
    writer = ChainWriter(tmp_path, RECORDING, key)
    writer.add_bytes("init", "a.mp4", 0, b"init")
    writer.close()
    with (tmp_path / CHAIN_FILE).open("ab") as f:
        f.write(b'{"seq": 1, "type": "frag')  # killed mid-write
    again = ChainWriter(tmp_path, RECORDING, key)
    gap = again.append("gap", reason="recorder restarted")
    again.add_bytes("fragment", "a.mp4", 4, b"more")
    again.append("seal")
    again.close()
    assert gap["seq"] == 1
    assert verify(tmp_path / CHAIN_FILE, key) == []
