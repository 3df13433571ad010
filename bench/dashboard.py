"""The dashboard's queries at scale (issue 16), run as bench/statistics.py: each query
of `GET /api/statistics` (server/statistics/queries.py) with 100,000 and 1,000,000
synthetic cases, on SQLite and on PostgreSQL.

    .venv/bin/python bench/statistics.py [--cases 100000,1000000] [--rounds 10]
                                         [--database sqlite,postgresql]

For each database and size: a fresh database, migrated, filled with synthetic cases in
bulk (bench/synthetic_cases.py, without their logs: no statistic reads them; at most
`--generate` made one by one, then copied in SQL with new ids up to the size), one
session in 20 cases with up to three experts of a pool of 200, then `ANALYZE` (SQLite:
what `PRAGMA optimize` does; PostgreSQL: `VACUUM ANALYZE`, what autovacuum does soon
after a bulk load). Then, in this process on the server's own `Database`, each query
alone in a read transaction, for the filters a coordinator uses (none; the last 90 days;
a district; a street and a type; an organisation; the last year in a district; a
coordinator's organisation), after one warm-up round, `--rounds` times: p50, p95 and
max per query against the goal (200 ms on PostgreSQL, 500 ms on SQLite at 1,000,000
cases), and the whole dashboard (every query, as one request makes them).

PostgreSQL is a cluster this script starts (bench/cases.py's, durable settings). SQLite
is a file as `serve` makes it. Figures, not assertions: they move with the machine's load.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Iterator  # noqa: E402
from datetime import timedelta  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import text  # noqa: E402

from bench.cases import DurableCluster, postgres  # noqa: E402
from bench.synthetic_cases import ORGANISATIONS, Synthetic, streets, write  # noqa: E402
from tests.support.postgres import postgres_bin  # noqa: E402
from tests.support.serve import free_port  # noqa: E402
from tiaojie.archive.keys import keys_dir, load_or_create  # noqa: E402
from tiaojie.archive.localtime import zone  # noqa: E402
from tiaojie.server.cases import counts, taxonomy  # noqa: E402
from tiaojie.server.cases.actor import ADMIN, CaseActor, CaseActorKind, StaffRole  # noqa: E402
from tiaojie.server.cases.tables import case_sessions, cases, experts  # noqa: E402
from tiaojie.server.db import Database, parse_database_url  # noqa: E402
from tiaojie.server.db.migrate import migrate  # noqa: E402
from tiaojie.server.model import new_id  # noqa: E402
from tiaojie.server.statistics import periods  # noqa: E402
from tiaojie.server.statistics.direct import DirectStatistics  # noqa: E402
from tiaojie.server.statistics.queries import Filter, Statistics  # noqa: E402
from tiaojie.server.statistics.regions import RegionTree  # noqa: E402

GOAL_MS = {"postgresql": 200.0, "sqlite": 500.0}
EXPERTS = 200
TZ = zone("Asia/Shanghai")
QUERIES = [
    "summary",
    "by_region_code",
    "trend",
    "days_to_close",
    "mediators",
    "organisations",
    "experts",
]


async def add_sessions(database: Database, count: int, now: int) -> None:
    """One session in 20 cases, with 0-3 experts of a pool of EXPERTS."""
    rng = random.Random(5)
    pool = [new_id() for _ in range(EXPERTS)]
    async with database.write() as conn:
        await conn.execute(
            experts.insert(),
            [
                {"id": e, "name": f"专家{n:03d}", "organisation": "律师事务所", "phone": None,
                 "profile": "", "available": True, "created_at": now, "updated_at": now,
                 "created_ns": n}
                for n, e in enumerate(pool)
            ],
        )  # fmt: skip
        ids = [row.id for row in await conn.execute(cases.select().with_only_columns(cases.c.id))]
    chosen = rng.sample(ids, max(1, count // 20))
    for start in range(0, len(chosen), 5000):
        rows = []
        for case_id in chosen[start : start + 5000]:
            picked = rng.sample(pool[: rng.choice((20, EXPERTS))], rng.randrange(4))
            invites = [{"invite_id": new_id(), "kind": "party", "name": "甲"}] + [
                {"invite_id": new_id(), "kind": "expert", "name": "专家", "expert_id": e}
                for e in picked
            ]
            rows.append(
                {"id": new_id(), "case_id": case_id, "room_id": new_id(), "scheduled_at": now,
                 "mediator_id": None, "organisation_id": ORGANISATIONS[0], "invites": invites,
                 "created_by": {}, "created_at": now, "created_ns": 0}
            )  # fmt: skip
        async with database.write() as conn:
            await conn.execute(case_sessions.insert(), rows)


async def copies(database: Database, times: int) -> None:
    """The cases `times` over: each copy in one INSERT ... SELECT with new ids, codes and
    numbers (`~` is in no id: url-safe base64), the sequence raised by a million per
    copy, everything else as it was."""
    names = [c.name for c in cases.columns]
    changed = {
        "id": "id || '~c{n}'",
        "code": "code || '~c{n}'",
        "number": "number || '~c{n}'",
        "seq": "seq + {n} * 1000000",
    }
    for n in range(1, times):
        select_list = ", ".join(changed.get(c, c).format(n=n) for c in names)
        async with database.write() as conn:
            await conn.execute(
                text(
                    f"INSERT INTO cases ({', '.join(names)}) SELECT {select_list} FROM cases "
                    "WHERE id NOT LIKE '%~%'"
                )
            )


async def fill(url: str | None, data: Path, count: int, base: int) -> Synthetic:
    """`base` synthetic cases made one by one, copied in SQL up to `count` (bench/
    synthetic_cases.py makes about a thousand a second: a million would take as long as
    the rest of the benchmark many times over)."""
    database = Database(parse_database_url(url, data))
    try:
        await migrate(database)
        now = time.time()
        made = min(count, base)
        synthetic = await write(
            database, made, load_or_create(keys_dir(data)), now, batch=5000, logs=False
        )
        if count > made:
            started = time.perf_counter()
            await copies(database, count // made)
            synthetic.count = made * (count // made)
            print(f"  copied to {synthetic.count} in {time.perf_counter() - started:.0f} s")
            started = time.perf_counter()
            async with database.write() as conn:  # the copies bypassed the store
                rows = await counts.rebuild(conn)
            print(
                f"  summaries rebuilt in {time.perf_counter() - started:.1f} s, rows: {rows} "
                f"for {synthetic.count} cases"
            )
        await add_sessions(database, synthetic.count, int(now))
        async with database.write() as conn:  # the sessions too were written in bulk
            print(f"  {await counts.rebuild_experts(conn)} expert invites")
        started = time.perf_counter()
        async with database.engine.connect() as conn:
            if database.kind == "postgresql":
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE"))
            else:
                await conn.execute(text("ANALYZE"))
                await conn.commit()
        print(f"  analysed in {time.perf_counter() - started:.1f} s")
        return synthetic
    finally:
        await database.close()


def questions(synthetic: Synthetic, now: int) -> list[tuple[str, CaseActor, Filter]]:
    rng = random.Random(9)
    today = periods.local_day(now, TZ)
    districts = [d["code"] for d in synthetic.tree]
    types = [t["code"] for t in taxonomy.DEFAULT_TYPES]
    coordinator = CaseActor(
        CaseActorKind.ACCOUNT, "bench-coordinator", ORGANISATIONS[3],
        frozenset({StaffRole.COORDINATOR}),
    )  # fmt: skip
    return [
        ("everything", ADMIN, Filter()),
        ("the last 90 days", ADMIN, Filter(start=today - timedelta(days=90), end=today)),
        ("a district", ADMIN, Filter(region=rng.choice(districts))),
        (
            "a street and a type",
            ADMIN,
            Filter(region=rng.choice(streets(synthetic.tree)), dispute_type=rng.choice(types)),
        ),
        ("an organisation", ADMIN, Filter(organisation_id=rng.choice(ORGANISATIONS))),
        (
            "a district, the last year",
            ADMIN,
            Filter(start=today - timedelta(days=365), end=today, region=rng.choice(districts)),
        ),
        ("a coordinator's organisation", coordinator, Filter()),
    ]


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


#: The queries before the summary (the cases table, as on main before v0020) and after.
KINDS: dict[str, type[Any]] = {"before": DirectStatistics, "after": Statistics}


async def measure(url: str | None, data: Path, synthetic: Synthetic, rounds: int) -> dict:
    """Each round: every filter, each query alone and the whole dashboard, before and
    after the summary one after the other (the same load on both)."""
    database = Database(parse_database_url(url, data))
    names = [f"{kind} {name}" for name in [*QUERIES, "whole dashboard"] for kind in KINDS]
    times: dict[str, list[float]] = {name: [] for name in names}
    slowest: dict[str, tuple[float, str]] = {}
    loads: list[float] = []
    try:
        async with database.read() as conn:
            config = {
                row.name: row.value
                for row in await conn.execute(text("SELECT name, value FROM case_config"))
            }
        tree = RegionTree(config["regions"] if isinstance(config["regions"], list) else [])
        now = int(time.time())
        asked = questions(synthetic, now)

        async def once(record: bool) -> None:
            for label, actor, filters in asked:
                for query in QUERIES:
                    for kind, made in KINDS.items():
                        name = f"{kind} {query}"
                        async with database.read() as conn:
                            stats = made(conn, actor, filters, TZ, now)
                            method: Callable[[], Awaitable[Any]] = getattr(stats, query)
                            started = time.perf_counter()
                            await method()
                            ms = (time.perf_counter() - started) * 1000
                        if record:
                            times[name].append(ms)
                            if ms > slowest.get(name, (0.0, ""))[0]:
                                slowest[name] = (ms, label)
                for kind, made in KINDS.items():
                    async with database.read() as conn:
                        stats = made(conn, actor, filters, TZ, now)
                        started = time.perf_counter()
                        await stats.compute(tree, taxonomy.DEFAULT_TYPES)
                        ms = (time.perf_counter() - started) * 1000
                    if record:
                        times[f"{kind} whole dashboard"].append(ms)
            loads.append(os.getloadavg()[0])

        await once(False)
        for _ in range(rounds):
            await once(True)
    finally:
        await database.close()
    return {"times": times, "slowest": slowest, "loads": loads}


@contextlib.contextmanager
def kept_postgres(root: Path) -> Iterator[tuple[str, bool]]:
    """A cluster whose data stay in `root` (`--keep`): started on them if they are there
    (and were filled: `root/filled`), else made; stopped, not removed, at the end."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    cluster = DurableCluster(bin_dir, free_port())
    shutil.rmtree(cluster.root, ignore_errors=True)
    cluster.root, cluster.data = root, root / "data"
    root.mkdir(parents=True, exist_ok=True)
    reused = (root / "filled").exists()
    if reused:
        cluster.resume()
    else:
        shutil.rmtree(cluster.data, ignore_errors=True)
        cluster.start()
        cluster._run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "bench")
    try:
        yield cluster.url("bench"), reused
    finally:
        cluster.halt()


def run(kind: str, count: int, rounds: int, base: int, keep: Path | None) -> float:
    """One database and size: filled (or, with `keep`, reused if it was filled there
    before), then measured."""
    data = keep / f"{kind}-{count}" if keep else Path(tempfile.mkdtemp(prefix="tiaojie-bench-"))
    goal = GOAL_MS[kind]
    worst = 0.0
    try:
        with contextlib.ExitStack() as stack:
            data.mkdir(parents=True, exist_ok=True)
            url, reused = None, (data / "filled").exists()
            if kind == "postgresql" and keep:
                url, reused = stack.enter_context(kept_postgres(data / "cluster"))
            elif kind == "postgresql":
                url = stack.enter_context(postgres())
            if reused:
                synthetic = Synthetic(**json.loads((data / "filled").read_text()))
                print(f"{kind}, {count} cases: reused from {data}")
            else:
                for old in data.glob("*.db*"):
                    old.unlink()
                started = time.perf_counter()
                synthetic = asyncio.run(fill(url, data, count, base))
                print(
                    f"{kind}, {count} cases: written in {time.perf_counter() - started:.0f} s "
                    f"({synthetic.overdue} overdue)"
                )
                if keep:
                    kept = {"count": synthetic.count, "overdue": synthetic.overdue}
                    (data / "filled").write_text(json.dumps(kept))
                    if kind == "postgresql":
                        (data / "cluster" / "filled").write_text("")
            found = asyncio.run(measure(url, data, synthetic, rounds))
        n = len(questions(synthetic, int(time.time())))
        load = ", ".join(f"{x:.1f}" for x in found["loads"])
        print(f"  {rounds} rounds of {n} filters, each query alone (ms; load after each: {load}):")
        worst_of: dict[str, float] = {kind: 0.0 for kind in KINDS}
        for name, values in found["times"].items():
            p95 = p(values, 0.95)
            dashboard = name.endswith("whole dashboard")
            if not dashboard:
                which = name.split(" ", 1)[0]
                worst_of[which] = max(worst_of[which], p95)
            slow = found["slowest"].get(name)
            verdict = "" if dashboard else ("met" if p95 < goal else "MISSED")
            print(
                f"    {name:<23} p50 {statistics.median(values):7.1f}  p95 {p95:7.1f} "
                f"({p95 / goal:4.2f}x)  max {max(values):7.1f}  {verdict}"
                + (f"  (slowest: {slow[1]})" if slow else "")
            )
        for kind, value in worst_of.items():
            print(
                f"  {kind}: worst query p95 {value:.1f} ms = "
                f"{value / goal:.2f}x the {goal:.0f} ms goal"
            )
        worst = worst_of["after"]
        if kind == "sqlite":
            size = sum(f.stat().st_size for f in data.rglob("*.db*"))
            print(f"  database file {size / 1e6:.0f} MB")
        return worst
    finally:
        if keep is None:
            shutil.rmtree(data, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="100000,1000000")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--database", default="sqlite,postgresql")
    parser.add_argument(
        "--generate", type=int, default=100_000, help="cases made one by one; then copied"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep each filled database in this folder and reuse it on the next run",
    )
    args = parser.parse_args()
    # stopped: clean up as on an error (the PostgreSQL cluster, the temporary files)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {os.getloadavg()}")
    for count in (int(c) for c in args.cases.split(",")):
        for kind in args.database.split(","):
            run(kind.strip(), count, args.rounds, args.generate, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
