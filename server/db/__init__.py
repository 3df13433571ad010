"""The durable database: its URL (`url`), the engine and transactions (`database`), the
tables (`schema`) and the Alembic migrations shipped with the package (`migrate`,
`migrations/`). SQLite in the data directory by default, PostgreSQL for several nodes.

The room store on top of it is server/store/sql.py.
"""

from tiaojie.server.db.database import Database, DatabaseError
from tiaojie.server.db.migrate import Migrated, migrate
from tiaojie.server.db.url import DatabaseUrl, parse_database_url


def prepare(url: DatabaseUrl) -> Migrated | None:
    """Reach the database and migrate it, in a loop of its own (the CLI, before the server
    starts): DatabaseError, with the URL and why, if it cannot. None for `memory:`."""
    import asyncio

    if url.kind == "memory":
        return None
    database = Database(url)

    async def run() -> Migrated:
        try:
            return await migrate(database)
        finally:
            await database.close()

    return asyncio.run(run())


__all__ = ["Database", "DatabaseError", "DatabaseUrl", "Migrated", "parse_database_url", "prepare"]
