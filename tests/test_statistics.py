"""The statistics (server/statistics/, docs/STATISTICS.md) against a known synthetic data
set on SQLite and PostgreSQL: every number of `GET /api/statistics` computed again here
in Python from the rows, with and without filters and for a coordinator's scope; the
exports opened (the CSV parsed, the XLSX read back with openpyxl); who may see them."""

from __future__ import annotations

import csv
import io
import itertools
import math
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from openpyxl import load_workbook
from sqlalchemy import insert, select, update

from bench.synthetic_cases import write
from tests.conftest import LiveServer
from tests.support.staff import StaffBrowser
from tests.test_accounts import make_account, make_organisation
from tiaojie.server.cases import counts
from tiaojie.server.cases.service import CASES
from tiaojie.server.cases.tables import case_parties, case_sessions, cases, experts
from tiaojie.server.model import new_id
from tiaojie.server.statistics import periods

ZONE = ZoneInfo("Asia/Shanghai")
COUNT = 1500


async def party_phones(srv: LiveServer) -> list[Any]:
    async with srv.app[CASES].database.read() as conn:
        return list(await conn.execute(select(case_parties.c.phone)))


def local(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).astimezone(ZONE).date()


def nearest_rank(values: list[int], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[math.ceil(share * len(ordered)) - 1] / 24, 2)


def expected(rows: list[Any], now: int) -> dict[str, Any]:
    """The statistics recomputed from the cases' rows, one by one."""
    late = [
        r
        for r in rows
        if r.state in ("accepted", "dispatched", "mediating")
        and r.deadline_at is not None
        and r.deadline_at < now
    ]
    outcomes = Counter(r.outcome for r in rows)
    follow_ups_late = [
        r
        for r in rows
        if r.state in ("succeeded", "failed")
        and r.follow_up_due_at is not None
        and r.follow_up_due_at < now
    ]
    hours = [(r.closed_at - r.created_at) // 3600 for r in rows if r.closed_at is not None]
    months = Counter(f"{local(r.created_at):%Y-%m}" for r in rows)
    weeks = Counter("{:04d}-W{:02d}".format(*local(r.created_at).isocalendar()[:2]) for r in rows)
    mediators: dict[str, Counter[str]] = {}
    for r in rows:
        if r.mediator_id:
            m = mediators.setdefault(r.mediator_id, Counter())
            m["total"] += 1
            m["in_hand"] += r.state in ("dispatched", "mediating")
    return {
        "total": len(rows),
        "overdue": len(late),
        "follow_up_overdue": len(follow_ups_late),
        "by_type": Counter(r.dispute_type for r in rows),
        "by_source": Counter(r.source for r in rows),
        "by_state": Counter(r.state for r in rows),
        "districts": Counter(r.region_code[:6] for r in rows),
        "streets": Counter(r.region_code[:9] for r in rows),
        "succeeded": outcomes["success"],
        "failed": outcomes["failure"],
        "median": nearest_rank(hours, 0.5),
        "p90": nearest_rank(hours, 0.9),
        "closed": len(hours),
        "months": months,
        "weeks": weeks,
        "mediators": mediators,
    }


def check(body: dict[str, Any], want: dict[str, Any]) -> None:
    assert body["total"] == want["total"]
    assert body["overdue"] == want["overdue"]
    assert body["follow_up_overdue"] == want["follow_up_overdue"]
    assert {t["code"]: t["count"] for t in body["by_type"]} == dict(want["by_type"])
    assert {s["code"]: s["count"] for s in body["by_source"] if s["count"]} == dict(
        want["by_source"]
    )
    assert {s["code"]: s["count"] for s in body["by_state"] if s["count"]} == dict(want["by_state"])
    rate = body["success_rate"]
    assert (rate["succeeded"], rate["failed"]) == (want["succeeded"], want["failed"])
    concluded = want["succeeded"] + want["failed"]
    assert rate["rate"] == (round(want["succeeded"] / concluded, 4) if concluded else None)
    close = body["days_to_close"]
    assert (close["closed"], close["median_days"], close["p90_days"]) == (
        want["closed"],
        want["median"],
        want["p90"],
    )
    assert {m["month"]: m["count"] for m in body["monthly"] if m["count"]} == dict(want["months"])
    assert {w["week"]: w["count"] for w in body["weekly"] if w["count"]} == dict(want["weeks"])
    assert sum(m["count"] for m in body["monthly"]) == want["total"]
    for m in body["mediators"]:
        assert (m["total"], m["in_hand"]) == (
            want["mediators"][m["id"]]["total"],
            want["mediators"][m["id"]]["in_hand"],
        )
    tops = sorted(want["mediators"].values(), key=lambda c: (-c["in_hand"], -c["total"]))
    assert [m["in_hand"] for m in body["mediators"]] == [c["in_hand"] for c in tops[:20]]


async def test_the_numbers_the_exports_and_who_may_see_them(room_server: LiveServer) -> None:
    srv = room_server
    store = srv.app[CASES].store
    now = time.time()
    found = await write(store.database, COUNT, Ed25519PrivateKey.generate(), now)
    assert found.count == COUNT
    # a real organisation holds some cases (a coordinator's scope), experts in sessions
    org = await make_organisation(srv, "统计街道人民调解委员会")
    async with store.database.write() as conn:
        ids = [r.id for r in await conn.execute(select(cases.c.id).order_by(cases.c.id))]
        await conn.execute(
            update(cases).where(cases.c.id.in_(ids[:150])).values(holder_organisation_id=org["id"])
        )
        pool = [new_id() for _ in range(3)]
        for n, expert in enumerate(pool):
            await conn.execute(
                insert(experts).values(
                    id=expert, name=f"专家{n}", organisation="律师事务所", phone=None,
                    profile="", available=True, created_at=int(now), updated_at=int(now),
                    created_ns=time.time_ns(),
                )
            )  # fmt: skip
        for n, case_id in enumerate(ids[:30]):
            chosen = pool[: 1 + n % 3]  # expert 0 in 30 sessions, 1 in 20, 2 in 10
            invites = [{"invite_id": new_id(), "kind": "party", "name": "甲"}] + [
                {"invite_id": new_id(), "kind": "expert", "name": "专家", "expert_id": e}
                for e in chosen
            ]
            await conn.execute(
                insert(case_sessions).values(
                    id=new_id(), case_id=case_id, room_id=new_id(), scheduled_at=int(now),
                    mediator_id=None, organisation_id=org["id"], invites=invites,
                    created_by={}, created_at=int(now), created_ns=time.time_ns(),
                )
            )  # fmt: skip
        # 回访: the cases closed with an outcome are due a follow-up, half of them already
        closed = [
            r.id
            for r in await conn.execute(
                select(cases.c.id).where(cases.c.state.in_(("succeeded", "failed")))
            )
        ]
        for n, case_id in enumerate(closed):
            due = int(now) + (-86400 if n % 2 else 86400)
            await conn.execute(
                update(cases).where(cases.c.id == case_id).values(follow_up_due_at=due)
            )
        # written behind the store's back: the statistics' summary made again, as the
        # bench does after its bulk writes (server/cases/counts.py)
        await counts.rebuild(conn)
        await counts.rebuild_experts(conn)
        rows = list(await conn.execute(select(cases)))

    status, body = await srv.admin("GET", "/api/statistics")
    assert status == 200, body
    want = expected(rows, body["generated_at"])
    assert want["follow_up_overdue"] > 0  # the data set has some, or this checks nothing
    check(body, want)
    districts = expected(rows, body["generated_at"])["districts"]
    assert {r["code"]: r["count"] for r in body["by_region"]["items"]} == dict(districts)
    assert body["by_region"]["level"] == "district"
    assert [(e["name"], e["sessions"]) for e in body["experts"]] == [
        ("专家0", 30),
        ("专家1", 20),
        ("专家2", 10),
    ]

    # filters: a district (drill-down to its streets), a type, a period
    district = found.tree[1]["code"]
    since, until = local(int(now)) - timedelta(days=400), local(int(now)) - timedelta(days=20)
    query = {"region": district, "type": "labour", "from": f"{since}", "to": f"{until}"}
    status, body = await srv.admin("GET", "/api/statistics?" + urlencode(query))
    assert status == 200, body
    chosen = [
        r
        for r in rows
        if r.region_code.startswith(district)
        and r.dispute_type == "labour"
        and since <= local(r.created_at) <= until
    ]
    want = expected(chosen, body["generated_at"])
    assert want["total"] >= 10 and want["closed"] >= 5
    check(body, want)
    assert body["by_region"]["level"] == "street"
    assert [p["code"] for p in body["by_region"]["path"]] == [district]
    assert {r["code"]: r["count"] for r in body["by_region"]["items"] if r["count"]} == dict(
        want["streets"]
    )
    assert body["monthly"][0]["month"] == f"{since:%Y-%m}"  # empty months are there too
    assert body["monthly"][-1]["month"] == f"{until:%Y-%m}"

    # the exports of the same filter
    status, text = await srv.admin("GET", "/api/statistics/export.csv?" + urlencode(query))
    assert status == 200
    assert text.startswith("\ufeff案件编号,纠纷类型,区域")
    listed = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert len(listed) == want["total"]
    assert {r["案件编号"] for r in listed} == {r.number for r in chosen}
    assert all(r["纠纷类型"] == "劳动争议" for r in listed)
    assert sum(r["是否超期"] == "是" for r in listed) == want["overdue"]
    phones = {p.phone for p in await party_phones(srv)}
    assert not any(phone in text for phone in phones)  # no personal data
    status, text = await srv.admin(
        "GET", "/api/statistics/export.csv?" + urlencode({**query, "table": "by_state"})
    )
    table = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert {r["代码"]: int(r["案件数"]) for r in table if r["案件数"] != "0"} == dict(
        want["by_state"]
    )
    url = srv.url + "/api/statistics/export.xlsx?" + urlencode(query)
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={"Authorization": f"Bearer {srv.admin_token}"}) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/vnd.openxmlformats")
        book = load_workbook(io.BytesIO(await response.read()), read_only=True)
    assert book.sheetnames == [
        "概览", "按纠纷类型", "按区域", "按来源", "按状态", "月度趋势", "每周趋势",
        "调解员工作量", "机构工作量", "常用专家", "案件清单",
    ]  # fmt: skip
    sheet = [list(r) for r in book["案件清单"].iter_rows(values_only=True)]
    assert sheet[0][0] == "案件编号" and len(sheet) - 1 == want["total"]
    months = [list(r) for r in book["月度趋势"].iter_rows(values_only=True)]
    assert months[0] == ["月份", "登记案件数"]
    assert {m: n for m, n in months[1:] if n} == dict(want["months"])
    overview = {r[0]: r[1] for r in book["概览"].iter_rows(values_only=True)}
    assert overview["案件总数"] == want["total"]

    # who may see them: the coordinator their organisation's cases; not a mediator
    await make_account(srv, "stat-coordinator", org["id"], ["coordinator"])
    await make_account(srv, "stat-mediator", org["id"], ["mediator"])
    await make_account(srv, "stat-archivist", org["id"], ["archivist"])
    people = {}
    for login in ("stat-coordinator", "stat-mediator", "stat-archivist"):
        people[login] = StaffBrowser(srv.url)
        assert (await people[login].login(login))[0] == 201
    try:
        status, body = await people["stat-coordinator"].request("GET", "/api/statistics")
        assert status == 200, body
        check(body, expected([r for r in rows if r.id in set(ids[:150])], body["generated_at"]))
        for login in ("stat-mediator", "stat-archivist"):
            for path in ("", "/export.csv", "/export.xlsx"):
                status, body = await people[login].request("GET", "/api/statistics" + path)
                assert (status, body["error"]) == (403, "forbidden")
    finally:
        for person in people.values():
            await person.close()
    status, body = await srv.request("GET", "/api/statistics")
    assert status == 401
    status, body = await srv.admin("GET", "/api/statistics?from=2026-02-30")
    assert (status, body["error"]) == (400, "bad_request")
    status, body = await srv.admin("GET", "/api/statistics?from=2026-03-02&to=2026-03-01")
    assert status == 400


def test_the_trend_cuts_the_period_at_months_weeks_and_local_midnights() -> None:
    """Each piece lies in one month and one ISO week, bounded by local midnights: a
    summer-time change's day is 23 hours long (Berlin, 2026-03-29)."""
    berlin = ZoneInfo("Europe/Berlin")
    cut = periods.pieces(date(2026, 3, 20), date(2026, 4, 7), berlin)
    firsts = [day for day, _, _ in cut]
    assert firsts == [date(2026, 3, 20), date(2026, 3, 23), date(2026, 3, 30), date(2026, 4, 1),
                      date(2026, 4, 6)]  # fmt: skip
    assert all(a[2] == b[1] for a, b in itertools.pairwise(cut))  # no gap
    week = next(p for p in cut if p[0] == date(2026, 3, 23))
    assert week[2] - week[1] == 7 * 86400 - 3600  # the spring-forward week
    assert cut[-1][2] == int(datetime(2026, 4, 8, tzinfo=berlin).timestamp())
    counts = Counter({date(2026, 3, 30): 2, date(2026, 4, 1): 3})
    trend = periods.rollup(counts, date(2026, 3, 20), date(2026, 4, 7))
    assert trend["monthly"] == [{"month": "2026-03", "count": 2}, {"month": "2026-04", "count": 3}]
    assert [w["count"] for w in trend["weekly"]] == [0, 0, 5, 0]
