"""The bookings' REST routes (docs/BOOKINGS.md, /api/openapi.json).

A party calls them with their own link's `code` and `key` in the query (the key is a
credential word of the access log); staff with their token or session.

- `GET /api/availability`: a party: the free slots of the experts with `specialty`, or
  of their case's mediator; staff: a provider's rules and free slots.
- `POST /api/availability`, `DELETE /api/availability/{id}`: a rule (staff).
- `GET /api/bookings`: a party's own bookings (and the kinds of expert they may book);
  staff: a case's (`case_id`).
- `POST /api/bookings`, `PUT /api/bookings/{id}` (move), `DELETE /api/bookings/{id}`
  (cancel): with a reason for the last two.
- `GET /api/calendar?mediator_id=&from=&to=`: a mediator's sessions and bookings.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from tiaojie.server.bookings.availability import PROVIDER_KINDS, RULE_KINDS
from tiaojie.server.bookings.service import Bookings, Party, Who, dates
from tiaojie.server.cases.actor import CaseActors
from tiaojie.server.cases.schemas import SPECIALTY
from tiaojie.server.errors import bad_request
from tiaojie.server.json_input import read_body
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.validation import Schema
from tiaojie.signing.text import TEXT

HHMM = r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00"
DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
ID: Schema = {"type": "string", "pattern": ID_PATTERN}
#: Unix seconds, up to 2100 (a slot is at most a year or so ahead in practice).
TIME: Schema = {"type": "integer", "minimum": 0, "maximum": 4102444800}
REASON: Schema = {"type": "string", "format": TEXT, "minLength": 1, "maxLength": 300}

RULE: Schema = {
    "type": "object",
    "properties": {
        "provider_kind": {"type": "string", "enum": list(PROVIDER_KINDS)},
        "provider_id": ID,
        "kind": {"type": "string", "enum": list(RULE_KINDS)},
        "weekday": {"type": "integer", "minimum": 0, "maximum": 6},
        "date": {"type": "string", "pattern": DATE},
        "start": {"type": "string", "pattern": HHMM},
        "end": {"type": "string", "pattern": HHMM},
        "slot_minutes": {"type": "integer", "minimum": 10, "maximum": 240},
    },
    "required": ["provider_kind", "kind"],
    "additionalProperties": False,
}
BOOK: Schema = {
    "type": "object",
    "properties": {
        "provider_kind": {"type": "string", "enum": list(PROVIDER_KINDS)},
        "provider_id": ID,
        "starts_at": TIME,
        "specialty": SPECIALTY,
        "case_id": {**ID, "description": "staff booking for a party"},
        "party_position": {"type": "integer", "minimum": 0, "maximum": 100},
    },
    "required": ["provider_kind", "provider_id", "starts_at"],
    "additionalProperties": False,
}
CANCEL: Schema = {
    "type": "object",
    "properties": {"reason": REASON},
    "required": ["reason"],
    "additionalProperties": False,
}
MOVE: Schema = {
    "type": "object",
    "properties": {"starts_at": TIME, "reason": REASON},
    "required": ["starts_at", "reason"],
    "additionalProperties": False,
}
BOOKING = "/api/bookings/{booking_id:" + ID_PATTERN + "}"
AVAILABILITY = "/api/availability/{availability_id:" + ID_PATTERN + "}"


def _query(request: web.Request, name: str, pattern: str) -> str | None:
    value = request.query.get(name)
    if value is not None and not re.fullmatch(pattern, value):
        raise bad_request(f"{name} has an invalid format.")
    return value


class BookingRoutes:
    def __init__(self, bookings: Bookings, actors: CaseActors) -> None:
        self.bookings = bookings
        self.actors = actors

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/availability", self.availability)
        r.add_post("/api/availability", self.add_rule)
        r.add_delete(AVAILABILITY, self.remove_rule)
        r.add_get("/api/bookings", self.list)
        r.add_post("/api/bookings", self.book)
        r.add_put(BOOKING, self.move)
        r.add_delete(BOOKING, self.cancel)
        r.add_get("/api/calendar", self.calendar)

    async def _who(self, request: web.Request) -> Who:
        """A party from their link's code and key, or the staff caller."""
        if "code" in request.query or "key" in request.query:
            code = _query(request, "code", r"[A-Za-z0-9_-]{22}")
            return await self.bookings.party(code, request.query.get("key"))
        return self.actors.staff(request)

    def _dates(self, request: web.Request) -> Any:
        first = _query(request, "from", DATE)
        last = _query(request, "to", DATE)
        return dates(first, last, self.bookings.tz, time.time())

    # -- availability ----------------------------------------------------------------------
    async def availability(self, request: web.Request) -> web.Response:
        who = await self._who(request)
        first, last = self._dates(request)
        now = time.time()
        if isinstance(who, Party):
            specialty = request.query.get("specialty") or None
            if specialty is not None and len(specialty) > 32:
                raise bad_request("specialty is a kind of expert (at most 32 characters).")
            offered = await self.bookings.offer(who, specialty, first, last, now)
            return web.json_response({"slots": offered})
        kind = request.query.get("provider_kind", "mediator")
        if kind not in PROVIDER_KINDS:
            raise bad_request("provider_kind is expert or mediator.")
        provider_id = _query(request, "provider_id", ID_PATTERN) or who.id
        rules = await self.bookings.rules(kind, provider_id)
        slots = await self.bookings.free_slots(kind, provider_id, first, last, now)
        return web.json_response(
            {
                "provider_kind": kind,
                "provider_id": provider_id,
                "timezone": str(getattr(self.bookings.tz, "key", self.bookings.tz)),
                "rules": rules,
                "slots": [{"starts_at": s.starts_at, "ends_at": s.ends_at} for s in slots],
            }
        )

    async def add_rule(self, request: web.Request) -> web.Response:
        actor = self.actors.staff(request)
        body = await read_body(request, RULE)
        return web.json_response(await self.bookings.add_rule(actor, body), status=201)

    async def remove_rule(self, request: web.Request) -> web.Response:
        actor = self.actors.staff(request)
        removed = request.match_info["availability_id"]
        await self.bookings.remove_rule(actor, removed)
        return web.json_response({"removed": removed})

    # -- bookings --------------------------------------------------------------------------
    async def list(self, request: web.Request) -> web.Response:
        who = await self._who(request)
        if isinstance(who, Party):
            return web.json_response(
                {
                    "case_number": who.case.number,
                    "has_mediator": who.case.mediator_id is not None,
                    "kinds": await self.bookings.kinds(),
                    "bookings": await self.bookings.of_party(who),
                }
            )
        case_id = _query(request, "case_id", ID_PATTERN)
        if case_id is None:
            raise bad_request("case_id: the case whose bookings to list.")
        return web.json_response({"bookings": await self.bookings.of_case(who, case_id)})

    async def book(self, request: web.Request) -> web.Response:
        who = await self._who(request)
        body = await read_body(request, BOOK)
        if isinstance(who, Party):
            if "case_id" in body or "party_position" in body:
                raise bad_request("A party books for themselves: no case_id, no party_position.")
            case, position = who.case, who.position
        else:
            if "case_id" not in body or "party_position" not in body:
                raise bad_request("Staff name the case_id and the party_position.")
            case = await self.bookings.cases.readable(body["case_id"], who)
            position = body["party_position"]
        done = await self.bookings.book(who, case, position, body, time.time())
        return web.json_response(done, status=201)

    async def move(self, request: web.Request) -> web.Response:
        who = await self._who(request)
        body = await read_body(request, MOVE)
        done = await self.bookings.reschedule(
            who, request.match_info["booking_id"], body["starts_at"], body["reason"], time.time()
        )
        return web.json_response(done)

    async def cancel(self, request: web.Request) -> web.Response:
        who = await self._who(request)
        body = await read_body(request, CANCEL)
        done = await self.bookings.cancel(
            who, request.match_info["booking_id"], body["reason"], time.time()
        )
        return web.json_response(done)

    async def calendar(self, request: web.Request) -> web.Response:
        actor = self.actors.staff(request)
        first, last = self._dates(request)
        mediator_id = _query(request, "mediator_id", ID_PATTERN) or actor.id
        return web.json_response(await self.bookings.calendar(actor, mediator_id, first, last))
