"""tiaojie.archive.verify and `tiaojie verify`: real recordings, each kind of tampering caught.

Recordings are written as the recorder writes them (docs/ARCHIVE.md): real fMP4 segments
from SegmentWriter, every init segment and fragment chained as written, events,
checkpoints, a seal, recorder.pub.pem, recording.json.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.testmedia import make_test_mp4, subscription_packets
from tiaojie.archive.chain import ChainWriter, canonical, entry_hash, signed_statement
from tiaojie.archive.layout import CHAIN_FILE
from tiaojie.archive.report import Problem
from tiaojie.archive.verify import (
    CannotVerify,
    RecordingReport,
    split_segment,
    verify_recording,
)
from tiaojie.recorder.segment import SegmentWriter

TIAOJIE = str(Path(sys.executable).with_name("tiaojie"))
RECORDING = "rec_" + "A7" * 13
SEGMENTS = ["segments/0001-p_alice-camera.mp4", "segments/0002-p_bob-camera.mp4"]


# -- building recordings -----------------------------------------------------------------


@pytest.fixture(scope="module")
def packets(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, av.Packet]]:
    """Test media as a subscription delivers it (see tests/test_segment.py)."""
    src = make_test_mp4(
        tmp_path_factory.mktemp("media") / "in.mp4", seconds=6.0, keyframe_interval_s=1.0
    )
    return subscription_packets(src)


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class Recording:
    folder: Path
    key: Ed25519PrivateKey

    @property
    def chain(self) -> Path:
        return self.folder / CHAIN_FILE

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.chain.read_text().splitlines()]

    def save(self, entries: list[dict]) -> None:
        self.chain.write_bytes(b"".join(canonical(e) + b"\n" for e in entries))

    def ranges(self, segment: str) -> list[dict]:
        return [e for e in self.entries() if e.get("segment") == segment]

    def trust(self, tmp_path: Path) -> Path:
        path = tmp_path / "trusted.pub.pem"
        path.write_bytes(public_pem(self.key))
        return path


def write_segments(
    folder: Path,
    chain: ChainWriter,
    names: list[str],
    packets: list[tuple[str, av.Packet]],
    skip_last: bool = False,
) -> dict[str, list[tuple[str, int, bytes]]]:
    """Segments written side by side, each chunk chained as written, a checkpoint every
    3 chunks. `skip_last`: the last chunk of each is written to the file, never chained."""
    chunks: dict[str, list[tuple[str, int, bytes]]] = {n: [] for n in names}

    def on_chunk(name: str, kind: str, offset: int, data: bytes) -> None:
        chunks[name].append((kind, offset, data))

    writers = [SegmentWriter(folder / n, lambda k, o, d, n=n: on_chunk(n, k, o, d)) for n in names]
    for kind, packet in packets:
        for writer in writers:
            writer.write(kind, packet)
    for writer in writers:
        writer.close()
    # chain in the order a live recorder would: interleaved by chunk index
    count = 0
    for i in range(max(len(c) for c in chunks.values())):
        for name in names:
            if i < len(chunks[name]) and not (skip_last and i == len(chunks[name]) - 1):
                kind, offset, data = chunks[name][i]
                chain.add_bytes(kind, name, offset, data)
                count += 1
                if count % 3 == 0:
                    chain.append("checkpoint")
    return chunks


def build(
    root: Path, packets: list[tuple[str, av.Packet]], key: Ed25519PrivateKey | None = None
) -> Recording:
    key = key or Ed25519PrivateKey.generate()
    folder = root / RECORDING
    (folder / "segments").mkdir(parents=True)
    (folder / "recorder.pub.pem").write_bytes(public_pem(key))
    chain = ChainWriter(folder, RECORDING, key)
    chain.append("event", event={"kind": "recording_started"})
    for name in SEGMENTS:
        who = name.split("-")[1]
        chain.append("event", event={"kind": "consent", "participant": who, "accepted": True})
    chunks = write_segments(folder, chain, SEGMENTS, packets)
    chain.append("event", event={"kind": "recording_stopped"})
    seal = chain.append("seal")
    chain.close()
    summary = {
        "recording_id": RECORDING,
        "status": "sealed",
        "segments": [
            {
                "name": name,
                "status": "closed",
                "fragments": len(chunks[name]) - 1,
                "bytes": sum(len(c[2]) for c in chunks[name]),
            }
            for name in SEGMENTS
        ],
        "seal": {"seq": seal["seq"], "hash": seal["hash"], "time": seal["time"]},
    }
    (folder / "recording.json").write_text(json.dumps(summary, indent=2))
    return Recording(folder, key)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, packets) -> Recording:
    return build(tmp_path_factory.mktemp("template"), packets)


@pytest.fixture
def rec(template: Recording, tmp_path: Path) -> Recording:
    """A fresh copy of the template recording, to tamper with."""
    folder = tmp_path / "archive" / RECORDING
    shutil.copytree(template.folder, folder)
    return Recording(folder, template.key)


def verify(rec: Recording, **kwargs) -> RecordingReport:
    return verify_recording(rec.folder, rec.key.public_key(), **kwargs)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TIAOJIE, "verify", *args], capture_output=True, text=True, timeout=120)


def the_problem(report: RecordingReport):
    assert not report.authentic
    assert report.problems, report.to_text()
    return report.problems[0]


# -- authentic ---------------------------------------------------------------------------


def test_an_untouched_recording_is_authentic(rec: Recording, tmp_path: Path) -> None:
    result = cli(str(rec.folder), "--trust", str(rec.trust(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Result: AUTHENTIC" in result.stdout
    assert "Seal: entry" in result.stdout
    report = verify(rec)
    assert report.authentic and report.sealed and report.key_trusted
    assert report.problems == [] and report.warnings == []
    assert report.entries == report.entries_verified == report.entries_signed
    assert [s.path for s in report.segments] == SEGMENTS
    for segment, name in zip(report.segments, SEGMENTS, strict=True):
        assert segment.init_verified
        assert segment.fragments_verified == segment.fragments >= 4
        assert segment.bytes_verified == segment.bytes == (rec.folder / name).stat().st_size
        assert segment.first_time and segment.last_time
    assert report.head == rec.entries()[-1]["hash"]


def test_without_trust_the_folder_key_is_used_and_said_to_be_untrusted(rec: Recording) -> None:
    result = cli(str(rec.folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NOT independently trusted" in result.stdout
    report = verify_recording(rec.folder)
    assert report.authentic and not report.key_trusted
    assert [w.kind for w in report.warnings] == ["untrusted-key"]


def test_json_report(rec: Recording, tmp_path: Path) -> None:
    result = cli(str(rec.folder), "--json", "--trust", str(rec.trust(tmp_path)))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["authentic"] is True and data["result"] == "authentic"
    assert data["recording"] == RECORDING and data["sealed"] is True
    assert data["seal_time"].endswith("Z")
    assert (
        data["key_id"]
        == hashlib.sha256(
            rec.key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        ).hexdigest()
    )
    assert len(data["segments"]) == 2 and data["problems"] == []


def test_cannot_run_exit_2(rec: Recording, tmp_path: Path) -> None:
    missing = cli(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert cli(str(tmp_path)).returncode == 2  # a folder without chain.jsonl
    bad_key = tmp_path / "bad.pem"
    bad_key.write_text("not a key")
    result = cli(str(rec.folder), "--trust", str(bad_key), "--json")
    assert result.returncode == 2 and "cannot read the public key" in result.stderr
    assert json.loads(result.stdout)["error"]
    (rec.folder / "recorder.pub.pem").unlink()
    with pytest.raises(CannotVerify, match="--trust"):
        verify_recording(rec.folder)


# -- tampered segments -------------------------------------------------------------------


def test_flipped_byte_in_a_fragment(rec: Recording) -> None:
    name = SEGMENTS[1]
    fragment = rec.ranges(name)[3]  # init is [0]: this is fragment 3
    path = rec.folder / name
    data = bytearray(path.read_bytes())
    data[fragment["offset"] + fragment["length"] - 10] ^= 0x01  # inside the mdat
    path.write_bytes(data)
    report = verify(rec)
    problem = the_problem(report)
    end = fragment["offset"] + fragment["length"] - 1
    assert problem.describe() == (
        f"{name} fragment 3 (bytes {fragment['offset']}-{end}): sha256 differs from chain "
        f"entry {fragment['seq']} (content altered)"
    )
    assert (problem.kind, problem.seq, problem.fragment) == ("altered", fragment["seq"], 3)
    assert problem.code is Problem.FRAGMENT_HASH_MISMATCH
    assert len(report.problems) == 1  # the other fragments still verify
    segment = next(s for s in report.segments if s.path == name)
    assert segment.fragments_verified == segment.fragments - 1


def test_flipped_byte_in_the_init_segment(rec: Recording) -> None:
    path = rec.folder / SEGMENTS[0]
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    path.write_bytes(data)
    problem = the_problem(verify(rec))
    assert problem.kind == "altered" and problem.fragment == 0
    assert problem.code is Problem.INIT_SEGMENT_HASH_MISMATCH
    assert "init segment (bytes 0-" in problem.describe()


def test_fragment_removed(rec: Recording) -> None:
    name = SEGMENTS[0]
    fragment = rec.ranges(name)[2]
    path = rec.folder / name
    data = path.read_bytes()
    start, end = fragment["offset"], fragment["offset"] + fragment["length"]
    path.write_bytes(data[:start] + data[end:])
    problem = the_problem(verify(rec))
    assert problem.kind == "removed" and problem.fragment == 2
    assert f"at byte {start} the file has chained fragment 3" in problem.reason


def test_two_fragments_swapped(rec: Recording) -> None:
    name = SEGMENTS[1]
    a, b = rec.ranges(name)[1:3]
    path = rec.folder / name
    data = path.read_bytes()
    first = data[a["offset"] : a["offset"] + a["length"]]
    second = data[b["offset"] : b["offset"] + b["length"]]
    path.write_bytes(data[: a["offset"]] + second + first + data[b["offset"] + b["length"] :])
    problem = the_problem(verify(rec))
    assert problem.kind == "reordered" and problem.fragment == 1
    assert "reordered" in problem.reason


@pytest.mark.parametrize("where", ["inside", "boundary"])
def test_truncated_segment(rec: Recording, where: str) -> None:
    name = SEGMENTS[0]
    last = rec.ranges(name)[-1]
    path = rec.folder / name
    data = path.read_bytes()
    cut = last["offset"] + (100 if where == "inside" else 0)
    path.write_bytes(data[:cut])
    problem = the_problem(verify(rec))
    assert problem.kind == "truncated" and problem.seq == last["seq"]
    assert f"the file ends at byte {cut}" in problem.reason


def test_bytes_appended_to_a_sealed_segment(rec: Recording) -> None:
    path = rec.folder / SEGMENTS[0]
    data = path.read_bytes()
    fragment = rec.ranges(SEGMENTS[0])[1]
    path.write_bytes(data + data[fragment["offset"] : fragment["offset"] + fragment["length"]])
    problem = the_problem(verify(rec))
    assert problem.kind == "appended" and problem.offset == len(data)


def test_segment_added(rec: Recording) -> None:
    shutil.copy(rec.folder / SEGMENTS[0], rec.folder / "segments/0003-p_eve-camera.mp4")
    problem = the_problem(verify(rec))
    assert problem.kind == "extra-segment"
    assert problem.segment == "segments/0003-p_eve-camera.mp4"
    assert "never recorded" in problem.reason


def test_segment_deleted(rec: Recording, tmp_path: Path) -> None:
    (rec.folder / SEGMENTS[1]).unlink()
    result = cli(str(rec.folder), "--trust", str(rec.trust(tmp_path)))
    assert result.returncode == 1
    assert f"First problem: {SEGMENTS[1]}: the segment file is missing" in result.stdout
    assert the_problem(verify(rec)).kind == "missing-segment"


# -- tampered chains ---------------------------------------------------------------------


def test_edited_entry_with_recomputed_hashes_fails_at_the_next_signature(
    rec: Recording,
) -> None:
    """A forger alters a fragment AND its chain entry, then re-hashes the chain: the bytes
    match the edited chain, but the next checkpoint's signature does not."""
    name = SEGMENTS[0]
    fragment = rec.ranges(name)[2]
    path = rec.folder / name
    data = bytearray(path.read_bytes())
    data[fragment["offset"] + fragment["length"] - 5] ^= 0x55
    path.write_bytes(data)
    entries = rec.entries()
    index = fragment["seq"]
    entries[index]["sha256"] = hashlib.sha256(
        data[fragment["offset"] : fragment["offset"] + fragment["length"]]
    ).hexdigest()
    prev = entries[index - 1]["hash"]
    for entry in entries[index:]:
        entry["prev"] = prev
        if "head" in entry:
            entry["head"] = prev
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
    rec.save(entries)
    report = verify(rec)
    problem = the_problem(report)
    checkpoint = next(e for e in entries[index:] if e["type"] == "checkpoint")
    assert (problem.kind, problem.seq) == ("signature", checkpoint["seq"])
    assert "signature is not valid" in problem.reason
    assert "not covered by a valid signature" in problem.reason
    assert len(report.problems) == 1 and not report.sealed


def test_forged_checkpoint_signed_by_another_key(rec: Recording) -> None:
    forger = Ed25519PrivateKey.generate()
    entries = rec.entries()
    index = next(i for i, e in enumerate(entries) if e["type"] == "checkpoint")
    entries[index]["key_id"] = hashlib.sha256(
        forger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).hexdigest()
    entries[index]["signature"] = base64.b64encode(
        forger.sign(signed_statement(RECORDING, index, entries[index]["head"]))
    ).decode()
    prev = entries[index - 1]["hash"]
    for entry in entries[index:]:
        entry["prev"] = prev
        if "head" in entry:
            entry["head"] = prev
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
    rec.save(entries)
    problem = the_problem(verify(rec))
    assert (problem.kind, problem.seq) == ("signature", index)
    assert "signed by another key" in problem.reason
    assert problem.code is Problem.SIGNATURE_WRONG_KEY


def test_a_whole_folder_rewritten_by_another_key(rec: Recording, packets, tmp_path: Path) -> None:
    """The forger's own recorder.pub.pem makes it verify without --trust (hence the
    warning), never with the archivist's key."""
    forged = build(tmp_path / "forged", packets[: len(packets) // 2])
    assert verify_recording(forged.folder).authentic
    result = cli(str(forged.folder), "--trust", str(rec.trust(tmp_path)))
    assert result.returncode == 1
    assert "signed by another key" in result.stdout


# -- crashes, gaps and unsealed recordings -----------------------------------------------


ENDED = "segments/0002-p_dan-camera.mp4"


def crashed(root: Path, packets, restart: bool) -> Recording:
    """Segment 0002 ended cleanly, then segment 0001 was being written when the recorder
    was killed: its last fragment is half on disk and never chained. With `restart`, a new
    recorder writes a gap, segment 0003 and the seal."""
    key = Ed25519PrivateKey.generate()
    folder = root / RECORDING
    (folder / "segments").mkdir(parents=True)
    (folder / "recorder.pub.pem").write_bytes(public_pem(key))
    chain = ChainWriter(folder, RECORDING, key)
    chain.append("event", event={"kind": "recording_started"})
    write_segments(folder, chain, [ENDED], packets)
    chain.append("event", event={"kind": "segment_ended", "segment": ENDED})
    name = SEGMENTS[0]
    chunks = write_segments(folder, chain, [name], packets, skip_last=True)
    _, offset, data = chunks[name][-1]
    with (folder / name).open("r+b") as f:
        f.truncate(offset + len(data) // 2)  # killed mid-write
    chain.append("event", event={"kind": "participant_joined", "participant": "p_carol"})
    chain.close()  # no seal: killed
    if restart:
        chain = ChainWriter(folder, RECORDING, key)
        chain.append("gap", reason="the recorder restarted", interrupted=[name])
        write_segments(folder, chain, ["segments/0003-p_alice-camera.mp4"], packets)
        chain.append("seal")
        chain.close()
    return Recording(folder, key)


def test_crash_and_restart_is_authentic_with_the_gap_reported(packets, tmp_path: Path) -> None:
    rec = crashed(tmp_path, packets, restart=True)
    result = cli(str(rec.folder), "--trust", str(rec.trust(tmp_path)))
    assert result.returncode == 0, result.stdout
    assert "Gaps (the recorder restarted after a crash):" in result.stdout
    report = verify(rec)
    assert report.authentic and report.problems == []
    [gap] = report.gaps
    gap_entry = next(e for e in rec.entries() if e["type"] == "gap")
    assert gap.seq == gap_entry["seq"] and gap.time and gap.after
    last = rec.ranges(SEGMENTS[0])[-1]
    size = (rec.folder / SEGMENTS[0]).stat().st_size
    assert gap.lost == [
        {
            "segment": SEGMENTS[0],
            "offset": last["offset"] + last["length"],
            "length": size - last["offset"] - last["length"],
        }
    ]
    assert [w.kind for w in report.warnings] == ["lost-in-gap"]
    assert "lost in the gap" in report.warnings[0].reason


def test_bytes_appended_to_a_segment_that_ended_before_a_gap(packets, tmp_path: Path) -> None:
    rec = crashed(tmp_path, packets, restart=True)
    path = rec.folder / ENDED
    data = path.read_bytes()
    fragment = rec.ranges(ENDED)[1]
    path.write_bytes(data + data[fragment["offset"] : fragment["offset"] + fragment["length"]])
    problem = the_problem(verify(rec))
    assert (problem.kind, problem.segment) == ("appended", ENDED)
    assert "the chain says this segment ended" in problem.reason


def test_crash_without_restart_is_not_sealed(packets, tmp_path: Path) -> None:
    rec = crashed(tmp_path, packets, restart=False)
    result = cli(str(rec.folder), "--trust", str(rec.trust(tmp_path)), "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["sealed"] is False
    kinds = [p["kind"] for p in data["problems"]]
    assert kinds == ["not-sealed", "unsigned"]
    entries = rec.entries()
    last_signed = max(i for i, e in enumerate(entries) if e["type"] == "checkpoint")
    assert data["entries_signed"] == last_signed + 1 < len(entries)
    assert f"up to the checkpoint at entry {last_signed}" in data["problems"][0]["reason"]
    assert data["problems"][1]["seq"] == last_signed + 1
    assert "not covered by a signature" in data["problems"][1]["reason"]
    assert [w["kind"] for w in data["warnings"]] == ["lost-in-gap"]
    assert "in flight" in data["warnings"][0]["reason"]


# -- single MP4 ----------------------------------------------------------------------------


def test_a_single_segment(rec: Recording, tmp_path: Path) -> None:
    (rec.folder / SEGMENTS[1]).unlink()  # other segments are not needed
    target = rec.folder / SEGMENTS[0]
    result = cli(str(target), "--trust", str(rec.trust(tmp_path)))
    assert result.returncode == 0, result.stdout
    report = verify_recording(target, rec.key.public_key())
    assert report.mode == "segment" and report.authentic
    checked = [s.path for s in report.segments if s.checked]
    assert checked == [SEGMENTS[0]]
    data = bytearray(target.read_bytes())
    data[-3] ^= 1
    target.write_bytes(data)
    assert cli(str(target), "--trust", str(rec.trust(tmp_path))).returncode == 1
    stray = tmp_path / "segments" / "x.mp4"
    stray.parent.mkdir()
    stray.write_bytes(b"")
    assert cli(str(stray)).returncode == 2


# -- TSA timestamp on the seal -------------------------------------------------------------


def _certificate(subject: str, issuer: str, key, signer, ca: bool, eku: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory):
    """A test TSA (pyhanko's DummyTimeStamper, RSA) under its own root; root PEM path."""
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _certificate("Tiaojie Test Root", "Tiaojie Test Root", root_key, root_key, True, False)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate("Tiaojie Test TSA", "Tiaojie Test Root", tsa_key, root_key, False, True)

    def asn1(c: x509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

    stamper = DummyTimeStamper(
        asn1(cert),
        asn1_keys.PrivateKeyInfo.load(
            tsa_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        certs_to_embed=[asn1(root)],
    )
    folder = tmp_path_factory.mktemp("tsa")
    (folder / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = _certificate("Other Root", "Other Root", other_key, other_key, True, False)
    (folder / "other.pem").write_bytes(other.public_bytes(serialization.Encoding.PEM))

    def stamp(data: bytes) -> bytes:
        digest = hashlib.sha256(data).digest()
        return asyncio.run(stamper.async_timestamp(digest, "sha256")).dump()

    return stamp, folder / "root.pem", folder / "other.pem"


def seal_line(rec: Recording) -> bytes:
    return rec.chain.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]


def test_timestamp_on_the_seal(rec: Recording, tsa, tmp_path: Path) -> None:
    stamp, root, other = tsa
    (rec.folder / "seal.tsr").write_bytes(stamp(seal_line(rec)))
    trust = str(rec.trust(tmp_path))
    result = cli(str(rec.folder), "--trust", trust)
    assert result.returncode == 0, result.stdout
    assert "Tiaojie Test TSA" in result.stdout
    assert "TSA certificate not checked against a trusted root" in result.stdout
    result = cli(str(rec.folder), "--trust", trust, "--tsa-trust", str(root), "--json")
    assert result.returncode == 0, result.stdout
    data = json.loads(result.stdout)
    assert data["timestamp"]["trusted"] is True and data["timestamp"]["signature_valid"]
    assert "Tiaojie Test TSA" in data["timestamp"]["tsa"]
    assert data["timestamp"]["time"].endswith("Z") and data["warnings"] == []
    result = cli(str(rec.folder), "--trust", trust, "--tsa-trust", str(other))
    assert result.returncode == 1
    assert "does not chain to the --tsa-trust" in result.stdout


def test_timestamp_over_other_data_is_rejected(rec: Recording, tsa, tmp_path: Path) -> None:
    stamp, _, _ = tsa
    (rec.folder / "seal.tsr").write_bytes(stamp(seal_line(rec) + b"\n"))  # not as stored
    result = cli(str(rec.folder), "--trust", str(rec.trust(tmp_path)))
    assert result.returncode == 1
    assert "seal.tsr does not timestamp this seal" in result.stdout
    (rec.folder / "seal.tsr").write_bytes(b"garbage")
    problem = the_problem(verify(rec))
    assert problem.kind == "timestamp" and "not an RFC 3161 token" in problem.reason


# -- the summary, and box parsing ---------------------------------------------------------


def test_summary_mismatch_is_only_a_warning(rec: Recording) -> None:
    path = rec.folder / "recording.json"
    summary = json.loads(path.read_text())
    summary["segments"].pop()
    summary["seal"]["hash"] = "0" * 64
    path.write_text(json.dumps(summary))
    report = verify(rec)
    assert report.authentic
    reasons = " / ".join(w.reason for w in report.warnings)
    assert "does not list segments the chain names" in reasons
    assert "names another seal" in reasons


@pytest.mark.parametrize("damage", ["not-json", "after-seal", "cut-seal", "empty"])
def test_damaged_chain_files(rec: Recording, damage: str) -> None:
    data = rec.chain.read_bytes()
    lines = data.splitlines(keepends=True)
    if damage == "not-json":
        lines[5] = b"{garbage\n"
    elif damage == "after-seal":
        lines.append(lines[-2])
    elif damage == "cut-seal":
        lines[-1] = lines[-1][:40]
    else:
        lines = []
    rec.chain.write_bytes(b"".join(lines))
    report = verify(rec)
    reasons = " / ".join(p.describe() for p in report.problems)
    assert not report.authentic and report.sealed == (damage == "after-seal")
    expected = {
        "not-json": "line 6 is not JSON",
        "after-seal": "follow the seal",
        "cut-seal": "not sealed",
        "empty": "has no entries",
    }[damage]
    assert expected in reasons


def test_an_empty_segment_file_is_only_a_warning(rec: Recording) -> None:
    (rec.folder / "segments/0003-p_carol-camera.mp4").write_bytes(b"")
    report = verify(rec)
    assert report.authentic and [w.kind for w in report.warnings] == ["empty-segment"]


def test_a_renamed_folder_still_verifies_by_the_id_the_signatures_bind(rec: Recording) -> None:
    renamed = rec.folder.with_name("copy-for-court")
    rec.folder.rename(renamed)
    report = verify_recording(renamed, rec.key.public_key())
    assert report.authentic and report.recording == RECORDING
    assert [w.kind for w in report.warnings] == ["folder-name"]
    (renamed / "recording.json").unlink()
    assert not verify_recording(renamed, rec.key.public_key()).authentic


def test_split_segment_reads_64_bit_box_sizes(tmp_path: Path) -> None:
    def box(kind: bytes, payload: bytes, large: bool = False) -> bytes:
        if large:
            return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
        return struct.pack(">I4s", 8 + len(payload), kind) + payload

    init = box(b"ftyp", b"isom") + box(b"moov", b"x" * 20)
    one = box(b"moof", b"a" * 10) + box(b"mdat", b"b" * 300, large=True)
    two = box(b"moof", b"c" * 10) + box(b"mdat", b"d" * 30)
    path = tmp_path / "boxes.mp4"
    path.write_bytes(init + one + two[:-7])
    parts = split_segment(path)
    assert [(p.kind, p.offset, p.length, p.complete) for p in parts] == [
        ("init", 0, len(init), True),
        ("fragment", len(init), len(one), True),
        ("fragment", len(init) + len(one), len(two) - 7, False),
    ]
    assert parts[1].sha256 == hashlib.sha256(one).hexdigest()
    assert os.path.getsize(path) == sum(p.length for p in parts)


def test_a_recording_that_follows_another_names_it_and_the_link_is_checked(
    rec: Recording, tmp_path: Path
) -> None:
    """A drained node's room: the next recording's first event names the previous one
    and its seal; `--previous` checks the folder is that recording and holds that seal."""
    seal = rec.entries()[-1]
    folder = tmp_path / "archive" / ("rec_" + "B6" * 13)
    folder.mkdir(parents=True)
    (folder / "recorder.pub.pem").write_bytes(public_pem(rec.key))
    chain = ChainWriter(folder, folder.name, rec.key)
    follows = {"recording_id": RECORDING, "node": "n1", "reason": "drained"}
    chain.append(
        "event",
        event={
            "kind": "recording_started",
            "recording_id": folder.name,
            "follows": {**follows, "seal": {"seq": seal["seq"], "hash": seal["hash"]}},
        },
    )
    chain.append("seal")
    chain.close()
    key = rec.key.public_key()

    alone = verify_recording(folder, key)
    assert alone.authentic and alone.follows is not None
    assert alone.follows["link"] == "not_checked" and alone.follows["recording_id"] == RECORDING
    linked = verify_recording(folder, key, previous=rec.folder)
    assert linked.authentic, linked.to_text()
    assert linked.follows is not None and linked.follows["link"] == "verified"
    assert f"Follows recording {RECORDING}" in linked.to_text()
    # not the recording it follows (itself), or one whose seal is another
    assert the_problem(verify_recording(folder, key, previous=folder)).code is (
        Problem.FOLLOWS_MISMATCH
    )
    rec.save([*rec.entries()[:-1], {**seal, "hash": "0" * 64}])
    broken = verify_recording(folder, key, previous=rec.folder)
    assert the_problem(broken).code is Problem.FOLLOWS_MISMATCH
    assert broken.follows is not None and broken.follows["link"] == "broken"
