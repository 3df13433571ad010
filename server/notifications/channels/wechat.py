"""WeChat template / subscribe messages through a configured HTTP endpoint (the
official account's or mini program's API, or the centre's own relay that knows each
resident's openid). The body template's strings may hold `{touser}` (the recipient's
address: the case model holds phone numbers, not openids, so a relay maps them),
`{template_id}`, `{data}` (the variables as WeChat's `{"key": {"value": ...}}` object,
when the string is exactly `{data}`), `{text}` and any variable. Accepted when
`success_field` (default `errcode`) equals `success_value` (default `0`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiaojie.server.notifications.channels import Outgoing
from tiaojie.server.notifications.channels.http import HttpTarget, fill, post

DEFAULT_BODY: dict[str, Any] = {
    "touser": "{touser}",
    "template_id": "{template_id}",
    "data": "{data}",
}


@dataclass(frozen=True)
class WechatSettings:
    target: HttpTarget
    body_template: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_BODY))
    template_ids: dict[str, str] = field(default_factory=dict)


class WechatChannel:
    name = "wechat"

    def __init__(self, settings: WechatSettings) -> None:
        self.settings = settings

    async def send(self, message: Outgoing) -> None:
        s = self.settings
        values = {
            **message.variables,
            "touser": message.address,
            "template_id": s.template_ids.get(message.kind, ""),
            "text": message.text,
        }
        data = {k: {"value": v} for k, v in message.variables.items()}
        body = _with_data(fill(s.body_template, values), data)
        await post(s.target, body)


def _with_data(body: Any, data: dict[str, Any]) -> Any:
    if body == "{data}":
        return data
    if isinstance(body, dict):
        return {k: _with_data(v, data) for k, v in body.items()}
    if isinstance(body, list):
        return [_with_data(v, data) for v in body]
    return body
