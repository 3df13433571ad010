"""An organisation's case settings: its name and contact as the public progress page shows
them, how its case numbers look, and how many days a case has from acceptance.

Kept in `case_settings`, one row per organisation id; an organisation without a row
uses DEFAULTS. (Staff accounts own the organisations themselves; these are the settings
cases need of one, by its id.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tiaojie.server.cases.numbering import DEFAULT_FORMAT
from tiaojie.server.validation import Schema
from tiaojie.signing.text import TEXT

#: The organisation public reports go to until one is configured.
DEFAULT_ORGANISATION = "org-default"
DEFAULT_DEADLINE_DAYS = 30


@dataclass(frozen=True)
class OrganisationSettings:
    organisation_id: str
    name: str = "人民调解委员会"
    short_name: str = "人"
    type_word: str = "调"
    number_format: str = DEFAULT_FORMAT
    deadline_days: int = DEFAULT_DEADLINE_DAYS
    contact: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(limit: int, min_length: int = 1) -> Schema:
    return {"type": "string", "format": TEXT, "minLength": min_length, "maxLength": limit}


#: PUT /api/case-config/organisations/{organisation_id}
SETTINGS: Schema = {
    "type": "object",
    "properties": {
        "name": _text(64),
        "short_name": _text(8),
        "type_word": _text(8),
        "number_format": _text(64),
        "deadline_days": {"type": "integer", "minimum": 1, "maximum": 365},
        "contact": _text(200, 0),
    },
    "required": [],
    "additionalProperties": False,
}
