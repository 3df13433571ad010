"""Who calls the REST API, and what they may act on; the API's JSON responses.

Every route takes its token from `Authorization: Bearer <token>`. A token is one of:

- the admin token (server/credentials.py): every room;
- an archivist token (`tja1.`, server/recordings/access.py), where a route reads the
  archive (recordings, agreements): every room, read only;
- an invite token (`tj1.`, server/tokens.py): one room, with the invite's role.

`HttpAuth.caller` says which; `room_for` is the room in the path a caller may see or
manage; `reader` is who may read the archive of which rooms; `check_invite` whether an
invite still stands, also once its room has ended (refused when the room store does not
know the room: fail closed).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from aiohttp import web

from tiaojie.archive.jsontext import escape_surrogates
from tiaojie.server import rooms
from tiaojie.server.errors import TiaojieError, forbidden
from tiaojie.server.model import Room, now
from tiaojie.server.roles import Role
from tiaojie.server.store import RoomStore
from tiaojie.server.tokens import InviteClaims, TokenSigner
from tiaojie.signing.text import check_chars

#: Who reads the archive (`HttpAuth.reader`), as the API description says it.
READERS = "admin, archivist token, or a mediator's invite token of the room"


class CallerKind(StrEnum):
    ADMIN = "admin"
    ARCHIVIST = "archivist"
    INVITE = "invite"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the admin, an archivist, or the holder of one invite token."""

    kind: CallerKind
    claims: InviteClaims | None = None

    @property
    def admin(self) -> bool:
        return self.kind is CallerKind.ADMIN

    def is_mediator_of(self, room: Room) -> bool:
        return (
            self.claims is not None
            and self.claims.room_id == room.id
            and self.claims.role is Role.MEDIATOR
        )

    def may_read(self, room_id: str) -> bool:
        """Whether the caller reads the archive of `room_id` (see `HttpAuth.reader`)."""
        return self.claims is None or self.claims.room_id == room_id


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
        """Who sent `request` (genuine, unexpired token). Archivist tokens count only
        where `archivists` is set; elsewhere they are not valid tokens."""
        token = bearer(request)
        if hmac.compare_digest(token.encode(), self._admin_token):
            return Caller(CallerKind.ADMIN)
        if archivists and self.archivists.looks_like_archivist(token):
            self.archivists.verify_archivist(token)
            return Caller(CallerKind.ARCHIVIST)
        return Caller(CallerKind.INVITE, self.signer.verify(token, now()))

    def admin(self, request: web.Request) -> Caller:
        caller = self.caller(request)
        if not caller.admin:
            raise forbidden("This needs the admin token.")
        return caller

    async def room_for(self, request: web.Request, caller: Caller, *, manage: bool) -> Room:
        """The room in the path, if the caller may see it (manage: admin or its mediator)."""
        room_id = request.match_info["room_id"]
        if caller.claims is not None and caller.claims.room_id != room_id:
            raise TiaojieError("token_wrong_room", "This token is for another room.", 403)
        room = await self.store.require(room_id)
        if caller.admin:
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
        claims = caller.claims
        if claims is None:
            return caller
        await self.check_invite(claims, ended_room_error=True)
        if claims.role is not Role.MEDIATOR:
            raise forbidden(f"Only a mediator of the room or an archivist may read its {what}.")
        return caller

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
