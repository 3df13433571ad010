"""Failed logins and the lockout, in the database (so every node and a restart see them).

Failures are counted per login name (whether or not an account has it: a lockout then
says nothing about which logins exist) and per client address. `failures` failures of a
login within `window` seconds lock it for `lockout` seconds; `address_failures` from one
address lock that address. While locked, even the right password is refused (429 with
Retry-After). A successful login clears its login's count, never the address's (one
good account must not reset an attacker's count).

Rows are keyed by sha256("login:<login>") and sha256("address:<address>"): whatever was
typed into the login field (a password, by mistake) is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts.tokens import digest
from tiaojie.server.db.schema import login_attempts


@dataclass(frozen=True)
class LoginPolicy:
    #: Failures of one login name that lock it.
    failures: int = 5
    #: Failures from one address that lock it (0: no limit per address; behind a reverse
    #: proxy every login comes from the proxy's address).
    address_failures: int = 50
    #: Failures older than this (seconds) no longer count.
    window: int = 900
    #: How long a lock lasts (seconds).
    lockout: int = 900


def login_key(login: str) -> str:
    return digest(f"login:{login}")


def address_key(address: str) -> str:
    return digest(f"address:{address}")


async def locked_for(conn: AsyncConnection, keys: list[str], now: int) -> int:
    """Seconds until the last lock among `keys` ends (0: none is locked)."""
    query = select(login_attempts.c.locked_until).where(
        login_attempts.c.key.in_(keys), login_attempts.c.locked_until > now
    )
    ends = [int(v) for v in (await conn.execute(query)).scalars()]
    return max(ends) - now if ends else 0


async def record_failure(
    conn: AsyncConnection, key: str, limit: int, now: int, policy: LoginPolicy
) -> bool:
    """Count a failure of `key`; True when this failure locks it."""
    values = {"key": key, "failures": 0, "first_at": now, "locked_until": None}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(dialect.insert(login_attempts).values(**values).on_conflict_do_nothing())
    query = select(login_attempts).where(login_attempts.c.key == key).with_for_update()
    row = (await conn.execute(query)).mappings().one()
    failures, first_at = int(row["failures"]), int(row["first_at"])
    lock_over = row["locked_until"] is not None and row["locked_until"] <= now
    if first_at <= now - policy.window or lock_over:
        failures, first_at = 0, now
    failures += 1
    locks = limit > 0 and failures >= limit
    await conn.execute(
        update(login_attempts)
        .where(login_attempts.c.key == key)
        .values(
            failures=0 if locks else failures,
            first_at=now if locks else first_at,
            locked_until=now + policy.lockout if locks else None,
        )
    )
    return locks


async def clear(conn: AsyncConnection, key: str) -> None:
    await conn.execute(delete(login_attempts).where(login_attempts.c.key == key))
