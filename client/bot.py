"""`tiaojie bot LINK --publish FILE`: a headless participant for demos and load tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from tiaojie.client.media_file import FileSource
from tiaojie.client.session import JoinRefused, RoomClient

log = logging.getLogger("tiaojie.bot")


async def run_bot(
    link: str, publish: Path | None, name: str | None, report_every: float = 5.0
) -> int:
    """Join, publish `publish` in a loop, log what arrives; SIGTERM/SIGINT leave cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    source = FileSource(publish) if publish else None
    client = RoomClient(link, name=name)
    try:
        state = await client.join(wait=600)
        log.info("joined %r as %s", state["room"]["title"], state["self"]["role"])
        if source is not None:
            await client.publish(source)
            log.info("publishing %s", publish)
        while not stop.is_set() and client.closed_reason is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), report_every)
            for sub in client.subscriptions.values():
                log.info(
                    "receiving %s %s of %s: %d packets, %d keyframes, %d bytes",
                    sub.kind,
                    sub.source,
                    sub.participant_id,
                    sub.packets,
                    sub.keyframes,
                    sub.bytes,
                )
        if client.closed_reason is not None:
            log.info("the server closed the connection: %s", client.closed_reason)
    except JoinRefused as refused:
        log.error("could not join: %s", refused)
        return 1
    finally:
        if source is not None:
            await source.stop()
        await client.leave()
    log.info("left the room")
    return 0
