"""Browser sessions and API keys: random secrets handed out once, kept as sha256.

A session is the cookie `tiaojie_session` (256 random bits); its row is keyed by the
token's sha256 and holds the session's CSRF token, its absolute expiry and when it was
last used (idle expiry). An API key is `tjk1.<id>.<secret>`: the id finds the row, the
secret's sha256 is compared in constant time. A plain hash is enough for both: they are
random (256 bits), not chosen by people; what matters is that a copy of the database
opens no session and runs no script.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts.model import ApiKey
from tiaojie.server.db.schema import api_keys, staff_sessions
from tiaojie.server.model import new_id

COOKIE = "tiaojie_session"
KEY_PREFIX = "tjk1"
_KEY = re.compile(KEY_PREFIX + r"\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")
_SESSION_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class SessionPolicy:
    #: A session unused this long is over (seconds).
    idle: int = 2 * 3600
    #: A session is over this long after login, used or not.
    absolute: int = 12 * 3600
    #: `last_seen_at` is written at most this often (one write per minute, not per call).
    touch: int = 60


@dataclass(frozen=True)
class StaffSession:
    id: str
    account_id: str
    csrf_token: str
    created_at: int
    last_seen_at: int
    expires_at: int

    def ends_at(self, policy: SessionPolicy) -> int:
        """When it ends unless used again."""
        return min(self.expires_at, self.last_seen_at + policy.idle)


def _session(row: Any) -> StaffSession:
    return StaffSession(
        row["id"],
        row["account_id"],
        row["csrf_token"],
        int(row["created_at"]),
        int(row["last_seen_at"]),
        int(row["expires_at"]),
    )


# -- sessions ----------------------------------------------------------------------------------
async def open_session(
    conn: AsyncConnection, account_id: str, address: str, now: int, policy: SessionPolicy
) -> tuple[str, StaffSession]:
    """A new session: the cookie's token (given out once) and the session."""
    token = secrets.token_urlsafe(32)
    session = StaffSession(
        id=digest(token),
        account_id=account_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.absolute,
    )
    await conn.execute(insert(staff_sessions).values(**session.__dict__, address=address[:64]))
    return token, session


async def find_session(
    conn: AsyncConnection, token: str, now: int, policy: SessionPolicy
) -> StaffSession | None:
    """The live session of a cookie's token (None: unknown, idle too long or expired)."""
    if not _SESSION_TOKEN.fullmatch(token):
        return None
    query = select(staff_sessions).where(staff_sessions.c.id == digest(token))
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    session = _session(row)
    return session if now < session.ends_at(policy) else None


async def touch_session(conn: AsyncConnection, session_id: str, now: int) -> None:
    await conn.execute(
        update(staff_sessions).where(staff_sessions.c.id == session_id).values(last_seen_at=now)
    )


async def close_session(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(delete(staff_sessions).where(staff_sessions.c.id == session_id))


async def close_sessions(conn: AsyncConnection, account_id: str, keep: str | None = None) -> int:
    """Every session of an account (logout everywhere) but `keep`; how many there were."""
    query = delete(staff_sessions).where(staff_sessions.c.account_id == account_id)
    if keep is not None:
        query = query.where(staff_sessions.c.id != keep)
    done = await conn.execute(query)
    return int(done.rowcount or 0)


async def purge_sessions(conn: AsyncConnection, now: int, policy: SessionPolicy) -> None:
    """Forget the sessions that are over."""
    await conn.execute(
        delete(staff_sessions).where(
            or_(
                staff_sessions.c.expires_at <= now,
                staff_sessions.c.last_seen_at <= now - policy.idle,
            )
        )
    )


# -- API keys ----------------------------------------------------------------------------------
def _key(row: Any) -> ApiKey:
    return ApiKey(
        row["id"],
        row["account_id"],
        row["label"],
        int(row["created_at"]),
        row["last_used_at"],
        row["revoked_at"],
    )


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX + ".")


async def make_key(
    conn: AsyncConnection, account_id: str, label: str, now: int
) -> tuple[ApiKey, str]:
    """A new API key and its text (given out once: only the secret's hash is kept)."""
    key_id = new_id()
    secret = secrets.token_urlsafe(32)
    key = ApiKey(key_id, account_id, label, now, None, None)
    await conn.execute(insert(api_keys).values(**key.public(), secret_hash=digest(secret)))
    return key, f"{KEY_PREFIX}.{key_id}.{secret}"


async def find_key(conn: AsyncConnection, text: str) -> ApiKey | None:
    """The key `text` is, if genuine and not revoked."""
    match = _KEY.fullmatch(text)
    if match is None:
        return None
    query = select(api_keys).where(api_keys.c.id == match[1])
    row = (await conn.execute(query)).mappings().first()
    if row is None or row["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(row["secret_hash"], digest(match[2])):
        return None
    return _key(row)


async def key(conn: AsyncConnection, key_id: str) -> ApiKey | None:
    row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).mappings().first()
    return _key(row) if row else None


async def keys_of(conn: AsyncConnection, account_id: str) -> list[ApiKey]:
    query = (
        select(api_keys)
        .where(api_keys.c.account_id == account_id)
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    return [_key(row) for row in (await conn.execute(query)).mappings()]


async def mark_key_used(conn: AsyncConnection, key_id: str, now: int) -> None:
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))


async def revoke_key(conn: AsyncConnection, key_id: str, now: int) -> None:
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
