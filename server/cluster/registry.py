"""The node registry: each node's heartbeat in Redis, with a TTL.

A node writes `tiaojie:node:<id>` (JSON: its URL, load, draining flag, when) with a TTL
of `--node-ttl` seconds, every third of it, and keeps its id in the set `tiaojie:nodes`.
A node that vanishes (kill -9, a lost network) stops writing and its record expires: the
others stop counting it. Ids whose record is gone are taken out of the set by whoever
reads it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import redis.asyncio as redis

NODES = "tiaojie:nodes"

#: Take out of the set the ids whose record is gone (checked here, so a node that beats
#: again meanwhile stays).
PRUNE = """
local removed = 0
for _, id in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[1] .. id) == 0 then
    removed = removed + redis.call('SREM', KEYS[2], id)
  end
end
return removed
"""

#: What a hosted room counts for in the load score, in forwarded streams: two thirds of a
#: full room of four (mediator, two parties, recorder: 3 publishers x 2 tracks x 3
#: receivers = 18), so a room still filling up counts before it forwards anything.
ROOM_WEIGHT = 12


def node_key(node_id: str) -> str:
    return f"tiaojie:node:{node_id}"


@dataclass(frozen=True)
class Load:
    """What a node carries: the measure placement compares (docs/ARCHITECTURE.md)."""

    #: tracks forwarded to subscribers (withheld ones not counted): the SFU's work
    streams: int = 0
    #: participants with media on the node
    participants: int = 0
    #: rooms whose media the node hosts (placement leases it holds)
    rooms: int = 0

    def score(self) -> int:
        """Forwarded streams, plus ROOM_WEIGHT for each hosted room: a room just placed,
        whose participants are still arriving, counts before it forwards anything."""
        return self.streams + ROOM_WEIGHT * self.rooms


@dataclass(frozen=True)
class NodeInfo:
    id: str
    url: str
    draining: bool
    load: Load
    #: time.time() of the heartbeat
    at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> NodeInfo:
        data = json.loads(text)
        return cls(
            id=str(data["id"]),
            url=str(data["url"]),
            draining=bool(data["draining"]),
            load=Load(**data["load"]),
            at=float(data["at"]),
        )


class Registry:
    """Heartbeats in and the live nodes out."""

    def __init__(self, client: redis.Redis, ttl: float) -> None:
        self.redis = client
        self.ttl_ms = int(ttl * 1000)

    async def beat(self, info: NodeInfo) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(node_key(info.id), info.to_json(), px=self.ttl_ms)
            pipe.sadd(NODES, info.id)
            await pipe.execute()

    async def forget(self, node_id: str) -> None:
        """A node that stops says so: it is gone at once, not after its TTL."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(node_key(node_id))
            pipe.srem(NODES, node_id)
            await pipe.execute()

    async def nodes(self) -> dict[str, NodeInfo]:
        """The live nodes, by id."""
        ids: list[str] = sorted(str(i) for i in await self.redis.smembers(NODES))
        if not ids:
            return {}
        records = await self.redis.mget([node_key(i) for i in ids])
        live: dict[str, NodeInfo] = {}
        gone = []
        for node_id, record in zip(ids, records, strict=True):
            if record is None:
                gone.append(node_id)
            else:
                live[node_id] = NodeInfo.from_json(str(record))
        if gone:
            await self.redis.eval(PRUNE, 2, node_key(""), NODES, *gone)
        return live


def now() -> float:
    return time.time()
