"""Checking `seal.tsr`, an RFC 3161 timestamp token over the Seal's line in the Chain exactly
as stored (no newline): its message imprint, its CMS signature and, given `--tsa-trust`, the
TSA certificate's path to a trusted root, judged offline at the token's own time (pyhanko).
A token over an earlier Seal that an addendum followed is accepted. The outcome is the
report's `TimestampReport`; what is wrong is a problem, what could not be checked a warning.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import cms, pem, tsp
from asn1crypto import x509 as asn1_x509

from tiaojie.archive.layout import CHAIN_FILE, SEAL_TIMESTAMP_FILE
from tiaojie.archive.verify.report import Finding, TimestampReport

T = TypeVar("T")


def check_timestamp(
    folder: Path,
    entries: list[dict[str, Any]],
    seal: int,
    tsa_trust: Sequence[asn1_x509.Certificate] | None,
    problems: list[Finding],
    warnings: list[Finding],
) -> TimestampReport | None:
    """The seal's timestamp token checked, or None when there is none or it cannot be read."""
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
