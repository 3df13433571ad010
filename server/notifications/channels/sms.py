"""SMS through an HTTP gateway, shaped by configuration for the common providers'
request form: a JSON or form body template whose strings may hold `{phone}`,
`{template_id}` (the kind's template id at the provider), `{sign_name}` (签名),
`{params}` (the message's variables as a JSON object string), `{text}` (the rendered
text, for gateways that take free text) and any message variable; the answer is
accepted when its `success_field` equals `success_value` (e.g. Aliyun: `Code` = `OK`;
Tencent Cloud: `Response.Error` absent is not expressible, use a relay)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tiaojie.server.notifications.channels import Outgoing
from tiaojie.server.notifications.channels.http import HttpTarget, fill, post


@dataclass(frozen=True)
class SmsSettings:
    target: HttpTarget
    body_template: dict[str, Any]
    sign_name: str = ""
    #: the provider's template id for each kind (a kind without one sends "")
    template_ids: dict[str, str] = field(default_factory=dict)


class SmsChannel:
    name = "sms"

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings

    async def send(self, message: Outgoing) -> None:
        s = self.settings
        values = {
            **message.variables,
            "phone": message.address,
            "template_id": s.template_ids.get(message.kind, ""),
            "sign_name": s.sign_name,
            "params": json.dumps(message.variables, ensure_ascii=False),
            "text": message.text,
        }
        await post(s.target, fill(s.body_template, values))
