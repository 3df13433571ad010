"""Room state storage: one interface (RoomStore), in memory or in Redis."""

from __future__ import annotations

from tiaojie.server.store.base import RoomStore
from tiaojie.server.store.memory import MemoryRoomStore
from tiaojie.server.store.redis import RedisRoomStore


def open_store(redis_url: str | None, prefix: str = "tiaojie:") -> RoomStore:
    if redis_url:
        return RedisRoomStore(redis_url, prefix=prefix)
    return MemoryRoomStore()


__all__ = ["MemoryRoomStore", "RedisRoomStore", "RoomStore", "open_store"]
