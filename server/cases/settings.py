"""An organisation's case settings: its name and contact as the public progress page shows
them, how its case numbers look, and how many days a case has from acceptance.

The organisations are the staff accounts' (server/accounts/): the name is always the
organisation's own, and the short name in case numbers is the organisation's short name
unless its case settings give one (an organisation made without a short name has its
name as short name: that is no short name for a case number, so the default `人` is
used then). What is set for cases is kept in `case_settings`, one row per organisation
id, holding only the fields set; the rest are the defaults below. `org-default` is the
placeholder organisation of a server that has none yet (its name may be set here).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tiaojie.server.accounts.model import Organisation
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


def organisation_settings(
    organisation_id: str, organisation: Organisation | None, stored: dict[str, Any]
) -> OrganisationSettings:
    """The settings of `organisation_id`: the defaults, under the organisation's own name
    and short name (`organisation`, None for the placeholder), under what is `stored`."""
    values: dict[str, Any] = {}
    if organisation is not None:
        values["name"] = organisation.name
        if organisation.short_name and organisation.short_name != organisation.name[:32]:
            values["short_name"] = organisation.short_name
    known = set(OrganisationSettings.__dataclass_fields__) - {"organisation_id"}
    for name, value in stored.items():
        if name in known and not (name == "name" and organisation is not None):
            values[name] = value
    return OrganisationSettings(organisation_id=organisation_id, **values)


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
