"""REST API: rooms and invites (docs/PROTOCOL.md, /api/openapi.json); who may do what
with a room is server/http_auth.py's (docs/ACCOUNTS.md for staff accounts)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from tiaojie.server import rooms
from tiaojie.server.accounts.audit import Action
from tiaojie.server.accounts.entry import entry_invite
from tiaojie.server.accounts.model import Account, StaffRole
from tiaojie.server.db.database import unavailable
from tiaojie.server.errors import TiaojieError, bad_request, forbidden
from tiaojie.server.http_auth import Caller, HttpAuth, json_response
from tiaojie.server.json_input import read_body
from tiaojie.server.model import Room, new_id, now
from tiaojie.server.roles import MEDIATOR_MAY_INVITE, Role
from tiaojie.server.schemas import CREATE_INVITE, CREATE_ROOM, ID_PATTERN
from tiaojie.server.signalling import CloseReason
from tiaojie.server.state import app_state
from tiaojie.server.tokens import InviteClaims

ROOM = "/api/rooms/{room_id:" + ID_PATTERN + "}"
#: How long /api/health waits for the database.
HEALTH_TIMEOUT_S = 5.0


def _auth(request: web.Request) -> HttpAuth:
    return app_state(request.app).auth


async def _staff_view(request: web.Request, caller: Caller, found: list[Room]) -> list[Any]:
    """Rooms as staff see them: full, with owner and organisation (and the owner's name);
    invite holders get what they got before accounts existed."""
    if not (caller.admin or caller.account is not None):
        return [room.full() for room in found]
    owners = {room.owner_id for room in found if room.owner_id}
    names = await app_state(request.app).accounts.names(owners)
    return [
        {
            **room.full(),
            "owner_id": room.owner_id,
            "owner_name": names.get(room.owner_id) if room.owner_id else None,
            "organisation_id": room.organisation_id,
        }
        for room in found
    ]


# -- handlers ------------------------------------------------------------------------------
async def health(request: web.Request) -> web.Response:
    """Up, and its database answers (503 `database_unavailable` when it does not, within
    HEALTH_TIMEOUT_S: a load balancer takes the node out)."""
    state = app_state(request.app)
    try:
        await asyncio.wait_for(state.store.ping(), HEALTH_TIMEOUT_S)
    except TimeoutError:
        raise unavailable() from None
    return json_response({"status": "ok", "version": state.version, "backend": state.store.backend})


async def _owner(request: web.Request, body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The owner and organisation an admin named for a new room (both optional): the
    owner must be an enabled mediator account; its organisation is the room's unless
    another is named."""
    accounts = app_state(request.app).accounts
    owner: Account | None = None
    if "owner_id" in body:
        owner = await accounts.account(body["owner_id"])
        if owner.disabled or not owner.has(StaffRole.MEDIATOR):
            raise TiaojieError(
                "not_a_mediator", "A room's owner must be an enabled mediator account.", 409
            )
    organisation_id = body.get("organisation_id")
    if organisation_id is not None:
        await accounts.organisation(organisation_id)  # 404 if there is none
    elif owner is not None:
        organisation_id = owner.organisation_id
    return (owner.id if owner else None), organisation_id


async def create_room(request: web.Request) -> web.Response:
    """The admin (token or account), or a mediator account: then the room is theirs."""
    caller = _auth(request).caller(request)
    account = caller.account
    mediator = account is not None and account.has(StaffRole.MEDIATOR)
    if not (caller.admin or mediator):
        raise forbidden("Only the admin or a mediator account may create rooms.")
    body = await read_body(request, CREATE_ROOM)
    if "owner_id" in body or "organisation_id" in body:
        if not caller.admin:
            raise forbidden("Only the admin names a room's owner or organisation.")
        owner_id, organisation_id = await _owner(request, body)
    elif account is not None:
        owner_id = account.id if mediator else None
        organisation_id = account.organisation_id
    else:
        owner_id = organisation_id = None
    room = Room(
        id=new_id(),
        title=body["title"],
        lobby=body["lobby"],
        max_participants=body["max_participants"],
        created_at=now(),
        owner_id=owner_id,
        organisation_id=organisation_id,
    )
    await app_state(request.app).store.create(room)
    if caller.account is None:
        return json_response(room.summary(), 201)
    return json_response((await _staff_view(request, caller, [room]))[0], 201)


async def list_rooms(request: web.Request) -> web.Response:
    """The admin every room; a mediator account its own; a coordinator its organisation's."""
    auth = _auth(request)
    caller = auth.caller(request)
    account = caller.account
    store = app_state(request.app).store
    if caller.admin:
        found = await store.list()
    elif account is not None and (
        account.has(StaffRole.MEDIATOR) or account.has(StaffRole.COORDINATOR)
    ):
        by_id: dict[str, Room] = {}
        if account.has(StaffRole.MEDIATOR):
            by_id.update((r.id, r) for r in await store.list(owner_id=account.id))
        if account.has(StaffRole.COORDINATOR):
            by_id.update(
                (r.id, r) for r in await store.list(organisation_id=account.organisation_id)
            )
        found = list(by_id.values())
    else:
        raise forbidden("This needs the admin token, or a mediator or coordinator account.")
    ordered = sorted(found, key=lambda r: r.created_at)
    if caller.account is None:
        return json_response({"rooms": [r.summary() for r in ordered]})
    return json_response({"rooms": await _staff_view(request, caller, ordered)})


async def get_room(request: web.Request) -> web.Response:
    auth = _auth(request)
    caller = auth.caller(request)
    room = await auth.room_for(request, caller, manage=False)
    if caller.account is not None:
        return json_response((await _staff_view(request, caller, [room]))[0])
    if caller.admin or caller.is_mediator_of(room):
        return json_response(room.full())
    return json_response(room.summary())


async def enter_room(request: web.Request) -> web.Response:
    """A short-lived mediator invite token for the account that owns the room (or an
    admin account): the staff page enters the room with it (server/accounts/entry.py)."""
    auth = _auth(request)
    caller = auth.caller(request)
    account = caller.account
    if account is None:
        raise forbidden(
            "A staff account enters its rooms here; with the admin token, create a "
            "mediator invite instead."
        )
    room = await auth.room_for(request, caller, manage=True)
    if not (caller.admin or caller.is_mediator_of(room)):
        raise forbidden("Only the room's mediator enters it from here.")
    state = app_state(request.app)
    invite = await state.store.update(room.id, lambda r: entry_invite(r, account.id, account.name))
    await state.accounts.record(Action.ROOM_ENTERED, room.id, {"invite_id": invite.invite_id})
    token = state.signer.sign(
        InviteClaims(room.id, Role.MEDIATOR, invite.invite_id, invite.expires_at)
    )
    return json_response(
        {
            "invite_id": invite.invite_id,
            "url": f"{state.settings.base_url}/join#token={token}",
            "token": token,
            "expires_at": invite.expires_at,
            "role": str(Role.MEDIATOR),
            "name": invite.name,
        },
        201,
        headers={"Cache-Control": "no-store"},
    )


async def delete_room(request: web.Request) -> web.Response:
    auth = _auth(request)
    caller = auth.caller(request)
    room = await auth.room_for(request, caller, manage=True)
    if room.ended:
        raise rooms.room_ended()
    ended = await app_state(request.app).signalling.end_room(room.id)
    return json_response(ended.summary())


async def create_invite(request: web.Request) -> web.Response:
    auth = _auth(request)
    caller = auth.caller(request)
    room = await auth.room_for(request, caller, manage=True)
    body = await read_body(request, CREATE_INVITE)
    role = Role(body["role"])
    if not caller.admin and role not in MEDIATOR_MAY_INVITE:
        raise forbidden("Only the admin may invite a mediator.")
    state = app_state(request.app)
    invite = await state.store.update(
        room.id,
        lambda r: rooms.create_invite(
            # a side means something for a party only; for another role it is left out
            r,
            role,
            body["name"],
            body["expires_in"],
            side=body.get("side") if role is Role.PARTY else None,
        ),
    )
    token = state.signer.sign(InviteClaims(room.id, role, invite.invite_id, invite.expires_at))
    return json_response(
        {
            "invite_id": invite.invite_id,
            "url": f"{state.settings.base_url}/join#token={token}",
            "token": token,
            "expires_at": invite.expires_at,
            "role": str(role),
            "side": invite.side,
            "name": invite.name,
        },
        201,
    )


async def revoke_invite(request: web.Request) -> web.Response:
    auth = _auth(request)
    caller = auth.caller(request)
    room = await auth.room_for(request, caller, manage=True)
    state = app_state(request.app)
    invite, connected = await state.store.update(
        room.id, lambda r: rooms.revoke_invite(r, request.match_info["invite_id"])
    )
    if connected is not None:
        await state.signalling.close_participant(room.id, connected, CloseReason.REVOKED)
    return json_response(invite.public())


async def me(request: web.Request) -> web.Response:
    caller = _auth(request).caller(request)
    if caller.claims is None:
        raise bad_request("/api/me describes an invite token, not the admin token.")
    state = app_state(request.app)
    room = await state.store.require(caller.claims.room_id)
    invite = rooms.check_invite(room, caller.claims)
    answer: dict[str, Any] = {"invite": invite.public(), "room": room.summary()}
    # Several nodes: the join page opens the room's node before anything else (the room
    # is placed now if it was not: the page will soon connect).
    if state.cluster is not None and not room.ended:
        node_url = await state.cluster.elsewhere(room.id)
        if node_url is not None:
            answer["node_url"] = node_url
        # where the page turns if the room's node stops answering
        answer["nodes"] = await state.cluster.urls()
    return json_response(answer)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/health", health)
    app.router.add_post("/api/rooms", create_room)
    app.router.add_get("/api/rooms", list_rooms)
    app.router.add_get(ROOM, get_room)
    app.router.add_delete(ROOM, delete_room)
    app.router.add_post(ROOM + "/enter", enter_room)
    app.router.add_post(ROOM + "/invites", create_invite)
    app.router.add_delete(ROOM + "/invites/{invite_id:" + ID_PATTERN + "}", revoke_invite)
    app.router.add_get("/api/me", me)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API error as {"error", "message"} with its HTTP status."""
    try:
        return await handler(request)
    except TiaojieError as error:
        return json_response(error.to_dict(), error.status, headers=error.headers)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status, "http_error"
        )
        # A 405 says which methods the resource has (RFC 9110: Allow).
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_response({"error": code, "message": exc.reason}, exc.status, headers=allow)
