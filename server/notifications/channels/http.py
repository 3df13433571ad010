"""One HTTP request to a provider, for the SMS and WeChat channels: a body made from a
template, the answer checked (status, then a success field in a JSON body), each failure
a `DeliveryError` whose reason names no person (the provider's body is not echoed)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tiaojie.server.notifications.channels import DeliveryError


@dataclass(frozen=True)
class HttpTarget:
    url: str
    method: str = "POST"
    #: "json" or "form"
    body: str = "json"
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    #: a dotted path in the JSON answer ("" : the HTTP status alone decides)
    success_field: str = ""
    success_value: str = ""


def fill(template: Any, values: dict[str, str]) -> Any:
    """The body template with each `{name}` in its strings replaced (not format(): braces
    of JSON stay as they are); a string that is exactly `{name}` takes the value itself."""
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template
    return template


def _field(answer: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(answer, dict) or part not in answer:
            return None
        answer = answer[part]
    return answer


async def post(target: HttpTarget, body: dict[str, Any]) -> None:
    """Send `body`; raise DeliveryError unless the provider says it was accepted."""
    timeout = aiohttp.ClientTimeout(total=target.timeout)
    kwargs: dict[str, Any] = {"json": body} if target.body == "json" else {"data": body}
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(target.method, target.url, headers=target.headers, **kwargs) as r,
        ):
            text = await r.text()
            status = r.status
    except TimeoutError:
        raise DeliveryError(f"timeout after {target.timeout:g} s") from None
    except aiohttp.ClientError as error:
        raise DeliveryError(f"connection failed: {type(error).__name__}") from None
    if status >= 400:
        raise DeliveryError(f"HTTP {status}", permanent=status in (400, 401, 403, 404))
    if not target.success_field:
        return
    try:
        answer = json.loads(text)
    except ValueError:
        raise DeliveryError(f"HTTP {status}: the answer is not JSON") from None
    got = _field(answer, target.success_field)
    if str(got) != target.success_value:
        code = got if isinstance(got, int | str) and len(str(got)) <= 40 else "?"
        raise DeliveryError(f"provider error: {target.success_field}={code}")
