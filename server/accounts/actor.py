"""Who is acting: the audit log's "who" for whatever the current request or event changes.

A context variable, so it follows the work wherever it goes: `HttpAuth.caller` sets it
when it knows who sent a REST request (the accounts middleware gives every /api/ request
a fresh one), signalling sets it around a participant's event. Work nobody asked for
(recovery on start, a recorder that exits) runs as the server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    ACCOUNT = "account"
    ADMIN_TOKEN = "admin-token"
    INVITE = "invite"
    ARCHIVIST_TOKEN = "archivist-token"
    #: someone not (yet) known: a login attempt
    ANONYMOUS = "anonymous"
    #: the `tiaojie` command on the server's machine (create-admin)
    CLI = "cli"
    SERVER = "server"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    #: The account id or invite id; None for the admin token and the server.
    id: str | None = None
    #: The client's address (REST), for the log of logins.
    address: str | None = None


SERVER = Actor(ActorKind.SERVER)
_ACTOR: ContextVar[Actor] = ContextVar("tiaojie_actor", default=SERVER)


def current() -> Actor:
    return _ACTOR.get()


def act_as(actor: Actor) -> None:
    """`actor` acts for the rest of the current task (its context)."""
    _ACTOR.set(actor)


@contextlib.contextmanager
def acting(actor: Actor) -> Iterator[None]:
    """`actor` acts inside the block."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)
