"""E-mail (the `email` channel) over SMTP: STARTTLS (port 587), implicit TLS (465) or
plain (a relay on the same host; tests), with a login when configured. The standard
library's smtplib (no dependency), run in a thread so the event loop never waits on the
network."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from tiaojie.server.notifications.channels import DeliveryError, Outgoing


@dataclass(frozen=True)
class EmailSettings:
    host: str
    port: int = 587
    #: "starttls", "tls" or "none"
    security: str = "starttls"
    user: str = ""
    password: str = ""
    sender: str = "tiaojie@localhost"
    timeout: float = 15.0
    #: a CA file to trust (a private relay); the system's otherwise
    ca_file: str = ""


class EmailChannel:
    name = "email"

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    async def send(self, message: Outgoing) -> None:
        await asyncio.to_thread(self._send, message)

    def _send(self, message: Outgoing) -> None:
        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.sender
        mail["To"] = message.address
        mail["Subject"] = message.subject or "调解通知"
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(idstring=message.id)
        mail.set_content(message.text)
        context = ssl.create_default_context(cafile=s.ca_file or None)
        try:
            if s.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=context
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                if s.security == "starttls":
                    client.starttls(context=context)
                if s.user:
                    client.login(s.user, s.password)
                client.send_message(mail)
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("SMTP: the recipient was refused", permanent=True) from None
        except smtplib.SMTPResponseException as error:
            raise DeliveryError(
                f"SMTP {error.smtp_code}", permanent=500 <= error.smtp_code < 600
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"SMTP: {type(error).__name__}") from None
