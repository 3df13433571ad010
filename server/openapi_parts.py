"""The pieces every part of the OpenAPI document is built from: a schema reference, a
path parameter, and an operation with its answers. server/openapi.py, and the accounts'
and cases' own documents (server/accounts/openapi.py, server/cases/openapi.py), build
their operations here, so one operation looks the same wherever it is described."""

from __future__ import annotations

from typing import Any

from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.validation import Schema


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR = ref("Error")


def path_param(name: str, pattern: str = ID_PATTERN, description: str = "") -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{pattern}$"},
    }
    if description:
        parameter["description"] = description
    return parameter


def operation(
    summary: str,
    status: int,
    schema: Schema | None,
    *errors: int,
    description: str = "success",
    content: str = "application/json",
    always_content: bool = False,
    body: Schema | None = None,
    public: bool = False,
    optional_auth: bool = False,
    headers: dict[int, dict[str, Any]] | None = None,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One operation: its answer `status` (with `schema` as `content`; an empty content
    when `always_content` and no schema), each error status with the Error schema (and
    its `headers`), the JSON `body` it takes, and who may call it (`public`: anyone;
    `optional_auth`: anyone, more with a token)."""
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = {content: {"schema": schema}}
    elif always_content:
        answer["content"] = {content: {}}
    responses: dict[str, Any] = {str(status): answer}
    for error in errors:
        refused: dict[str, Any] = {
            "description": "error",
            "content": {"application/json": {"schema": ERROR}},
        }
        if headers and error in headers:
            refused["headers"] = headers[error]
        responses[str(error)] = refused
    built: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        built["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if public:
        built["security"] = []
    elif optional_auth:
        built["security"] = [{}, {"bearer": []}]
    if parameters:
        built["parameters"] = parameters
    return built
