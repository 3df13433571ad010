"""Checking `seal.tsr`, an RFC 3161 timestamp token over the Seal's line in the Chain exactly
as stored (no newline), with the archive's token verifier (tiaojie.archive.timestamp): its
message imprint, its CMS signature and, given `--tsa-trust`, the TSA certificate's path to a
trusted root at the token's own time. A token over an earlier Seal that an addendum followed
is accepted. The outcome is the report's `TimestampReport`; what is wrong is a problem, what
could not be checked a warning.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509

from tiaojie.archive.layout import CHAIN_FILE, SEAL_TIMESTAMP_FILE
from tiaojie.archive.report import Findings, Problem
from tiaojie.archive.timestamp import TimestampError, check_token, parse_token
from tiaojie.archive.verify.report import TimestampReport

#: How far before the Seal's own time the TSA's time may be before it is worth a warning.
CLOCK_AHEAD = 300


def check_timestamp(
    folder: Path,
    entries: list[dict[str, Any]],
    seal: int,
    tsa_trust: Sequence[asn1_x509.Certificate] | None,
    found: Findings,
) -> TimestampReport | None:
    """The Seal's timestamp token checked, or None when there is none or it cannot be read."""
    path = folder / SEAL_TIMESTAMP_FILE
    if not path.exists():
        if tsa_trust:
            found.warning(
                Problem.TIMESTAMP_MISSING, f"no {SEAL_TIMESTAMP_FILE}: the seal has no timestamp"
            )
        return None
    if seal < 0:
        found.problem(
            Problem.TIMESTAMP_WITHOUT_SEAL,
            f"{SEAL_TIMESTAMP_FILE} is present but the chain has no seal",
        )
        return None
    try:
        token = parse_token(path.read_bytes())
    except (OSError, TimestampError) as error:
        reason = str(error).removeprefix("not an RFC 3161 token: ")
        found.problem(
            Problem.TIMESTAMP_UNREADABLE,
            f"{SEAL_TIMESTAMP_FILE} is not an RFC 3161 token: {reason}",
        )
        return None
    # the token is over the last Seal, or over an earlier one that an addendum followed
    lines = _seal_lines(folder / CHAIN_FILE)
    seals = [i for i in range(seal + 1) if entries[i].get("type") == "seal"]
    covered = next(
        (i for i in reversed(seals) if token.covers(lines.get(entries[i]["seq"], b""))), None
    )
    seal = covered if covered is not None else seal
    seal_line = lines.get(entries[seal]["seq"], b"")
    report = TimestampReport(
        time=token.time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        tsa=None,
        imprint_matches=covered is not None,
        signature_valid=False,
        trusted=None,
    )
    if not report.imprint_matches:
        found.problem(
            Problem.TIMESTAMP_OTHER_DATA,
            f"{SEAL_TIMESTAMP_FILE} does not timestamp this seal: its message imprint "
            f"({token.hash_algorithm}) is not the hash of the seal's line in {CHAIN_FILE}",
            seq=entries[seal]["seq"],
        )
    try:
        check = check_token(token, seal_line, tsa_trust)
    except TimestampError as error:
        found.problem(Problem.TIMESTAMP_UNREADABLE, str(error))
        return report
    report.tsa = check.tsa_subject
    report.signature_valid = check.signature_valid
    report.trusted = check.trusted
    if not check.signature_valid:
        found.problem(
            Problem.TIMESTAMP_SIGNATURE_INVALID,
            "the timestamp token's CMS signature is not valid (altered)",
        )
    if check.trusted is False:
        found.problem(
            Problem.TIMESTAMP_UNTRUSTED,
            "the TSA certificate does not chain to the --tsa-trust certificate(s) "
            f"at the timestamp's time ({check.trust_problem})",
        )
    elif check.trusted is None:
        found.warning(
            Problem.TIMESTAMP_TRUST_UNCHECKED, "TSA certificate not checked against a trusted root"
        )
    seal_time = entries[seal].get("time")
    if isinstance(seal_time, int | float) and token.time.timestamp() < seal_time - CLOCK_AHEAD:
        found.warning(
            Problem.TIMESTAMP_BEFORE_SEAL,
            "the TSA time is more than 5 minutes before the seal's own time "
            "(the recorder's clock was ahead)",
        )
    return report


def _seal_lines(chain: Path) -> dict[int, bytes]:
    """Each Seal's line in the Chain exactly as stored, without its newline (what the TSA
    timestamped), by the Seal's seq."""
    lines: dict[int, bytes] = {}
    for line in chain.read_bytes().split(b"\n")[:-1]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("type") == "seal":
            seq = entry.get("seq")
            if isinstance(seq, int):
                lines[seq] = line
    return lines
