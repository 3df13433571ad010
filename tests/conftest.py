"""Shared fixtures: a real server on a free port, on SQLite (the default) or on a real
PostgreSQL server, and a real redis-server for the cluster tests."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from tests.support.cheap_passwords import hash_cheaply
from tests.support.postgres import PostgresCluster, postgres_bin
from tests.support.signal_client import SignalClient
from tests.support.xdist_schedule import TogetherScheduling
from tiaojie.rtc import aiortc_internals
from tiaojie.server.app import create_app
from tiaojie.server.config import Settings
from tiaojie.server.state import app_state

#: How long a Playwright expectation waits before it fails, in every browser test. Playwright's
#: own 5 s was too short in CI while a second browser started beside the page (the page was
#: still "正在加载…" after 5 s); an expectation that holds returns at once, so waiting longer
#: costs nothing when things work.
EXPECT_TIMEOUT_MS = 15_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)

ADMIN_TOKEN = "test-admin-token-0123456789"

#: Servers in this process hash passwords at argon2's smallest cost (tests/support/
#: cheap_passwords.py); this is the production hasher, checked in tests/test_accounts.py.
PRODUCTION_HASHER = hash_cheaply()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`-n 2 --dist loadgroup` (make test): tests/support/xdist_schedule.py."""
    if config.getvalue("dist") == "loadgroup":
        return TogetherScheduling(config, log)
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test has its own node id. schemathesis 4.32 names each API operation's test
    `test_every_operation_as_documented[GET /api/health]`, but pytest 9.2 builds the id
    from the function's name and parameters alone, so its 85 tests shared one id. A
    serial run still ran them all; xdist schedules by id and ran one of the 85 (why a
    two-worker run counted 865 tests and a serial one 949). The operation goes back in."""
    for item in items:
        node_id = getattr(item, "_id", None)  # pytest >= 9.2: a structured NodeId
        name_params = item.name.partition("[")[2][:-1]
        if node_id is not None and node_id.params is None and name_params:
            item._id = node_id.with_params(name_params)
    repeated = [nodeid for nodeid, n in Counter(i.nodeid for i in items).items() if n > 1]
    if repeated:
        raise pytest.UsageError(f"tests sharing a node id (xdist would run one): {repeated}")


@pytest.fixture(scope="module", autouse=True)
def ice_gathering_as_aioice_does() -> Iterator[None]:
    """Each module ends with ICE gathering back at aioice's defaults. A server started in
    this process sets two process-wide switches (server/media/ice.py `apply`: gather only
    on the announced address, bind in --rtc-ports) and leaves them set; in one process
    the modules after it always ran with what it left, in whichever worker a module lands
    they would not."""
    yield
    aiortc_internals.bind_ice_in(None)
    aiortc_internals.gather_only_on(None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free port, for the whole test session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make test`, which installs it")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A real PostgreSQL cluster on a free port, for the whole test session."""
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


#: The databases the room, API, agreement and cluster suites run on.
DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(params=DATABASES)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of each kind, migrated, for one test (nodes of a cluster share it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    name = await cluster.create_database()
    yield cluster.url(name)
    await cluster.drop_database(name)


class LiveServer:
    """A running Tiaojie server plus helpers to drive it over HTTP and socket.io."""

    def __init__(self, server: TestServer, admin_token: str, database: str) -> None:
        self.server = server
        #: sqlite, postgresql or memory: what the test asked for.
        self.database = database
        self.url = str(server.make_url("")).rstrip("/")
        self.admin_token = admin_token
        self.app = server.app
        self.clients: list[SignalClient] = []

    @property
    def state(self) -> Any:
        return app_state(self.app)

    async def request(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, headers=headers, **kwargs) as response,
        ):
            raw = await response.read()
            try:
                import json

                return response.status, json.loads(raw)
            except ValueError:
                try:
                    return response.status, raw.decode()
                except UnicodeDecodeError:  # a PDF, an MP4: the bytes
                    return response.status, raw

    async def admin(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.request(method, path, self.admin_token, **kwargs)

    async def create_room(
        self, title: str = "邻里纠纷调解", lobby: bool = True, **extra: Any
    ) -> dict[str, Any]:
        status, body = await self.admin(
            "POST", "/api/rooms", json={"title": title, "lobby": lobby, **extra}
        )
        assert status == 201, body
        return body

    async def create_invite(
        self, room_id: str, role: str, name: str, expires_in: int = 3600, side: str | None = None
    ) -> dict[str, Any]:
        """An invite; `side` ("applicant" / "respondent") for a party."""
        body = {"role": role, "name": name, "expires_in": expires_in}
        if side is not None:
            body["side"] = side
        status, body = await self.admin("POST", f"/api/rooms/{room_id}/invites", json=body)
        assert status == 201, body
        return body

    async def room(self, room_id: str) -> dict[str, Any]:
        status, body = await self.admin("GET", f"/api/rooms/{room_id}")
        assert status == 200, body
        return body

    def archivist_token(self, label: str = "archivist", lifetime: int = 600) -> str:
        """A genuine archivist token, registered as `tiaojie archivist-token` does."""
        token, _ = self.state.auth.archivists.issue(label, lifetime)
        return str(token)

    def client(self) -> SignalClient:
        client = SignalClient(self.url)
        self.clients.append(client)
        return client

    async def join(self, invite: dict[str, Any], **auth: Any) -> SignalClient:
        client = self.client()
        await client.connect({"token": invite["token"], **auth})
        welcome = await client.wait_for("welcome")
        if welcome["participant"]["status"] == "joined":
            # in the room once it has its room_state (its media peer exists by then)
            await client.wait_for("room_state")
        return client

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)

    async def shutdown(self, within: float = 90) -> None:
        """Close the clients and stop the server; if that takes longer than `within`,
        fail with the stacks of the tasks still pending (a teardown that hung until
        pytest-timeout said only "Timeout", once in CI)."""
        try:
            async with asyncio.timeout(within):
                await self.close()
                await self.server.close()
        except TimeoutError:
            stacks = []
            for task in asyncio.all_tasks():
                if task is asyncio.current_task():
                    continue
                frames = task.get_stack(limit=6)
                where = " <- ".join(
                    f"{f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno} {f.f_code.co_name}"
                    for f in reversed(frames)
                )
                stacks.append(f"{task.get_name()}: {where}")
            pytest.fail(
                f"the server did not stop within {within} s; pending:\n" + "\n".join(stacks)
            )

    async def stop_recordings(self) -> None:
        """Seal the recordings still running while their pages are still in the room (a
        browser test's teardown, before closing the pages): once the pages had gone, the
        recorder acknowledged nothing for seconds, and stopping the server waited out its
        flush (5 s) and the recorder's exit (about 10 s) in every such test."""
        await self.state.recordings.shutdown()

    async def connections_closed(self, timeout: float = 10) -> None:
        """Wait until the server has seen every connection go (browser pages closed).

        Shutting down first can hang: engineio waits for ever on a socket whose
        websocket is already gone.
        """
        sockets = self.state.signalling.sio.eio.sockets
        for _ in range(int(timeout / 0.05)):
            # every connection, not only the browsers': shutting down while a recorder's
            # socket was still closing hung a module's event loop at its close (a full
            # run, 2026-11-30). A fixture that seals its recordings first
            # (stop_recordings) makes the recorder leave early.
            if not sockets:
                break
            await asyncio.sleep(0.05)


async def start_server(
    data_dir: Path,
    redis_url: str | None = None,
    secret_key: str | None = None,
    database_url: str | None = None,
    **options: Any,
) -> LiveServer:
    """A server on `database_url` (default: SQLite in `data_dir`, as `tiaojie serve`)."""
    port = free_port()
    settings = Settings(
        host="127.0.0.1",
        port=port,
        data_dir=data_dir,
        redis_url=redis_url,
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        secret_key=secret_key,
        **options,
    )
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    kind = (database_url or "sqlite").split(":")[0]
    return LiveServer(server, ADMIN_TOKEN, kind)


async def restart_server(srv: LiveServer, **options: Any) -> LiveServer:
    """Stop `srv` and start a new server on its data directory: with the in-memory store,
    every room is forgotten; what is on disk stays."""
    data_dir = srv.state.settings.data_dir
    await srv.close()
    await srv.server.close()
    return await start_server(data_dir, **options)


@pytest.fixture(scope="module")
def chromium_cdp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One headless Chromium per test module; yields its CDP endpoint."""
    from tests.support.chromium import CHROMIUM, chromium_over_cdp

    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is not installed: run `make test`, which installs it")
    try:
        yield from chromium_over_cdp(tmp_path_factory.mktemp("chromium-profile"))
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The embedded default: rooms in SQLite in the data directory."""
    live = await start_server(tmp_path / "data")
    yield live
    await live.shutdown()


@pytest.fixture
async def room_server(database_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The same server on each database (SQLite, PostgreSQL): the room suite runs on both."""
    live = await start_server(tmp_path / "data", database_url=database_url)
    yield live
    await live.shutdown()
