"""Staff on cases: the `CaseActors` the application uses (the caller of server/http_auth.py
as a CaseActor), and the organisations and mediator accounts a case may be given to.

A request's caller is the admin token (the ADMIN actor), or a staff account by its
session cookie or one of its API keys (server/accounts/middleware.py found it): the
account's organisation and roles. Invite and archivist tokens are not staff (403).

Case organisations are the accounts' organisations: a case is registered in, dispatched
and transferred to an organisation that exists, and given to a mediator who is an
enabled account with the mediator role (in the organisation named with it). The one
exception is `org-default` (server/cases/settings.py), where public reports go on a
server that has no organisation yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts import directory
from tiaojie.server.accounts.middleware import staff_of
from tiaojie.server.accounts.model import Account, Organisation, StaffRole
from tiaojie.server.cases.actor import ADMIN, CaseActor, of_account
from tiaojie.server.cases.settings import DEFAULT_ORGANISATION
from tiaojie.server.db.schema import organisations
from tiaojie.server.errors import bad_request, forbidden
from tiaojie.server.http_auth import CallerKind, HttpAuth


class AccountActors:
    """Admin token, staff session or API key -> CaseActor (docs/CASES.md)."""

    def __init__(self, auth: HttpAuth) -> None:
        self._auth = auth

    def staff(self, request: web.Request) -> CaseActor:
        caller = self._auth.caller(request)
        if caller.account is not None:
            return of_account(caller.account)
        if caller.kind is CallerKind.ADMIN:
            return ADMIN
        raise forbidden("Only staff (an account, or the admin token) may do this.")

    def has_credentials(self, request: web.Request) -> bool:
        """Whether the request names someone (a token, a session): then it is staff intake."""
        return "Authorization" in request.headers or staff_of(request) is not None


@dataclass(frozen=True)
class Target:
    """Where a case goes: an organisation, and maybe one of its mediators."""

    organisation_id: str | None
    mediator_id: str | None


def organisation_unknown(organisation_id: str) -> Exception:
    return bad_request(f"organisation_id {organisation_id!r} names no organisation.")


async def check_organisation(conn: AsyncConnection, organisation_id: str) -> Organisation | None:
    """The organisation (None for the placeholder `org-default`); 400 if there is none."""
    if organisation_id == DEFAULT_ORGANISATION:
        return None
    found = await directory.organisation(conn, organisation_id)
    if found is None:
        raise organisation_unknown(organisation_id)
    return found


async def mediator_account(conn: AsyncConnection, mediator_id: str) -> Account:
    """An enabled account with the mediator role; 400 otherwise."""
    account = await directory.account(conn, mediator_id)
    if account is None or account.disabled or not account.has(StaffRole.MEDIATOR):
        raise bad_request(f"mediator_id {mediator_id!r} names no enabled mediator account.")
    return account


async def check_target(conn: AsyncConnection, params: dict[str, Any]) -> dict[str, Any]:
    """`params` of a dispatch, transfer or take with what they name checked: a mediator
    alone goes with their own organisation; a mediator and an organisation must agree."""
    organisation_id, mediator_id = params.get("organisation_id"), params.get("mediator_id")
    if organisation_id:
        await check_organisation(conn, organisation_id)
    if mediator_id:
        mediator = await mediator_account(conn, mediator_id)
        if organisation_id and organisation_id != mediator.organisation_id:
            raise bad_request("The mediator is not in the organisation named with them.")
        if not organisation_id:
            params = {**params, "organisation_id": mediator.organisation_id}
    return params


async def first_organisation(conn: AsyncConnection) -> str:
    """Where public reports go unless configured: the first organisation made."""
    found = await directory.all_organisations(conn)
    return found[0].id if found else DEFAULT_ORGANISATION


async def staff_directory(conn: AsyncConnection) -> dict[str, Any]:
    """The organisations and enabled mediators a case may be given to (names for the
    coordinator's queue and the mediator's inbox)."""
    organisations = await directory.all_organisations(conn)
    mediators = [
        a
        for a in await directory.all_accounts(conn)
        if a.has(StaffRole.MEDIATOR) and not a.disabled
    ]
    return {
        "organisations": [
            {"id": o.id, "name": o.name, "short_name": o.short_name} for o in organisations
        ],
        "mediators": [
            {"id": a.id, "name": a.name, "organisation_id": a.organisation_id} for a in mediators
        ],
    }


async def names(conn: AsyncConnection, ids: set[str]) -> dict[str, str]:
    """Display names of the organisations and accounts among `ids` (unknown ids left out)."""
    if not ids:
        return {}
    query = select(organisations.c.id, organisations.c.name).where(
        organisations.c.id.in_(sorted(ids))
    )
    found = {row.id: row.name for row in await conn.execute(query)}
    accounts = await directory.accounts_by_id(conn, ids - set(found))
    found.update({i: a.name for i, a in accounts.items()})
    return found
