"""The durable database: its URL (`url`), the engine and transactions (`database`), the
tables (`schema`) and the Alembic migrations shipped with the package (`migrate`,
`migrations/`). SQLite in the data directory by default, PostgreSQL for several nodes.

The room store on top of it is server/store/sql.py.
"""

from tiaojie.server.db.database import Database, DatabaseError
from tiaojie.server.db.url import DatabaseUrl, parse_database_url

__all__ = ["Database", "DatabaseError", "DatabaseUrl", "parse_database_url"]
