"""Applying the migrations in migrations/versions/ (Alembic, no alembic.ini).

`tiaojie serve` runs `migrate` on start and `tiaojie migrate` runs it alone. All pending
revisions run in ONE transaction (PostgreSQL and SQLite both have transactional DDL; see
server/db/database.py for SQLite), so a migration that fails leaves the database exactly
as it was. Nodes starting together take turns: PostgreSQL through an advisory lock,
SQLite through its write lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, text

from tiaojie.server.db.database import FAILURES, Database, DatabaseError, reason

log = logging.getLogger(__name__)
#: Alembic says "Context impl ..." on every look at the schema; `migrate` logs what changed.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key: "tiaojie" in ASCII, as a number.
LOCK_KEY = 0x7469616F6A6965


@dataclass(frozen=True)
class Migrated:
    """The schema revision before and after (None: an empty database)."""

    before: str | None
    after: str | None


def _config(script_location: Path, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    return config


def head(script_location: Path = MIGRATIONS) -> str:
    """The newest revision this Tiaojie knows."""
    revision = ScriptDirectory.from_config(_config(script_location)).get_current_head()
    assert revision is not None
    return revision


def _upgrade(connection: Connection, script_location: Path) -> Migrated:
    config = _config(script_location, connection)
    before = MigrationContext.configure(connection).get_current_revision()
    if before is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(before)
        except CommandError:
            raise DatabaseError(
                f"the database's schema is at revision {before}, which this Tiaojie does not "
                f"know (its newest is {head(script_location)}): run the newer Tiaojie that "
                "migrated it"
            ) from None
    command.upgrade(config, "head")
    return Migrated(before, MigrationContext.configure(connection).get_current_revision())


async def migrate(database: Database, script_location: Path = MIGRATIONS) -> Migrated:
    """Bring the schema to the newest revision; DatabaseError (nothing changed) if not."""
    shown = database.url.shown()
    try:
        async with database.write() as conn:
            if database.kind == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            done = await conn.run_sync(_upgrade, script_location)
    except DatabaseError as error:
        raise DatabaseError(f"{shown}: {error}") from None
    except FAILURES as error:
        raise DatabaseError(f"cannot use the database {shown}: {reason(error)}") from None
    except Exception as error:
        log.exception("migrating %s failed", shown)
        raise DatabaseError(
            f"migrating the database {shown} failed, nothing was changed: "
            f"{type(error).__name__}: {error}"
        ) from None
    if done.before != done.after:
        log.info("database %s: schema %s -> %s", shown, done.before or "(empty)", done.after)
    return done
