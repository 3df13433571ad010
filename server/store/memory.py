"""In-process RoomStore (`--database memory:`): rooms die with the process. For unit
tests and throw-away demos; the default is the SQL store (server/store/sql.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from tiaojie.server.model import Room
from tiaojie.server.store.base import RoomProjection, RoomStore, room_not_found

T = TypeVar("T")


class MemoryRoomStore(RoomStore):
    """Rooms kept as JSON text, so a change works on a copy exactly as with Redis.

    Changes run one at a time (a lock): a change and its projections (the archive index)
    are written together, the room last, so a projection that fails changes nothing.
    """

    backend = "memory"

    def __init__(self, projections: Sequence[RoomProjection] = ()) -> None:
        self._rooms: dict[str, str] = {}
        self._projections = tuple(projections)
        self._writing = asyncio.Lock()

    async def create(self, room: Room) -> None:
        document = room.to_json()
        async with self._writing:
            for projection in self._projections:
                await projection.room_written(None, None, document)
            self._rooms[room.id] = json.dumps(document)

    async def get(self, room_id: str) -> Room | None:
        raw = self._rooms.get(room_id)
        return Room.from_json(json.loads(raw)) if raw is not None else None

    async def list(
        self,
        *,
        open_only: bool = False,
        owner_id: str | None = None,
        organisation_id: str | None = None,
    ) -> list[Room]:
        found = [Room.from_json(json.loads(raw)) for raw in self._rooms.values()]
        return [
            room
            for room in found
            if not (open_only and room.ended)
            and (owner_id is None or room.owner_id == owner_id)
            and (organisation_id is None or room.organisation_id == organisation_id)
        ]

    async def update(self, room_id: str, change: Callable[[Room], T]) -> T:
        async with self._writing:
            raw = self._rooms.get(room_id)
            if raw is None:
                raise room_not_found()
            before = json.loads(raw)
            room = Room.from_json(json.loads(raw))
            result = change(room)
            after = room.to_json()
            if after != before:
                for projection in self._projections:
                    await projection.room_written(None, before, after)
                self._rooms[room_id] = json.dumps(after)
            return result
