"""The worker that delivers the outbox: claims due rows, renders each with its links,
sends it by its channel, and records the outcome: sent; queued again after a backoff
(doubled per failure); failed with the reason after the last attempt or a permanent
refusal; cancelled when it no longer applies (a reminder of a session that ended).

The clock is injectable (`clock`), and `run_once` does one round, so tests drive the
worker through hours of backoff without waiting. `start` runs rounds in an asyncio task
until `stop`: after a round that found nothing it waits `poll` seconds or until `wake`.
Logs name the message, its kind and case, never an address, a name or a link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tiaojie.server.db import Database
from tiaojie.server.db.database import FAILURES
from tiaojie.server.notifications import outbox, templates
from tiaojie.server.notifications.channels import Channel, DeliveryError, Outgoing
from tiaojie.server.notifications.config import NotifySettings
from tiaojie.server.notifications.outbox import CANCELLED, FAILED, QUEUED, SENT

log = logging.getLogger("tiaojie.notifications")

#: The links and checks of a message at sending time: its extra variables (the links
#: with tokens, never stored), or None when it no longer applies (cancelled).
Resolver = Callable[[dict[str, Any]], Awaitable[dict[str, str] | None]]
#: The templates in force (the defaults with the admins' changes).
Texts = Callable[[], Awaitable[dict[str, str]]]


class Worker:
    def __init__(
        self,
        database: Database,
        settings: NotifySettings,
        resolve: Resolver,
        texts: Texts,
        clock: Callable[[], float] = time.time,
        channels: dict[str, Channel] | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.policy = settings.policy
        self.resolve = resolve
        self.texts = texts
        self.clock = clock
        self.channels = channels if channels is not None else settings.channels()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Claim what is due now and deliver it; how many were claimed."""
        now = int(self.clock())
        async with self.database.write() as conn:
            rows = await outbox.claim(conn, now, self.policy.lease, self.policy.batch)
        if rows:
            texts = await self.texts()
            for row in rows:
                await self._deliver(row, texts)
        return len(rows)

    async def run_until_idle(self, rounds: int = 100) -> None:
        """Rounds until one finds nothing due (tests; `rounds` bounds a bug's loop)."""
        for _ in range(rounds):
            if not await self.run_once():
                return
        raise RuntimeError("the outbox did not become idle")

    async def _deliver(self, row: dict[str, Any], texts: dict[str, str]) -> None:
        name = self.settings.channel_for(row["address_kind"])
        attempts = row["attempts"]
        status, error, next_at = SENT, None, None
        try:
            extra = await self.resolve(row)
            if extra is None:
                status = CANCELLED
            else:
                channel = self.channels.get(name)
                if channel is None:
                    raise DeliveryError(f"channel {name} is not configured", permanent=True)
                variables = {k: str(v) for k, v in {**row["variables"], **extra}.items()}
                text = templates.render(texts[row["kind"]], variables)
                label = templates.KINDS[row["kind"]].label
                await channel.send(
                    Outgoing(
                        row["id"],
                        row["kind"],
                        row["case_id"],
                        row["address"],
                        text,
                        subject=f"调解通知：{label}",
                        variables=variables,
                    )
                )
        except DeliveryError as failure:
            error = failure.reason
            if failure.permanent or attempts >= self.policy.max_attempts:
                status = FAILED
            else:
                status = QUEUED
                next_at = int(self.clock()) + self.policy.delay(attempts)
        except Exception as failure:  # a bug or a database failure: retried like a refusal
            error = f"internal: {type(failure).__name__}"
            log.exception("notification %s: delivery failed", row["id"])
            status = FAILED if attempts >= self.policy.max_attempts else QUEUED
            next_at = int(self.clock()) + self.policy.delay(attempts) if status == QUEUED else None
        log.log(
            logging.WARNING if status in (FAILED, QUEUED) else logging.INFO,
            "notification %s (%s) for case %s by %s, attempt %d: %s%s",
            row["id"],
            row["kind"],
            row["case_id"],
            name,
            attempts,
            status,
            f" ({error})" if error else "",
        )
        async with self.database.write() as conn:
            await outbox.finish(
                conn,
                row["id"],
                attempts,
                status,
                int(self.clock()),
                channel=name if status != CANCELLED else None,
                error=error,
                next_at=next_at,
            )

    # -- the background task ---------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notifications")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                found = await self.run_once()
            except FAILURES as error:
                log.warning("notifications: the database failed: %s", type(error).__name__)
                found = 0
            if not found:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.policy.poll)
