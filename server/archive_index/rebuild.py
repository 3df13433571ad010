"""Rebuilding the archive index from the files (`tiaojie reindex`; `tiaojie restore` and
`tiaojie serve` when the index is empty but the archive is not; a `memory:` server on
every start).

Every Recording folder under `DATA/recordings/` (its summary, its Chain, its line of
`index.jsonl`) and every Agreement folder under `DATA/agreements/` (`status.json`,
`log.jsonl`) becomes its rows again, in one transaction. What the database still knows
of a room wins over the files: its title, whether its recording is still running, its
agreement's state (exact, where the files have only the public status). Rows whose files
are not on this node are left alone (another node of a cluster may hold them) and counted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tiaojie.archive.layout import AGREEMENTS_DIR, RECORDINGS_DIR, is_recording_id
from tiaojie.server.archive_index.files import (
    agreement_from_folder,
    recording_from_folder,
    started_recordings,
)
from tiaojie.server.archive_index.index import ArchiveIndex
from tiaojie.server.archive_index.rows import Row, agreement_rows
from tiaojie.server.db import Database, DatabaseError, DatabaseUrl
from tiaojie.server.db.database import guarded
from tiaojie.server.db.migrate import migrate
from tiaojie.server.db.schema import rooms
from tiaojie.server.errors import TiaojieError

log = logging.getLogger(__name__)


@dataclass
class Rebuilt:
    """What a rebuild found: rows written, folders it could not read, and rows of the
    index whose files are not in this data directory."""

    recordings: int = 0
    agreements: int = 0
    unreadable: list[str] = field(default_factory=list)
    elsewhere: int = 0


@dataclass
class _Found:
    recordings: list[Row] = field(default_factory=list)
    agreements: list[tuple[Row, list[Row], list[Row]]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def _scan(data_dir: Path) -> _Found:
    """Every Recording and Agreement folder of `data_dir`, as rows (blocking)."""
    found = _Found()
    root = data_dir / RECORDINGS_DIR
    started = started_recordings(root)
    try:
        folders = sorted(p for p in root.iterdir() if is_recording_id(p.name))
    except OSError:
        folders = []
    for folder in folders:
        row = recording_from_folder(folder, started.get(folder.name), None)
        if row is None:
            found.unreadable.append(f"{RECORDINGS_DIR}/{folder.name}")
        else:
            found.recordings.append(row)
    try:
        codes = sorted(p for p in (data_dir / AGREEMENTS_DIR).iterdir() if p.is_dir())
    except OSError:
        codes = []
    for folder in codes:
        agreement = agreement_from_folder(folder)
        if agreement is None:
            found.unreadable.append(f"{AGREEMENTS_DIR}/{folder.name}")
        else:
            found.agreements.append(agreement)
    return found


def archive_present(data_dir: Path) -> bool:
    """Whether `data_dir` holds any recording or agreement folder."""
    for name in (RECORDINGS_DIR, AGREEMENTS_DIR):
        try:
            if any(p.is_dir() for p in (data_dir / name).iterdir()):
                return True
        except OSError:
            continue
    return False


async def rebuild(index: ArchiveIndex, data_dir: Path) -> Rebuilt:
    """Index every folder of the archive in `data_dir` again (see the module)."""
    found = await asyncio.to_thread(_scan, data_dir)
    done = Rebuilt(unreadable=found.unreadable)
    with guarded():
        async with index.database.write() as conn:
            known: dict[str, dict[str, Any]] = {
                row["id"]: dict(row)
                for row in (
                    await conn.execute(
                        select(rooms.c.id, rooms.c.title, rooms.c.recording, rooms.c.agreement)
                    )
                ).mappings()
            }
            for row in found.recordings:
                room = known.get(row["room_id"])
                if room is not None:
                    row["room_title"] = room["title"]
                    running = room["recording"] or {}
                    if running.get("id") == row["recording_id"] and row["status"] != "sealed":
                        row["status"] = "recording"
                await index.put_recording(conn, row)
                done.recordings += 1
            for row, signatures, events in found.agreements:
                room = known.get(row["room_id"])
                if room is not None:
                    row["room_title"] = room["title"]
                    state = room["agreement"]
                    if state and state.get("code") == row["code"]:
                        row, signatures = agreement_rows(room["id"], room["title"], state)
                await index.put_agreement(conn, row, signatures, events)
                done.agreements += 1
    recording_ids, codes = await index.known()
    done.elsewhere = len(recording_ids - {r["recording_id"] for r in found.recordings}) + len(
        codes - {a[0]["code"] for a in found.agreements}
    )
    log.info(
        "archive index rebuilt from %s: %d recordings, %d agreements",
        data_dir,
        done.recordings,
        done.agreements,
    )
    for folder in done.unreadable:
        log.warning("archive index: %s could not be read, not indexed", folder)
    return done


async def ensure(index: ArchiveIndex, data_dir: Path) -> Rebuilt | None:
    """Rebuild when the index is empty but the archive is not (a database restored
    without it, an upgrade from before the index, a `memory:` server); None otherwise."""
    if await index.counts() != (0, 0):
        return None
    if not await asyncio.to_thread(archive_present, data_dir):
        return None
    return await rebuild(index, data_dir)


def rebuild_database(
    url: DatabaseUrl, data_dir: Path, *, if_missing: bool = False
) -> Rebuilt | None:
    """`tiaojie reindex` (and `restore`, `if_missing`): migrate the database at `url`, then
    rebuild its index from `data_dir`, in a loop of its own. DatabaseError if it cannot."""
    if url.kind == "memory":
        raise DatabaseError("memory: keeps no index (a memory: server rebuilds it on start)")

    async def run() -> Rebuilt | None:
        database = Database(url)
        try:
            await migrate(database)
            index = ArchiveIndex(database)
            if if_missing:
                return await ensure(index, data_dir)
            return await rebuild(index, data_dir)
        except TiaojieError as error:
            raise DatabaseError(f"{url.shown()}: {error.message}") from None
        finally:
            await database.close()

    return asyncio.run(run())
