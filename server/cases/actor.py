"""Who acts on a case: the `CaseActor`, and how a request is turned into one (`CaseActors`).

Every change of a case takes a CaseActor: its `kind`, its `id`, the organisation it acts
for and its staff roles (the accounts' `StaffRole`). The case log names the actor (kind
and id) of every change. Three kinds exist: the admin token (`ADMIN`, every role, no
organisation), a staff account (`account`: its id, organisation and roles), and a resident
who reports without an account (`resident`, no role).

Not to be confused with the audit log's actor (server/accounts/actor.py: who sent the
request or event, for the audit log, in a context variable): a CaseActor is what the
case rules decide on; `server/cases/staff.py` makes one from the request's caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from aiohttp import web

from tiaojie.server.accounts.model import Account, StaffRole

__all__ = [
    "ADMIN",
    "CaseActor",
    "CaseActorKind",
    "CaseActors",
    "StaffRole",
    "of_account",
    "resident",
]


class CaseActorKind(StrEnum):
    ADMIN = "admin"
    ACCOUNT = "account"
    RESIDENT = "resident"


@dataclass(frozen=True)
class CaseActor:
    kind: CaseActorKind
    id: str
    organisation_id: str | None = None
    roles: frozenset[StaffRole] = frozenset()

    def has(self, role: StaffRole) -> bool:
        return role in self.roles

    @property
    def is_staff(self) -> bool:
        return bool(self.roles)

    @property
    def audited(self) -> bool:
        """Whether its changes go to the audit log too (staff: the token or an account)."""
        return self.kind is not CaseActorKind.RESIDENT

    def logged(self) -> dict[str, str | None]:
        """How the case log names the actor (never a name or a phone number)."""
        return {"kind": str(self.kind), "id": self.id, "organisation_id": self.organisation_id}


#: The holder of the admin token (server/credentials.py).
ADMIN = CaseActor(CaseActorKind.ADMIN, "admin", None, frozenset(StaffRole))


def resident(reporter_id: str) -> CaseActor:
    """A resident reporting without an account; `reporter_id` is opaque (no phone)."""
    return CaseActor(CaseActorKind.RESIDENT, reporter_id)


def of_account(account: Account) -> CaseActor:
    """A staff account as it acts on cases: its organisation and roles."""
    return CaseActor(CaseActorKind.ACCOUNT, account.id, account.organisation_id, account.roles)


class CaseActors(Protocol):
    """Turns a request into the staff CaseActor behind it, or refuses (401/403)."""

    def staff(self, request: web.Request) -> CaseActor: ...

    def has_credentials(self, request: web.Request) -> bool: ...
