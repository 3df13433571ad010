"""The regions: a configurable hierarchy of districts, streets and communities.

Each node is {"code", "name", "children"}; a child's code starts with its parent's (as in
the national administrative division codes: 6 digits a district, 9 a street, 12 a
community), so "cases in this street" is a prefix of their region code. A case keeps its
region's code and the names on the path to it as they were when it was registered.
The default tree is a placeholder to be replaced with the real one.
"""

from __future__ import annotations

from typing import Any

from tiaojie.server.errors import bad_request
from tiaojie.server.validation import Schema
from tiaojie.signing.text import TEXT

CODE_PATTERN = r"[0-9A-Za-z]{1,32}"
LEVELS = ("district", "street", "community")

DEFAULT_REGIONS: list[dict[str, Any]] = [
    {
        "code": "900001",
        "name": "示例区",
        "children": [
            {
                "code": "900001001",
                "name": "示例街道",
                "children": [
                    {"code": "900001001001", "name": "第一社区"},
                    {"code": "900001001002", "name": "第二社区"},
                    {"code": "900001001003", "name": "第三社区"},
                ],
            }
        ],
    }
]


def _node(depth: int) -> Schema:
    node: Schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": CODE_PATTERN},
            "name": {"type": "string", "format": TEXT, "minLength": 1, "maxLength": 64},
        },
        "required": ["code", "name"],
        "additionalProperties": False,
    }
    if depth < len(LEVELS) - 1:
        node["properties"]["children"] = {
            "type": "array",
            "maxItems": 500,
            "items": _node(depth + 1),
        }
    return node


REGIONS: Schema = {"type": "array", "maxItems": 200, "items": _node(0)}


def check_regions(tree: list[dict[str, Any]]) -> None:
    """Codes unique, and each child's code starting with its parent's."""
    seen: set[str] = set()

    def walk(nodes: list[dict[str, Any]], parent: str) -> None:
        for node in nodes:
            code = node["code"]
            if code in seen:
                raise bad_request(f"regions: the code {code} appears twice.")
            if not code.startswith(parent) or code == parent:
                raise bad_request(f"regions: {code} must start with its parent's code {parent}.")
            seen.add(code)
            walk(node.get("children", []), code)

    if not tree:
        raise bad_request("regions must hold at least one district.")
    walk(tree, "")


def path_to(tree: list[dict[str, Any]], code: str) -> list[dict[str, str]]:
    """The nodes from the district down to `code`, each {"level", "code", "name"}."""

    def walk(nodes: list[dict[str, Any]], depth: int) -> list[dict[str, str]] | None:
        for node in nodes:
            here = {"level": LEVELS[depth], "code": node["code"], "name": node["name"]}
            if node["code"] == code:
                return [here]
            if code.startswith(node["code"]):
                below = walk(node.get("children", []), depth + 1)
                if below is not None:
                    return [here, *below]
        return None

    found = walk(tree, 0)
    if found is None:
        raise bad_request(f"region {code!r} is not one of the configured regions.")
    return found


def is_community(tree: list[dict[str, Any]], code: str) -> bool:
    return len(path_to(tree, code)) == len(LEVELS)
