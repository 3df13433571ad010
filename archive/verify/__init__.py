"""The offline Recording verifier (`tiaojie verify RECORDING`), independent of the recorder.

What it checks, in order (docs/ARCHIVE.md, "Verifying"):

1. the Chain (`chain.jsonl`): every entry's shape, sequence number, link and hash, and
   every Checkpoint, Gap and Seal signature against the trusted Ed25519 key (`--trust`,
   else the folder's own `recorder.pub.pem`, which proves nothing about who wrote it);
2. every Segment file, split again at its own top-level MP4 boxes exactly as the recorder
   cut it (init segment = everything before the first `moof`; then each Fragment = up to and
   including the `mdat` that follows a `moof`), each part hashed and compared, in order,
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

Modules:
- `recording`: `locate` and `verify_recording`, which chooses the key and runs the checks;
- `trust`: the trusted recorder key and TSA root certificates (`--trust`, `--tsa-trust`);
- `boxes`: splitting a Segment MP4 into its init segment and Fragments (`SegmentPart`s),
  hashing them (1, 2);
- `chain_check`: the Chain's entries, links, signatures, seals and addenda (1), and the
  `ChainView` of it (each Segment's `ChainedPart`s) that the Segment checks use;
- `segments_check`: each Segment's bytes against the Chain, extra or missing Segments,
  bytes lost in a Gap (2, 3, 4);
- `timestamp_check`: `seal.tsr` (5), with tiaojie.archive.timestamp;
- `summary_check`: `recording.json` (6);
- `report`: `RecordingReport` and its parts, the JSON and text renderings (the verdict,
  findings and coded problems are tiaojie.archive.report's, shared with the agreement
  verifier);
- `cli`: `tiaojie verify RECORDING`.
"""

from tiaojie.archive.report import CannotVerify
from tiaojie.archive.verify.boxes import SegmentPart, split_segment
from tiaojie.archive.verify.recording import verify_recording
from tiaojie.archive.verify.report import (
    GapReport,
    RecordingReport,
    SegmentReport,
    TimestampReport,
    render_text,
)
from tiaojie.archive.verify.trust import load_certificates, load_public_key

__all__ = [
    "CannotVerify",
    "GapReport",
    "RecordingReport",
    "SegmentPart",
    "SegmentReport",
    "TimestampReport",
    "load_certificates",
    "load_public_key",
    "render_text",
    "split_segment",
    "verify_recording",
]
