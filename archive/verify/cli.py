"""`tiaojie verify RECORDING`: the command-line face of tiaojie.archive.verify.

Exit codes: 0 authentic, 1 not authentic, 2 could not run (message on stderr; with
`--json`, stdout also gets `{"authentic": false, "error": ...}` so a machine always reads
JSON).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tiaojie.archive.verify import VerifyError, load_certificates, load_public_key, verify_recording


def verify_recording_cli(
    path: Path, trust: Path | None, tsa_trust: Path | None, as_json: bool
) -> int:
    """Verify a Recording folder or one of its Segment MP4s and print the report."""
    try:
        key = load_public_key(trust) if trust is not None else None
        roots = load_certificates(tsa_trust) if tsa_trust is not None else None
        report = verify_recording(
            path, key, roots, trusted_source=f"--trust {trust}" if trust else "--trust"
        )
    except VerifyError as error:
        print(f"tiaojie verify: {error}", file=sys.stderr)
        if as_json:
            print(json.dumps({"authentic": False, "error": str(error)}, ensure_ascii=False))
        return 2
    sys.stdout.write(report.to_json() + "\n" if as_json else report.to_text())
    return 0 if report.authentic else 1
