"""Room state storage: one interface (RoomStore), in the SQL database (the default: SQLite
in the data directory, or PostgreSQL) or in memory (`--database memory:`)."""

from __future__ import annotations

from collections.abc import Sequence

from tiaojie.server.db import Database
from tiaojie.server.store.base import RoomProjection, RoomStore
from tiaojie.server.store.memory import MemoryRoomStore
from tiaojie.server.store.sql import SqlRoomStore


def open_store(
    database: Database | None, node: str, projections: Sequence[RoomProjection] = ()
) -> RoomStore:
    """The store in `database` (None: in memory); `node` names this process among the
    nodes sharing it; `projections` write what they derive from each room change."""
    if database is None:
        return MemoryRoomStore(projections)
    return SqlRoomStore(database, node, projections)


__all__ = ["MemoryRoomStore", "RoomProjection", "RoomStore", "SqlRoomStore", "open_store"]
