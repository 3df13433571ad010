"""Availability rows: reading a provider's rules, adding and removing them, and who may.

A provider is an expert of the pool (`expert`, managed by coordinators and the admin:
experts have no accounts) or a staff account with the mediator role (`mediator`, who
manages their own; coordinators and the admin may manage anyone's).
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts import directory
from tiaojie.server.bookings.slots import Rule
from tiaojie.server.bookings.tables import availability
from tiaojie.server.cases.actor import CaseActor, StaffRole
from tiaojie.server.cases.tables import experts
from tiaojie.server.errors import TiaojieError, bad_request, forbidden
from tiaojie.server.model import new_id

PROVIDER_KINDS = ("expert", "mediator")
RULE_KINDS = ("weekly", "off", "extra")


def check_manage(actor: CaseActor, provider_kind: str, provider_id: str) -> None:
    """A mediator manages their own availability; coordinators and the admin anyone's."""
    if actor.has(StaffRole.ADMIN) or actor.has(StaffRole.COORDINATOR):
        return
    if provider_kind == "mediator" and actor.has(StaffRole.MEDIATOR) and actor.id == provider_id:
        return
    raise forbidden("You may change only your own availability (coordinators: anyone's).")


async def provider_name(conn: AsyncConnection, provider_kind: str, provider_id: str) -> str:
    """The provider's name; 404 when there is no such expert or mediator."""
    if provider_kind == "expert":
        query = select(experts.c.name).where(experts.c.id == provider_id)
        name = (await conn.execute(query)).scalar_one_or_none()
        if name is not None:
            return str(name)
    else:
        account = await directory.account(conn, provider_id)
        if account is not None and account.has(StaffRole.MEDIATOR) and not account.disabled:
            return account.name
    raise TiaojieError("provider_not_found", f"There is no such {provider_kind}.", 404)


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def rule_of(row: Any) -> Rule:
    return Rule(
        kind=row["kind"],
        start_min=row["start_min"],
        end_min=row["end_min"],
        slot_min=row["slot_min"],
        weekday=row["weekday"],
        day=date.fromisoformat(row["date"]) if row["date"] else None,
    )


def public(row: Any) -> dict[str, Any]:
    return {
        "availability_id": row["id"],
        "provider_kind": row["provider_kind"],
        "provider_id": row["provider_id"],
        "kind": row["kind"],
        "weekday": row["weekday"],
        "date": row["date"],
        "start": _hhmm(row["start_min"]),
        "end": _hhmm(row["end_min"]),
        "slot_minutes": row["slot_min"],
    }


async def rows_of(conn: AsyncConnection, provider_kind: str, provider_id: str) -> list[Any]:
    query = select(availability).where(
        availability.c.provider_kind == provider_kind,
        availability.c.provider_id == provider_id,
    )
    return list((await conn.execute(query.order_by(availability.c.created_ns))).mappings())


def new_row(body: dict[str, Any], provider_kind: str, provider_id: str) -> dict[str, Any]:
    """A row from a checked body (400 for what the schema cannot say)."""
    kind = body["kind"]
    start, end = _minutes(body.get("start", "00:00")), _minutes(body.get("end", "24:00"))
    slot = int(body.get("slot_minutes", 30))
    if kind == "weekly" and body.get("weekday") is None:
        raise bad_request("A weekly slot names its weekday (0 = Monday … 6 = Sunday).")
    if kind in ("off", "extra"):
        if not body.get("date"):
            raise bad_request(f"An {kind} entry names its date (YYYY-MM-DD).")
        try:
            date.fromisoformat(body["date"])
        except ValueError:
            raise bad_request("date must be a real date, YYYY-MM-DD.") from None
    if kind != "off" and not (start < end and start + slot <= end):
        raise bad_request("start must be before end, with room for one slot at least.")
    return {
        "id": new_id(),
        "provider_kind": provider_kind,
        "provider_id": provider_id,
        "kind": kind,
        "weekday": body.get("weekday") if kind == "weekly" else None,
        "date": body.get("date") if kind != "weekly" else None,
        "start_min": start if kind != "off" else 0,
        "end_min": end if kind != "off" else 1440,
        "slot_min": slot,
        "created_at": int(time.time()),
        "created_ns": time.time_ns(),
    }


async def add(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(availability).values(**row))


async def remove(conn: AsyncConnection, availability_id: str) -> Any:
    """The row removed, or None."""
    query = select(availability).where(availability.c.id == availability_id)
    row = (await conn.execute(query)).mappings().first()
    if row is not None:
        await conn.execute(delete(availability).where(availability.c.id == availability_id))
    return row


async def get(conn: AsyncConnection, availability_id: str) -> Any:
    query = select(availability).where(availability.c.id == availability_id)
    return (await conn.execute(query)).mappings().first()
