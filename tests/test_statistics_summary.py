"""The statistics' summaries (server/cases/counts.py, migration v0020) against the cases
table, on SQLite and PostgreSQL: cases made and moved through the real case store (types,
regions, sources, every state: accepted, dispatched to one organisation and transferred
to another, returned, taken, closed with each outcome, closed for good, withdrawn,
followed up; a session with experts scheduled by the case's mediator, then its case
transferred), then every figure of the dashboard read from the summaries equals the
same figure counted directly in the cases (server/statistics/direct.py, the queries
before the summaries), for the filters a coordinator uses and their combinations; and
the summaries kept case by case equal the summaries rebuilt from the cases."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bench.synthetic_cases import region_tree, streets
from tests.conftest import LiveServer
from tests.support.staff import StaffBrowser
from tests.test_accounts import make_account, make_organisation
from tiaojie.server.cases import counts, taxonomy
from tiaojie.server.cases.actor import ADMIN, CaseActor, CaseActorKind, StaffRole
from tiaojie.server.cases.model import Party, PartyRole, Source
from tiaojie.server.cases.service import CASES, new_code
from tiaojie.server.cases.states import Action
from tiaojie.server.cases.store import NewCase
from tiaojie.server.cases.tables import SUMMARIES, case_session_experts
from tiaojie.server.model import new_id
from tiaojie.server.statistics import periods
from tiaojie.server.statistics.direct import DirectStatistics
from tiaojie.server.statistics.queries import Filter, Statistics
from tiaojie.server.statistics.regions import RegionTree

ZONE = ZoneInfo("Asia/Shanghai")
DAY = 86400
#: What each case goes through after its report: (action, params) in order; "A"/"B" are
#: the two organisations, "a1"/"b1" their mediators.
PATHS: list[list[tuple[Action, dict[str, Any]]]] = [
    [],
    [(Action.ACCEPT, {})],
    [(Action.ACCEPT, {}), (Action.DISPATCH, {"organisation_id": "A"})],
    [(Action.ACCEPT, {}), (Action.DISPATCH, {"organisation_id": "A", "mediator_id": "a1"})],
    [
        (Action.ACCEPT, {}),
        (Action.DISPATCH, {"organisation_id": "A", "mediator_id": "a1"}),
        (Action.TAKE, {}),
    ],
    [
        (Action.ACCEPT, {}),
        (Action.DISPATCH, {"organisation_id": "A", "mediator_id": "a1"}),
        (Action.TAKE, {}),
        (Action.CLOSE, {"outcome": "success"}),
    ],
    [
        (Action.ACCEPT, {}),
        (Action.DISPATCH, {"organisation_id": "B", "mediator_id": "b1"}),
        (Action.TAKE, {}),
        (Action.CLOSE, {"outcome": "failure"}),
        (Action.FOLLOW_UP, {"note": "协议未履行"}),
        (Action.CLOSE, {}),
    ],
    [
        (Action.ACCEPT, {}),
        (Action.DISPATCH, {"organisation_id": "A", "mediator_id": "a1"}),
        (Action.TRANSFER, {"organisation_id": "B", "mediator_id": "b1"}),
        (Action.TAKE, {}),
        (Action.CLOSE, {"outcome": "success"}),
        (Action.FOLLOW_UP, {"note": "电话回访，协议已履行"}),
        (Action.CLOSE, {}),
    ],
    [
        (Action.ACCEPT, {}),
        (Action.DISPATCH, {"organisation_id": "B"}),
        (Action.RETURN, {"reason": "不属本委员会管辖"}),
    ],
    [(Action.ACCEPT, {}), (Action.WITHDRAW, {"reason": "双方已自行和解"})],
]


async def test_every_figure_from_the_summaries_equals_the_cases(room_server: LiveServer) -> None:
    srv = room_server
    service = srv.app[CASES]
    store = service.store
    tree = region_tree()
    await store.put_config({"regions": tree}, ADMIN)
    org = {"A": await make_organisation(srv, "甲街道人民调解委员会")}
    org["B"] = await make_organisation(srv, "乙街道人民调解委员会")
    people = {
        "a1": await make_account(srv, "sum-a1", org["A"]["id"], ["mediator"]),
        "b1": await make_account(srv, "sum-b1", org["B"]["id"], ["mediator"]),
    }
    await make_account(srv, "sum-coordinator", org["A"]["id"], ["coordinator"])
    ids = {"A": org["A"]["id"], "B": org["B"]["id"]}
    ids |= {k: v["id"] for k, v in people.items()}

    rng = random.Random(16)
    places = [c["code"] for d in tree for s in d["children"] for c in s["children"]]
    types = [t["code"] for t in taxonomy.DEFAULT_TYPES]
    now = time.time()
    made = []
    for n in range(90):
        path = PATHS[n % len(PATHS)]
        at = now - rng.uniform(1, 500) * DAY
        new = NewCase(
            source=Source.RESIDENT if n % 3 else Source.GRID_WORKER,
            dispute_type=rng.choice(types[:4]),
            region_code=rng.choice(places[:30]),
            description="楼上漏水",
            parties=[Party(PartyRole.APPLICANT, "王秀兰", "13800000000")],
        )
        case = await store.create(new, ADMIN, new_id(), new_code(), [], at)
        for step, (action, params) in enumerate(path):
            at = min(at + rng.uniform(0.05, 4) * DAY, now - 60 + step)
            given = {k: ids.get(v, v) for k, v in params.items()}
            case = await store.transition(case.id, ADMIN, action, given, at)
        made.append(case)

    # a session with two experts, scheduled by the case's mediator; then the case moves
    experts = []
    for name in ("周律师", "吴老师"):
        status, expert = await srv.admin(
            "POST", "/api/experts", json={"name": name, "specialties": ["物业纠纷"]}
        )
        assert status == 201, expert
        experts.append(expert["expert_id"])
    mediating = await store.create(
        NewCase(Source.RESIDENT, types[0], places[0], "物业费", [Party(PartyRole.APPLICANT, "李")]),
        ADMIN,
        new_id(),
        new_code(),
        [],
        now - 3 * DAY,
    )
    for action, params in PATHS[4]:
        given = {k: ids.get(v, v) for k, v in params.items()}
        mediating = await store.transition(mediating.id, ADMIN, action, given, now - 2 * DAY)
    mediator = StaffBrowser(srv.url)
    try:
        assert (await mediator.login("sum-a1"))[0] == 201
        status, answer = await mediator.request(
            "POST",
            f"/api/cases/{mediating.id}/sessions",
            json={"scheduled_at": int(now) + 3600, "expert_ids": experts},
        )
        assert status == 201, answer
    finally:
        await mediator.close()
    async with service.database.read() as conn:
        rows = list(await conn.execute(select(case_session_experts)))
    assert {r.holder_organisation_id for r in rows} == {ids["A"]} and len(rows) == 2
    await store.transition(
        mediating.id, ADMIN, Action.TRANSFER, {"organisation_id": ids["B"]}, now - 60
    )
    async with service.database.read() as conn:
        rows = list(await conn.execute(select(case_session_experts)))
    assert {r.holder_organisation_id for r in rows} == {ids["B"]}  # followed its case

    # every figure, summary against cases, for each question
    coordinator = CaseActor(
        CaseActorKind.ACCOUNT, "sum-coordinator", ids["A"], frozenset({StaffRole.COORDINATOR})
    )
    intake = made[0].coordinator_organisation_id
    centre = CaseActor(CaseActorKind.ACCOUNT, "centre", intake, frozenset({StaffRole.COORDINATOR}))
    today = periods.local_day(int(now), ZONE)
    district, street = tree[0]["code"], streets(tree)[0]
    questions: list[tuple[CaseActor, Filter]] = [
        (ADMIN, Filter()),
        (ADMIN, Filter(dispute_type=types[1])),
        (ADMIN, Filter(organisation_id=ids["A"])),
        (ADMIN, Filter(organisation_id=ids["B"], dispute_type=types[0])),
        (ADMIN, Filter(region=district)),
        (ADMIN, Filter(region=street, dispute_type=types[2])),
        (ADMIN, Filter(start=today - timedelta(days=90), end=today)),
        (ADMIN, Filter(start=today - timedelta(days=365), end=today, region=district)),
        (ADMIN, Filter(start=today - timedelta(days=200))),
        (coordinator, Filter()),
        (coordinator, Filter(dispute_type=types[0])),
        (coordinator, Filter(region=district)),
        (centre, Filter()),  # coordinates cases held elsewhere
        (centre, Filter(region=street)),
    ]
    regions = RegionTree(tree)
    summarised = set()
    # midnights on whole hours or not; one offset all year or summer time
    for zone in (ZONE, ZoneInfo("Asia/Kolkata"), ZoneInfo("Europe/Berlin")):
        for actor, filters in questions:
            async with service.database.read() as conn:
                direct = DirectStatistics(conn, actor, filters, zone, int(now))
                fast = Statistics(conn, actor, filters, zone, int(now))
                want = await direct.compute(regions, taxonomy.DEFAULT_TYPES, 100, 100)
                got = await fast.compute(regions, taxonomy.DEFAULT_TYPES, 100, 100)
                if fast.plain():
                    summarised.add("counts")
                if fast.plain(prefixed=True) and filters.region:
                    summarised.add("counts of a district")
                if fast._held_only:
                    summarised.add("held only")
                summarised.add(f"{fast.trend_path} in {zone.key}")
            assert got == want, (actor.id, filters, zone)
            assert want["total"] or filters.organisation_id, (actor.id, filters)
    # the summaries answered (the others fell back to the cases, as they should)
    assert summarised == {
        "counts",
        "counts of a district",  # a region code of 6 characters: case_counts' prefix
        "held only",  # the coordinator of A (its cases: dispatched to A)
        "hours in Asia/Shanghai",  # all cases
        "days in Asia/Shanghai",  # filtered
        "days in Asia/Kolkata",  # midnights on half hours: all cases too
        "hours in Europe/Berlin",
        "pieces in Europe/Berlin",  # summer time in the trend: filtered cases
    }
    first = await direct_figures(srv, ADMIN, Filter(), now)
    assert first["total"] == 91 and first["experts"][0]["sessions"] == 1
    assert {s["code"]: s["count"] for s in first["by_state"]}["closed"] == 18

    # the summaries kept case by case are those rebuilt from the cases
    async with service.database.write() as conn:
        kept = {name: sorted(await conn.execute(select(counts.TABLES[name]))) for name in SUMMARIES}
        experts_kept = sorted(await conn.execute(select(case_session_experts)))
        await counts.rebuild(conn)
        await counts.rebuild_experts(conn)
        rebuilt = {
            name: sorted(await conn.execute(select(counts.TABLES[name]))) for name in SUMMARIES
        }
        assert sorted(await conn.execute(select(case_session_experts))) == experts_kept
    assert kept == rebuilt
    assert all(kept.values())


async def direct_figures(srv: LiveServer, actor: CaseActor, filters: Filter, now: float) -> Any:
    service = srv.app[CASES]
    async with service.database.read() as conn:
        stats = DirectStatistics(conn, actor, filters, ZONE, int(now))
        return await stats.compute(RegionTree(region_tree()), taxonomy.DEFAULT_TYPES, 100, 100)
