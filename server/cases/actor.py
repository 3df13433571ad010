"""Who acts on a case: the `Actor`, and how a request is turned into one (`Actors`).

Every change of a case takes an Actor: its `kind`, its `id`, the organisation it acts for
and its staff roles. The log names the actor (kind and id) of every change. Today two
kinds exist: the admin token (`ADMIN`, every role, no organisation) and a resident who
reports without an account (`resident`, no role). Staff accounts plug in here: an
`Actors` that maps a session or account token to `Actor(kind="account", ...)` with the
account's organisation and roles; server/cases/permissions.py already decides for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from aiohttp import web


class ActorKind(StrEnum):
    ADMIN = "admin"
    ACCOUNT = "account"
    RESIDENT = "resident"


class StaffRole(StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    MEDIATOR = "mediator"
    ARCHIVIST = "archivist"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str
    organisation_id: str | None = None
    roles: frozenset[StaffRole] = frozenset()

    def has(self, role: StaffRole) -> bool:
        return role in self.roles

    @property
    def is_staff(self) -> bool:
        return bool(self.roles)

    def logged(self) -> dict[str, str | None]:
        """How the case log names the actor (never a name or a phone number)."""
        return {"kind": str(self.kind), "id": self.id, "organisation_id": self.organisation_id}


#: The holder of the admin token (server/credentials.py).
ADMIN = Actor(ActorKind.ADMIN, "admin", None, frozenset(StaffRole))


def resident(reporter_id: str) -> Actor:
    """A resident reporting without an account; `reporter_id` is opaque (no phone)."""
    return Actor(ActorKind.RESIDENT, reporter_id)


class Actors(Protocol):
    """Turns a request into the staff Actor behind it, or refuses (401/403)."""

    def staff(self, request: web.Request) -> Actor: ...

    def has_credentials(self, request: web.Request) -> bool: ...


class AdminTokenActors:
    """Today's mapping: the admin token is the ADMIN actor; nothing else is staff.
    (Staff accounts replace this with theirs, which keeps the admin token as ADMIN.)"""

    def __init__(self, admin: _AdminCheck) -> None:
        self._admin = admin

    def staff(self, request: web.Request) -> Actor:
        self._admin.admin(request)
        return ADMIN

    def has_credentials(self, request: web.Request) -> bool:
        """Whether the request carries a token at all (then it is staff intake)."""
        return "Authorization" in request.headers


class _AdminCheck(Protocol):
    def admin(self, request: web.Request) -> object: ...
