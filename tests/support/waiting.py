"""Waiting for a condition with a deadline: what tests do instead of sleeping "long enough"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(
    check: Callable[[], object], timeout: float = 15, what: str = "condition", every: float = 0.05
) -> None:
    """Return as soon as `check()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)
