"""Passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommended
setting: 64 MiB, 3 passes, 4 lanes; about 0.1 s of CPU).

Hashing runs in a thread, at most `CONCURRENT` at a time, so logins neither stall the
event loop nor take more than CONCURRENT x 64 MiB however many arrive at once. A login
with no account behind it is checked against a dummy hash, so it takes as long as a
wrong password. Passwords are never stored, logged or returned; only their hash is kept.
"""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: Hashes computed at once (each takes 64 MiB).
CONCURRENT = 2
MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher()


@functools.cache
def _dummy() -> str:
    return _hasher.hash("no account has this password")


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class Passwords:
    """Hashing and checking, off the event loop, `CONCURRENT` at a time (one per loop:
    make it in the loop that uses it)."""

    def __init__(self, concurrent: int = CONCURRENT) -> None:
        self._turns = asyncio.Semaphore(concurrent)

    async def hash(self, password: str) -> str:
        async with self._turns:
            return await asyncio.to_thread(_hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored` (None: no account; as slow, always False)."""
        async with self._turns:
            return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    """The hash was made with other parameters than today's: rehash on the next login."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True
