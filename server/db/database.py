"""One database: the async engine, its transactions, and the errors it raises.

SQLite (aiosqlite) is set up for durability and for several writers: WAL mode,
`synchronous=FULL` (a commit is on disk before the user hears "done", power loss
included), foreign keys on, and transactions begun by us (`BEGIN`, or `BEGIN IMMEDIATE`
for writes) instead of by the driver, which would run DDL outside any transaction and so
break transactional migrations. The file is made mode 0600. PostgreSQL (asyncpg) checks
pooled connections before use, so a restarted database server costs one failed ping.

Any failure of the database itself becomes `DatabaseError` (start, `tiaojie migrate`) or,
during a request, the 503 of `unavailable()`.

Statements' parameters are never logged nor put into error messages (`hide_parameters`):
they hold password hashes and the digests of session tokens and API keys.

`memory:` (tests, demos) keeps rooms in the process (server/store/memory.py); what only
SQL holds (staff accounts, the audit log) goes to an in-memory SQLite database: one
connection (StaticPool) whose transactions take turns (a lock), lost with the process.

SQLite has one writer at a time. Our writers take turns in the event loop (an
`asyncio.Lock`) before they ask SQLite for its write lock: a writer waiting in SQLite's
busy handler waits in a worker thread on a clock of its own, and when the event loop was
held up (a loaded machine, a long synchronous call) the transaction it waited for could
not finish in time and the wait ended in "database is locked", once in a full test run
(2026-11-30). Waiting in the loop has no such clock. The busy timeout is left for other
processes (`tiaojie backup`, `reindex`, a second server on the same file by mistake).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from tiaojie.server.db.url import DatabaseUrl
from tiaojie.server.errors import TiaojieError

log = logging.getLogger(__name__)
#: aiosqlite's DEBUG log prints every statement with its parameters (password hashes,
#: session and key digests): never that, whatever the root logger's level.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

#: What the database (not our code) can raise: driver errors, a full pool, the network.
FAILURES = (DBAPIError, PoolTimeout, OSError)
#: asyncpg waits 60 s for an unreachable server by default.
CONNECT_TIMEOUT_S = 10
#: How long a SQLite writer waits for another's transaction, unless the URL says
#: (`?timeout=`). Python's default, 5 s, ran out on a machine loaded to 30+ while one
#: transaction's task waited for the event loop: "database is locked" for a write that
#: would have succeeded a moment later.
SQLITE_BUSY_S = 30.0
_BEGIN = "tiaojie_begin"
#: The task whose write transaction this context is in, while it is open: a second
#: `write()` in that task would wait for itself for ever (SQLite) and is refused at once.
_WRITING: contextvars.ContextVar[list[asyncio.Task[Any] | None]] = contextvars.ContextVar(
    "tiaojie_writing"
)


class DatabaseError(RuntimeError):
    """The database cannot be used: its URL (password hidden) and why, for operators."""


def unavailable() -> TiaojieError:
    return TiaojieError(
        "database_unavailable",
        "The database is not available right now; nothing was changed. Try again shortly.",
        503,
    )


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Database failures as the 503 every client understands (the transaction rolled back)."""
    try:
        yield
    except FAILURES as error:
        log.error("database error: %s", error)
        raise unavailable() from None


def reason(error: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's statement dump and links."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return text or type(original).__name__


class Database:
    """The engine for one URL (made on `start`, in the loop that uses it)."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None
        #: memory: one connection, so one transaction at a time.
        self._turns = asyncio.Lock() if url.kind == "memory" else None
        #: SQLite: one writer at a time, waiting in the loop (see the module's docstring).
        self._writers = asyncio.Lock() if url.kind == "sqlite" else None

    @property
    def kind(self) -> str:
        return self.url.kind

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> AsyncEngine:
        if self.url.kind == "memory":
            engine = create_async_engine(
                "sqlite+aiosqlite://", poolclass=StaticPool, hide_parameters=True
            )
            event.listen(engine.sync_engine, "connect", _sqlite_connect)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
            return engine
        assert self.url.url is not None
        if self.url.kind == "postgresql":
            return create_async_engine(
                self.url.url,
                pool_pre_ping=True,
                connect_args={"timeout": CONNECT_TIMEOUT_S},
                hide_parameters=True,
            )
        assert self.url.path is not None
        _create_private(self.url.path)
        busy = {} if "timeout" in self.url.url.query else {"timeout": SQLITE_BUSY_S}
        engine = create_async_engine(self.url.url, hide_parameters=True, connect_args=busy)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed when the block ends without an exception.
        On SQLite it holds the write lock from its first statement (`BEGIN IMMEDIATE`), so
        a read-modify-write never has to be retried half way. A write inside another in
        the same task is a bug (RuntimeError): pass the connection down instead."""
        task = asyncio.current_task()
        outer = _WRITING.get(None)
        if outer is not None and outer[0] is task:
            raise RuntimeError("a write transaction inside another: pass its connection")
        mine: list[asyncio.Task[Any] | None] = [task]
        token = _WRITING.set(mine)
        try:
            async with self._write() as conn:
                yield conn
        finally:
            mine[0] = None
            _WRITING.reset(token)

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with (
            self._turn(self._writers),
            self._turn(self._turns),
            self.engine.connect() as conn,
        ):
            if self.kind != "postgresql":
                await conn.execution_options(**{_BEGIN: "IMMEDIATE"})
            async with conn.begin():
                yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that sees one snapshot for all its statements (SQLite's deferred
        BEGIN in WAL mode does; PostgreSQL needs REPEATABLE READ)."""
        async with self._turn(self._turns), self.engine.connect() as conn:
            if self.kind == "postgresql":
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    @contextlib.asynccontextmanager
    async def _turn(self, lock: asyncio.Lock | None) -> AsyncIterator[None]:
        if lock is None:
            yield
            return
        async with lock:
            yield

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def _create_private(path: os.PathLike[str]) -> None:
    """The SQLite file, mode 0600 before anything is in it (SQLite gives its -wal and
    -shm files the same mode)."""
    from pathlib import Path

    file = Path(path)
    if not file.parent.is_dir():
        file.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)


def _sqlite_connect(dbapi_connection: Any, _: Any) -> None:
    dbapi_connection.isolation_level = None  # we begin transactions ourselves
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get(_BEGIN, "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())
