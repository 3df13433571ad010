"""In-process RoomStore (`--database memory:`): rooms die with the process. For unit
tests and throw-away demos; the default is the SQL store (server/store/sql.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from tiaojie.server.model import Room
from tiaojie.server.store.base import RoomStore, room_not_found

T = TypeVar("T")


class MemoryRoomStore(RoomStore):
    """Rooms kept as JSON text, so a change works on a copy exactly as with Redis.

    `update` has no await between read and write, so it is atomic on the event loop.
    """

    backend = "memory"

    def __init__(self) -> None:
        self._rooms: dict[str, str] = {}

    async def create(self, room: Room) -> None:
        self._rooms[room.id] = json.dumps(room.to_json())

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
        raw = self._rooms.get(room_id)
        if raw is None:
            raise room_not_found()
        room = Room.from_json(json.loads(raw))
        result = change(room)
        self._rooms[room_id] = json.dumps(room.to_json())
        return result
