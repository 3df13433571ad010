"""Who calls the REST API, and what they may act on; the API's JSON responses.

A caller is one of:

- the admin token (server/credentials.py, `Authorization: Bearer`): every room;
- a staff account (server/accounts/), by its session cookie or one of its API keys,
  resolved by server/accounts/middleware.py before the handler runs: an admin account
  does what the admin token does; a mediator account sees and manages the rooms it owns;
  a coordinator sees (reads) the rooms of its organisation; an archivist reads the
  archive of its organisation's rooms (docs/ACCOUNTS.md has the matrix);
- an archivist token (`tja1.`, server/recordings/access.py), where a route reads the
  archive (recordings, agreements): every room, read only;
- an invite token (`tj1.`, server/tokens.py): one room, with the invite's role.

`HttpAuth.caller` says which (and names the actor of the audit log); `room_for` is the
room in the path a caller may see or manage; `reader` is who may read the archive of
which rooms; `check_invite` whether an invite still stands, also once its room has ended
(refused when the room store does not know the room: fail closed). A room an account may
not see is answered as one that does not exist (404), so accounts learn nothing of other
people's rooms.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from aiohttp import web

from tiaojie.archive.jsontext import escape_surrogates
from tiaojie.server import rooms
from tiaojie.server.accounts.actor import Actor, ActorKind, act_as
from tiaojie.server.accounts.middleware import staff_of
from tiaojie.server.accounts.model import Account, Staff, StaffRole
from tiaojie.server.accounts.tokens import looks_like_key
from tiaojie.server.errors import TiaojieError, forbidden
from tiaojie.server.model import Room, now
from tiaojie.server.roles import Role
from tiaojie.server.store import RoomStore
from tiaojie.server.store.base import room_not_found
from tiaojie.server.tokens import InviteClaims, TokenSigner
from tiaojie.signing.text import check_chars

#: Who reads the archive (`HttpAuth.reader`), as the API description says it.
READERS = (
    "admin, archivist token or account (its organisation's rooms), the mediator account "
    "owning the room, or a mediator's invite token of the room"
)


class CallerKind(StrEnum):
    ADMIN = "admin"
    ARCHIVIST = "archivist"
    INVITE = "invite"
    ACCOUNT = "account"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the admin token, an archivist token, the holder of one invite
    token, or a staff account."""

    kind: CallerKind
    claims: InviteClaims | None = None
    staff: Staff | None = None
    #: An account's rooms whose archive it reads (set by `HttpAuth.reader`).
    readable: frozenset[str] | None = None

    @property
    def account(self) -> Account | None:
        return self.staff.account if self.staff is not None else None

    @property
    def admin(self) -> bool:
        """The admin token, or an account with the admin role."""
        account = self.account
        return self.kind is CallerKind.ADMIN or (account is not None and account.admin)

    def is_mediator_of(self, room: Room) -> bool:
        """A mediator's invite of the room, or the mediator account that owns it."""
        account = self.account
        if account is not None:
            return account.has(StaffRole.MEDIATOR) and room.owner_id == account.id
        return (
            self.claims is not None
            and self.claims.room_id == room.id
            and self.claims.role is Role.MEDIATOR
        )

    def sees(self, room: Room) -> bool:
        """An account that may see `room`: admin, its owner, a coordinator of its
        organisation."""
        account = self.account
        if account is None:
            return False
        return (
            account.admin
            or self.is_mediator_of(room)
            or (
                account.has(StaffRole.COORDINATOR)
                and room.organisation_id is not None
                and room.organisation_id == account.organisation_id
            )
        )

    def may_read(self, room_id: str) -> bool:
        """Whether the caller reads the archive of `room_id` (see `HttpAuth.reader`)."""
        if self.admin or self.kind is CallerKind.ARCHIVIST:
            return True
        if self.kind is CallerKind.ACCOUNT:
            return self.readable is not None and room_id in self.readable
        return self.claims is not None and self.claims.room_id == room_id


class ArchivistTokens(Protocol):
    """What checks archivist tokens (server.recordings.access.ArchiveAuth)."""

    def looks_like_archivist(self, token: str) -> bool: ...

    def verify_archivist(self, token: str) -> object: ...


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TiaojieError(
            "token_missing", "Send your token as 'Authorization: Bearer <token>'.", 401
        )
    try:  # the text rules (bytes that are not UTF-8 arrive as lone surrogates)
        check_chars(token.strip(), "the token")
    except ValueError:
        raise TiaojieError("token_invalid", "This token is not valid.", 401) from None
    return token.strip()


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON as UTF-8 (names in Chinese stay readable); a stored string UTF-8 cannot
    encode (a lone surrogate) goes out as its JSON escape instead of failing the response."""
    return web.json_response(
        data,
        status=status,
        headers=headers,
        dumps=lambda d: escape_surrogates(json.dumps(d, ensure_ascii=False)),
    )


class HttpAuth:
    def __init__(
        self,
        admin_token: str,
        signer: TokenSigner,
        store: RoomStore,
        archivists: ArchivistTokens,
    ) -> None:
        self._admin_token = admin_token.encode()
        self.signer = signer
        self.store = store
        self.archivists = archivists

    def caller(self, request: web.Request, *, archivists: bool = False) -> Caller:
        """Who sent `request`: a staff account (server/accounts/middleware.py found it),
        else a genuine, unexpired token. Archivist tokens count only where `archivists`
        is set; elsewhere they are not valid tokens. Names the actor of the audit log."""
        staff = staff_of(request)
        if staff is not None:
            return Caller(CallerKind.ACCOUNT, staff=staff)
        token = bearer(request)
        address = request.remote
        if hmac.compare_digest(token.encode(), self._admin_token):
            act_as(Actor(ActorKind.ADMIN_TOKEN, None, address))
            return Caller(CallerKind.ADMIN)
        if archivists and self.archivists.looks_like_archivist(token):
            self.archivists.verify_archivist(token)
            act_as(Actor(ActorKind.ARCHIVIST_TOKEN, None, address))
            return Caller(CallerKind.ARCHIVIST)
        if looks_like_key(token):  # (the middleware checks keys on /api/ paths)
            raise TiaojieError("token_invalid", "This API key is not valid here.", 401)
        claims = self.signer.verify(token, now())
        act_as(Actor(ActorKind.INVITE, claims.invite_id, address))
        return Caller(CallerKind.INVITE, claims)

    def admin(self, request: web.Request) -> Caller:
        caller = self.caller(request)
        if not caller.admin:
            raise forbidden("This needs the admin token or an admin account.")
        return caller

    async def room_for(self, request: web.Request, caller: Caller, *, manage: bool) -> Room:
        """The room in the path, if the caller may see it (manage: admin or its mediator)."""
        room_id = request.match_info["room_id"]
        if caller.claims is not None and caller.claims.room_id != room_id:
            raise TiaojieError("token_wrong_room", "This token is for another room.", 403)
        room = await self.store.require(room_id)
        if caller.admin:
            return room
        if caller.account is not None:
            if not caller.sees(room):
                raise room_not_found()  # as if there were none: not theirs to know
            if manage and not caller.is_mediator_of(room):
                raise forbidden("Only the admin or the room's mediator may do this.")
            if manage and room.ended:
                raise rooms.room_ended()
            return room
        if caller.claims is None:  # an archivist manages and joins no room
            raise forbidden("Only the admin or a mediator of this room may do this.")
        rooms.check_invite(room, caller.claims)
        if manage and not caller.is_mediator_of(room):
            raise forbidden("Only the admin or a mediator of this room may do this.")
        return room

    async def reader(self, request: web.Request, what: str = "recordings") -> Caller:
        """Who reads the archive: the admin and archivists every room, a mediator's invite
        its own room (after the room ended too, until the link expires)."""
        caller = self.caller(request, archivists=True)
        if caller.account is not None:
            return await self.account_reader(caller, what)
        claims = caller.claims
        if claims is None:
            return caller
        await self.check_invite(claims, ended_room_error=True)
        if claims.role is not Role.MEDIATOR:
            raise forbidden(f"Only a mediator of the room or an archivist may read its {what}.")
        return caller

    async def account_reader(self, caller: Caller, what: str = "recordings") -> Caller:
        """An account as a reader of the archive: an admin every room; an archivist the
        rooms of its organisation; a mediator the rooms it owns (both, if both)."""
        account = caller.account
        assert account is not None
        if account.admin:
            return caller
        readable: set[str] = set()
        if account.has(StaffRole.ARCHIVIST):
            found = await self.store.list(organisation_id=account.organisation_id)
            readable.update(room.id for room in found)
        if account.has(StaffRole.MEDIATOR):
            readable.update(room.id for room in await self.store.list(owner_id=account.id))
        if not (account.has(StaffRole.ARCHIVIST) or account.has(StaffRole.MEDIATOR)):
            raise forbidden(f"Only an archivist or the room's mediator may read its {what}.")
        return dataclasses.replace(caller, readable=frozenset(readable))

    async def check_reads(self, caller: Caller, room_id: str, what: str) -> None:
        """That an account (see `account_reader`) reads the archive of `room_id`."""
        reader = await self.account_reader(caller, what)
        if not reader.may_read(room_id):
            raise forbidden(f"Only an archivist or the room's mediator may read its {what}.")

    async def check_invite(self, claims: InviteClaims, *, ended_room_error: bool = False) -> None:
        """That the invite behind genuine `claims` still stands (not withdrawn; its room
        may have ended), decided by its room; refused when the store does not know the
        room (a `memory:` server after a restart): fail closed.
        `ended_room_error`: a refusal in an ended room is `room_ended`."""
        room = await self.store.get(claims.room_id)
        if room is None:
            raise room_unknown()
        try:
            rooms.live_invite(room, claims)
        except TiaojieError:
            if ended_room_error and room.ended:
                raise rooms.room_ended() from None
            raise


def room_unknown() -> TiaojieError:
    """The room store does not know the token's room."""
    return TiaojieError("room_unknown", "This server has no record of this link's room.", 403)
