"""Access records: what the REST access checks need to know of a room, kept on disk so
that they still decide after the room store has forgotten the room (the in-memory store
after a restart, a flushed Redis).

`DATA/access/<room_id>.json` (0600, in a 0700 folder) holds whether the room ended and
its invites: id, role, revoked, expiry. No names, no tokens. `AccessRecordKeeper` wraps
the room store and rewrites a room's record after every change of those fields, before
the change is confirmed to anyone. server/http_auth.py decides by the room while the
store knows it, by its record when not, and refuses when neither knows it (fail closed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tiaojie.server.model import Invite, Room, RoomStatus
from tiaojie.server.roles import Role
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.store import RoomStore
from tiaojie.server.store.base import Released

log = logging.getLogger(__name__)

T = TypeVar("T")
RECORDS_DIR = "access"
ROOM_ID = re.compile(ID_PATTERN)
#: A record larger than this is not one the server wrote (rooms hold tens of invites).
MAX_RECORD_BYTES = 1024 * 1024


def access_fields(room: Room) -> dict[str, Any]:
    """What a record keeps of `room`: exactly what the access checks read."""
    return {
        "room_id": room.id,
        "ended": room.ended,
        "invites": {
            invite.invite_id: {
                "role": str(invite.role),
                "revoked": invite.revoked,
                "expires_at": invite.expires_at,
                "created_at": invite.created_at,
            }
            for invite in room.invites.values()
        },
    }


def _room_from(data: dict[str, Any]) -> Room:
    """The room as its record remembers it: invites and whether it ended, nothing else
    (no title, no participants). Only the access checks see it."""
    room_id = data["room_id"]
    invites = {
        invite_id: Invite(
            invite_id=invite_id,
            room_id=room_id,
            role=Role(fields["role"]),
            name="",
            expires_at=int(fields["expires_at"]),
            created_at=int(fields["created_at"]),
            revoked=fields["revoked"] is not False,  # in doubt: withdrawn
        )
        for invite_id, fields in data["invites"].items()
    }
    return Room(
        id=room_id,
        title="",
        lobby=False,
        max_participants=0,
        created_at=0,
        status=RoomStatus.ENDED if data["ended"] is True else RoomStatus.OPEN,
        invites=invites,
    )


class AccessRecords:
    """The folder `DATA/access/`: one record per room."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, room_id: str) -> Path | None:
        """The record's file, or None for what cannot be a room id."""
        return self.root / f"{room_id}.json" if ROOM_ID.fullmatch(room_id) else None

    def write(self, room: Room) -> None:
        """Replace the record of `room` atomically (temporary file, fsync, rename)."""
        path = self.path(room.id)
        if path is None:
            raise ValueError(f"not a room id: {room.id!r}")
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps(access_fields(room), sort_keys=True).encode()
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
        directory = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def room(self, room_id: str) -> Room | None:
        """The room as its record remembers it (see `_room_from`); None when there is no
        record, or one the server did not write (logged): either way the checks refuse."""
        path = self.path(room_id)
        if path is None:
            return None
        try:
            if path.is_symlink() or path.stat().st_size > MAX_RECORD_BYTES:
                raise ValueError("not a record the server wrote")
            data = json.loads(path.read_bytes())
            if data["room_id"] != room_id:
                raise ValueError("the record names another room")
            return _room_from(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("ignoring the access record %s: %s", path, error)
            return None


class AccessRecordKeeper(RoomStore):
    """A RoomStore that keeps every room's access record current (see the module)."""

    def __init__(self, inner: RoomStore, records: AccessRecords) -> None:
        self.inner = inner
        self.records = records
        self.backend = inner.backend
        #: Record writes one at a time, each from the room as stored when it runs: the
        #: last write is never older than the last change it follows.
        self._writing = asyncio.Lock()

    async def create(self, room: Room) -> None:
        await self.inner.create(room)
        await self._keep(room.id)

    async def get(self, room_id: str) -> Room | None:
        return await self.inner.get(room_id)

    async def open(self) -> None:
        await self.inner.open()

    async def list(
        self,
        *,
        open_only: bool = False,
        owner_id: str | None = None,
        organisation_id: str | None = None,
    ) -> list[Room]:
        return await self.inner.list(
            open_only=open_only, owner_id=owner_id, organisation_id=organisation_id
        )

    async def release_connections(self) -> Released:
        return await self.inner.release_connections()

    async def update(self, room_id: str, change: Callable[[Room], T]) -> T:
        changed = False

        def tracked(room: Room) -> T:
            nonlocal changed  # the last run is the one stored (Redis re-runs on conflict)
            before = access_fields(room)
            result = change(room)
            changed = access_fields(room) != before
            return result

        result = await self.inner.update(room_id, tracked)
        if changed:
            await self._keep(room_id)
        return result

    async def _keep(self, room_id: str) -> None:
        async with self._writing:
            room = await self.inner.get(room_id)
            if room is not None:
                await asyncio.to_thread(self.records.write, room)

    async def close(self) -> None:
        await self.inner.close()
