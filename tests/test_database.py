"""The database under the room store, on SQLite and on a real PostgreSQL server: URLs,
migrations (versioned, transactional), the SQL RoomStore's atomicity across two nodes,
presence forgotten on start, and what users see when the database fails."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import fields
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from tests.conftest import DATABASES, free_port, start_server
from tests.support.postgres import PostgresCluster
from tiaojie.server import rooms
from tiaojie.server.db import Database, DatabaseError, parse_database_url
from tiaojie.server.db.migrate import MIGRATIONS, head, migrate
from tiaojie.server.db.schema import invites, metadata, participants
from tiaojie.server.db.schema import rooms as rooms_table
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import Invite, Participant, ParticipantStatus, Room, new_id, now
from tiaojie.server.roles import Role
from tiaojie.server.store import SqlRoomStore
from tiaojie.server.tokens import InviteClaims

TIAOJIE = [sys.executable, "-m", "tiaojie"]


@pytest.fixture(params=DATABASES)
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with nothing in it (no schema yet), of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    name = await cluster.create_database(template=None)
    yield cluster.url(name)
    await cluster.drop_database(name)


def new_room(title: str = "物业纠纷") -> Room:
    return Room(id=new_id(), title=title, lobby=True, max_participants=12, created_at=now())


async def open_store(url: str, tmp_path: Path, node: str = "node-a:1") -> SqlRoomStore:
    store = SqlRoomStore(Database(parse_database_url(url, tmp_path)), node)
    await store.open()
    return store


# -- URLs ------------------------------------------------------------------------------------
def test_urls_default_to_sqlite_in_the_data_directory_and_hide_passwords(tmp_path):
    default = parse_database_url(None, tmp_path)
    assert default.kind == "sqlite" and default.path == tmp_path / "tiaojie.db"
    assert default.shown() == f"sqlite:///{tmp_path}/tiaojie.db"
    pg = parse_database_url("postgresql://tiaojie:s3cret@db.example.org:5433/mediation", tmp_path)
    assert pg.kind == "postgresql" and pg.url is not None
    assert pg.url.drivername == "postgresql+asyncpg"
    assert pg.shown() == "postgresql://tiaojie:***@db.example.org:5433/mediation"
    assert parse_database_url("postgres://u@h/d", tmp_path).kind == "postgresql"
    assert parse_database_url("memory:", tmp_path).kind == "memory"
    for bad in (
        "mysql://u:s3cret@h/d",
        "sqlite://",
        "sqlite:///:memory:",
        "nonsense",
        "postgresql://h",
    ):
        with pytest.raises(ValueError) as refused:
            parse_database_url(bad, tmp_path)
        assert "s3cret" not in str(refused.value)


# -- migrations ------------------------------------------------------------------------------
async def test_migrations_make_exactly_the_schema_the_code_uses(empty_database, tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    database = Database(parse_database_url(empty_database, tmp_path))
    try:
        done = await migrate(database)
        assert (done.before, done.after) == (None, head())
        again = await migrate(database)
        assert (again.before, again.after) == (head(), head())
        async with database.read() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await database.close()
    assert diff == []


def test_every_field_of_the_room_document_has_a_column():
    columns = {c.name for c in rooms_table.columns}
    assert {f.name for f in fields(Room)} - {"invites", "participants"} <= columns
    assert {f.name for f in fields(Invite)} | {"created_ns"} == {c.name for c in invites.columns}
    assert {f.name for f in fields(Participant)} | {"room_id", "node", "created_ns"} == {
        c.name for c in participants.columns
    }


BROKEN = '''"""A migration with a bug: it changes things, then fails."""
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("broken_things", sa.Column("id", sa.String(64), primary_key=True))
    op.add_column("rooms", sa.Column("case_id", sa.String(64), nullable=True))
    op.execute("UPDATE rooms SET title = 'changed by a broken migration'")
    raise RuntimeError("a bug in this migration")


def downgrade() -> None:
    pass
'''


def broken_migrations(tmp_path: Path) -> Path:
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "v9999_broken.py").write_text(BROKEN.format(head=head()))
    return scripts


async def schema_and_rows(database: Database) -> dict[str, object]:
    async with database.read() as conn:

        def look(sync) -> dict[str, object]:
            found = inspect(sync)
            tables = sorted(found.get_table_names())
            return {
                "tables": tables,
                "columns": {t: sorted(c["name"] for c in found.get_columns(t)) for t in tables},
            }

        seen = await conn.run_sync(look)
        if "rooms" in seen["tables"]:
            seen["titles"] = (await conn.execute(text("SELECT title FROM rooms"))).all()
            seen["revision"] = (
                await conn.execute(text("SELECT version_num FROM alembic_version"))
            ).all()
    return seen


async def test_a_failed_migration_leaves_the_database_as_it_was(empty_database, tmp_path):
    scripts = broken_migrations(tmp_path)
    database = Database(parse_database_url(empty_database, tmp_path))
    try:
        # From an empty database: 0001 runs, then 9999 fails; the database stays empty.
        with pytest.raises(DatabaseError) as failed:
            await migrate(database, scripts)
        assert "nothing was changed" in str(failed.value)
        assert "a bug in this migration" in str(failed.value)
        assert (await schema_and_rows(database))["tables"] == []
        # From the current schema with a room in it: nothing changes either.
        await migrate(database)
        store = SqlRoomStore(database, "node-a:1")
        await store.create(new_room("邻里纠纷"))
        before = await schema_and_rows(database)
        assert before["titles"] == [("邻里纠纷",)] and before["revision"] == [(head(),)]
        with pytest.raises(DatabaseError):
            await migrate(database, scripts)
        assert await schema_and_rows(database) == before
    finally:
        await database.close()


async def test_a_schema_newer_than_the_code_is_refused_clearly(empty_database, tmp_path):
    scripts = broken_migrations(tmp_path)
    (scripts / "versions" / "v9999_broken.py").write_text(
        BROKEN.format(head=head()).replace('raise RuntimeError("a bug in this migration")', "")
    )
    database = Database(parse_database_url(empty_database, tmp_path))
    try:
        assert (await migrate(database, scripts)).after == "9999"  # a newer Tiaojie did this
        with pytest.raises(DatabaseError) as refused:
            await migrate(database)
    finally:
        await database.close()
    assert "revision 9999" in str(refused.value) and "does not know" in str(refused.value)


def test_tiaojie_migrate_applies_the_schema_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'x' / 'tiaojie.db'}"
    first = subprocess.run(
        [*TIAOJIE, "migrate", "--database", url], capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0, first.stderr
    assert f"schema migrated from (empty) to {head()}" in first.stdout
    again = subprocess.run(
        [*TIAOJIE, "migrate", "--data", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0 and f"schema at revision {head()}" in again.stdout
    assert stat.S_IMODE((tmp_path / "x" / "tiaojie.db").stat().st_mode) == 0o600


# -- the room store --------------------------------------------------------------------------
async def test_two_nodes_never_lose_an_update(empty_database, tmp_path):
    node_a = await open_store(empty_database, tmp_path, "node-a:1")
    node_b = await open_store(empty_database, tmp_path, "node-b:2")
    try:
        room = new_room()
        await node_a.create(room)

        async def invite(store: SqlRoomStore, i: int) -> Invite:
            return await store.update(
                room.id, lambda r: rooms.create_invite(r, Role.PARTY, f"p{i}", 600)
            )

        made = await asyncio.gather(*(invite(node_a if i % 2 else node_b, i) for i in range(40)))
        stored = await node_b.require(room.id)
        assert sorted(stored.invites) == sorted(i.invite_id for i in made)
        async with node_a.database.read() as conn:
            version = (
                await conn.execute(
                    text("SELECT version FROM rooms WHERE id = :id"), {"id": room.id}
                )
            ).scalar_one()
        assert version == 41  # created, then one step per change
    finally:
        await node_a.close()
        await node_b.close()


async def test_a_refused_change_writes_nothing(empty_database, tmp_path):
    store = await open_store(empty_database, tmp_path)
    try:
        room = new_room()
        await store.create(room)
        invite = await store.update(
            room.id, lambda r: rooms.create_invite(r, Role.PARTY, "李四", 600)
        )

        def half_then_refuse(r: Room) -> None:
            r.title = "half changed"
            r.invites[invite.invite_id].revoked = True
            rooms.end(r)
            raise TiaojieError("refused", "no")

        with pytest.raises(TiaojieError):
            await store.update(room.id, half_then_refuse)
        stored = await store.require(room.id)
        assert stored.title == room.title and not stored.ended
        assert not stored.invites[invite.invite_id].revoked
        with pytest.raises(TiaojieError) as missing:
            await store.update("no-such-room", lambda r: None)
        assert missing.value.code == "room_not_found"
    finally:
        await store.close()


async def test_a_starting_node_forgets_only_its_own_connections(empty_database, tmp_path):
    node_a = await open_store(empty_database, tmp_path, "node-a:1")
    node_b = await open_store(empty_database, tmp_path, "node-b:2")
    try:
        room = new_room()
        await node_a.create(room)
        made = {}
        for name, role in (("王", Role.MEDIATOR), ("李", Role.PARTY), ("赵", Role.PARTY)):
            made[name] = await node_a.update(
                room.id, lambda r, role=role, name=name: rooms.create_invite(r, role, name, 600)
            )

        def claims(invite: Invite) -> InviteClaims:
            return InviteClaims(room.id, invite.role, invite.invite_id, invite.expires_at)

        await node_a.update(room.id, lambda r: rooms.join(r, claims(made["王"]), "sid-1", None))
        await node_a.update(room.id, lambda r: rooms.join(r, claims(made["李"]), "sid-2", None))
        await node_b.update(room.id, lambda r: rooms.join(r, claims(made["赵"]), "sid-3", None))
        # Node B admits 李 (connected to node A): the connection stays node A's.
        await node_b.update(room.id, lambda r: rooms.admit(r, made["李"].invite_id))

        # Node A restarts.
        await node_a.close()
        node_a = await open_store(empty_database, tmp_path, "node-a:1")
        gone = await node_a.release_connections()
        assert sorted(p.name for _, p in gone) == ["李", "王"]
        stored = await node_b.require(room.id)
        assert [p.name for p in stored.participants.values()] == ["赵"]
        assert stored.participants[made["赵"].invite_id].status is ParticipantStatus.LOBBY
        # What was decided stays: 李 was admitted (straight in next time), 赵 was not.
        assert stored.invites[made["李"].invite_id].admitted
        assert not stored.invites[made["赵"].invite_id].admitted
        assert await node_a.release_connections() == []
    finally:
        await node_a.close()
        await node_b.close()


# -- failures users see ----------------------------------------------------------------------
async def test_the_sqlite_file_is_private_and_in_wal_mode(live_server):
    path = live_server.state.settings.data_dir / "tiaojie.db"
    await live_server.create_room()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        assert stat.S_IMODE(path.with_name(path.name + suffix).stat().st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_busy_gives_503_and_changes_nothing(tmp_path):
    path = tmp_path / "busy.db"
    srv = await start_server(tmp_path / "data", database_url=f"sqlite:///{path}?timeout=0.3")
    holder = None
    try:
        room = await srv.create_room()
        mediator_invite = await srv.create_invite(room["id"], "mediator", "王")
        mediator = await srv.join(mediator_invite)
        await mediator.wait_for("room_state")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the database
        status, body = await srv.admin(
            "POST", f"/api/rooms/{room['id']}/invites", json={"role": "party", "name": "李四"}
        )
        assert status == 503 and body["error"] == "database_unavailable" and body["message"]
        ack = await mediator.call("lock", {"locked": True})
        assert ack["ok"] is False and ack["error"] == "database_unavailable"
        holder.execute("ROLLBACK")
        after = await srv.room(room["id"])
        assert len(after["invites"]) == 1 and after["locked"] is False
        await srv.create_invite(room["id"], "party", "李四")  # and it works again
    finally:
        if holder is not None:
            holder.close()
        await srv.close()
        await srv.server.close()


async def test_postgresql_gone_gives_503_and_changes_nothing(postgres, tmp_path):
    name = await postgres.create_database()
    srv = await start_server(tmp_path / "data", database_url=postgres.url(name))
    admin = await postgres.admin()
    try:
        room = await srv.create_room()
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        status, body = await srv.admin(
            "POST", f"/api/rooms/{room['id']}/invites", json={"role": "party", "name": "李四"}
        )
        assert status == 503 and body["error"] == "database_unavailable", body
        status, body = await srv.admin("GET", f"/api/rooms/{room['id']}")
        assert status == 503 and body["error"] == "database_unavailable", body
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await srv.room(room["id"]))["invites"] == []
        await srv.create_invite(room["id"], "party", "李四")
    finally:
        await admin.close()
        await srv.close()
        await srv.server.close()
        await postgres.drop_database(name)


def serve_fails(tmp_path: Path, database: str) -> str:
    """`tiaojie serve --database DATABASE` must exit non-zero at once; what it printed."""
    done = subprocess.run(
        [*TIAOJIE, "serve", "--data", str(tmp_path / "data"), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=90,
        env={
            **os.environ,
            "TIAOJIE_DATABASE": database,
            "TIAOJIE_ADMIN_TOKEN": "admin-token-for-the-test-3f9a1c7e",
        },
    )
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out and "s3cret" not in out, out
    return done.stderr


def test_an_unreachable_or_wrong_database_stops_the_start_with_a_clear_message(tmp_path, postgres):
    port = free_port()
    err = serve_fails(tmp_path, f"postgresql://tiaojie:s3cret@127.0.0.1:{port}/mediation")
    assert f"postgresql://tiaojie:***@127.0.0.1:{port}/mediation" in err
    missing = postgres.url("no_such_database").replace("postgres@", "postgres:s3cret@")
    err = serve_fails(tmp_path, missing)
    assert "no_such_database" in err and "does not exist" in err
    err = serve_fails(tmp_path, "mysql://root:s3cret@127.0.0.1/mediation")
    assert "unsupported database mysql://root:***@127.0.0.1/mediation" in err
    err = serve_fails(tmp_path, "sqlite:////proc/no/such/place/tiaojie.db")
    assert "sqlite:////proc/no/such/place/tiaojie.db" in err


def test_a_postgresql_backup_says_how_to_dump_the_database(tmp_path):
    from tiaojie.server.backup import backup, check

    data = tmp_path / "data"
    (data / "keys").mkdir(parents=True)
    (data / "keys" / "ca.cert.pem").write_text("certificate")
    (data / "secret_key").write_text("secret")
    url = parse_database_url("postgresql://tiaojie:s3cret@db.example.org/mediation", data)
    done = backup(data, url, tmp_path / "backup")
    assert done.pg_dump is not None and "s3cret" not in done.pg_dump
    assert "pg_dump --format=custom" in done.pg_dump
    assert "postgresql://tiaojie@db.example.org/mediation" in done.pg_dump
    index = check(tmp_path / "backup")
    assert index["database"]["kind"] == "postgresql"
    assert [f["path"] for f in index["files"]] == ["secret_key", "keys/ca.cert.pem"]
    assert "s3cret" not in (tmp_path / "backup" / "index.json").read_text()


async def test_sqlite_writers_wait_for_each_other_30_s_unless_the_url_says(tmp_path):
    """Python's default of 5 s ran out on a loaded machine ("database is locked" for a
    write that would have gone through); `?timeout=` in the URL still wins."""
    for raw, expected in ((None, 30_000), (f"sqlite:///{tmp_path / 'x.db'}?timeout=0.3", 300)):
        db = Database(parse_database_url(raw, tmp_path))
        try:
            async with db.read() as conn:
                busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
            assert busy == expected, raw
        finally:
            await db.close()


async def test_sqlite_writers_of_one_server_take_turns_however_long_the_first_one_takes(
    tmp_path,
):
    """A writer that waits for another of the same server waits in the event loop, not in
    SQLite's busy handler, whose clock ran out (a full run, 2026-11-30) while the loop was
    held up and the transaction it waited for could not finish."""
    url = parse_database_url(f"sqlite:///{tmp_path / 'turns.db'}?timeout=0.2", tmp_path)
    db = Database(url)
    try:
        async with db.write() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        first_holds = asyncio.Event()
        release = asyncio.Event()

        async def first() -> None:
            async with db.write() as conn:
                await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                first_holds.set()
                await release.wait()  # the write lock held well past the busy timeout

        async def second() -> None:
            async with db.write() as conn:
                await conn.exec_driver_sql("INSERT INTO t VALUES (2)")

        holder = asyncio.create_task(first())
        await first_holds.wait()
        waiter = asyncio.create_task(second())
        await asyncio.sleep(0.6)  # three busy timeouts: a thread-side wait has given up
        assert not waiter.done()
        release.set()
        await asyncio.gather(holder, waiter)
        async with db.read() as conn:
            rows = (await conn.exec_driver_sql("SELECT n FROM t ORDER BY n")).scalars().all()
        assert rows == [1, 2]
    finally:
        await db.close()


async def test_a_write_inside_a_write_of_the_same_task_is_refused_at_once(tmp_path):
    """It would wait for itself (SQLite) or hold two connections (PostgreSQL); a task
    started inside a write may write once that one is over."""
    db = Database(parse_database_url(None, tmp_path))
    try:
        later: asyncio.Task[None] | None = None

        async def afterwards() -> None:
            async with db.write() as conn:
                await conn.exec_driver_sql("SELECT 1")

        async with db.write():
            with pytest.raises(RuntimeError, match="inside another"):
                async with db.write():
                    pass
            later = asyncio.create_task(afterwards())
        await later
    finally:
        await db.close()
