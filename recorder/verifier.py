"""The offline Recording verifier's former home: it now lives in the package recorder.verify
(one small module per check), and this module only re-exports the names it used to define,
so that `from recorder.verifier import ...` keeps working."""

from recorder.verify import (
    Cut,
    Finding,
    GapReport,
    Report,
    SegmentReport,
    TimestampReport,
    VerifyError,
    cut_segment,
    load_certificates,
    load_public_key,
    render_text,
    verify_recording,
)
from recorder.verify.boxes import READ_SIZE
from recorder.verify.layout import PUBLIC_KEY_FILE, SEAL_TIMESTAMP_FILE, SEGMENTS_DIR, SUMMARY_FILE
from recorder.verify.segments_check import MAX_ALTERED_PER_SEGMENT

__all__ = [
    "MAX_ALTERED_PER_SEGMENT",
    "PUBLIC_KEY_FILE",
    "READ_SIZE",
    "SEAL_TIMESTAMP_FILE",
    "SEGMENTS_DIR",
    "SUMMARY_FILE",
    "Cut",
    "Finding",
    "GapReport",
    "Report",
    "SegmentReport",
    "TimestampReport",
    "VerifyError",
    "cut_segment",
    "load_certificates",
    "load_public_key",
    "render_text",
    "verify_recording",
]
