"""REST API: rooms and invites (docs/PROTOCOL.md, /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from tiaojie.server import json_input, rooms
from tiaojie.server.errors import TiaojieError, bad_request, forbidden
from tiaojie.server.http_auth import HttpAuth, json_response
from tiaojie.server.model import Room, new_id, now
from tiaojie.server.roles import MEDIATOR_MAY_INVITE, Role
from tiaojie.server.schemas import CREATE_INVITE, CREATE_ROOM, ID_PATTERN
from tiaojie.server.signalling import CloseReason
from tiaojie.server.state import app_state
from tiaojie.server.tokens import InviteClaims
from tiaojie.server.validation import Schema, validate

ROOM = "/api/rooms/{room_id:" + ID_PATTERN + "}"


def _auth(request: web.Request) -> HttpAuth:
    return app_state(request.app).auth


async def _body(request: web.Request, schema: Schema) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise TiaojieError("unsupported_media_type", "Send a JSON body (application/json).", 415)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TiaojieError("payload_too_large", "The request body is too large.", 413) from None
    data = json_input.loads(raw)
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object.")
    return validate(schema, data, "body")


# -- handlers ------------------------------------------------------------------------------
async def health(request: web.Request) -> web.Response:
    state = app_state(request.app)
    return json_response({"status": "ok", "version": state.version, "backend": state.store.backend})


async def create_room(request: web.Request) -> web.Response:
    _auth(request).admin(request)
    body = await _body(request, CREATE_ROOM)
    room = Room(
        id=new_id(),
        title=body["title"],
        lobby=body["lobby"],
        max_participants=body["max_participants"],
        created_at=now(),
    )
    await app_state(request.app).store.create(room)
    return json_response(room.summary(), 201)


async def list_rooms(request: web.Request) -> web.Response:
    _auth(request).admin(request)
    found = await app_state(request.app).store.list()
    return json_response(
        {"rooms": [r.summary() for r in sorted(found, key=lambda r: r.created_at)]}
    )


async def get_room(request: web.Request) -> web.Response:
    auth = _auth(request)
    caller = auth.caller(request)
    room = await auth.room_for(request, caller, manage=False)
    if caller.admin or caller.is_mediator_of(room):
        return json_response(room.full())
    return json_response(room.summary())


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
    body = await _body(request, CREATE_INVITE)
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
    room = await app_state(request.app).store.require(caller.claims.room_id)
    invite = rooms.check_invite(room, caller.claims)
    return json_response({"invite": invite.public(), "room": room.summary()})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/health", health)
    app.router.add_post("/api/rooms", create_room)
    app.router.add_get("/api/rooms", list_rooms)
    app.router.add_get(ROOM, get_room)
    app.router.add_delete(ROOM, delete_room)
    app.router.add_post(ROOM + "/invites", create_invite)
    app.router.add_delete(ROOM + "/invites/{invite_id:" + ID_PATTERN + "}", revoke_invite)
    app.router.add_get("/api/me", me)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API error as {"error", "message"} with its HTTP status."""
    try:
        return await handler(request)
    except TiaojieError as error:
        return json_response(error.to_dict(), error.status)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status, "http_error"
        )
        # A 405 says which methods the resource has (RFC 9110: Allow).
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_response({"error": code, "message": exc.reason}, exc.status, headers=allow)
