"""Cases at scale (issue 12): intake, the coordinator's queue and the public progress
with 100,000 cases in the database, on SQLite and on PostgreSQL.

    .venv/bin/python bench/cases.py [--cases 100000] [--requests 300] [--database sqlite,postgresql]

For each database: a fresh one, migrated, filled with --cases synthetic cases in bulk
(bench/synthetic_cases.py: made through the real numbering and state rules, each with a
log that verifies; marked by the actor id `bench-synthetic`), then a real `tiaojie serve`
on it (pinned to CPU 0; this script, the one client, on CPU 1) and, one request at a
time over a kept-alive connection, after a warm-up, the kinds taking turns:

* **intake**: `POST /api/cases` with the admin token (staff intake: public reports are
  rate-limited per address, so they cannot be driven from one client; both take the same
  write transaction: the number, the case, its parties, its first log entries signed);
* **queue**: `GET /api/cases` as a coordinator filters it: the reports to accept, the
  overdue cases, a type in a street, a type in a community, a district's overdue cases,
  one organisation's cases in mediation, and the second page of everything;
* **progress**: the public `GET /c/{code}` (HTML) and `GET /api/progress/{code}` for
  random cases.

SQLite is the default file in the data directory, as `serve` makes it (WAL,
synchronous=FULL: every commit is on disk). PostgreSQL is a cluster this script starts
(tests/support/postgres.py's, as the `postgres` user when run as root) with its durable
defaults (fsync and synchronous_commit on, unlike the test cluster), vacuumed and analysed
after the bulk load as autovacuum does shortly after one. Printed: p50, p95 and max per
request kind, and p95 as a ratio of the 50 ms goal. Figures, not assertions: they move with
whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.common import ADMIN, server_process  # noqa: E402
from bench.synthetic_cases import (  # noqa: E402
    ORGANISATIONS,
    Synthetic,
    communities,
    streets,
    write,
)
from tests.support.postgres import PostgresCluster, postgres_bin  # noqa: E402
from tests.support.serve import free_port  # noqa: E402
from tiaojie.archive.keys import keys_dir, load_or_create  # noqa: E402
from tiaojie.server.cases import taxonomy  # noqa: E402
from tiaojie.server.db import Database, parse_database_url  # noqa: E402
from tiaojie.server.db.migrate import migrate  # noqa: E402

GOAL_MS = 50.0
WARMUP = 20
OPEN = "accepted,dispatched,mediating"


class DurableCluster(PostgresCluster):
    """The test cluster's layout, with PostgreSQL's durable defaults (fsync on)."""

    def resume(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c max_connections=100 -c shared_buffers=256MB"
        )
        self._run(
            self.bin_dir / "pg_ctl", "-D", self.data, "-l", self.root / "server.log",
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A started cluster with an empty database `bench`: its URL."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    cluster = DurableCluster(bin_dir, free_port())
    cluster.start()
    try:
        cluster._run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "bench")
        yield cluster.url("bench")
    finally:
        cluster.stop()


@dataclass
class Timings:
    """Milliseconds per request, by what was asked."""

    kinds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, kind: str, ms: float) -> None:
        self.kinds.setdefault(kind, []).append(ms)

    @staticmethod
    def p(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def line(self, kind: str, values: list[float]) -> str:
        p95 = self.p(values, 0.95)
        verdict = "met" if p95 < GOAL_MS else "MISSED"
        return (
            f"  {kind:<44} n {len(values):>4}  p50 {statistics.median(values):6.1f}  "
            f"p95 {p95:6.1f}  max {max(values):6.1f} ms   p95 = {p95 / GOAL_MS:4.2f}x "
            f"the {GOAL_MS:.0f} ms goal: {verdict}"
        )


async def timed(
    http: aiohttp.ClientSession, method: str, url: str, expect: int, **kwargs: Any
) -> tuple[float, Any]:
    started = time.perf_counter()
    async with http.request(method, url, **kwargs) as response:
        body = await response.read()
        ms = (time.perf_counter() - started) * 1000
        if response.status != expect:
            raise RuntimeError(f"{method} {url}: {response.status} {body[:300]!r}")
        if response.content_type == "application/json":
            return ms, await response.json()
        return ms, body


def intake_body(rng: random.Random, places: list[str]) -> dict[str, Any]:
    return {
        "source": rng.choice(["grid_worker", "mediator", "police_110"]),
        "dispute_type": rng.choice(taxonomy.DEFAULT_TYPES)["code"],
        "region": rng.choice(places),
        "description": "楼上住户装修漏水，把厨房的天花板泡坏了（基准测试）。",
        "parties": [
            {"role": "applicant", "name": "张秀兰", "phone": "13912345678"},
            {"role": "respondent", "name": "李建国", "phone": "13700001111"},
        ],
        "risk_level": "low",
    }


Question = tuple[str, Callable[[], str]]


def queue_questions(synthetic: Synthetic, rng: random.Random) -> list[Question]:
    """What a coordinator asks of the queue (name, a fresh query string each time)."""
    tree = synthetic.tree
    types = [t["code"] for t in taxonomy.DEFAULT_TYPES]
    street_codes, community_codes = streets(tree), communities(tree)
    districts = [d["code"] for d in tree]
    return [
        ("to accept (state=reported)", lambda: "state=reported"),
        ("overdue (open states, overdue=true)", lambda: f"state={OPEN}&overdue=true"),
        (
            "a type in a street, open",
            lambda: (
                f"state={OPEN}&dispute_type={rng.choice(types)}&region={rng.choice(street_codes)}"
            ),
        ),
        (
            "a type in a community, any state",
            lambda: f"dispute_type={rng.choice(types)}&region={rng.choice(community_codes)}",
        ),
        ("a district's overdue", lambda: f"region={rng.choice(districts)}&overdue=true"),
        (
            "an organisation's in mediation",
            lambda: f"organisation_id={rng.choice(ORGANISATIONS)}&state=mediating",
        ),
    ]


async def drive(base: str, synthetic: Synthetic, requests: int, token: str = ADMIN) -> Timings:
    """The requests (module docstring), one at a time: how long each took."""
    rng = random.Random(3)
    timings = Timings()
    places = communities(synthetic.tree)
    admin = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        questions = queue_questions(synthetic, rng)

        async def intake(record: bool) -> None:
            ms, receipt = await timed(
                http, "POST", base + "/api/cases", 201, json=intake_body(rng, places), headers=admin
            )
            if record:
                timings.add("intake: POST /api/cases (staff)", ms)
            synthetic.codes.append(receipt["code"])

        async def queue(record: bool, i: int) -> None:
            name, query = questions[i % len(questions)]
            ms, _ = await timed(http, "GET", f"{base}/api/cases?{query()}", 200, headers=admin)
            if record:
                timings.add(f"queue: {name}", ms)
                timings.add("queue: all of the above", ms)

        async def second_page(record: bool) -> None:
            _, first = await timed(http, "GET", base + "/api/cases?limit=50", 200, headers=admin)
            ms, _ = await timed(
                http, "GET", f"{base}/api/cases?limit=50&before={first['next']}", 200, headers=admin
            )
            if record:
                timings.add("queue: the second page of everything", ms)

        async def progress(record: bool) -> None:
            code = rng.choice(synthetic.codes)
            ms, _ = await timed(http, "GET", f"{base}/c/{code}", 200)
            if record:
                timings.add("progress: GET /c/{code} (page)", ms)
            ms, _ = await timed(http, "GET", f"{base}/api/progress/{code}", 200)
            if record:
                timings.add("progress: GET /api/progress/{code}", ms)

        for i in range(WARMUP):
            await intake(False)
            await queue(False, i)
            await progress(False)
        # Round-robin, so that whatever else the machine does weighs on every kind alike.
        for i in range(requests):
            await intake(True)
            for n in range(len(questions)):
                await queue(True, n)
            if i % 3 == 0:
                await second_page(True)
            await progress(True)
    return timings


async def fill(url: str | None, data: Path, count: int) -> Synthetic:
    """Migrate the database and write `count` synthetic cases into it."""
    database = Database(parse_database_url(url, data))
    try:
        await migrate(database)
        synthetic = await write(database, count, load_or_create(keys_dir(data)), time.time())
        if database.kind == "postgresql":  # what autovacuum does soon after a bulk load
            async with database.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE"))
        return synthetic
    finally:
        await database.close()


def run(kind: str, count: int, requests: int) -> Timings:
    data = Path(tempfile.mkdtemp(prefix="tiaojie-bench-cases-"))
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(postgres()) if kind == "postgresql" else None
            synthetic = asyncio.run(fill(url, data, count))
            states = ", ".join(f"{k} {v}" for k, v in sorted(synthetic.states.items()))
            print(
                f"{kind}: {synthetic.count} synthetic cases written in {synthetic.seconds:.1f} s "
                f"({synthetic.log_entries} log entries; {synthetic.overdue} overdue; {states})"
            )
            options = ("--database", url) if url else ()
            with server_process(*options, cpu=0, data=data) as (_, base):
                before = os.getloadavg()[0]
                timings = asyncio.run(drive(base, synthetic, requests))
                print(
                    f"  load average (1 min) {before:.1f} before the requests, "
                    f"{os.getloadavg()[0]:.1f} after"
                )
        return timings
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300, help="per request kind")
    parser.add_argument("--database", default="sqlite,postgresql")
    args = parser.parse_args()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {1})
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {os.getloadavg()}")
    worst = 0.0
    for kind in args.database.split(","):
        timings = run(kind.strip(), args.cases, args.requests)
        print(f"{kind}, {args.cases} cases, one client, {args.requests} requests per kind:")
        everything = "queue: all of the above"
        for name in [*(k for k in timings.kinds if k != everything), everything]:
            values = timings.kinds[name]
            print(timings.line(name, values))
            worst = max(worst, Timings.p(values, 0.95))
    print(f"worst p95 {worst:.1f} ms = {worst / GOAL_MS:.2f}x the {GOAL_MS:.0f} ms goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
