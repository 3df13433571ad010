"""The outbox's rows: queued in the caller's transaction (idempotent by `key`), claimed by
a worker, finished as sent, retried, failed or cancelled, and read for a case.

Claiming is safe with several workers and several nodes: PostgreSQL locks the due rows
it picks `FOR UPDATE SKIP LOCKED` (two workers never wait for, nor pick, the same row);
SQLite has one writer at a time (`BEGIN IMMEDIATE`), so its select-then-update is atomic.
The update also checks the row is still claimable, and a claim is a lease: a row left
`sending` by a worker that died is due again when `lease_until` has passed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.model import new_id
from tiaojie.server.notifications.tables import notifications

QUEUED, SENDING, SENT, FAILED, CANCELLED = "queued", "sending", "sent", "failed", "cancelled"
#: The reason of a message to someone of whom no phone number nor e-mail address is known.
NO_ADDRESS = "no_address: 没有可用的手机号或邮箱"


@dataclass(frozen=True)
class Message:
    """A message to queue: `key` names the event and the recipient (its idempotency)."""

    key: str
    case_id: str
    kind: str
    recipient: dict[str, Any]
    address: str | None
    variables: dict[str, Any]
    not_before: int


def address_kind(address: str | None) -> str | None:
    if not address:
        return None
    return "email" if "@" in address else "phone"


async def queue(conn: AsyncConnection, messages: list[Message], now: int) -> int:
    """Write `messages` in `conn`'s transaction; one already queued under its key is left
    as it is. Returns how many were new."""
    added = 0
    for n, m in enumerate(messages):
        row = {
            "id": new_id(),
            "key": m.key[:200],
            "case_id": m.case_id,
            "kind": m.kind,
            "recipient": m.recipient,
            "address_kind": address_kind(m.address),
            "address": m.address or None,
            "variables": m.variables,
            "channel": None,
            "status": QUEUED if m.address else FAILED,
            "attempts": 0,
            "not_before": m.not_before,
            "lease_until": None,
            "last_error": None if m.address else NO_ADDRESS,
            "created_at": now,
            "updated_at": now,
            "sent_at": None,
            "created_ns": time.time_ns() + n,
        }
        dialect = conn.dialect.name
        if dialect == "postgresql":
            stmt: Any = pg_insert(notifications).values(**row).on_conflict_do_nothing()
        elif dialect == "sqlite":
            stmt = sqlite_insert(notifications).values(**row).on_conflict_do_nothing()
        else:  # pragma: no cover - the two databases we run on
            stmt = insert(notifications).values(**row)
        done = await conn.execute(stmt)
        added += done.rowcount or 0
    return added


def _due(now: int) -> Any:
    return or_(
        and_(notifications.c.status == QUEUED, notifications.c.not_before <= now),
        and_(notifications.c.status == SENDING, notifications.c.lease_until <= now),
    )


async def claim(conn: AsyncConnection, now: int, lease: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` due rows, now `sending` under a lease until `now + lease`, their
    attempts counted (a row's `attempts` is the try being made)."""
    query = (
        select(notifications.c.id)
        .where(_due(now))
        .order_by(notifications.c.not_before, notifications.c.created_ns)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list((await conn.execute(query)).scalars())
    if not ids:
        return []
    await conn.execute(
        update(notifications)
        .where(notifications.c.id.in_(ids), _due(now))
        .values(
            status=SENDING,
            lease_until=now + lease,
            attempts=notifications.c.attempts + 1,
            updated_at=now,
        )
    )
    rows = await conn.execute(select(notifications).where(notifications.c.id.in_(ids)))
    return [dict(r) for r in rows.mappings()]


async def finish(
    conn: AsyncConnection,
    row_id: str,
    attempts: int,
    status: str,
    now: int,
    *,
    channel: str | None = None,
    error: str | None = None,
    next_at: int | None = None,
) -> bool:
    """The outcome of try number `attempts` (ignored if the row was claimed again since:
    its lease ran out and another worker took it)."""
    values: dict[str, Any] = {
        "status": status,
        "updated_at": now,
        "lease_until": None,
        "last_error": error,
        "channel": channel,
    }
    if status == SENT:
        values["sent_at"] = now
    if next_at is not None:
        values["not_before"] = next_at
    done = await conn.execute(
        update(notifications)
        .where(
            notifications.c.id == row_id,
            notifications.c.status == SENDING,
            notifications.c.attempts == attempts,
        )
        .values(**values)
    )
    return bool(done.rowcount)


async def of_case(conn: AsyncConnection, case_id: str) -> list[dict[str, Any]]:
    query = (
        select(notifications)
        .where(notifications.c.case_id == case_id)
        .order_by(notifications.c.created_ns)
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]


def masked(address: str | None) -> str | None:
    """An address as the case page shows it: enough to tell which, not to copy."""
    if not address:
        return None
    if "@" in address:
        user, _, domain = address.partition("@")
        return f"{user[:1]}***@{domain}"
    return f"{address[:3]}****{address[-4:]}" if len(address) >= 8 else "****"


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A row as GET /api/notifications answers it (the address masked, no text)."""
    recipient = row["recipient"] or {}
    return {
        "id": row["id"],
        "kind": row["kind"],
        "status": row["status"],
        "channel": row["channel"] if row["status"] != SENDING else None,
        "recipient": {
            "role": recipient.get("role"),
            "side": recipient.get("side"),
            "address_kind": row["address_kind"],
            "address": masked(row["address"]),
        },
        "attempts": row["attempts"],
        "not_before": row["not_before"],
        "last_error": row["last_error"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "sent_at": row["sent_at"],
    }
