"""Database URLs as operators write them: `sqlite:///PATH`, `postgresql://...`, `memory:`.

The default is SQLite in the data directory (`DATA/tiaojie.db`). A URL is shown (logs,
errors, the start banner) only with its password hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_FILE = "tiaojie.db"
#: The throw-away store: rooms in this process only (unit tests, a demo).
MEMORY = "memory:"
USAGE = "use sqlite:///PATH, postgresql://USER:PASSWORD@HOST:PORT/NAME or memory:"

Kind = Literal["sqlite", "postgresql", "memory"]


@dataclass(frozen=True)
class DatabaseUrl:
    kind: Kind
    #: The SQLAlchemy URL with its async driver (aiosqlite, asyncpg); None for memory.
    url: URL | None = None
    #: The SQLite file.
    path: Path | None = None

    def shown(self) -> str:
        """The URL with its password hidden, for messages and logs."""
        if self.url is None:
            return MEMORY
        plain = self.url.set(drivername=self.kind)
        return plain.render_as_string(hide_password=True)

    def without_password(self) -> str:
        """The URL for a command line: the password comes from PGPASSWORD or ~/.pgpass."""
        if self.url is None:
            return MEMORY
        url = self.url
        plain = URL.create(self.kind, url.username, None, url.host, url.port, url.database)
        return plain.render_as_string(hide_password=False)


def parse_database_url(raw: str | None, data_dir: Path) -> DatabaseUrl:
    """`raw` (None or empty: SQLite in `data_dir`); ValueError naming what is wrong."""
    if not raw:
        path = data_dir / DEFAULT_FILE
        return DatabaseUrl("sqlite", URL.create("sqlite+aiosqlite", database=str(path)), path)
    if raw.strip() == MEMORY:
        return DatabaseUrl("memory")
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError(f"not a database URL: {_hide(raw)} ({USAGE})") from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "aiosqlite"):
        if not url.database or url.database == ":memory:":
            raise ValueError(f"SQLite needs a file: sqlite:///PATH ({MEMORY} keeps rooms in RAM)")
        path = Path(url.database)
        return DatabaseUrl("sqlite", url.set(drivername="sqlite+aiosqlite"), path)
    if backend in ("postgresql", "postgres") and driver in ("", "asyncpg"):
        if not url.database:
            raise ValueError(f"name the database: {_hide(raw)} ({USAGE})")
        return DatabaseUrl("postgresql", url.set(drivername="postgresql+asyncpg"))
    raise ValueError(f"unsupported database {url.render_as_string(hide_password=True)} ({USAGE})")


def _hide(raw: str) -> str:
    """A string that failed to parse, with anything that may be a password cut out."""
    scheme, sep, rest = raw.partition("://")
    if sep and "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest
