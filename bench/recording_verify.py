"""Recording verifier throughput against `sha256sum` over the same Segment files.

    .venv/bin/python bench/recording_verify.py [--mb 300] [--segments 4] [--keep DIR]

Writes a Recording of real fMP4 Segments the way the recorder does (SegmentWriter, every
init segment and ~1 s Fragment chained as written, a Checkpoint every ~5 s of media, a
Seal): test media (640x480 H264 ~750 kbit/s + Opus, ~95 kB Fragments) looped to --mb
megabytes over --segments files. Then, page cache warm for both, best of --runs:

* `sha256sum` over the segment files (one process, one core: what an archivist would
  run by hand), in MB/s;
* `verify_recording` (Chain, signatures, box parsing, a hash per Fragment, Segment files
  in parallel threads), in MB/s, and with one thread;
* the ratio verifier / sha256sum (goal >= 0.8).

`measure(folder)` does the timing alone, for bench/recording.py.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECORDING = "rec_BENCHBENCHBENCHBENCHBENCH23"


def _packets(seconds: float) -> tuple[list[tuple[str, object]], float]:
    """Test media as a subscription delivers it: (kind, (seconds, data, keyframe)), duration."""
    from tests.support.testmedia import make_test_mp4, subscription_packets

    src = make_test_mp4(Path(tempfile.mkdtemp()) / "bench.mp4", seconds=seconds)
    out = [
        (kind, (float(p.pts * p.time_base), bytes(p), bool(p.is_keyframe)))
        for kind, p in subscription_packets(src)
    ]
    shutil.rmtree(src.parent, ignore_errors=True)
    return out, seconds


def write_recording(folder: Path, megabytes: float, segments: int) -> Path:
    """A sealed Recording of about `megabytes` MB over `segments` Segment files."""
    import av
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tiaojie.archive.chain import ChainWriter
    from tiaojie.recorder.segment import SegmentWriter

    packets, duration = _packets(20.0)
    key = Ed25519PrivateKey.generate()
    folder = folder / RECORDING
    (folder / "segments").mkdir(parents=True)
    (folder / "recorder.pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    chain = ChainWriter(folder, RECORDING, key)
    chain.append("event", event={"kind": "recording_started"})
    names = [f"segments/{i + 1:04d}-p_bench{i}-camera.mp4" for i in range(segments)]
    chunks = 0

    def on_chunk(name: str, kind: str, offset: int, data: bytes) -> None:
        nonlocal chunks
        chain.add_bytes(kind, name, offset, data)
        chunks += 1
        if chunks % (5 * segments) == 0:  # ~every 5 s of media, as the recorder does
            chain.append("checkpoint")

    writers = [SegmentWriter(folder / n, lambda k, o, d, n=n: on_chunk(n, k, o, d)) for n in names]
    target = megabytes * 1e6
    rep = 0
    while sum((folder / n).stat().st_size for n in names) < target:
        for kind, (t, data, keyframe) in packets:
            clock = 90000 if kind == "video" else 48000
            for writer in writers:
                packet = av.Packet(data)
                packet.pts = packet.dts = int((t + rep * duration) * clock)
                packet.time_base = Fraction(1, clock)
                packet.is_keyframe = keyframe
                writer.write(kind, packet)
        rep += 1
    for writer in writers:
        writer.close()
    chain.append("event", event={"kind": "recording_stopped"})
    chain.append("seal")
    chain.close()
    return folder


def _best(runs: int, action) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def measure(folder: Path, runs: int = 3) -> dict[str, float]:
    """Throughput of `sha256sum` and of the verifier over a Recording's Segment files,
    page cache warm (both read the same files first), best of `runs`."""
    from tiaojie.archive.verify import verify_recording

    files = sorted(str(p) for p in (folder / "segments").glob("*.mp4"))
    total = sum(Path(f).stat().st_size for f in files)

    def sha256sum() -> None:
        subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)

    def verifier(workers: int | None = None):
        def run() -> None:
            report = verify_recording(folder, workers=workers)
            if not report.authentic:  # a bench of a failing verifier would mean nothing
                raise SystemExit(report.to_text())

        return run

    sha256sum()
    verifier()()
    sha_s = _best(runs, sha256sum)
    ver_s = _best(runs, verifier())
    one_s = _best(runs, verifier(1))
    return {
        "megabytes": total / 1e6,
        "files": len(files),
        "sha256sum_mb_s": total / 1e6 / sha_s,
        "verifier_mb_s": total / 1e6 / ver_s,
        "verifier_1_thread_mb_s": total / 1e6 / one_s,
        "ratio": sha_s / ver_s,
        "ratio_1_thread": sha_s / one_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=300, help="size of the recording (MB)")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write (or reuse) the recording here")
    args = parser.parse_args()

    base = args.keep or Path(tempfile.mkdtemp(prefix="tiaojie-verify-bench-"))
    folder = base / RECORDING
    try:
        if not (folder / "chain.jsonl").exists():
            start = time.perf_counter()
            write_recording(base, args.mb, args.segments)
            print(f"wrote {folder} in {time.perf_counter() - start:.1f} s")
        r = measure(folder, args.runs)
        print(
            f"{r['megabytes']:.0f} MB in {r['files']:.0f} segment files, page cache warm, "
            f"best of {args.runs}:"
        )
        print(f"  sha256sum:              {r['sha256sum_mb_s']:7.0f} MB/s")
        print(
            f"  tiaojie verify:         {r['verifier_mb_s']:7.0f} MB/s  "
            f"ratio {r['ratio']:.2f}x sha256sum (goal >= 0.8x)"
        )
        print(
            f"  tiaojie verify, 1 thread: {r['verifier_1_thread_mb_s']:5.0f} MB/s  "
            f"ratio {r['ratio_1_thread']:.2f}x"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
