"""Room state storage: one interface (RoomStore), in memory or in Redis."""

from __future__ import annotations

from server.store.base import RoomStore
from server.store.memory import MemoryRoomStore


def open_store(redis_url: str | None, prefix: str = "tiaojie:") -> RoomStore:
    if redis_url:
        from server.store.redis import RedisRoomStore

        return RedisRoomStore(redis_url, prefix=prefix)
    return MemoryRoomStore()


__all__ = ["MemoryRoomStore", "RoomStore", "open_store"]
