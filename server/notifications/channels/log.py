"""The development channel: a log line saying a message was "sent"; no address, no text."""

from __future__ import annotations

import logging

from tiaojie.server.notifications.channels import Outgoing

log = logging.getLogger("tiaojie.notifications")


class LogChannel:
    name = "log"

    async def send(self, message: Outgoing) -> None:
        log.info(
            "notification %s (%s) for case %s sent by the log channel",
            message.id,
            message.kind,
            message.case_id,
        )
