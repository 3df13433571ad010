"""The archive index (server/archive_index/): recordings and agreements indexed in the
database with the room changes that make them, served by the archive API with search,
rebuilt from the files (`tiaojie reindex`, `restore`), and what users see when the
database (a real PostgreSQL, stopped under the running server) is gone."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text

from tests.conftest import LiveServer, free_port, start_server
from tests.support.postgres import PostgresCluster, postgres_bin
from tests.support.staff import StaffBrowser
from tests.test_accounts import make_account, make_organisation
from tests.test_agreements import (
    CASE_NUMBER,
    Room,
    chain_entries,
    keys,  # noqa: F401 - the autouse fixture: the keys in place before each server
    shared_keys,  # noqa: F401
    start_recording,
    stop_recording,
    wait_status,
)
from tiaojie.server.archive_index.rebuild import rebuild
from tiaojie.server.archive_index.schema import (
    agreement_events,
    agreement_signatures,
    agreements,
    recordings,
)
from tiaojie.server.db.database import Database
from tiaojie.server.db.url import parse_database_url
from tiaojie.server.signalling import _room_channel as room_channel

TIAOJIE = [sys.executable, "-m", "tiaojie"]
TABLES = (recordings, agreements, agreement_signatures, agreement_events)


async def index_rows(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of the index's tables, without when each was written."""
    found = {}
    async with database.read() as conn:
        for table in TABLES:
            key = list(table.primary_key.columns)
            rows = (await conn.execute(select(table).order_by(*key))).mappings().all()
            found[table.name] = [
                {k: v for k, v in row.items() if k != "indexed_at"} for row in rows
            ]
    return found


def database_of(srv: LiveServer) -> Database:
    return srv.state.recordings.index.database


async def test_the_index_follows_recordings_and_agreements(room_server: LiveServer) -> None:
    """A recorded session with a signed agreement: the index says what the files say, the
    archive API serves it with titles, links and search, and a rebuild from the files
    gives the same rows."""
    srv = room_server
    data_dir = srv.state.settings.data_dir
    index = srv.state.recordings.index
    r = await Room(srv).setup()
    rid = await start_recording(srv, r.room["id"])
    row = await index.recording(rid)
    assert row is not None and row["status"] == "recording"
    assert (row["room_id"], row["room_title"]) == (r.room["id"], "王五与李四漏水纠纷")
    assert row["folder"] == f"recordings/{rid}" and row["seal_hash"] is None

    ready = await r.ready()
    code, fp = ready["code"], ready["fingerprint"]
    for client, name in ((r.a, "王五"), (r.b, "李四"), (r.mediator, "张调解员")):
        assert (await Room.sign(client, fp, name))["ok"]
    done = await wait_status(r.a, "signed")
    await stop_recording(srv, r.room["id"])

    # The recording: sealed as its chain says, with who was in it.
    folder = data_dir / "recordings" / rid
    entries = chain_entries(folder)
    row = await index.recording(rid)
    assert row is not None
    assert (row["status"], row["seal_reason"], row["addenda"]) == ("sealed", "stopped", 0)
    assert (row["seal_hash"], row["seal_seq"]) == (entries[-1]["hash"], entries[-1]["seq"])
    assert row["chain_sha256"] == hashlib.sha256((folder / "chain.jsonl").read_bytes()).hexdigest()
    assert row["ended_at"] == entries[-1]["time"] and row["started_at"] <= row["ended_at"]
    names = {p["name"] for p in row["participants"].values()}
    assert {"王五", "李四", "张调解员", "赵律师"} <= names
    # The agreement: signed, bound to the recording, who signed what and when, its log.
    pdf = data_dir / "agreements" / code / "agreement.pdf"
    signed = await index.agreement(code)
    assert signed is not None
    assert (signed["status"], signed["recording_id"], signed["fingerprint"]) == (
        "signed",
        rid,
        fp,
    )
    assert signed["pdf_path"] == f"agreements/{code}/agreement.pdf"
    assert signed["pdf_sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    assert signed["pdf_sha256"] == done["pdf_sha256"] and signed["case_number"] == CASE_NUMBER
    assert [(s["name"], s["role"], s["fingerprint"]) for s in signed["signatures"]] == [
        ("王五", "applicant", fp),
        ("李四", "respondent", fp),
        ("张调解员", "mediator", fp),
    ]
    assert [s["signed_at"] for s in signed["signatures"]] == [
        line["signed_at"] for line in done["signers"]
    ]
    log = [json.loads(line) for line in (pdf.parent / "log.jsonl").read_text().splitlines()]
    events = await index.events(code)
    assert [(e["seq"], e["kind"], e["at"]) for e in events] == [
        (n, line["kind"], line["at"]) for n, line in enumerate(log)
    ]
    assert events[-1]["kind"] == "sealed" and events[-1]["detail"]["sha256"] == signed["pdf_sha256"]

    # The archive API: titles, the agreement bound to each recording, search.
    status, body = await srv.admin("GET", "/api/recordings")
    assert status == 200
    (listed,) = body["recordings"]
    assert listed["room_title"] == "王五与李四漏水纠纷" and listed["seal_reason"] == "stopped"
    assert listed["chain_head"] == entries[-1]["hash"]
    assert listed["agreements"] == [
        {
            "code": code,
            "status": "signed",
            "case_number": CASE_NUMBER,
            "pdf_sha256": signed["pdf_sha256"],
            "sealed_at": signed["sealed_at"],
            "pdf_available": True,
        }
    ]
    mediator = r.mediator_invite["token"]
    for search, found in (
        ("漏水", [rid]),  # the room's title
        ("李四", [rid]),  # a participant
        ("京0105民调123", [rid]),  # the case number of its agreement
        (rid[4:12].upper(), [rid]),  # its id, any case
        ("100%_", []),  # LIKE's wildcards are plain characters
        ("没有这个", []),
    ):
        for token in (srv.admin_token, mediator):
            status, body = await srv.request("GET", f"/api/recordings?q={search}", token)
            assert status == 200 and [x["recording_id"] for x in body["recordings"]] == found
    status, body = await srv.admin("GET", "/api/recordings?q=" + "x" * 201)
    assert (status, body["error"]) == (400, "bad_request")
    status, body = await srv.admin("GET", "/api/agreements?q=张调解员")
    assert [(a["code"], a["recording_id"]) for a in body["agreements"]] == [(code, rid)]
    status, body = await srv.admin("GET", "/api/agreements?q=nobody")
    assert body["agreements"] == []
    status, one = await srv.admin("GET", f"/api/recordings/{rid}")
    assert status == 200 and one["agreements"] == listed["agreements"]
    assert one["segments"] == [] and one["seal"] == listed["seal"]  # nobody published

    # Rebuilt from the files (the index emptied first): the same rows.
    before = await index_rows(database_of(srv))
    async with database_of(srv).write() as conn:
        for table in reversed(TABLES):
            await conn.execute(delete(table))
    assert (await index_rows(database_of(srv)))["recordings"] == []
    rebuilt = await rebuild(index, data_dir)
    assert (rebuilt.recordings, rebuilt.agreements, rebuilt.unreadable) == (1, 1, [])
    assert await index_rows(database_of(srv)) == before


async def test_a_room_change_and_its_index_rows_are_one_transaction(
    room_server: LiveServer,
) -> None:
    """When the index cannot be written the room change is refused too (503) and the
    room stays as it was; once it can, both are written."""
    srv = room_server
    r = await Room(srv).setup()
    before = await srv.room(r.room["id"])
    async with database_of(srv).write() as conn:
        await conn.execute(text("ALTER TABLE agreement_signatures RENAME TO hidden_signatures"))
    try:
        ack = await r.mediator.call("agreement_draft", r.draft())
        assert (ack["ok"], ack["error"]) == (False, "database_unavailable"), ack
    finally:
        async with database_of(srv).write() as conn:
            await conn.execute(text("ALTER TABLE hidden_signatures RENAME TO agreement_signatures"))
    stored = await srv.state.store.require(r.room["id"])
    assert stored.agreement is None and await srv.room(r.room["id"]) == before
    assert await srv.state.recordings.index.agreements() == []
    code = (await r.drafted())["code"]
    row = await srv.state.recordings.index.agreement(code)
    assert row is not None and row["status"] == "drafting" and row["room_id"] == r.room["id"]


def tiaojie(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`tiaojie ARGS...` in a process of its own."""
    return subprocess.run(
        [*TIAOJIE, *(str(a) for a in args)], capture_output=True, text=True, timeout=120
    )


async def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(tiaojie, *args)


def reindex(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return tiaojie("reindex", "--data", data, *extra)


async def test_backup_restore_and_reindex_keep_the_index(tmp_path: Path) -> None:
    """A backup holds the index (its tables are in the database copy, and its index.json
    lists the archive from them) and the staff accounts; a restore of a backup whose
    database has no index rebuilds it; `tiaojie reindex` rebuilds it on a stopped server's
    data."""
    data = tmp_path / "data"
    srv = await start_server(data)
    try:
        r = await Room(srv).setup()
        rid = await start_recording(srv, r.room["id"])
        ready = await r.ready()
        assert (await Room.sign(r.a, ready["fingerprint"], "王五"))["ok"]
        await stop_recording(srv, r.room["id"])
        code = ready["code"]
        indexed = await index_rows(database_of(srv))
        organisation = await make_organisation(srv, "备份调解委员会")
        account = await make_account(srv, "backup-mediator", organisation["id"], ["mediator"])
    finally:
        await srv.close()
        await srv.server.close()
    assert [row["recording_id"] for row in indexed["recordings"]] == [rid]

    made = await cli("backup", tmp_path / "backup", "--data", data)
    assert made.returncode == 0, made.stderr
    assert "1 recordings, 1 agreements" in made.stdout
    backup_index = json.loads((tmp_path / "backup" / "index.json").read_text())
    (recording,) = backup_index["archive"]["recordings"]
    assert recording["recording_id"] == rid and recording["room_title"] == "王五与李四漏水纠纷"
    assert recording["seal_hash"] == indexed["recordings"][0]["seal_hash"]
    (agreement,) = backup_index["archive"]["agreements"]
    assert (agreement["code"], agreement["recording_id"]) == (code, rid)

    # Restored as it is: the index is the database's own.
    done = await cli("restore", tmp_path / "backup", "--data", tmp_path / "one")
    assert done.returncode == 0 and "rebuilt" not in done.stdout, done.stdout + done.stderr
    url = parse_database_url(None, tmp_path / "one")
    restored = Database(url)
    try:
        assert await index_rows(restored) == indexed
    finally:
        await restored.close()
    # The staff accounts came back with the database: the mediator logs in as before.
    again = await start_server(tmp_path / "one")
    browser = StaffBrowser(again.url)
    try:
        status, body = await browser.login("backup-mediator")
        assert status == 201, body
        assert body["account"]["id"] == account["id"]
        assert body["organisation"]["name"] == "备份调解委员会"
    finally:
        await browser.close()
        await again.shutdown()

    # A backup whose database has no index (made before the index existed): rebuilt.
    old = tmp_path / "old-backup"
    shutil.copytree(tmp_path / "backup", old)
    with sqlite3.connect(old / "tiaojie.db") as conn:
        for table in reversed(TABLES):
            conn.execute(f"DELETE FROM {table.name}")
    old_index = json.loads((old / "index.json").read_text())
    old_index["database"]["sha256"] = hashlib.sha256((old / "tiaojie.db").read_bytes()).hexdigest()
    (old / "index.json").write_text(json.dumps(old_index))
    done = await cli("restore", old, "--data", tmp_path / "two")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "archive index rebuilt: 1 recordings, 1 agreements" in done.stdout
    restored = Database(parse_database_url(None, tmp_path / "two"))
    try:
        assert await index_rows(restored) == indexed
    finally:
        await restored.close()

    # tiaojie reindex, on the data of a stopped server.
    with sqlite3.connect(data / "tiaojie.db") as conn:
        conn.execute("DELETE FROM agreement_events")
        conn.execute("UPDATE recordings SET status = 'recording', seal_hash = NULL")
    again = await asyncio.to_thread(reindex, data)
    assert again.returncode == 0, again.stderr
    assert "1 recordings, 1 agreements" in again.stdout
    restored = Database(parse_database_url(None, data))
    try:
        assert await index_rows(restored) == indexed
    finally:
        await restored.close()
    memory = await asyncio.to_thread(reindex, data, "--database", "memory:")
    assert memory.returncode == 2 and "memory:" in memory.stderr


# -- a real PostgreSQL stopped under the running server ---------------------------------------
@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this module's own, which its tests stop and start."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: run `make test`, which installs it")
    cluster = PostgresCluster(bin_dir, free_port())
    try:
        cluster.start()
        cluster.create_template()
    except RuntimeError as error:
        cluster.stop()
        pytest.fail(str(error))
    yield cluster
    cluster.stop()


async def test_health_checks_the_database(own_postgres: PostgresCluster, tmp_path: Path) -> None:
    name = await own_postgres.create_database()
    srv = await start_server(tmp_path / "data", database_url=own_postgres.url(name))
    try:
        status, body = await srv.request("GET", "/api/health")
        assert (status, body["status"], body["backend"]) == (200, "ok", "postgresql")
        own_postgres.halt()
        try:
            status, body = await srv.request("GET", "/api/health")
            assert status == 503, body
            assert body["error"] == "database_unavailable" and body["message"], body
        finally:
            own_postgres.resume()
        status, body = await srv.request("GET", "/api/health")
        assert (status, body["status"]) == (200, "ok")
    finally:
        await srv.close()
        await srv.server.close()
        await own_postgres.drop_database(name)


async def test_postgresql_stopped_mid_run_changes_nothing(
    own_postgres: PostgresCluster, tmp_path: Path
) -> None:
    """PostgreSQL stops while a mediator runs a room with a party waiting in the lobby:
    creating a room, inviting and admitting get a 503 `database_unavailable`; nothing is
    half done (not in the database, not in the server's memory: the party is not told it
    was admitted, nor put in the room's channel); once PostgreSQL is back, all three work."""
    name = await own_postgres.create_database()
    srv = await start_server(tmp_path / "data", database_url=own_postgres.url(name))
    try:
        room = await srv.create_room(title="停库测试", lobby=True)
        rid = room["id"]
        mediator = await srv.join(await srv.create_invite(rid, "mediator", "张调解员"))
        await mediator.wait_for("room_state")
        party_invite = await srv.create_invite(rid, "party", "李四")
        party = await srv.join(party_invite)
        assert party.received("welcome")[-1]["participant"]["status"] == "lobby"
        await mediator.wait_for("lobby_updated", lambda d: d["lobby"])
        before = await srv.room(rid)
        _, rooms_before = await srv.admin("GET", "/api/rooms")

        own_postgres.halt()
        try:
            status, body = await srv.admin(
                "POST", "/api/rooms", json={"title": "新调解室", "lobby": True}
            )
            assert (status, body["error"]) == (503, "database_unavailable") and body["message"]
            status, body = await srv.admin(
                "POST", f"/api/rooms/{rid}/invites", json={"role": "party", "name": "王五"}
            )
            assert (status, body["error"]) == (503, "database_unavailable") and body["message"]
            ack = await mediator.call("admit", {"participant_id": party_invite["invite_id"]})
            assert (ack["ok"], ack["error"]) == (False, "database_unavailable"), ack
        finally:
            own_postgres.resume()

        # Nothing happened: in the database, and in this process.
        assert await srv.room(rid) == before
        assert await srv.admin("GET", "/api/rooms") == (200, rooms_before)
        assert party.received("admitted") == [] and party.received("room_state") == []
        sid = (await srv.state.store.require(rid)).participants[party_invite["invite_id"]].sid
        signalling = srv.state.signalling
        inside = set(signalling.sio.manager.get_participants("/", room_channel(rid)))
        assert sid not in {s for s, _ in inside} and len(inside) == 1  # the mediator alone
        # And everything works again.
        await srv.create_room(title="新调解室")
        await srv.create_invite(rid, "party", "王五")
        ack = await mediator.call("admit", {"participant_id": party_invite["invite_id"]})
        assert ack["ok"] is True, ack
        await party.wait_for("admitted")
        await party.wait_for("room_state")
    finally:
        await srv.close()
        await srv.server.close()
        await own_postgres.drop_database(name)


async def test_a_memory_server_rebuilds_its_index_from_the_files(tmp_path: Path) -> None:
    """`--database memory:` keeps the index in an in-memory SQLite, rebuilt on start."""
    srv = await start_server(tmp_path / "data", database_url="memory:")
    try:
        r = await Room(srv).setup()
        rid = await start_recording(srv, r.room["id"])
        await stop_recording(srv, r.room["id"])
        assert srv.state.recordings.index.database.kind == "memory"
        status, body = await srv.admin("GET", "/api/recordings")
        assert [x["recording_id"] for x in body["recordings"]] == [rid]
    finally:
        await srv.close()
        await srv.server.close()
    srv = await start_server(tmp_path / "data", database_url="memory:")
    try:
        status, body = await srv.admin("GET", "/api/recordings")
        assert status == 200
        found = [(x["recording_id"], x["room_title"], x["status"]) for x in body["recordings"]]
        assert found == [(rid, "王五与李四漏水纠纷", "sealed")]
    finally:
        await srv.close()
        await srv.server.close()


def test_reindex_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    bad = reindex(tmp_path / "nothing", "--database", "mysql://u@h/d")
    assert bad.returncode == 2 and "unsupported database" in bad.stderr
