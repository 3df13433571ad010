"""Room state storage: one interface (RoomStore), in the SQL database (the default: SQLite
in the data directory, or PostgreSQL) or in memory (`--database memory:`)."""

from __future__ import annotations

from tiaojie.server.db import Database, DatabaseUrl
from tiaojie.server.store.base import RoomStore
from tiaojie.server.store.memory import MemoryRoomStore
from tiaojie.server.store.sql import SqlRoomStore


def open_store(url: DatabaseUrl, node: str, database: Database | None = None) -> RoomStore:
    """The store for `url`; `node` names this process among the nodes sharing it;
    `database`: the one for `url` that others use too (else one of its own)."""
    if url.kind == "memory":
        return MemoryRoomStore()
    return SqlRoomStore(database or Database(url), node)


__all__ = ["MemoryRoomStore", "RoomStore", "SqlRoomStore", "open_store"]
