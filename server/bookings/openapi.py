"""The bookings' part of the OpenAPI document (server/openapi.py adds it)."""

from __future__ import annotations

from typing import Any

from tiaojie.server.bookings.http import BOOK, CANCEL, DATE, MOVE, RULE
from tiaojie.server.openapi_parts import operation
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.validation import Schema

_STR: Schema = {"type": ["string", "null"]}
_OBJECT: Schema = {"type": "object"}


def _query(name: str, description: str, pattern: str | None = None) -> dict[str, Any]:
    schema: Schema = {"type": "string", "maxLength": 64}
    if pattern:
        schema = {"type": "string", "pattern": f"^{pattern}$"}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


PARTY = [
    _query("code", "a party's own link: the case's code", r"[A-Za-z0-9_-]{22}"),
    _query("key", "a party's own link: their key (with code)", r"[A-Za-z0-9_-]{22}"),
]
RANGE = [
    _query("from", "first local date (default today)", DATE),
    _query("to", "last local date (default 13 days on; at most 62 days)", DATE),
]
BOOKING: Schema = {
    "type": "object",
    "properties": {
        "booking_id": {"type": "string"},
        "case_id": {"type": "string"},
        "party_position": {"type": "integer"},
        "provider_kind": {"type": "string", "enum": ["expert", "mediator"]},
        "provider_id": {"type": "string"},
        "provider_name": {"type": "string"},
        "specialty": _STR,
        "mediator_id": _STR,
        "starts_at": {"type": "integer"},
        "ends_at": {"type": "integer"},
        "status": {"type": "string", "enum": ["active", "cancelled", "rescheduled"]},
        "room_id": {"type": "string"},
        "reason": _STR,
        "replaced_by": _STR,
        "created_at": {"type": "integer"},
    },
    "required": ["booking_id", "case_id", "provider_kind", "starts_at", "ends_at", "status"],
}
BOOKINGS: Schema = {
    "type": "object",
    "properties": {"bookings": {"type": "array", "items": BOOKING}},
    "required": ["bookings"],
}
_booking_id = {
    "name": "booking_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
}
_availability_id = {**_booking_id, "name": "availability_id"}
_ERRORS = (400, 401, 403, 404, 409, 415, 503)


def paths() -> dict[str, Any]:
    return {
        "/api/availability": {
            "get": operation(
                "Free slots. A party (code, key): of the available experts of one kind "
                "(specialty), or of their case's mediator; staff: a provider's rules "
                "(weekly, off, extra) and free slots, times in the installation's zone",
                200,
                _OBJECT,
                400,
                401,
                403,
                404,
                503,
                optional_auth=True,
                parameters=[
                    *PARTY,
                    _query("specialty", "a kind of expert (律师, 心理咨询师, …); party"),
                    _query("provider_kind", "expert or mediator (staff; default mediator)"),
                    _query("provider_id", "the expert or mediator (staff)", ID_PATTERN),
                    *RANGE,
                ],
            ),
            "post": operation(
                "Add an availability rule: a mediator their own, coordinators and the "
                "admin anyone's (experts have no accounts)",
                201,
                _OBJECT,
                *_ERRORS,
                body=RULE,
            ),
        },
        "/api/availability/{availability_id}": {
            "parameters": [_availability_id],
            "delete": operation(
                "Remove an availability rule (bookings made stay)",
                200,
                _OBJECT,
                401,
                403,
                404,
                503,
            ),
        },
        "/api/bookings": {
            "get": operation(
                "A party's own bookings and the kinds of expert they may book (code, key); "
                "staff: a case's bookings (case_id)",
                200,
                BOOKINGS,
                400,
                401,
                403,
                404,
                503,
                optional_auth=True,
                parameters=[*PARTY, _query("case_id", "the case (staff)", ID_PATTERN)],
            ),
            "post": operation(
                "Book a free slot: a party for themselves (code, key), staff for a party "
                "(case_id, party_position); makes the private room and sends the links; "
                "409 slot_taken when someone else was faster",
                201,
                BOOKING,
                *_ERRORS,
                body=BOOK,
                optional_auth=True,
                parameters=PARTY,
            ),
        },
        "/api/bookings/{booking_id}": {
            "parameters": [_booking_id],
            "put": operation(
                "Move a booking to another free slot, with a reason (a new room; the old "
                "links stop working)",
                200,
                BOOKING,
                *_ERRORS,
                body=MOVE,
                optional_auth=True,
                parameters=PARTY,
            ),
            "delete": operation(
                "Cancel a booking, with a reason (its room ends; both sides are told)",
                200,
                BOOKING,
                *_ERRORS,
                body=CANCEL,
                optional_auth=True,
                parameters=PARTY,
            ),
        },
        "/api/calendar": {
            "get": operation(
                "A mediator's sessions and bookings from one local date to another (a "
                "mediator their own; coordinators and the admin anyone's)",
                200,
                _OBJECT,
                400,
                401,
                403,
                503,
                parameters=[_query("mediator_id", "default: the caller", ID_PATTERN), *RANGE],
            )
        },
    }
