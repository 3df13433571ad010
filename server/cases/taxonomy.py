"""The dispute taxonomy: the types a case may have, configurable (`PUT /api/case-config`).

Each type is {"code", "name", "name_en"}; a case keeps its type's code and its name as it
was when the case was registered, so changing the list never rewrites old cases.
"""

from __future__ import annotations

from typing import Any

from tiaojie.server.errors import bad_request
from tiaojie.server.validation import Schema
from tiaojie.signing.text import TEXT

CODE_PATTERN = r"[a-z0-9_]{1,32}"

DEFAULT_TYPES: list[dict[str, str]] = [
    {"code": "marriage_family", "name": "婚姻家庭", "name_en": "Marriage and family"},
    {"code": "neighbourhood", "name": "邻里纠纷", "name_en": "Neighbours"},
    {"code": "housing_land", "name": "房屋宅基地", "name_en": "Housing and homestead land"},
    {"code": "contract", "name": "合同纠纷", "name_en": "Contract"},
    {"code": "damages", "name": "损害赔偿", "name_en": "Compensation for damage"},
    {"code": "labour", "name": "劳动争议", "name_en": "Labour"},
    {"code": "property_management", "name": "物业纠纷", "name_en": "Property management"},
    {"code": "land_requisition", "name": "征地拆迁", "name_en": "Land requisition and demolition"},
    {"code": "consumer", "name": "消费纠纷", "name_en": "Consumer"},
    {"code": "other", "name": "其他", "name_en": "Other"},
]

TYPE: Schema = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "pattern": CODE_PATTERN},
        "name": {"type": "string", "format": TEXT, "minLength": 1, "maxLength": 32},
        "name_en": {"type": "string", "format": TEXT, "minLength": 1, "maxLength": 64},
    },
    "required": ["code", "name"],
    "additionalProperties": False,
}
TYPES: Schema = {"type": "array", "items": TYPE, "maxItems": 100}


def check_types(types: list[dict[str, Any]]) -> None:
    codes = [t["code"] for t in types]
    if not codes:
        raise bad_request("dispute_types must hold at least one type.")
    if len(set(codes)) != len(codes):
        raise bad_request("dispute_types: each code may appear once.")


def find(types: list[dict[str, Any]], code: str) -> dict[str, Any]:
    for item in types:
        if item["code"] == code:
            return item
    raise bad_request(f"dispute_type {code!r} is not one of the configured dispute types.")
