"""JSON Schemas of every REST body and signalling payload (used to validate and to document)."""

from __future__ import annotations

from server.roles import Role
from server.validation import Schema

ID_PATTERN = r"[A-Za-z0-9_-]{8,64}"
NAME: Schema = {"type": "string", "minLength": 1, "maxLength": 64}
PARTICIPANT_ID: Schema = {"type": "string", "pattern": ID_PATTERN}
SDP: Schema = {"type": "string", "minLength": 10, "maxLength": 60000}
TRACK: Schema = {"type": "string", "enum": ["audio", "video"], "default": "audio"}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


CREATE_ROOM = _object(
    {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "lobby": {"type": "boolean", "default": True},
        "max_participants": {"type": "integer", "minimum": 2, "maximum": 100, "default": 12},
    },
    ["title"],
)

CREATE_INVITE = _object(
    {
        "role": {"type": "string", "enum": [str(r) for r in Role]},
        "name": NAME,
        "expires_in": {"type": "integer", "minimum": 60, "maximum": 30 * 86400, "default": 86400},
    },
    ["role", "name"],
)

CONNECT_AUTH = {
    "type": "object",
    "properties": {
        "token": {"type": "string", "maxLength": 512},
        "name": NAME,
        "room_id": {"type": "string", "pattern": ID_PATTERN},
    },
    "required": ["token"],
    "additionalProperties": False,
}

_TARGET = _object({"participant_id": PARTICIPANT_ID}, ["participant_id"])
_TARGET_TRACK = _object({"participant_id": PARTICIPANT_ID, "track": TRACK}, ["participant_id"])
_EMPTY = _object({})

#: Payload schema of every client -> server event.
EVENTS: dict[str, Schema] = {
    "admit": _TARGET,
    "deny": _TARGET,
    "mute": _TARGET_TRACK,
    "request_unmute": _TARGET_TRACK,
    "remove": _TARGET,
    "lock": _object({"locked": {"type": "boolean"}}, ["locked"]),
    "end_room": _EMPTY,
    "raise_hand": _object({"raised": {"type": "boolean"}}, ["raised"]),
    "set_muted": _object(
        {"track": {"type": "string", "enum": ["audio", "video"]}, "muted": {"type": "boolean"}},
        ["track", "muted"],
    ),
    "leave": _EMPTY,
    "publish": _object(
        {
            "sdp": SDP,
            "type": {"type": "string", "enum": ["offer"]},
            "tracks": {
                "type": "array",
                "maxItems": 3,
                "items": _object(
                    {
                        "mid": {"type": "string", "minLength": 1, "maxLength": 32},
                        "source": {"type": "string", "enum": ["camera", "microphone", "screen"]},
                    },
                    ["mid", "source"],
                ),
            },
        },
        ["sdp", "type", "tracks"],
    ),
    "subscriber_answer": _object(
        {"sdp": SDP, "type": {"type": "string", "enum": ["answer"]}}, ["sdp", "type"]
    ),
}

#: Events whose payload may exceed the default 16 KiB (SDP with all candidates).
LARGE_EVENTS = {"publish": 64 * 1024, "subscriber_answer": 64 * 1024}
