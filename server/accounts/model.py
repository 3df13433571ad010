"""Organisations, staff accounts and API keys as the API shows them (never a password
hash, never a secret), and logins in their normal form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class StaffRole(StrEnum):
    """What an account may do (docs/ACCOUNTS.md has the whole matrix)."""

    #: everything: accounts, organisations, the audit log, every room
    ADMIN = "admin"
    #: 综治中心: sees (reads) every room of its organisation
    COORDINATOR = "coordinator"
    #: creates rooms and runs its own
    MEDIATOR = "mediator"
    #: reads the archive (recordings, agreements) of its organisation's rooms
    ARCHIVIST = "archivist"


ROLE_ORDER = tuple(StaffRole)

#: Letters, digits and . _ @ - (a phone number, pinyin, an e-mail address); compared in
#: lower case.
LOGIN_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._@-]{1,63}"
_LOGIN = re.compile(LOGIN_PATTERN)


def normal_login(login: str) -> str:
    """The form a login is stored and compared in (ValueError if it is not a login)."""
    if not _LOGIN.fullmatch(login):
        raise ValueError("not a login")
    return login.lower()


def roles_of(value: Any) -> frozenset[StaffRole]:
    """Roles as stored (a JSON list); unknown names are ignored."""
    known = {str(r) for r in StaffRole}
    return frozenset(StaffRole(r) for r in value or [] if r in known)


def sorted_roles(roles: frozenset[StaffRole]) -> list[str]:
    return [str(r) for r in ROLE_ORDER if r in roles]


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    short_name: str
    created_at: int

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "short_name": self.short_name,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Account:
    """A staff account, without its password hash (loaded only to check a password)."""

    id: str
    login: str
    name: str
    organisation_id: str
    roles: frozenset[StaffRole]
    disabled: bool
    created_at: int
    password_changed_at: int

    def has(self, role: StaffRole) -> bool:
        return role in self.roles

    @property
    def admin(self) -> bool:
        return StaffRole.ADMIN in self.roles

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "login": self.login,
            "name": self.name,
            "organisation_id": self.organisation_id,
            "roles": sorted_roles(self.roles),
            "disabled": self.disabled,
            "created_at": self.created_at,
            "password_changed_at": self.password_changed_at,
        }


@dataclass(frozen=True)
class ApiKey:
    """An API key as listed: never its secret (shown once, when made)."""

    id: str
    account_id: str
    label: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "label": self.label,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class Staff:
    """The account behind a request (server/accounts/middleware.py): by its browser
    session (cookie; writes need the session's CSRF token) or by one of its API keys."""

    account: Account
    #: The session's id (sha256 of the cookie), its CSRF token and when it ends unless
    #: used again; None for an API key.
    session_id: str | None = None
    csrf_token: str | None = None
    session_ends_at: int | None = None
    #: The API key's id; None for a session.
    key_id: str | None = None
