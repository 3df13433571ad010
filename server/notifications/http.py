"""The notifications' REST routes:

- `GET /api/notifications?case_id=`: a case's messages with their state, for staff who
  may read the case (addresses masked, no text: the links in it are credentials).
- `GET /api/notification-templates`: the texts with the variables each may use (staff);
  `PUT` (the admin): `{"templates": {kind: text}}`, an unknown variable is a 400.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from tiaojie.server.cases import permissions
from tiaojie.server.cases.actor import CaseActors
from tiaojie.server.errors import bad_request, forbidden
from tiaojie.server.json_input import read_body
from tiaojie.server.notifications.service import Notifications
from tiaojie.server.notifications.templates import KINDS
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.validation import Schema

TEMPLATE_MAX = 500
PUT_TEMPLATES: Schema = {
    "type": "object",
    "properties": {
        "templates": {
            "type": "object",
            "properties": {kind: {"type": "string", "maxLength": TEMPLATE_MAX} for kind in KINDS},
            "additionalProperties": False,
        }
    },
    "required": ["templates"],
    "additionalProperties": False,
}


class NotificationRoutes:
    def __init__(self, notifications: Notifications, actors: CaseActors) -> None:
        self.notifications = notifications
        self.actors = actors

    def install(self, app: web.Application) -> None:
        app.router.add_get("/api/notifications", self.list)
        app.router.add_get("/api/notification-templates", self.templates)
        app.router.add_put("/api/notification-templates", self.put_templates)

    async def list(self, request: web.Request) -> web.Response:
        actor = self.actors.staff(request)
        case_id = request.query.get("case_id", "")
        if not re.fullmatch(ID_PATTERN, case_id):
            raise bad_request("case_id: the id of a case.")
        case = await self.notifications.cases.readable(case_id, actor)
        messages = await self.notifications.of_case(case.id)
        return web.json_response({"case_id": case.id, "notifications": messages})

    async def templates(self, request: web.Request) -> web.Response:
        actor = self.actors.staff(request)
        if not actor.is_staff:
            raise forbidden("Only staff may read the notification templates.")
        return web.json_response({"templates": await self.notifications.template_list()})

    async def put_templates(self, request: web.Request) -> web.Response:
        actor = self.actors.staff(request)
        permissions.check_configure(actor)
        body: dict[str, Any] = await read_body(request, PUT_TEMPLATES)
        done = await self.notifications.put_templates(body["templates"], actor)
        return web.json_response({"templates": done})
