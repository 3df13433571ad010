"""JSON Schemas of every REST body and signalling payload (used to validate and to document).

Every string is checked by the text rules (server/validation.py, signing/text.py): what
people type has `format: "text"` (one line) or `"multiline-text"` and is normalised;
SDP has `"sdp"`; ids, tokens and enums are refused if they hold what no text may hold.
"""

from __future__ import annotations

from tiaojie.archive.layout import RECORDING_ID_PATTERN
from tiaojie.server.roles import INVITABLE
from tiaojie.server.validation import Schema
from tiaojie.signing import model as m
from tiaojie.signing.text import MULTILINE, TEXT
from tiaojie.signing.text import SDP as SDP_FORMAT

ID_PATTERN = r"[A-Za-z0-9_-]{8,64}"
NAME: Schema = {"type": "string", "format": TEXT, "minLength": 1, "maxLength": 64}
PARTICIPANT_ID: Schema = {"type": "string", "pattern": ID_PATTERN}
SDP: Schema = {"type": "string", "format": SDP_FORMAT, "minLength": 10, "maxLength": 60000}
RECORDING_ID: Schema = {"type": "string", "pattern": RECORDING_ID_PATTERN}
#: A chat message's length limit, in characters of its normal form (server/chat.py).
MAX_CHAT_CHARS = 1000
#: The mediator's notice to everyone (server/notices.py): one short line.
MAX_NOTICE_CHARS = 200
#: A caucus timer, in whole minutes (server/caucus_timer.py).
CAUCUS_MINUTES: Schema = {"type": "integer", "minimum": 1, "maximum": 240}
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
        "title": {"type": "string", "format": TEXT, "minLength": 1, "maxLength": 200},
        "lobby": {"type": "boolean", "default": True},
        "max_participants": {"type": "integer", "minimum": 2, "maximum": 100, "default": 12},
        # admins only: the mediator account that owns the room (its organisation's room)
        # and the organisation (server/accounts/, docs/ACCOUNTS.md)
        "owner_id": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
        "organisation_id": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
    },
    ["title"],
)

CREATE_INVITE = _object(
    {
        "role": {"type": "string", "enum": sorted(str(r) for r in INVITABLE)},
        "name": NAME,
        "expires_in": {"type": "integer", "minimum": 60, "maximum": 30 * 86400, "default": 86400},
        # a party's side of the dispute, shown to everyone and put on the agreement
        # (ignored for the other roles)
        "side": {"type": "string", "enum": list(m.PARTY_ROLES)},
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
    "admit_all": _EMPTY,
    "deny": _TARGET,
    "mute": _TARGET_TRACK,
    "request_unmute": _TARGET_TRACK,
    "remove": _TARGET,
    "send_to_lobby": _TARGET,
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
                "maxItems": 5,
                "items": _object(
                    {
                        "mid": {"type": "string", "minLength": 1, "maxLength": 32},
                        "source": {"type": "string", "enum": ["camera", "microphone", "screen"]},
                        "backup": {"type": "boolean"},
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
    # trickle ICE: one candidate the browser gathered after it sent its offer or answer
    "ice_candidate": _object(
        {
            "connection": {"type": "string", "enum": ["publisher", "subscriber"]},
            "candidate": {"type": "string", "pattern": "^candidate:[^\\r\\n]*$", "maxLength": 512},
            "sdpMid": {"type": "string", "maxLength": 32},
        },
        ["connection", "candidate"],
    ),
    "chat_send": _object(
        {
            "text": {
                "type": "string",
                "format": MULTILINE,
                "minLength": 1,
                "maxLength": MAX_CHAT_CHARS,
            },
            "to": PARTICIPANT_ID,
        },
        ["text"],
    ),
    "start_recording": _EMPTY,
    "stop_recording": _EMPTY,
    "recording_consent": _object(
        {"recording_id": RECORDING_ID, "accepted": {"type": "boolean"}},
        ["recording_id", "accepted"],
    ),
    # screening and caucuses (server/separation.py, server/caucus.py)
    "screen": _object(
        {
            "participant_id": PARTICIPANT_ID,
            "from": PARTICIPANT_ID,
            "mode": {"type": "string", "enum": ["none", "video", "all"]},
        },
        ["participant_id", "from", "mode"],
    ),
    "caucus_open": _object(
        {
            "members": {"type": "array", "maxItems": 20, "items": PARTICIPANT_ID},
            "title": {"type": "string", "format": TEXT, "maxLength": 100},
            # an optional timer: it warns the members and the mediators, closes nothing
            "minutes": CAUCUS_MINUTES,
        },
        ["members"],
    ),
    "caucus_timer": _object(
        # without `minutes` the caucus's timer is cleared
        {"caucus_id": {"type": "string", "pattern": ID_PATTERN}, "minutes": CAUCUS_MINUTES},
        ["caucus_id"],
    ),
    "caucus_record": _object(
        {"caucus_id": {"type": "string", "pattern": ID_PATTERN}, "record": {"type": "boolean"}},
        ["caucus_id", "record"],
    ),
    "caucus_recording_consent": _object(
        {"caucus_id": {"type": "string", "pattern": ID_PATTERN}, "accepted": {"type": "boolean"}},
        ["caucus_id", "accepted"],
    ),
    "caucus_broadcast": _object(
        {"text": {"type": "string", "format": TEXT, "minLength": 1, "maxLength": MAX_NOTICE_CHARS}},
        ["text"],
    ),
    "caucus_move": _object(
        {
            "participant_id": PARTICIPANT_ID,
            # a caucus id; absent for the main room (the validator has no null type)
            "caucus_id": {"type": "string", "pattern": ID_PATTERN},
        },
        ["participant_id"],
    ),
    "caucus_close": _object(
        {"caucus_id": {"type": "string", "pattern": ID_PATTERN}}, ["caucus_id"]
    ),
    "caucus_close_all": _EMPTY,
    "caucus_request": _object(
        # "mediator", or the participant id of an expert
        {"with": {"type": "string", "pattern": ID_PATTERN}},
        ["with"],
    ),
    "caucus_decline": _TARGET,
}

#: Events whose payload may exceed the default 16 KiB (SDP with all candidates).
LARGE_EVENTS = {"publish": 64 * 1024, "subscriber_answer": 64 * 1024}


# -- the agreement (server/agreements/; limits of signing/model.py) ------------------------
def _text(limit: int, min_length: int = 0, *, multiline: bool = False) -> Schema:
    """A text field of the agreement, with the model's limit and normal form."""
    return {
        "type": "string",
        "format": MULTILINE if multiline else TEXT,
        "minLength": min_length,
        "maxLength": limit,
    }


def _agreement_events() -> dict[str, Schema]:
    fingerprint: Schema = {"type": "string", "pattern": "[0-9a-f]{64}"}
    party = _object(
        {
            "name": _text(m.MAX_NAME, 1),
            "role": {"type": "string", "enum": list(m.PARTY_ROLES)},
            "id_number": _text(m.MAX_ID_NUMBER),
            # who signs this line: the participant (invite) id of a party of the room
            "participant_id": PARTICIPANT_ID,
        },
        ["name", "role"],
    )
    return {
        "agreement_draft": _object(
            {
                "case_number": _text(m.MAX_CASE_NUMBER, 1),
                "language": {"type": "string", "enum": list(m.LANGUAGES), "default": "zh-CN"},
                "parties": {"type": "array", "maxItems": m.MAX_PARTIES, "items": party},
                "mediator": _text(m.MAX_NAME),
                "experts": {
                    "type": "array",
                    "maxItems": m.MAX_EXPERTS,
                    "items": _text(m.MAX_NAME, 1),
                },
                "facts": _text(m.MAX_FACTS, multiline=True),
                "terms": {
                    "type": "array",
                    "maxItems": m.MAX_TERMS,
                    "items": _text(m.MAX_TERM, 1, multiline=True),
                },
                "performance": _text(m.MAX_PERFORMANCE, multiline=True),
                "date": _text(m.MAX_DATE),
                "place": _text(m.MAX_PLACE),
            },
            ["case_number"],
        ),
        "agreement_request_signatures": _object({"fingerprint": fingerprint}, ["fingerprint"]),
        "agreement_sign": _object(
            {
                "fingerprint": fingerprint,
                "consent": {"type": "boolean"},
                "name": _text(m.MAX_NAME, 1),
                # data:image/png;base64,... (at most 200 KiB of PNG: server.agreements)
                "mark": {"type": "string", "minLength": 1, "maxLength": AGREEMENT_SIGN_LIMIT},
            },
            ["fingerprint", "consent", "name", "mark"],
        ),
        "agreement_finalize": _EMPTY,
        "agreement_prefill": _EMPTY,
    }


#: The draft carries the whole text (Chinese is 6 bytes per character as JSON \u escapes);
#: a signature carries the handwritten mark (a PNG of at most 200 KiB, as base64).
AGREEMENT_DRAFT_LIMIT = 256 * 1024
AGREEMENT_SIGN_LIMIT = 300 * 1024
EVENTS.update(_agreement_events())
LARGE_EVENTS.update(
    {"agreement_draft": AGREEMENT_DRAFT_LIMIT, "agreement_sign": AGREEMENT_SIGN_LIMIT}
)
