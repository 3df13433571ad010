"""A small validator for the JSON Schema subset our payload schemas use.

The same schema dicts describe the REST bodies in /api/openapi.json, so the description
and the check cannot drift apart. Supported keywords: type, properties, required,
additionalProperties (false), enum, minLength, maxLength, minimum, maximum, pattern,
items, maxItems, default, format. Defaults are filled in on the returned copy.

Every string is text checked here, once, at the edge, by the text rules of
signing/text.py: `format: "text"` (one line) and `"multiline-text"` are normalised
(NFC, white space) before their length is checked, and the returned copy holds the
normal form; `"sdp"` may hold CR LF line breaks; any other string (ids, tokens,
enums) is refused if it holds a lone surrogate, a control, bidirectional or invisible
character. A refusal is a `bad_request` naming the field and the character.
"""

from __future__ import annotations

import re
from typing import Any

from tiaojie.server.errors import bad_request
from tiaojie.signing.text import check_format

Schema = dict[str, Any]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "array": (list,),
}


def _check_type(value: object, expected: str, where: str) -> None:
    ok = isinstance(value, _TYPES[expected])
    if expected == "integer" and isinstance(value, bool):
        ok = False
    if not ok:
        raise bad_request(f"{where} must be of type {expected}")


def _integral(value: object) -> object:
    """JSON Schema counts 42.0 as an integer (the value, not its spelling): as 42."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def validate(schema: Schema, value: object, where: str = "payload") -> Any:
    """Return `value` (objects copied, defaults filled in) or raise a bad_request error."""
    if schema.get("type") == "integer":
        value = _integral(value)
    if "type" in schema:
        _check_type(value, schema["type"], where)
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        raise bad_request(f"{where} must be one of {allowed}")
    if isinstance(value, str):
        try:
            value = check_format(value, where, schema.get("format"))
        except ValueError as error:
            raise bad_request(str(error)) from None
        if len(value) < schema.get("minLength", 0):
            raise bad_request(f"{where} must be at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise bad_request(f"{where} must be at most {schema['maxLength']} characters")
        if "pattern" in schema and not re.fullmatch(schema["pattern"], value):
            raise bad_request(f"{where} has an invalid format")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise bad_request(f"{where} must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise bad_request(f"{where} must be at most {schema['maximum']}")
    if isinstance(value, dict):
        return _validate_object(schema, value, where)
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise bad_request(f"{where} must have at most {schema['maxItems']} items")
        if "items" in schema:
            return [validate(schema["items"], v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _validate_object(schema: Schema, value: dict[str, Any], where: str) -> dict[str, Any]:
    properties: dict[str, Schema] = schema.get("properties", {})
    if schema.get("additionalProperties", True) is False:
        unknown = sorted(k for k in value if k not in properties)
        if unknown:
            raise bad_request(f"{where} has unknown field(s): {', '.join(unknown)}")
    missing = [k for k in schema.get("required", []) if k not in value]
    if missing:
        raise bad_request(f"{where} is missing required field(s): {', '.join(missing)}")
    out: dict[str, Any] = {}
    for key, sub in properties.items():
        if key in value:
            out[key] = validate(sub, value[key], f"{key}")
        elif "default" in sub:
            out[key] = sub["default"]
    return out
