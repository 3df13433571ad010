"""The notifications' configuration, from the environment (docs/NOTIFICATIONS.md lists
every variable): which channel takes phone numbers and which e-mail addresses, each
channel's settings, the worker's retry policy and the reminders' lead times.

Nothing configured: every message goes to the `log` channel (development).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tiaojie.server.notifications.channels import Channel
from tiaojie.server.notifications.channels.http import HttpTarget
from tiaojie.server.notifications.channels.log import LogChannel
from tiaojie.server.notifications.channels.sms import SmsChannel, SmsSettings
from tiaojie.server.notifications.channels.smtp import EmailChannel, EmailSettings
from tiaojie.server.notifications.channels.wechat import DEFAULT_BODY, WechatChannel, WechatSettings

HOUR = 3600
DAY = 86400
#: The body most SMS gateways take (Aliyun's field names); change with TIAOJIE_SMS_BODY.
DEFAULT_SMS_BODY: dict[str, Any] = {
    "PhoneNumbers": "{phone}",
    "SignName": "{sign_name}",
    "TemplateCode": "{template_id}",
    "TemplateParam": "{params}",
}


@dataclass(frozen=True)
class Policy:
    """How the worker retries: `max_attempts` tries, waiting `backoff` s, doubled after
    each failure up to `backoff_max`; a claimed message is another worker's until its
    lease (s) runs out (a worker that died mid-send)."""

    max_attempts: int = 6
    backoff: int = 30
    backoff_max: int = 6 * HOUR
    lease: int = 120
    batch: int = 20
    poll: float = 5.0

    def delay(self, attempts: int) -> int:
        return int(min(self.backoff * 2 ** max(attempts - 1, 0), self.backoff_max))


@dataclass(frozen=True)
class Timing:
    """When the reminders are due."""

    deadline_warning: int = 3 * DAY
    follow_up_after: int = 30 * DAY
    #: before the 30 days to apply for judicial confirmation run out (司法确认)
    court_warning: int = 7 * DAY


@dataclass(frozen=True)
class NotifySettings:
    #: the channel for phone numbers ("log", "sms", "wechat") and for e-mail ("log", "email")
    phone_channel: str = "log"
    email_channel: str = "log"
    sms: SmsSettings | None = None
    wechat: WechatSettings | None = None
    email: EmailSettings | None = None
    policy: Policy = field(default_factory=Policy)
    timing: Timing = field(default_factory=Timing)

    def channels(self) -> dict[str, Channel]:
        found: dict[str, Channel] = {"log": LogChannel()}
        if self.sms is not None:
            found["sms"] = SmsChannel(self.sms)
        if self.wechat is not None:
            found["wechat"] = WechatChannel(self.wechat)
        if self.email is not None:
            found["email"] = EmailChannel(self.email)
        return found

    def channel_for(self, address_kind: str | None) -> str:
        return self.email_channel if address_kind == "email" else self.phone_channel

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifySettings:
        e = os.environ if env is None else env

        def get(name: str, default: str = "") -> str:
            return e.get(f"TIAOJIE_{name}", default)

        def target(prefix: str, field_default: str, value_default: str) -> HttpTarget:
            return HttpTarget(
                url=get(f"{prefix}_URL"),
                method=get(f"{prefix}_METHOD", "POST").upper(),
                body=get(f"{prefix}_FORMAT", "json"),
                headers=_json(get(f"{prefix}_HEADERS", "{}"), f"TIAOJIE_{prefix}_HEADERS"),
                timeout=float(get(f"{prefix}_TIMEOUT", "10")),
                success_field=get(f"{prefix}_SUCCESS_FIELD", field_default),
                success_value=get(f"{prefix}_SUCCESS_VALUE", value_default),
            )

        sms = None
        if get("SMS_URL"):
            sms = SmsSettings(
                target=target("SMS", "Code", "OK"),
                body_template=_json(get("SMS_BODY"), "TIAOJIE_SMS_BODY") or DEFAULT_SMS_BODY,
                sign_name=get("SMS_SIGN_NAME"),
                template_ids=_json(get("SMS_TEMPLATES", "{}"), "TIAOJIE_SMS_TEMPLATES"),
            )
        wechat = None
        if get("WECHAT_URL"):
            wechat = WechatSettings(
                target=target("WECHAT", "errcode", "0"),
                body_template=_json(get("WECHAT_BODY"), "TIAOJIE_WECHAT_BODY") or DEFAULT_BODY,
                template_ids=_json(get("WECHAT_TEMPLATES", "{}"), "TIAOJIE_WECHAT_TEMPLATES"),
            )
        email = None
        if get("SMTP_HOST"):
            email = EmailSettings(
                host=get("SMTP_HOST"),
                port=int(get("SMTP_PORT", "587")),
                security=get("SMTP_SECURITY", "starttls"),
                user=get("SMTP_USER"),
                password=get("SMTP_PASSWORD"),
                sender=get("SMTP_FROM", "tiaojie@localhost"),
                ca_file=get("SMTP_CA_FILE"),
            )
        default_phone = "sms" if sms else "wechat" if wechat else "log"
        return cls(
            phone_channel=get("NOTIFY_PHONE_CHANNEL", default_phone),
            email_channel=get("NOTIFY_EMAIL_CHANNEL", "email" if email else "log"),
            sms=sms,
            wechat=wechat,
            email=email,
            policy=Policy(
                max_attempts=int(get("NOTIFY_MAX_ATTEMPTS", "6")),
                backoff=int(get("NOTIFY_BACKOFF", "30")),
            ),
            timing=Timing(
                deadline_warning=int(get("NOTIFY_DEADLINE_WARNING_DAYS", "3")) * DAY,
                follow_up_after=int(get("NOTIFY_FOLLOW_UP_DAYS", "30")) * DAY,
                court_warning=int(get("NOTIFY_COURT_DEADLINE_DAYS", "7")) * DAY,
            ),
        )


def _json(text: str, name: str) -> Any:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"{name} is not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object")
    return value
