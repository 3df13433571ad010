"""`Cluster`: this node among several sharing one Redis (--redis).

It beats into the registry (registry.py) every third of `--node-ttl`, with its URL
(`--node-url`), its load and its draining flag; places rooms (placement.py) and renews
the leases of the rooms it hosts while they are in use here (a connection or media), or
for IDLE_S after they were placed here (the participant sent here is on the way, or
still on the join page); answers calls from other nodes (calls.py). With its heartbeat
it publishes the chain head of each recording it runs (so the node that takes over a
room of a killed node names where the lost recording was). Draining moves its rooms: each
is adopted by the least loaded other live node (ADOPT_CALL), its recording handed over,
its connections here closed (their clients reconnect and are sent there); a node asked
to stop (SIGTERM) drains first (`hand_off`). On a clean stop it gives the leases it
still holds up and leaves the registry at once; killed, both lapse after the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from tiaojie.server.cluster.calls import NodeCalls
from tiaojie.server.cluster.load import NodeLoad
from tiaojie.server.cluster.placement import TAKE, Placement, lease_key, least_loaded
from tiaojie.server.cluster.registry import Load, NodeInfo, Registry
from tiaojie.server.errors import TiaojieError

log = logging.getLogger(__name__)

#: How long a room placed here keeps its lease with nobody here yet (the join page's
#: device check can take minutes).
IDLE_S = 300.0
#: The call a draining node makes to the node its room moves to.
ADOPT_CALL = "adopt_room"
#: Rooms a draining node moves at once (each waits for its recording's seal and its
#: people's return; the new nodes start a recorder process for each).
MOVES_AT_ONCE = 4
#: How long a recording's last published chain head is kept in Redis.
HEAD_TTL_S = 7 * 86400


def head_key(recording_id: str) -> str:
    return f"tiaojie:recording:{recording_id}:head"


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
        #: Rooms whose `on_placed_here` hooks are running: other connections wait for them
        #: (a reconnecting participant must find the lost node's seats cleared).
        self._taking: dict[str, asyncio.Future[None]] = {}
        #: Called with a room this draining node moved and the node it went to (its id and
        #: URL): hand its recording over, close its connections here.
        self.on_moved: list[Callable[[str, NodeInfo], Awaitable[None]]] = []
        #: The chain head of each recording this node runs ({recording id: {seq, hash}}),
        #: read in a thread at each heartbeat (recordings/service.py `heads`).
        self.recording_heads: Callable[[], dict[str, dict[str, Any]]] = dict
        self._beating: asyncio.Task[None] | None = None
        self.calls.handle(ADOPT_CALL, self._adopt)

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
        if host.id != self.id:
            return host
        taking = self._taking.get(room_id)
        if taking is not None:  # another connection placed it: wait until it is taken over
            await asyncio.shield(taking)
            return host
        new = room_id not in self.hosted
        self.hosted[room_id] = time.monotonic()
        if new and self.on_placed_here:
            self._taking[room_id] = done = asyncio.get_running_loop().create_future()
            try:
                live = set(await self.registry.nodes())
                for hook in self.on_placed_here:
                    try:
                        await hook(room_id, live)
                    except Exception:  # the room is placed here all the same
                        log.exception("room %s: taking it over failed", room_id)
            finally:
                del self._taking[room_id]
                done.set_result(None)
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

    async def set_draining(self, draining: bool) -> int:
        """Drain (no new room here, and the rooms here move to other live nodes) or open
        again; how many rooms moved."""
        self.draining = draining
        await self.registry.beat(self.info())
        log.info("node %s %s", self.id, "draining: no new rooms" if draining else "open again")
        if not draining:
            return 0
        at_once = asyncio.Semaphore(MOVES_AT_ONCE)

        async def move(room_id: str) -> bool:
            async with at_once:
                return await self.move(room_id)

        return sum(await asyncio.gather(*(move(room_id) for room_id in list(self.hosted))))

    async def hand_off(self) -> None:
        """The node is asked to stop: drain it, so its rooms (and their recordings and
        people) move to other live nodes while it still answers their reconnections."""
        try:
            moved = await self.set_draining(True)
        except (RedisError, OSError) as error:
            log.warning("node %s stops without moving its rooms: %s", self.id, error)
            return
        if moved:
            log.info("node %s moved %d rooms before it stops", self.id, moved)

    async def move(self, room_id: str) -> bool:
        """Move a room hosted here to the least loaded other live, open node: it takes the
        lease (ADOPT_CALL), then `on_moved` hands the recording over and closes the
        connections here. False when no node can take it (it stays)."""
        nodes = await self.registry.nodes()
        others = [n for n in nodes.values() if n.id != self.id and not n.draining]
        target = least_loaded(others, self.placement.pending(nodes))
        if target is None:
            log.warning("room %s stays on draining %s: no other node is open", room_id, self.id)
            return False
        self.placement.placed_on(target.id)  # rooms moved at the same time weigh it in
        try:
            await self.calls.call(target.id, ADOPT_CALL, {"room_id": room_id, "from": self.id})
        except TiaojieError as error:
            log.error("room %s: node %s did not take it (%s); it stays", room_id, target.id, error)
            return False
        self.hosted.pop(room_id, None)
        log.info("room %s moved from draining node %s to %s", room_id, self.id, target.id)
        for hook in self.on_moved:
            try:
                await hook(room_id, target)
            except Exception:  # the room is there all the same; its people follow
                log.exception("room %s: moving it to %s failed", room_id, target.id)
        return True

    async def _adopt(self, call: dict[str, Any]) -> dict[str, Any]:
        """A draining node moves a room here: take its lease from it."""
        room_id, origin = str(call["room_id"]), str(call["from"])
        winner = await self.redis.eval(
            TAKE, 1, lease_key(room_id), origin, self.id, self.placement.ttl_ms
        )
        if winner != self.id:
            raise TiaojieError("room_elsewhere", f"Room {room_id} is on node {winner}.", 409)
        self.hosted[room_id] = time.monotonic()
        return {"node": self.id, "url": self.url}

    async def recording_head(self, recording_id: str) -> dict[str, Any] | None:
        """The last chain head a node published for the recording (None: none known)."""
        try:
            value = await self.redis.get(head_key(recording_id))
        except (RedisError, OSError):
            return None
        return dict(json.loads(value)) if value else None

    async def _publish_heads(self) -> None:
        heads = await asyncio.to_thread(self.recording_heads)
        if not heads:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for recording_id, head in heads.items():
                pipe.set(head_key(recording_id), json.dumps(head), ex=HEAD_TTL_S)
            await pipe.execute()

    # -- heartbeat -----------------------------------------------------------------------
    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)  # a timer: the heartbeat period
            try:
                await self._renew()
                await self.registry.beat(self.info())
                await self._publish_heads()
            except (RedisError, OSError) as error:
                log.warning("cluster heartbeat failed: %s", error)

    async def _renew(self) -> None:
        in_use = self.load.rooms_in_use()
        clock = time.monotonic()
        for room_id in in_use & set(self.hosted):
            self.hosted[room_id] = clock
        for room_id, last in list(self.hosted.items()):
            # pop, not del: a drain may move the room away while this waits on Redis
            if clock - last > IDLE_S:
                self.hosted.pop(room_id, None)
                await self.placement.release(room_id, self.id)
            elif not await self.placement.renew(room_id, self.id):
                self.hosted.pop(room_id, None)
                log.warning("room %s: its lease is held by another node now", room_id)
