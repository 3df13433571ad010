"""`Cluster`: this node among several sharing one Redis (--redis).

It beats into the registry (registry.py) every third of `--node-ttl`, with its URL
(`--node-url`), its load and its draining flag; places rooms (placement.py) and renews
the leases of the rooms it hosts while they are in use here (a connection or media), or
for IDLE_S after they were placed here (the participant sent here is on the way, or
still on the join page); answers calls from other nodes (calls.py). On a clean stop it
gives its leases up and leaves the registry at once; killed, both lapse after the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from tiaojie.server.cluster.calls import NodeCalls
from tiaojie.server.cluster.load import NodeLoad
from tiaojie.server.cluster.placement import Placement
from tiaojie.server.cluster.registry import Load, NodeInfo, Registry

log = logging.getLogger(__name__)

#: How long a room placed here keeps its lease with nobody here yet (the join page's
#: device check can take minutes).
IDLE_S = 300.0


class Cluster:
    def __init__(
        self,
        redis_url: str,
        node_id: str,
        url: str,
        ttl: float,
        load: NodeLoad,
        draining: bool = False,
    ) -> None:
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.id = node_id
        self.url = url
        self.ttl = ttl
        self.load = load
        self.draining = draining
        self.registry = Registry(self.redis, ttl)
        self.placement = Placement(self.redis, self.registry, ttl)
        self.calls = NodeCalls(self.redis, node_id)
        #: Rooms whose lease this node holds: when each was last in use here (monotonic).
        self.hosted: dict[str, float] = {}
        #: Called with a room newly placed here and the live nodes' ids: what another
        #: node ran for it may have died with that node (a recording: recordings/service.py).
        self.on_placed_here: list[Callable[[str, set[str]], Awaitable[None]]] = []
        self._beating: asyncio.Task[None] | None = None

    def info(self) -> NodeInfo:
        streams, participants = self.load.streams_and_participants()
        return NodeInfo(
            id=self.id,
            url=self.url,
            draining=self.draining,
            load=Load(streams=streams, participants=participants, rooms=len(self.hosted)),
            at=time.time(),
        )

    async def start(self) -> None:
        """In the registry before the node serves anyone."""
        await self.registry.beat(self.info())
        await self.calls.start()
        self._beating = asyncio.ensure_future(self._beat_forever())
        log.info("node %s at %s in the cluster", self.id, self.url)

    async def stop(self) -> None:
        """Leave at once: the leases given up, the registry record gone."""
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
        await self.calls.stop()
        with contextlib.suppress(RedisError, OSError):
            for room_id in list(self.hosted):
                await self.placement.release(room_id, self.id)
            await self.registry.forget(self.id)
        self.hosted.clear()
        await self.redis.aclose()

    # -- placement -----------------------------------------------------------------------
    async def host(self, room_id: str) -> NodeInfo:
        """The node hosting `room_id`'s media (placed now if none is)."""
        host = await self.placement.place(room_id, self.info())
        if host.id == self.id:
            new = room_id not in self.hosted
            self.hosted[room_id] = time.monotonic()
            if new and self.on_placed_here:
                live = set(await self.registry.nodes())
                for hook in self.on_placed_here:
                    try:
                        await hook(room_id, live)
                    except Exception:  # the room is placed here all the same
                        log.exception("room %s: taking it over failed", room_id)
        return host

    async def elsewhere(self, room_id: str) -> str | None:
        """The URL of the node hosting `room_id`'s media, None when it is this one. With
        Redis unreachable, this node serves the room (one node's view, logged)."""
        try:
            host = await self.host(room_id)
        except (RedisError, OSError, RuntimeError) as error:
            log.warning("room %s: placement failed (%s); served here", room_id, error)
            return None
        return None if host.id == self.id else host.url

    async def on_host(
        self,
        room_id: str,
        name: str,
        payload: dict[str, Any],
        here: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """Run `here` if this node hosts the room, else the call `name` on its host."""
        host = await self.host(room_id)
        if host.id == self.id:
            return await here()
        return await self.calls.call(host.id, name, payload)

    async def urls(self) -> list[str]:
        """The live nodes' addresses ([] when Redis does not answer)."""
        try:
            return sorted({n.url for n in (await self.registry.nodes()).values()})
        except (RedisError, OSError):
            return []

    async def release(self, room_id: str) -> None:
        """The room ended: its lease goes (the next use places it again)."""
        if self.hosted.pop(room_id, None) is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.placement.release(room_id, self.id)

    async def set_draining(self, draining: bool) -> None:
        self.draining = draining
        await self.registry.beat(self.info())
        log.info("node %s %s", self.id, "draining: no new rooms" if draining else "open again")

    # -- heartbeat -----------------------------------------------------------------------
    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)  # a timer: the heartbeat period
            try:
                await self._renew()
                await self.registry.beat(self.info())
            except (RedisError, OSError) as error:
                log.warning("cluster heartbeat failed: %s", error)

    async def _renew(self) -> None:
        in_use = self.load.rooms_in_use()
        clock = time.monotonic()
        for room_id in in_use & set(self.hosted):
            self.hosted[room_id] = clock
        for room_id, last in list(self.hosted.items()):
            if clock - last > IDLE_S:
                del self.hosted[room_id]
                await self.placement.release(room_id, self.id)
            elif not await self.placement.renew(room_id, self.id):
                del self.hosted[room_id]
                log.warning("room %s: its lease is held by another node now", room_id)
