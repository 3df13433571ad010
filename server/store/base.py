"""The RoomStore interface: rooms as documents changed atomically."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.errors import not_found
from tiaojie.server.model import Participant, Room

T = TypeVar("T")


#: Participants forgotten when a node starts, with their room ids.
Released = list[tuple[str, Participant]]


#: A room as a JSON document (Room.to_json).
Document = dict[str, Any]


class RoomProjection(Protocol):
    """Rows derived from rooms (the archive index, server/archive_index/), written with
    every change of a room: inside the room's own transaction (`conn`) on the SQL store,
    so the two never disagree; in a transaction of their own (`conn` None) on the memory
    store. Raising refuses the change: nothing of the room is written either."""

    async def room_written(
        self, conn: AsyncConnection | None, before: Document | None, after: Document
    ) -> None: ...


def room_not_found() -> Exception:
    return not_found("room_not_found", "No such room.")


class RoomStore(ABC):
    """Keeps every Room; `update` is an atomic read-modify-write of one room.

    `change` is a plain function (no awaits) that mutates the Room it is given and returns
    a result. If it raises, nothing is written. It may run more than once (a store that
    lost a race runs it again on the fresh room), so it must not act outside the Room.
    """

    backend: str

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the storage before the server answers (the SQL store migrates)."""

    @abstractmethod
    async def create(self, room: Room) -> None: ...

    @abstractmethod
    async def get(self, room_id: str) -> Room | None: ...

    @abstractmethod
    async def list(
        self,
        *,
        open_only: bool = False,
        owner_id: str | None = None,
        organisation_id: str | None = None,
    ) -> list[Room]:
        """Rooms in the order they were made; `owner_id` / `organisation_id`: only the
        rooms of that staff account / organisation (server/accounts/)."""

    @abstractmethod
    async def update(self, room_id: str, change: Callable[[Room], T]) -> T: ...

    async def ping(self) -> None:  # noqa: B027 - optional hook
        """Reach the storage (`/api/health`): the 503 `database_unavailable` if it is down."""

    async def require(self, room_id: str) -> Room:
        room = await self.get(room_id)
        if room is None:
            raise room_not_found()
        return room

    async def release_connections(self, keep_seats: bool = False) -> Released:
        """Forget the participants whose connections this node held before it started;
        who they were, by room id. A store that dies with the process has none."""
        return []

    async def release_lost(
        self, room_id: str, live: set[str], keep_seats: bool = False
    ) -> Released:
        """Forget the room's participants whose connections nodes not in `live` held (a
        node killed: its rows say online until it starts again). One node: none."""
        return []

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
