"""The channels a message can go out by, behind one interface (`Channel.send`).

- `log` (log.py): the default, for development: logs that a message of a kind for a case
  was "sent" (never its address or text).
- `sms` (sms.py): an SMS gateway over HTTP, shaped by configuration (URL, method, JSON or
  form body template, template id and signature name 签名, the success field and value).
- `wechat` (wechat.py): WeChat template / subscribe messages through a configured HTTP
  endpoint.
- `email` (email.py): SMTP with STARTTLS or TLS (the standard library, in a thread).

A channel raises `DeliveryError` when a message did not go out; `permanent` ones (a
refused address) are not tried again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Outgoing:
    """One message as a channel sends it."""

    id: str
    kind: str
    case_id: str
    address: str
    text: str
    subject: str = ""
    variables: dict[str, str] = field(default_factory=dict)


class DeliveryError(Exception):
    """A message that did not go out: why (no personal data), and whether a retry helps."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent


class Channel(Protocol):
    name: str

    async def send(self, message: Outgoing) -> None: ...
