"""A real PostgreSQL server for the tests: one cluster per session, one database per test.

Debian's postgresql package puts initdb and pg_ctl under /usr/lib/postgresql/<version>/bin.
PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user the
package creates (`runuser`), in a folder of /tmp that user owns. Durability is off
(fsync, full-page writes): the tests never crash the cluster, and it is much faster.
Each test gets a copy of a template database already migrated to the newest schema.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg

TEMPLATE = "tiaojie_template"


def postgres_bin() -> Path | None:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    return versions[-1].parent if versions else None


class PostgresCluster:
    def __init__(self, bin_dir: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="tiaojie-postgres-"))
        self.data = self.root / "data"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str | Path) -> None:
        done = subprocess.run(
            [*self._as_postgres, *(str(a) for a in args)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            self.bin_dir / "initdb",
            "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
            "--no-sync",
        )  # fmt: skip
        self.resume()

    def resume(self) -> None:
        """Start the server on its data (after `halt`)."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(
            self.bin_dir / "pg_ctl", "-D", self.data, "-l", self.root / "server.log",
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def halt(self) -> None:
        """Stop the server as an operator's `pg_ctl stop` does (sessions are ended), keeping
        its data: `resume` starts it again."""
        self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        try:
            self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres")

    def create_template(self) -> None:
        """The template every test database copies, migrated once by `tiaojie migrate`
        (a process of its own: this may run while a test's event loop is running)."""
        self._run(self.bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(self.port), TEMPLATE)
        done = subprocess.run(
            [sys.executable, "-m", "tiaojie", "migrate", "--database", self.url(TEMPLATE)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"tiaojie migrate failed: {done.stdout}{done.stderr}")

    async def create_database(self, template: str | None = TEMPLATE) -> str:
        """A new database (migrated, from the template; or empty); its name."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        conn = await self.admin()
        try:
            source = f' TEMPLATE "{template}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{source}')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        conn = await self.admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
