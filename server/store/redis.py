"""RoomStore in Redis: rooms shared by every node, changed with optimistic transactions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import WatchError

from tiaojie.server.model import Room
from tiaojie.server.store.base import RoomStore, room_not_found

T = TypeVar("T")
MAX_RETRIES = 50


class RedisRoomStore(RoomStore):
    """`{prefix}room:{id}` holds the room's JSON, `{prefix}rooms` the set of room ids.

    `update` WATCHes the room key, applies the change and writes it in MULTI/EXEC; a
    concurrent write from another node makes EXEC fail and the change is re-run on the
    fresh state.
    """

    backend = "redis"

    def __init__(self, url: str, prefix: str = "tiaojie:") -> None:
        self._redis = Redis.from_url(url, decode_responses=True)
        self._prefix = prefix

    def _key(self, room_id: str) -> str:
        return f"{self._prefix}room:{room_id}"

    async def ping(self) -> None:
        await self._redis.ping()

    async def create(self, room: Room) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(room.id), json.dumps(room.to_json()))
            pipe.sadd(f"{self._prefix}rooms", room.id)
            await pipe.execute()

    async def get(self, room_id: str) -> Room | None:
        raw = await self._redis.get(self._key(room_id))
        return Room.from_json(json.loads(raw)) if raw is not None else None

    async def list(self) -> list[Room]:
        ids = sorted(_text(i) for i in await self._redis.smembers(f"{self._prefix}rooms"))
        if not ids:
            return []
        raws = await self._redis.mget([self._key(i) for i in ids])
        return [Room.from_json(json.loads(raw)) for raw in raws if raw is not None]

    async def update(self, room_id: str, change: Callable[[Room], T]) -> T:
        key = self._key(room_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise room_not_found()
                    room = Room.from_json(json.loads(raw))
                    result = change(room)
                    pipe.multi()
                    pipe.set(key, json.dumps(room.to_json()))
                    await pipe.execute()
                    return result
                except WatchError:
                    continue
                finally:
                    await pipe.reset()
        raise RuntimeError(f"room {room_id} is changing too fast to update")

    async def close(self) -> None:
        await self._redis.aclose()


def _text(value: bytes | str) -> str:
    """A reply as text (the client decodes replies; its types do not know that)."""
    return value.decode() if isinstance(value, bytes) else value
