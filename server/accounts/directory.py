"""Organisations and accounts in the database: rows to objects and back.

Every function takes the connection of a transaction the caller holds
(server/db/database.py), so an account change and its audit entry commit together.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts.model import Account, Organisation, roles_of, sorted_roles
from tiaojie.server.db.schema import accounts, organisations

#: What an Account is made of (everything but the hash).
_ACCOUNT_COLUMNS = [c for c in accounts.c if c.name != "password_hash"]


def _organisation(row: Any) -> Organisation:
    return Organisation(row["id"], row["name"], row["short_name"], int(row["created_at"]))


def _account(row: Any) -> Account:
    return Account(
        id=row["id"],
        login=row["login"],
        name=row["name"],
        organisation_id=row["organisation_id"],
        roles=roles_of(row["roles"]),
        disabled=bool(row["disabled"]),
        created_at=int(row["created_at"]),
        password_changed_at=int(row["password_changed_at"]),
    )


# -- organisations ---------------------------------------------------------------------------
async def add_organisation(conn: AsyncConnection, organisation: Organisation) -> None:
    await conn.execute(insert(organisations).values(**organisation.public()))


async def organisation(conn: AsyncConnection, organisation_id: str) -> Organisation | None:
    query = select(organisations).where(organisations.c.id == organisation_id)
    row = (await conn.execute(query)).mappings().first()
    return _organisation(row) if row else None


async def all_organisations(conn: AsyncConnection) -> list[Organisation]:
    query = select(organisations).order_by(organisations.c.created_at, organisations.c.name)
    return [_organisation(row) for row in (await conn.execute(query)).mappings()]


async def change_organisation(
    conn: AsyncConnection, organisation_id: str, changes: dict[str, Any]
) -> None:
    await conn.execute(
        update(organisations).where(organisations.c.id == organisation_id).values(**changes)
    )


# -- accounts --------------------------------------------------------------------------------
async def add_account(conn: AsyncConnection, account: Account, password_hash: str) -> None:
    values = {**account.public(), "password_hash": password_hash}
    await conn.execute(insert(accounts).values(**values))


async def account(conn: AsyncConnection, account_id: str) -> Account | None:
    query = select(*_ACCOUNT_COLUMNS).where(accounts.c.id == account_id)
    row = (await conn.execute(query)).mappings().first()
    return _account(row) if row else None


async def accounts_by_id(conn: AsyncConnection, ids: set[str]) -> dict[str, Account]:
    if not ids:
        return {}
    query = select(*_ACCOUNT_COLUMNS).where(accounts.c.id.in_(sorted(ids)))
    return {row["id"]: _account(row) for row in (await conn.execute(query)).mappings()}


async def with_password(conn: AsyncConnection, login: str) -> tuple[Account, str] | None:
    """The account of a (normal) login and its password hash."""
    query = select(accounts).where(accounts.c.login == login)
    row = (await conn.execute(query)).mappings().first()
    return (_account(row), row["password_hash"]) if row else None


async def password_hash(conn: AsyncConnection, account_id: str) -> str | None:
    query = select(accounts.c.password_hash).where(accounts.c.id == account_id)
    value = (await conn.execute(query)).scalar_one_or_none()
    return str(value) if value is not None else None


async def login_taken(conn: AsyncConnection, login: str) -> bool:
    query = select(func.count()).select_from(accounts).where(accounts.c.login == login)
    return bool((await conn.execute(query)).scalar_one())


async def all_accounts(conn: AsyncConnection, organisation_id: str | None = None) -> list[Account]:
    query = select(*_ACCOUNT_COLUMNS).order_by(accounts.c.created_at, accounts.c.login)
    if organisation_id is not None:
        query = query.where(accounts.c.organisation_id == organisation_id)
    return [_account(row) for row in (await conn.execute(query)).mappings()]


async def count_accounts(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(accounts))).scalar_one())


async def change_account(conn: AsyncConnection, account_id: str, changes: dict[str, Any]) -> None:
    """Changed fields of an account (`roles` as a set of StaffRole)."""
    if "roles" in changes:
        changes = {**changes, "roles": sorted_roles(changes["roles"])}
    await conn.execute(update(accounts).where(accounts.c.id == account_id).values(**changes))
