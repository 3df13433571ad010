"""RFC 3161 timestamp tokens, checked offline: Tiaojie's one token verifier, used by the
recording verifier for a Seal's `seal.tsr` and by signing for the tokens its TSA clients get.

`parse_token` reads a TimeStampToken (DER or PEM; a whole TimeStampResp holding one is
accepted) into a `TimestampToken` (its TSTInfo: time, message imprint, nonce). `check_token`
checks it against the data it should cover and, given trust roots, the TSA certificate's
path to one of them, judged at the token's own time (archives outlive TSA certificates),
offline (no revocation fetching), with pyhanko; the outcome is a `TimestampCheck`, whatever
is wrong. `verify_timestamp` is the strict form: `TimestampError` unless the token covers
the data with a valid signature.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from asn1crypto import cms, pem, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

T = TypeVar("T")
#: Trust roots for a TSA certificate, as asn1crypto or cryptography certificates.
TrustRoots = Sequence[asn1_x509.Certificate | x509.Certificate]


class TimestampError(ValueError):
    """A timestamp token is malformed, does not cover its data, or its signature is bad."""


@dataclass(frozen=True)
class TimestampToken:
    """A parsed TimeStampToken: the CMS SignedData and the TSTInfo it signs."""

    signed_data: cms.SignedData
    info: tsp.TSTInfo

    @property
    def hash_algorithm(self) -> str:
        return str(self.info["message_imprint"]["hash_algorithm"]["algorithm"].native)

    @property
    def imprint(self) -> bytes:
        return bytes(self.info["message_imprint"]["hashed_message"].native)

    @property
    def time(self) -> datetime:
        """The TSA's genTime, in UTC."""
        return self.info["gen_time"].native.astimezone(UTC)

    @property
    def nonce(self) -> int | None:
        value = self.info["nonce"].native
        return int(value) if value is not None else None

    def covers(self, data: bytes) -> bool:
        """Whether the message imprint is the hash of `data`."""
        try:
            return hashlib.new(self.hash_algorithm, data).digest() == self.imprint
        except (ValueError, TypeError):  # a hash algorithm hashlib does not know
            return False


def parse_token(data: bytes) -> TimestampToken:
    """A TimeStampToken (CMS ContentInfo, DER or PEM), or a whole TimeStampResp holding one;
    TimestampError when it is neither."""
    try:
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
                raise TimestampError("the timestamp response holds no token")
        signed_data = token["content"]
        content = signed_data["encap_content_info"]
        if content["content_type"].native != "tst_info":
            raise TimestampError("the token does not hold a TSTInfo")
        info = content["content"].parsed
        if not isinstance(info, tsp.TSTInfo):
            raise TimestampError("the token does not hold a TSTInfo")
        info.native  # noqa: B018  (parses everything: asn1crypto is lazy)
    except (ValueError, TypeError, KeyError) as error:
        if isinstance(error, TimestampError):
            raise
        raise TimestampError(f"not an RFC 3161 token: {error}") from error
    return TimestampToken(signed_data, info)


@dataclass(frozen=True)
class TimestampCheck:
    """What a token says and how far it holds."""

    time: datetime  # the TSA's genTime (UTC)
    tsa_subject: str  # the TSA certificate's subject, human readable
    covers_data: bool  # the message imprint is the hash of the data
    signature_valid: bool  # the CMS signature over the TSTInfo verifies
    trusted: bool | None  # the TSA certificate chains to a trust root; None: none given
    trust_problem: str | None  # why it does not, as pyhanko says


def check_token(
    token: TimestampToken, data: bytes, trust_roots: TrustRoots | None = None
) -> TimestampCheck:
    """Check `token` against `data` and, given `trust_roots`, the TSA certificate's path to
    one of them at the token's time. TimestampError when the signature cannot be checked at
    all (no TSA certificate in the token, an unknown algorithm, ...)."""
    roots = [_asn1(cert) for cert in trust_roots or []]
    try:
        status = _validate(token, roots)
    except Exception as error:  # pyhanko raises many kinds on malformed tokens
        raise TimestampError(
            f"the timestamp token's signature cannot be checked: {error}"
        ) from error
    problem = status.get("trust_problem_indic")
    return TimestampCheck(
        time=token.time,
        tsa_subject=status["signing_cert"].subject.human_friendly,
        covers_data=token.covers(data),
        signature_valid=bool(status["valid"] and status["intact"]),
        trusted=problem is None if roots else None,
        trust_problem=str(problem) if problem is not None else None,
    )


def verify_timestamp(
    token: bytes, data: bytes, trust_roots: TrustRoots | None = None
) -> TimestampCheck:
    """A token (DER) checked strictly: TimestampError when it is malformed, covers other
    data or its signature does not verify. `trusted` says whether the TSA certificate
    chains to `trust_roots` (None when none are given)."""
    check = check_token(parse_token(token), data, trust_roots)
    if not check.covers_data:
        raise TimestampError("the timestamp is over other data")
    if not check.signature_valid:
        raise TimestampError("the timestamp token's signature does not verify")
    return check


def _asn1(cert: asn1_x509.Certificate | x509.Certificate) -> asn1_x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    return cert


def _validate(token: TimestampToken, roots: list[asn1_x509.Certificate]) -> dict[str, Any]:
    """pyhanko's RFC 3161 token validation (CMS signature, the TSA certificate's
    timeStamping purpose and path), at the token's own time, offline. The imprint is
    checked apart (`covers`), so `intact` speaks of the signature alone."""
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    context = ValidationContext(trust_roots=roots, moment=token.time, allow_fetching=False)

    async def validate() -> dict[str, Any]:
        return await validate_tst_signed_data(
            token.signed_data, context, lambda _algorithm: token.imprint
        )

    with _quiet("pyhanko", "pyhanko_certvalidator"):
        return _run_coroutine(validate)


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """pyhanko logs every failed path build at WARNING: the caller reports it instead."""
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
