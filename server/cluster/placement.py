"""Room placement: the one node that hosts a room's media, as a lease in Redis.

`tiaojie:room:<id>:node` holds the host's node id with a TTL (`--node-ttl`). The first
node that needs the room's media (a participant's connection, the join page's
`/api/me`) places it: on the live, not draining node with the lowest load score
(registry.Load), and writes the lease only if nobody else did meanwhile (a Lua
compare-and-set, so two nodes placing the same room at once agree on one host). The host
renews the lease while the room is in use there; it lapses when the host vanishes, and a
lease whose node is no longer in the registry is taken over the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import redis.asyncio as redis

from tiaojie.server.cluster.registry import ROOM_WEIGHT, NodeInfo, Registry

log = logging.getLogger(__name__)

#: Set the lease to ARGV[2] when it holds ARGV[1] (the owner we saw: "" for none) or
#: nothing; answer the owner after it. Placement and takeover alike.
TAKE = """
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return ARGV[2]
end
return owner
"""
#: The owner renews: 1 if the lease is (again) ours, 0 if another node holds it.
RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
#: Give a lease up, only if it is still ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_key(room_id: str) -> str:
    return f"tiaojie:room:{room_id}:node"


def least_loaded(nodes: Iterable[NodeInfo], pending: dict[str, int]) -> NodeInfo | None:
    """The node a new room goes to: not draining (unless every node is), lowest score
    (rooms placed since its last heartbeat counted in), then fewer participants, then id."""
    candidates = list(nodes)
    open_ = [n for n in candidates if not n.draining] or candidates
    if not open_:
        return None
    return min(
        open_,
        key=lambda n: (
            n.load.score() + ROOM_WEIGHT * pending.get(n.id, 0),
            n.load.participants,
            n.id,
        ),
    )


class Placement:
    def __init__(self, client: redis.Redis, registry: Registry, ttl: float) -> None:
        self.redis = client
        self.registry = registry
        self.ttl_ms = int(ttl * 1000)
        #: Rooms this node placed on each node, with when: counted in that node's load
        #: until its next heartbeat (a burst of placements spreads out).
        self._placed: list[tuple[str, float]] = []

    async def owner(self, room_id: str) -> str | None:
        """The id of the node holding the room's lease, if any."""
        value = await self.redis.get(lease_key(room_id))
        return str(value) if value is not None else None

    async def place(self, room_id: str, fallback: NodeInfo) -> NodeInfo:
        """The node hosting `room_id`'s media, placing it if no live node does.
        `fallback` is this node: the host when the registry is empty."""
        for _ in range(3):
            nodes = await self.registry.nodes()
            seen = await self.owner(room_id)
            if seen == fallback.id:  # ours: alive, whatever its last heartbeat says
                return fallback
            if seen is not None and seen in nodes:
                return nodes[seen]
            chosen = least_loaded(nodes.values(), self.pending(nodes)) or fallback
            winner = await self.redis.eval(
                TAKE, 1, lease_key(room_id), seen or "", chosen.id, self.ttl_ms
            )
            if winner == chosen.id:
                if seen is not None:
                    log.info("room %s: its node %s is gone, now on %s", room_id, seen, winner)
                self.placed_on(chosen.id)
                return chosen
            if winner in nodes:  # placed by another node meanwhile
                return nodes[winner]
        raise RuntimeError(f"room {room_id}: no stable placement")

    def placed_on(self, node_id: str) -> None:
        """A room this node placed (or moved) on `node_id`: counted in its load until its
        next heartbeat."""
        self._placed.append((node_id, time.time()))

    def pending(self, nodes: dict[str, NodeInfo]) -> dict[str, int]:
        """Placements made here that the nodes' last heartbeats do not count yet."""
        self._placed = [(n, at) for n, at in self._placed if n in nodes and at >= nodes[n].at]
        counts: dict[str, int] = {}
        for node_id, _ in self._placed:
            counts[node_id] = counts.get(node_id, 0) + 1
        return counts

    async def renew(self, room_id: str, node_id: str) -> bool:
        """Renew our lease (or take it again if it lapsed); False when another node has it."""
        return bool(await self.redis.eval(RENEW, 1, lease_key(room_id), node_id, self.ttl_ms))

    async def release(self, room_id: str, node_id: str) -> None:
        await self.redis.eval(RELEASE, 1, lease_key(room_id), node_id)
