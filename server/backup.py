"""Backups of a node: `tiaojie backup DEST` and `tiaojie restore SRC`.

A backup is a folder:

- `tiaojie.db`: a consistent copy of the SQLite database, taken online with SQLite's
  backup API (the server may be running; the copy is one committed state);
- `data/`: the secrets (`secret_key`, `admin_token`, `node_id`), the keys (`keys/`) and the
  archive (`recordings/`, `agreements/`, the cases' attachments `cases/`), file by file;
- `index.json`: what the backup holds: the database (kind, schema revision, sha256), every
  file with its size and sha256, and the archive's recordings and agreements (from the
  archive index in the database copy: titles, seals, the PDF's sha256, which recording
  each agreement is bound to; from the files when the copy has no index), so an
  archivist can see what is there without restoring it.

The database copy holds every table, the archive index's too. A restored database with
no index (a backup made before the index existed) gets it rebuilt from the restored
files (`tiaojie restore` runs `tiaojie reindex`).

A PostgreSQL database is not copied here: the index says so and `pg_dump` does it (the
command is printed). Restoring checks every sha256 against the index before anything
is written, and only into an empty data directory. The node's name (`node_id`) comes
back too, so the restored node cleans up what the old one left connected and recording.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiaojie import __version__
from tiaojie.server.db.url import DatabaseUrl

FORMAT = "tiaojie-backup 1"
INDEX_FILE = "index.json"
DATABASE_FILE = "tiaojie.db"
DATA_DIR = "data"
#: What of a data directory a backup holds (files, or folders taken whole).
KEPT = ("secret_key", "admin_token", "node_id", "keys", "recordings", "agreements", "cases")


class BackupError(Exception):
    """A backup or restore that cannot be done: what and why (nothing was written)."""


@dataclass(frozen=True)
class BackupDone:
    index: dict[str, Any]
    #: For PostgreSQL: the command that copies the database (we do not).
    pg_dump: str | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    """The files a backup takes from data directory `root`, relative to it."""
    found: list[Path] = []
    for name in KEPT:
        path = root / name
        if path.is_file():
            found.append(Path(name))
        elif path.is_dir():
            found += sorted(
                p.relative_to(root)
                for p in path.rglob("*")
                if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".tmp")
            )
    return found


#: What index.json lists of each recording and agreement, from the archive index.
RECORDING_FIELDS = (
    "recording_id",
    "room_id",
    "room_title",
    "status",
    "started_at",
    "ended_at",
    "seal_reason",
    "seal_hash",
    "chain_sha256",
)
AGREEMENT_FIELDS = (
    "code",
    "room_id",
    "room_title",
    "status",
    "case_number",
    "recording_id",
    "pdf_path",
    "pdf_sha256",
)


def _indexed(database: Path) -> dict[str, list[dict[str, Any]]] | None:
    """The recordings and agreements of the archive index in the SQLite file `database`;
    None when it has no index (or an empty one)."""
    conn = sqlite3.connect(database)
    conn.row_factory = sqlite3.Row
    try:
        recordings = conn.execute(
            f"SELECT {', '.join(RECORDING_FIELDS)} FROM recordings ORDER BY started_at"
        ).fetchall()
        agreements = conn.execute(
            f"SELECT {', '.join(AGREEMENT_FIELDS)} FROM agreements ORDER BY created_at"
        ).fetchall()
    except sqlite3.DatabaseError:  # a database from before the index
        return None
    finally:
        conn.close()
    if not recordings and not agreements:
        return None
    return {
        "recordings": [dict(row) for row in recordings],
        "agreements": [dict(row) for row in agreements],
    }


def _archive(root: Path) -> dict[str, list[dict[str, Any]]]:
    """The recordings and agreements of data directory `root`, as their summaries say."""
    recordings = []
    for summary in sorted((root / "recordings").glob("*/recording.json")):
        data = json.loads(summary.read_text())
        recordings.append(
            {
                "recording_id": data.get("recording_id", summary.parent.name),
                "room_id": data.get("room_id"),
                "status": data.get("status"),
                "seal": data.get("seal"),
            }
        )
    agreements = []
    for status in sorted((root / "agreements").glob("*/status.json")):
        data = json.loads(status.read_text())
        public = data.get("public", {})
        agreements.append(
            {
                "code": status.parent.name,
                "room_id": data.get("room_id"),
                "status": public.get("status"),
                "pdf": (status.parent / "agreement.pdf").is_file(),
            }
        )
    return {"recordings": recordings, "agreements": agreements}


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: one committed state, whatever the server does meanwhile."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()


def _schema_revision(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            return None
    return str(row[0]) if row else None


def backup(data_dir: Path, database: DatabaseUrl, dest: Path) -> BackupDone:
    """Copy database, secrets, keys and archive of `data_dir` into the new folder `dest`."""
    if database.kind == "memory":
        raise BackupError("memory: keeps nothing to back up")
    if not data_dir.is_dir():
        raise BackupError(f"no data directory {data_dir}")
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: back up into a new folder")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    index: dict[str, Any] = {
        "format": FORMAT,
        "tiaojie": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    pg_dump = None
    if database.kind == "sqlite":
        assert database.path is not None
        if not database.path.is_file():
            raise BackupError(f"no database at {database.path}")
        copy = dest / DATABASE_FILE
        try:
            _copy_sqlite(database.path, copy)
        except sqlite3.Error as error:
            raise BackupError(f"cannot copy the database {database.shown()}: {error}") from None
        index["database"] = {
            "kind": "sqlite",
            "file": DATABASE_FILE,
            "schema": _schema_revision(copy),
            "sha256": _sha256(copy),
        }
    else:
        pg_dump = (
            f"pg_dump --format=custom --file {dest / 'tiaojie.pgdump'} "
            f"'{database.without_password()}'  # password: PGPASSWORD or ~/.pgpass"
        )
        index["database"] = {"kind": "postgresql", "url": database.shown(), "dump": pg_dump}
    files = []
    for relative in _files(data_dir):
        target = dest / DATA_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy2(data_dir / relative, target)
        files.append(
            {"path": relative.as_posix(), "size": target.stat().st_size, "sha256": _sha256(target)}
        )
    index["files"] = files
    indexed = _indexed(dest / DATABASE_FILE) if database.kind == "sqlite" else None
    index["archive"] = indexed if indexed is not None else _archive(dest / DATA_DIR)
    index_path = dest / INDEX_FILE
    index_path.write_text(json.dumps(index, ensure_ascii=False, indent=1) + "\n")
    index_path.chmod(0o600)
    return BackupDone(index, pg_dump)


def check(source: Path) -> dict[str, Any]:
    """The index of backup `source`, once every file in it matched its sha256."""
    try:
        index: dict[str, Any] = json.loads((source / INDEX_FILE).read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"{source} is not a Tiaojie backup: {error}") from None
    if index.get("format") != FORMAT:
        raise BackupError(f"{source}: unknown backup format {index.get('format')!r}")
    expected = [(DATA_DIR + "/" + f["path"], f["sha256"]) for f in index["files"]]
    if index["database"]["kind"] == "sqlite":
        expected.append((index["database"]["file"], index["database"]["sha256"]))
    damaged = []
    for relative, digest in expected:
        path = source / relative
        if not path.is_file() or _sha256(path) != digest:
            damaged.append(relative)
    if damaged:
        shown = ", ".join(damaged[:5]) + (" ..." if len(damaged) > 5 else "")
        raise BackupError(f"the backup is damaged: {len(damaged)} files differ ({shown})")
    return index


def restore(source: Path, data_dir: Path, database: DatabaseUrl) -> dict[str, Any]:
    """Put backup `source` into the empty data directory `data_dir`; its index."""
    index = check(source)
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"{data_dir} is not empty: restore into a new data directory")
    kind = index["database"]["kind"]
    if kind == "sqlite" and database.kind != "sqlite":
        raise BackupError(f"this backup holds a SQLite database; {database.shown()} is not one")
    if kind == "sqlite":
        assert database.path is not None
        if database.path.exists():
            raise BackupError(f"there is a database at {database.path} already")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    for entry in index["files"]:
        target = data_dir / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy2(source / DATA_DIR / entry["path"], target)
    if kind == "sqlite":
        assert database.path is not None
        database.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(database.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, (source / index["database"]["file"]).open("rb") as f:
            shutil.copyfileobj(f, out)
    return index
