"""`/api/probe`: the network check of the device check page, over REST, for the holder of
an invite link (docs/PROTOCOL.md, "Network check").

`GET` gives the ICE servers a browser needs to make its offer (what `room_state` gives
once in the room: the static servers and the holder's own TURN login); `POST` answers a
data-channel offer with a probe (server/media/probe.py). Only an invite token that could
join now is let in, checked as joining checks it (genuine, unexpired, not withdrawn, its
room open): a refusal creates nothing. The token is never logged: probes are named by
the invite's id.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tiaojie.server import rooms
from tiaojie.server.errors import forbidden
from tiaojie.server.http_auth import HttpAuth, json_response
from tiaojie.server.json_input import read_body
from tiaojie.server.media.probe import ECHO_BYTES, ECHO_MESSAGES, Probes
from tiaojie.server.openapi_parts import operation
from tiaojie.server.schemas import SDP
from tiaojie.server.tokens import InviteClaims
from tiaojie.server.validation import Schema

PATH = "/api/probe"
PROBES = web.AppKey("tiaojie_probes", Probes)

PROBE_OFFER: Schema = {
    "type": "object",
    "properties": {"sdp": SDP, "type": {"type": "string", "enum": ["offer"]}},
    "required": ["sdp", "type"],
    "additionalProperties": False,
}


class ProbeRoutes:
    def __init__(self, probes: Probes, auth: HttpAuth) -> None:
        self.probes = probes
        self.auth = auth

    def install(self, app: web.Application) -> None:
        app[PROBES] = self.probes
        app.router.add_get(PATH, self.settings)
        app.router.add_post(PATH, self.open)

        async def close_probes(app: web.Application) -> None:
            await self.probes.close_all()

        app.on_cleanup.append(close_probes)

    async def _invite(self, request: web.Request) -> InviteClaims:
        """The claims of an invite token that could join its room now (else refused)."""
        caller = self.auth.caller(request)
        if caller.claims is None:
            raise forbidden("The network check is for the holder of an invite link.")
        room = await self.auth.store.require(caller.claims.room_id)
        rooms.check_invite(room, caller.claims)
        return caller.claims

    async def settings(self, request: web.Request) -> web.Response:
        claims = await self._invite(request)
        return json_response(self._settings(claims.invite_id))

    async def open(self, request: web.Request) -> web.Response:
        claims = await self._invite(request)
        body = await read_body(request, PROBE_OFFER)
        probe, answer = await self.probes.open(claims.invite_id, body["sdp"])
        return json_response(
            {
                "probe_id": probe.id,
                "sdp": answer,
                "type": "answer",
                **self._settings(claims.invite_id),
            },
            201,
        )

    def _settings(self, invite_id: str) -> dict[str, Any]:
        return {
            "ice_servers": self.probes.ice_servers(invite_id),
            "lifetime": self.probes.lifetime,
            "echo_bytes": ECHO_BYTES,
            "echo_messages": ECHO_MESSAGES,
        }


_SETTINGS: dict[str, Schema] = {
    "ice_servers": {"type": "array", "items": {"type": "object"}},
    "lifetime": {"type": "number", "description": "seconds until the server closes a probe"},
    "echo_bytes": {"type": "integer"},
    "echo_messages": {"type": "integer"},
}


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of these routes (merged into /api/openapi.json)."""
    settings: Schema = {"type": "object", "properties": _SETTINGS}
    answer: Schema = {
        "type": "object",
        "properties": {
            "probe_id": {"type": "string"},
            "sdp": {"type": "string"},
            "type": {"type": "string", "enum": ["answer"]},
            **_SETTINGS,
        },
        "required": ["probe_id", "sdp", "type"],
    }
    return {
        PATH: {
            "get": operation(
                "The network check's settings (ICE servers) for an invite token that could "
                "join its room now",
                200,
                settings,
                400,
                401,
                403,
                404,
                410,
            ),
            "post": operation(
                "A network check: answers a data-channel offer with a short-lived peer "
                "connection of the media plane that echoes (an invite token that could join)",
                201,
                answer,
                400,
                401,
                403,
                404,
                410,
                413,
                415,
                429,
                503,
                body=PROBE_OFFER,
            ),
        }
    }
