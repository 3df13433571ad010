"""RoomStore in the SQL database (SQLite or PostgreSQL): the durable default.

A room is a `rooms` row plus its `invites` and `participants` rows (server/db/schema.py).
`update` loads them in a write transaction holding the room (PostgreSQL: the room row
`FOR UPDATE`; SQLite: the database write lock), runs the change on the Room, and writes
back only the rows that changed, with the room's `version` raised under
`WHERE version = :old`. Two nodes on one PostgreSQL therefore never lose an update: the
second waits for the first and then sees its result. A version that moved anyway (a
writer that did not lock) makes the change run again on the fresh room.

The store's projections (the archive index, server/archive_index/) write the rows they
derive from the room in the same transaction.

Every participant row is stamped with the node that holds its connection; a node that
starts forgets its own (`release_connections`): connections do not outlive a process.
Database failures become a 503 (`database_unavailable`) and change nothing.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server import rooms as rules
from tiaojie.server.db import Database, DatabaseError
from tiaojie.server.db.database import guarded, unavailable
from tiaojie.server.db.migrate import Migrated, migrate
from tiaojie.server.db.schema import invites, participants, rooms
from tiaojie.server.model import Participant, Room
from tiaojie.server.store.base import Released, RoomProjection, RoomStore, room_not_found

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_RETRIES = 20
#: The Room's own fields, each a column of `rooms`.
ROOM_FIELDS = tuple(f.name for f in fields(Room) if f.name not in ("invites", "participants"))
Document = dict[str, Any]


class _VersionMoved(Exception):
    """The room changed under us: run the change again."""


class SqlRoomStore(RoomStore):
    def __init__(
        self, database: Database, node: str, projections: Sequence[RoomProjection] = ()
    ) -> None:
        self.database = database
        self.node = node
        self.backend = database.kind
        self.migrated: Migrated | None = None
        #: Rows derived from rooms, written in each room's transaction (the archive index).
        self.projections = tuple(projections)

    async def open(self) -> None:
        """Migrate the schema (DatabaseError, with the URL and why, if it cannot)."""
        self.migrated = await migrate(self.database)

    async def close(self) -> None:
        await self.database.close()

    async def ping(self) -> None:
        with guarded():
            async with self.database.read() as conn:
                await conn.execute(text("SELECT 1"))

    # -- reading ---------------------------------------------------------------------------
    async def get(self, room_id: str) -> Room | None:
        with guarded():
            async with self.database.read() as conn:
                loaded = await self._load(conn, room_id, lock=False)
        return loaded[0] if loaded else None

    async def list(
        self,
        *,
        open_only: bool = False,
        owner_id: str | None = None,
        organisation_id: str | None = None,
    ) -> list[Room]:
        chosen = []
        if open_only:
            chosen.append(rooms.c.status == "open")
        if owner_id is not None:
            chosen.append(rooms.c.owner_id == owner_id)
        if organisation_id is not None:
            chosen.append(rooms.c.organisation_id == organisation_id)
        with guarded():
            async with self.database.read() as conn:
                query = select(rooms).where(*chosen).order_by(rooms.c.created_ns, rooms.c.id)
                room_rows = (await conn.execute(query)).mappings().all()
                by_room: dict[str, Document] = {}
                for row in room_rows:
                    by_room[row["id"]] = _room_document(row)
                # the rows of the rooms chosen (all of them when every room is)
                ids = select(rooms.c.id).where(*chosen)
                query = select(invites).order_by(invites.c.created_ns)
                if chosen:
                    query = query.where(invites.c.room_id.in_(ids))
                for row in (await conn.execute(query)).mappings():
                    if row["room_id"] in by_room:
                        by_room[row["room_id"]]["invites"][row["invite_id"]] = _invite(row)
                query = select(participants).order_by(participants.c.created_ns)
                if chosen:
                    query = query.where(participants.c.room_id.in_(ids))
                for row in (await conn.execute(query)).mappings():
                    if row["room_id"] in by_room:
                        by_room[row["room_id"]]["participants"][row["id"]] = _participant(row)
        return [Room.from_json(document) for document in by_room.values()]

    async def _load(
        self, conn: AsyncConnection, room_id: str, *, lock: bool
    ) -> tuple[Room, int] | None:
        query = select(rooms).where(rooms.c.id == room_id)
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        document = _room_document(row)
        query = select(invites).where(invites.c.room_id == room_id).order_by(invites.c.created_ns)
        for invite in (await conn.execute(query)).mappings():
            document["invites"][invite["invite_id"]] = _invite(invite)
        query = (
            select(participants)
            .where(participants.c.room_id == room_id)
            .order_by(participants.c.created_ns)
        )
        for participant in (await conn.execute(query)).mappings():
            document["participants"][participant["id"]] = _participant(participant)
        return Room.from_json(document), int(row["version"])

    # -- writing ---------------------------------------------------------------------------
    async def create(self, room: Room) -> None:
        document = room.to_json()
        with guarded():
            async with self.database.write() as conn:
                values = {**_scalars(document), "version": 1, "created_ns": time.time_ns()}
                await conn.execute(insert(rooms).values(**values))
                await self._write_rows(conn, room.id, {"invites": {}, "participants": {}}, document)
                for projection in self.projections:
                    await projection.room_written(conn, None, document)

    async def update(self, room_id: str, change: Callable[[Room], T]) -> T:
        for _ in range(MAX_RETRIES):
            try:
                with guarded():
                    async with self.database.write() as conn:
                        loaded = await self._load(conn, room_id, lock=True)
                        if loaded is None:
                            raise room_not_found()
                        room, version = loaded
                        before = room.to_json()  # a deep copy
                        result = change(room)
                        after = room.to_json()
                        if after != before:
                            await self._save(conn, version, before, after)
                return result
            except _VersionMoved:
                continue
        raise unavailable()

    async def _save(
        self, conn: AsyncConnection, version: int, before: Document, after: Document
    ) -> None:
        room_id = after["id"]
        done = await conn.execute(
            update(rooms)
            .where(rooms.c.id == room_id, rooms.c.version == version)
            .values(version=version + 1, **_scalars(after))
        )
        if done.rowcount != 1:
            raise _VersionMoved
        await self._write_rows(conn, room_id, before, after)
        for projection in self.projections:
            await projection.room_written(conn, before, after)

    async def _write_rows(
        self, conn: AsyncConnection, room_id: str, before: Document, after: Document
    ) -> None:
        """The invites and participants that differ between two documents of a room:
        invites first (a participant row refers to its invite), removals last."""
        stamp = itertools.count(time.time_ns())  # keeps the document's order
        old_invites, new_invites = before["invites"], after["invites"]
        for invite_id, invite in new_invites.items():
            if invite_id not in old_invites:
                await conn.execute(insert(invites).values(**invite, created_ns=next(stamp)))
            elif invite != old_invites[invite_id]:
                await conn.execute(
                    update(invites).where(invites.c.invite_id == invite_id).values(**invite)
                )
        old_people, new_people = before["participants"], after["participants"]
        for pid in old_people.keys() - new_people.keys():
            await conn.execute(delete(participants).where(participants.c.id == pid))
        for pid, person in new_people.items():
            previous = old_people.get(pid)
            if previous is None:
                row = {**person, "room_id": room_id, "node": self.node, "created_ns": next(stamp)}
                await conn.execute(insert(participants).values(**row))
            elif person != previous:
                # A new connection (sid) is made on the node that runs its join.
                node = {"node": self.node} if person["sid"] != previous["sid"] else {}
                await conn.execute(
                    update(participants).where(participants.c.id == pid).values(**person, **node)
                )
        for invite_id in old_invites.keys() - new_invites.keys():
            await conn.execute(delete(invites).where(invites.c.invite_id == invite_id))

    # -- presence --------------------------------------------------------------------------
    async def release_connections(self, keep_seats: bool = False) -> Released:
        """Forget the connections this node held before it started (they died with the
        process); who was forgotten, by room. Admissions and invites stay. With
        `keep_seats`, those in the room keep their seat, away (`server.rooms.disconnect`)."""
        return await self._release(participants.c.node == self.node, keep_seats)

    async def release_lost(
        self, room_id: str, live: set[str], keep_seats: bool = False
    ) -> Released:
        """`release_connections` of the room's connections held by nodes not in `live`
        (nor this one): the node that takes a killed node's room over clears them."""
        lost = participants.c.node.not_in(sorted(live | {self.node}))
        return await self._release((participants.c.room_id == room_id) & lost, keep_seats)

    async def _release(self, where: Any, keep_seats: bool) -> Released:
        with guarded():
            async with self.database.read() as conn:
                held = (
                    await conn.execute(
                        select(participants.c.room_id, participants.c.id, participants.c.sid).where(
                            where
                        )
                    )
                ).all()
        by_room: dict[str, dict[str, str]] = {}
        for room_id, pid, sid in held:
            by_room.setdefault(room_id, {})[pid] = sid
        gone: Released = []
        for room_id, sids in by_room.items():

            def forget(room: Room, sids: dict[str, str] = sids) -> list[Participant]:
                released = (rules.disconnect(room, p, sid, keep_seats) for p, sid in sids.items())
                return [p for p in released if p is not None]

            gone += [(room_id, p) for p in await self.update(room_id, forget)]
        return gone


def _scalars(document: Document) -> Document:
    return {name: document[name] for name in ROOM_FIELDS}


def _room_document(row: Any) -> Document:
    return {
        **{name: row[name] for name in ROOM_FIELDS},
        "invites": {},
        "participants": {},
    }


def _invite(row: Any) -> Document:
    return {name: value for name, value in row.items() if name != "created_ns"}


def _participant(row: Any) -> Document:
    return {
        name: value for name, value in row.items() if name not in ("room_id", "node", "created_ns")
    }


__all__ = ["DatabaseError", "SqlRoomStore"]
