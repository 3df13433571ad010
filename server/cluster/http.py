"""`/api/node`: this node and the live nodes it sees; `/api/node/drain`: stop placing new
rooms here and move the rooms it hosts to other nodes (`tiaojie drain`). The admin's, on
the node asked (not forwarded)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from tiaojie.server.cluster.service import Cluster
from tiaojie.server.errors import TiaojieError
from tiaojie.server.http_auth import HttpAuth, json_response
from tiaojie.server.json_input import read_body
from tiaojie.server.openapi_parts import operation
from tiaojie.server.validation import Schema

PATH = "/api/node"
DRAIN_PATH = "/api/node/drain"

DRAIN: Schema = {
    "type": "object",
    "properties": {"draining": {"type": "boolean", "default": True}},
    "additionalProperties": False,
}
_NODE: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "url": {"type": "string"},
        "draining": {"type": "boolean"},
        "cluster": {"type": "boolean"},
        "hosted_rooms": {"type": "integer"},
        "moved_rooms": {"type": "integer"},
        "nodes": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["id", "url", "draining", "cluster"],
}


class NodeRoutes:
    def __init__(self, cluster: Cluster | None, auth: HttpAuth, node: str, url: str) -> None:
        self.cluster = cluster
        self.auth = auth
        self.node = node
        self.url = url

    def install(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.show)
        app.router.add_post(DRAIN_PATH, self.drain)

    async def _describe(self) -> dict[str, Any]:
        cluster = self.cluster
        if cluster is None:
            return {"id": self.node, "url": self.url, "draining": False, "cluster": False}
        nodes = await cluster.registry.nodes()
        return {
            "id": cluster.id,
            "url": cluster.url,
            "draining": cluster.draining,
            "cluster": True,
            "hosted_rooms": len(cluster.hosted),
            "nodes": [asdict(n) for n in nodes.values()],
        }

    async def show(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        return json_response(await self._describe())

    async def drain(self, request: web.Request) -> web.Response:
        self.auth.admin(request)
        body = await read_body(request, DRAIN)
        if self.cluster is None:
            raise TiaojieError(
                "not_clustered", "This node runs alone (no --redis): nothing to drain to.", 409
            )
        moved = await self.cluster.set_draining(bool(body["draining"]))
        return json_response({**await self._describe(), "moved_rooms": moved})


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of these routes (merged into /api/openapi.json)."""
    return {
        PATH: {
            "get": operation(
                "This node, and the live nodes it sees (several nodes: --redis)",
                200,
                _NODE,
                401,
                403,
            )
        },
        DRAIN_PATH: {
            "post": operation(
                "Drain this node (or open it again: draining false): no new room is placed "
                "on it, and its rooms move to other live nodes (their recordings are sealed "
                "and continued there by a new recording that follows them; their "
                "participants reconnect there)",
                200,
                _NODE,
                400,
                401,
                403,
                409,
                413,
                415,
                body=DRAIN,
            )
        },
    }
