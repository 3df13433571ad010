"""Caucus timers: the asyncio tasks that wake when a caucus's time is nearly up and when
it is up (server/caucus.py says who hears it and what the chain gets).

A timer only tells: at its end nothing is forced (the mediator decides whether the
caucus goes on). Its end time is stored with the caucus (server/separation.py), so a
server that restarted arms it again when someone enters the room; the stored
`timer_state` makes sure each moment is announced once, however many nodes armed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: Seconds in one minute of a caucus timer (the protocol counts minutes).
SECONDS_PER_MINUTE = 60.0
#: Seconds before the end at which members and mediators are warned.
WARNING_S = 60.0
#: Timer states, in order: set, warned ("warning"), over ("ended").
RUNNING, WARNING, ENDED = "running", "warning", "ended"

#: (room_id, caucus_id, ends_at, state) when a moment of a timer has come.
Due = Callable[[str, str, float, str], Awaitable[None]]


class CaucusTimers:
    """One task per timed caucus of this node, calling `due` at the warning and the end."""

    def __init__(self, due: Due) -> None:
        self.due = due
        self._tasks: dict[tuple[str, str], tuple[float, asyncio.Task[None]]] = {}

    def armed(self, room_id: str, caucus_id: str) -> float | None:
        """The end time this node waits for, if it does."""
        entry = self._tasks.get((room_id, caucus_id))
        return entry[0] if entry and not entry[1].done() else None

    def arm(self, room_id: str, caucus_id: str, ends_at: float) -> None:
        """Wait for `ends_at` (replacing any earlier timer of the caucus)."""
        self.disarm(room_id, caucus_id)
        task = asyncio.ensure_future(self._run(room_id, caucus_id, ends_at))
        self._tasks[(room_id, caucus_id)] = (ends_at, task)

    def disarm(self, room_id: str, caucus_id: str) -> None:
        entry = self._tasks.pop((room_id, caucus_id), None)
        if entry is not None and entry[1] is not asyncio.current_task():
            entry[1].cancel()

    def disarm_room(self, room_id: str) -> None:
        for key in [k for k in self._tasks if k[0] == room_id]:
            self.disarm(*key)

    async def stop(self) -> None:
        """Cancel every timer of this node (on shutdown)."""
        tasks = [task for _, task in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, room_id: str, caucus_id: str, ends_at: float) -> None:
        for state, at in ((WARNING, ends_at - WARNING_S), (ENDED, ends_at)):
            delay = at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the timer itself: wake at its moment
            try:
                await self.due(room_id, caucus_id, ends_at, state)
            except Exception:  # a room gone meanwhile, a store hiccup: the log says it
                log.exception("caucus timer %s of room %s: %s", caucus_id, room_id, state)
        entry = self._tasks.get((room_id, caucus_id))
        if entry is not None and entry[1] is asyncio.current_task():
            del self._tasks[(room_id, caucus_id)]
