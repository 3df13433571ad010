"""`ArchiveIndex`: the recordings and agreements of the archive, indexed in the database.

Written three ways, as the files it indexes are:
- with every change of a room (a `RoomProjection` of the room store): a recording that
  starts or stops, the agreement's state and signatures, the room's title. On the SQL
  store this runs inside the room's own transaction, so what a user was told (a
  signature given, a recording started) is in the index exactly when it is in the room;
- when a recording is sealed or gets an addendum (`recording_facts`, from its folder);
- a line of an agreement's log (`agreement_logged`), after the file's line.

Read by the archive's REST routes (lists with search, one recording, one agreement).
`rebuild` (server/archive_index/rebuild.py) makes it again from the files.

With `--database memory:` the index lives in the in-memory SQLite that accounts use too,
rebuilt from the files on start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.archive_index.files import log_row
from tiaojie.server.archive_index.rows import (
    Document,
    RoomChanges,
    Row,
    agreement_search,
    recording_search,
    room_changes,
    storable,
)
from tiaojie.server.archive_index.schema import (
    agreement_events,
    agreement_signatures,
    agreements,
    recordings,
)
from tiaojie.server.db import Database
from tiaojie.server.db.database import FAILURES, guarded, unavailable

log = logging.getLogger(__name__)

#: The most rows one list answers with.
MAX_LIST = 1000
#: Retries of a log line whose number another writer took first (PostgreSQL).
LOG_RETRIES = 5


class ArchiveIndex:
    """The index in `database`: the rooms' database (`memory:`: the accounts' in-memory
    SQLite, rebuilt from the files on start)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- rooms (RoomProjection) ----------------------------------------------------------------
    async def room_written(
        self, conn: AsyncConnection | None, before: Document | None, after: Document
    ) -> None:
        changes = room_changes(before, after)
        if not changes:
            return
        if conn is not None:
            await self._apply(conn, after["id"], changes)
            return
        with guarded():
            async with self.database.write() as own:
                await self._apply(own, after["id"], changes)

    async def _apply(self, conn: AsyncConnection, room_id: str, changes: RoomChanges) -> None:
        if changes.title is not None:
            title = storable(changes.title)
            for table in (recordings, agreements):
                await conn.execute(
                    update(table).where(table.c.room_id == room_id).values(room_title=title)
                )
            await self._research(conn, room_id)
        for recording_id, at in changes.stopped:
            await conn.execute(
                update(recordings)
                .where(recordings.c.recording_id == recording_id, recordings.c.ended_at.is_(None))
                .values(ended_at=at)
            )
        if changes.started is not None:
            await self.put_recording(conn, changes.started)
        if changes.agreement is not None:
            row, signatures = changes.agreement
            await self.put_agreement(conn, row, signatures)

    async def _research(self, conn: AsyncConnection, room_id: str) -> None:
        """The search text of a room's rows, after its title changed."""
        found = await conn.execute(select(recordings).where(recordings.c.room_id == room_id))
        for row in found.mappings().all():
            await conn.execute(
                update(recordings)
                .where(recordings.c.recording_id == row["recording_id"])
                .values(search=recording_search(dict(row)))
            )

    # -- writing rows --------------------------------------------------------------------------
    async def put_recording(self, conn: AsyncConnection, row: Row) -> None:
        """Insert or replace a recording's row."""
        row = _storable_recording(row)
        await conn.execute(
            delete(recordings).where(recordings.c.recording_id == row["recording_id"])
        )
        await conn.execute(insert(recordings).values(**row))

    async def put_agreement(
        self,
        conn: AsyncConnection,
        row: Row,
        signatures: list[Row],
        events: list[Row] | None = None,
    ) -> None:
        """Insert or update an agreement's row, replace its signatures (and, given
        `events`, its log)."""
        row = _storable_agreement(row, signatures)
        done = await conn.execute(
            update(agreements).where(agreements.c.code == row["code"]).values(**row)
        )
        if done.rowcount == 0:
            await conn.execute(insert(agreements).values(**row))
        code = row["code"]
        await conn.execute(delete(agreement_signatures).where(agreement_signatures.c.code == code))
        for signature in signatures:
            await conn.execute(insert(agreement_signatures).values(**_storable_row(signature)))
        if events is not None:
            await conn.execute(delete(agreement_events).where(agreement_events.c.code == code))
            for event in events:
                await conn.execute(insert(agreement_events).values(**event))

    async def recording_facts(self, recording_id: str, facts: Row) -> bool:
        """What a recording's folder says now (server/archive_index/files.py
        `recording_facts`): its seal, end, participants. False: no such row."""
        with guarded():
            async with self.database.write() as conn:
                found = await conn.execute(
                    select(recordings).where(recordings.c.recording_id == recording_id)
                )
                row = found.mappings().first()
                if row is None:
                    return False
                merged = {**dict(row), **{k: v for k, v in facts.items() if v is not None}}
                merged["ended_at"] = facts.get("ended_at") or row["ended_at"]
                await self.put_recording(conn, merged)
        return True

    async def agreement_logged(self, code: str, entry: dict[str, Any]) -> None:
        """A line of the agreement's log, numbered after the lines before it."""
        event = log_row(entry)
        for _ in range(LOG_RETRIES):
            try:
                async with self.database.write() as conn:
                    last = await conn.scalar(
                        select(func.max(agreement_events.c.seq)).where(
                            agreement_events.c.code == code
                        )
                    )
                    seq = 0 if last is None else int(last) + 1
                    await conn.execute(insert(agreement_events).values(code=code, seq=seq, **event))
                return
            except IntegrityError:  # another writer took that number (or no agreement row)
                continue
            except FAILURES as error:
                log.error("database error: %s", error)
                raise unavailable() from None
        log.error("agreement %s: could not index a line of its log (tiaojie reindex will)", code)

    # -- reading -------------------------------------------------------------------------------
    async def ping(self) -> None:
        with guarded():
            async with self.database.read() as conn:
                await conn.execute(select(func.count()).select_from(recordings))

    async def counts(self) -> tuple[int, int]:
        """How many recordings and agreements the index holds."""
        with guarded():
            async with self.database.read() as conn:
                n_recordings = await conn.scalar(select(func.count()).select_from(recordings))
                n_agreements = await conn.scalar(select(func.count()).select_from(agreements))
        return int(n_recordings or 0), int(n_agreements or 0)

    async def recording(self, recording_id: str) -> Row | None:
        """One recording's row, with its agreements (`agreements`)."""
        with guarded():
            async with self.database.read() as conn:
                found = await conn.execute(
                    select(recordings).where(recordings.c.recording_id == recording_id)
                )
                row = found.mappings().first()
                if row is None:
                    return None
                linked = await self._linked(conn, [recording_id])
        return {**dict(row), "agreements": linked.get(recording_id, [])}

    async def recordings(
        self, room_id: str | None = None, search: str | None = None, limit: int = MAX_LIST
    ) -> list[Row]:
        """Recordings, the newest first: of one room (None: all), matching `search` (its
        room's title or id, its id, a participant's name, the case number or code of an
        agreement bound to it), each with its agreements (`agreements`)."""
        query = select(recordings)
        if room_id is not None:
            query = query.where(recordings.c.room_id == room_id)
        if search:
            needle = storable(search.casefold())
            bound = exists().where(
                agreements.c.recording_id == recordings.c.recording_id,
                agreements.c.search.contains(needle, autoescape=True),
            )
            query = query.where(or_(recordings.c.search.contains(needle, autoescape=True), bound))
        query = query.order_by(
            recordings.c.started_at.desc().nulls_last(), recordings.c.recording_id
        ).limit(max(1, min(limit, MAX_LIST)))
        with guarded():
            async with self.database.read() as conn:
                rows = [dict(r) for r in (await conn.execute(query)).mappings().all()]
                linked = await self._linked(conn, [r["recording_id"] for r in rows])
        return [{**row, "agreements": linked.get(row["recording_id"], [])} for row in rows]

    async def _linked(
        self, conn: AsyncConnection, recording_ids: list[str]
    ) -> dict[str, list[Row]]:
        """The agreements bound to each of `recording_ids`."""
        found: dict[str, list[Row]] = {}
        for chunk in _chunks(recording_ids, 500):
            query = (
                select(agreements)
                .where(agreements.c.recording_id.in_(chunk))
                .order_by(agreements.c.updated_at.desc().nulls_last(), agreements.c.code)
            )
            for row in (await conn.execute(query)).mappings().all():
                found.setdefault(row["recording_id"], []).append(dict(row))
        return found

    async def agreement(self, code: str) -> Row | None:
        """One agreement's row with its signatures (`signatures`)."""
        with guarded():
            async with self.database.read() as conn:
                found = await conn.execute(select(agreements).where(agreements.c.code == code))
                row = found.mappings().first()
                if row is None:
                    return None
                signed = await self._signatures(conn, [code])
        return {**dict(row), "signatures": signed.get(code, [])}

    async def agreements(
        self, room_id: str | None = None, search: str | None = None, limit: int = MAX_LIST
    ) -> list[Row]:
        """Agreements, the most recently changed first: of one room (None: all), matching
        `search` (case number, room title or id, code, a signer's name, the recording)."""
        query = select(agreements)
        if room_id is not None:
            query = query.where(agreements.c.room_id == room_id)
        if search:
            needle = storable(search.casefold())
            query = query.where(agreements.c.search.contains(needle, autoescape=True))
        query = query.order_by(
            func.coalesce(agreements.c.updated_at, agreements.c.sealed_at, 0).desc(),
            agreements.c.code.desc(),
        ).limit(max(1, min(limit, MAX_LIST)))
        with guarded():
            async with self.database.read() as conn:
                rows = [dict(r) for r in (await conn.execute(query)).mappings().all()]
                signed = await self._signatures(conn, [r["code"] for r in rows])
        return [{**row, "signatures": signed.get(row["code"], [])} for row in rows]

    async def _signatures(self, conn: AsyncConnection, codes: list[str]) -> dict[str, list[Row]]:
        found: dict[str, list[Row]] = {}
        for chunk in _chunks(codes, 500):
            query = (
                select(agreement_signatures)
                .where(agreement_signatures.c.code.in_(chunk))
                .order_by(agreement_signatures.c.code, agreement_signatures.c.seq)
            )
            for row in (await conn.execute(query)).mappings().all():
                found.setdefault(row["code"], []).append(dict(row))
        return found

    async def events(self, code: str) -> list[Row]:
        """An agreement's log, as indexed."""
        with guarded():
            async with self.database.read() as conn:
                query = (
                    select(agreement_events)
                    .where(agreement_events.c.code == code)
                    .order_by(agreement_events.c.seq)
                )
                return [dict(r) for r in (await conn.execute(query)).mappings().all()]

    async def unfinished(self, node: str) -> list[str]:
        """The recordings `node` ran that the index still has as running."""
        with guarded():
            async with self.database.read() as conn:
                query = select(recordings.c.recording_id).where(
                    recordings.c.node == node, recordings.c.status == "recording"
                )
                return list((await conn.execute(query)).scalars())

    async def known(self) -> tuple[set[str], set[str]]:
        """Every recording id and agreement code in the index."""
        with guarded():
            async with self.database.read() as conn:
                ids = set((await conn.execute(select(recordings.c.recording_id))).scalars())
                codes = set((await conn.execute(select(agreements.c.code))).scalars())
        return ids, codes


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _storable_row(row: Row) -> Row:
    return {k: storable(v) if isinstance(v, str) else v for k, v in row.items()}


def _storable_recording(row: Row) -> Row:
    row = _storable_row(row)
    row["search"] = recording_search(row)
    return row


def _storable_agreement(row: Row, signatures: list[Row]) -> Row:
    row = _storable_row(row)
    row["search"] = agreement_search(row, signatures)
    return row
