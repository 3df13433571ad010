"""Synthetic cases for the cases benchmark, written in bulk straight into the cases' tables.

Every synthetic case is made the way the server makes one, only many at a time: the
`reported` event names the report's digest, each later change is planned by the real
state machine (server/cases/states.py `plan`) and logged as the event it returns, the
numbers come from the organisation's format and the counters are left where the last
synthetic case put them, so the next real intake continues the sequence. The one
difference, for speed: the server signs a checkpoint after every change, a synthetic
case's log has its events and then ONE signed checkpoint (it still verifies with
tiaojie.archive.caselog.verify_case_log and the server's key). Synthetic rows are marked:
their actor is the admin kind with the id `bench-synthetic` (reported_by and every event).

The data: a region tree of 4 districts x 5 streets x 5 communities (100 communities, set
in case_config), the ten default dispute types, 20 mediation organisations with 10
mediators each; cases spread over the last two years, recent ones mostly open, older ones
mostly concluded, so a few per cent of the open cases are overdue as in a real centre.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import JSON, delete, insert

from tiaojie.archive.caselog import report_digest
from tiaojie.archive.chain import GENESIS, canonical, case_chain_name, make_entry
from tiaojie.server.cases import counts, numbering, regions, taxonomy
from tiaojie.server.cases.model import Case, Party, PartyRole, Risk, Source
from tiaojie.server.cases.service import new_code
from tiaojie.server.cases.settings import DEFAULT_DEADLINE_DAYS, DEFAULT_ORGANISATION
from tiaojie.server.cases.states import Action, CaseState, State, plan
from tiaojie.server.cases.store import _row
from tiaojie.server.cases.tables import (
    case_config,
    case_counters,
    case_log,
    case_parties,
    case_settings,
    cases,
)
from tiaojie.server.db import Database
from tiaojie.server.model import new_id

DAY = 86400
ACTOR = {"kind": "admin", "id": "bench-synthetic", "organisation_id": None}
ORGANISATIONS = [f"org-bench-{n:02d}" for n in range(1, 21)]
MEDIATORS = {org: [f"m-{org[-2:]}-{n:02d}" for n in range(1, 11)] for org in ORGANISATIONS}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["秀兰", "建国", "桂英", "志强", "丽华", "海燕", "国庆", "小红", "明", "伟", "芳", "军"]
STORIES = [
    "楼上住户装修漏水，把厨房的天花板泡坏了，多次协商未果。",
    "邻居在公共走廊堆放杂物，影响通行和消防安全。",
    "工地拖欠工人两个月工资，包工头联系不上。",
    "宅基地边界有争议，双方都说围墙砌到了自己的地上。",
    "网购的家电有质量问题，商家拒绝退换。",
    "离婚后孩子的探视时间双方谈不拢。",
    "物业费上涨，业主认为服务没有改善，拒交物业费。",
    "电动车停放在楼道充电，邻居担心安全隐患。",
]
#: The path of actions to reach each state, from `reported`.
PATHS: dict[State, list[Action]] = {
    State.REPORTED: [],
    State.ACCEPTED: [Action.ACCEPT],
    State.DISPATCHED: [Action.ACCEPT, Action.DISPATCH],
    State.MEDIATING: [Action.ACCEPT, Action.DISPATCH, Action.TAKE],
    State.SUCCEEDED: [Action.ACCEPT, Action.DISPATCH, Action.TAKE, Action.CLOSE],
    State.FAILED: [Action.ACCEPT, Action.DISPATCH, Action.TAKE, Action.CLOSE],
    State.WITHDRAWN: [Action.ACCEPT, Action.WITHDRAW],
    State.FOLLOWING_UP: [
        Action.ACCEPT,
        Action.DISPATCH,
        Action.TAKE,
        Action.CLOSE,
        Action.FOLLOW_UP,
    ],
    State.CLOSED: [
        Action.ACCEPT,
        Action.DISPATCH,
        Action.TAKE,
        Action.CLOSE,
        Action.FOLLOW_UP,
        Action.CLOSE,
    ],
}
#: How likely each state is for a case reported in the last 45 days, and before.
RECENT = {
    State.REPORTED: 10,
    State.ACCEPTED: 15,
    State.DISPATCHED: 20,
    State.MEDIATING: 35,
    State.SUCCEEDED: 8,
    State.FAILED: 4,
    State.WITHDRAWN: 3,
    State.FOLLOWING_UP: 3,
    State.CLOSED: 2,
}
OLDER = {
    State.REPORTED: 0.2,
    State.ACCEPTED: 0.3,
    State.DISPATCHED: 0.5,
    State.MEDIATING: 1,
    State.SUCCEEDED: 5,
    State.FAILED: 2,
    State.WITHDRAWN: 2,
    State.FOLLOWING_UP: 4,
    State.CLOSED: 85,
}


def region_tree() -> list[dict[str, Any]]:
    """4 districts x 5 streets x 5 communities, coded as the national division codes are."""
    return [
        {
            "code": f"91{d:04d}",
            "name": f"第{d}区",
            "children": [
                {
                    "code": f"91{d:04d}{s:03d}",
                    "name": f"第{d}区{s}街道",
                    "children": [
                        {"code": f"91{d:04d}{s:03d}{c:03d}", "name": f"{s}街道第{c}社区"}
                        for c in range(1, 6)
                    ],
                }
                for s in range(1, 6)
            ],
        }
        for d in range(1, 5)
    ]


def communities(tree: list[dict[str, Any]]) -> list[str]:
    return [c["code"] for d in tree for s in d["children"] for c in s["children"]]


def streets(tree: list[dict[str, Any]]) -> list[str]:
    return [s["code"] for d in tree for s in d["children"]]


@dataclass
class Synthetic:
    """What was written: enough to ask realistic questions of it."""

    count: int = 0
    codes: list[str] = field(default_factory=list)  # a sample of public codes
    states: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    log_entries: int = 0
    seconds: float = 0.0
    last_seq: dict[int, int] = field(default_factory=dict)  # the counters, by year
    tree: list[dict[str, Any]] = field(default_factory=region_tree)


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"


def _case(
    rng: random.Random,
    created: float,
    seq: int,
    number: str,
    community: str,
    tree: list[dict[str, Any]],
    kind: dict[str, str],
) -> Case:
    at = int(created)
    parties = [Party(PartyRole.APPLICANT, _person(rng), _phone(rng))]
    if rng.random() < 0.8:
        parties.append(Party(PartyRole.RESPONDENT, _person(rng), _phone(rng)))
    return Case(
        id=new_id(),
        number=number,
        organisation_id=DEFAULT_ORGANISATION,
        year=numbering.year_of(created),
        seq=seq,
        code=new_code(),
        state=State.REPORTED,
        source=Source.RESIDENT if rng.random() < 0.6 else Source.GRID_WORKER,
        dispute_type=kind["code"],
        dispute_type_name=kind["name"],
        region_code=community,
        region=regions.path_to(tree, community),
        description=rng.choice(STORIES),
        risk_level=Risk.UNASSESSED,
        holder_organisation_id=DEFAULT_ORGANISATION,
        coordinator_organisation_id=DEFAULT_ORGANISATION,
        mediator_id=None,
        outcome=None,
        reported_by=dict(ACTOR),
        created_at=at,
        accepted_at=None,
        deadline_at=None,
        closed_at=None,
        updated_at=at,
        version=1,
        log_seq=0,
        log_head=GENESIS,
        parties=parties,
    )


def _params(rng: random.Random, action: Action, target: State) -> dict[str, Any]:
    if action is Action.DISPATCH:
        organisation = rng.choice(ORGANISATIONS)
        mediator = rng.choice(MEDIATORS[organisation]) if rng.random() < 0.7 else None
        return {"organisation_id": organisation, "mediator_id": mediator}
    if action is Action.CLOSE:
        return {"outcome": "failure" if target is State.FAILED else "success"}
    if action is Action.WITHDRAW:
        return {"reason": "申请人与对方已自行和解"}
    if action is Action.FOLLOW_UP:
        return {"note": "电话回访，协议已履行"}
    return {}


def _history(
    rng: random.Random,
    case: Case,
    target: State,
    now: float,
    key: Ed25519PrivateKey,
    logs: bool = True,
) -> list[dict[str, Any]]:
    """Move `case` to `target` through the real rules; its log's rows (events, then one
    signed checkpoint), none without `logs`."""
    events = [
        (
            float(case.created_at),
            {
                "kind": "reported",
                "actor": ACTOR,
                "number": case.number,
                "source": str(case.source),
                "dispute_type": case.dispute_type,
                "region_code": case.region_code,
                "to": str(State.REPORTED),
                "report_sha256": report_digest(case.report()),
                "attachments": [],
            },
        )
    ]
    at = float(case.created_at)
    for action in PATHS[target]:
        at = min(at + rng.uniform(0.1, 3.0) * DAY, max(now - 60, at))
        params = _params(rng, action, target)
        if action is Action.TAKE and case.mediator_id is None:  # an admin takes it for one
            params["mediator_id"] = rng.choice(MEDIATORS[case.holder_organisation_id])
        rules = CaseState(
            case.state,
            case.holder_organisation_id,
            case.coordinator_organisation_id,
            case.mediator_id,
        )
        change = plan(rules, action, params, int(at), DEFAULT_DEADLINE_DAYS)
        for name, value in change.updates.items():
            setattr(case, name, State(value) if name == "state" else value)
        case.updated_at = int(at)
        case.version += 1
        events.append((at, {**change.event, "actor": ACTOR}))
    if not logs:
        return []
    chain = case_chain_name(case.id)
    rows, seq, head = [], 0, GENESIS
    for when, event in events:
        entry = make_entry("event", chain=chain, seq=seq, head=head, key=key, at=when, event=event)
        rows.append(entry)
        seq, head = seq + 1, entry["hash"]
    entry = make_entry("checkpoint", chain=chain, seq=seq, head=head, key=key, at=at)
    rows.append(entry)
    case.log_seq, case.log_head = seq + 1, entry["hash"]
    return rows


def _pick(rng: random.Random, weights: dict[State, float]) -> State:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def generate(
    count: int, now: float, key: Ed25519PrivateKey, seed: int = 1, logs: bool = True
) -> Iterator[tuple[Case, list[dict[str, Any]]]]:
    """`count` cases with their logs (none without `logs`), oldest first (so their
    numbers run in order)."""
    rng = random.Random(seed)
    tree = region_tree()
    places = communities(tree)
    kinds = taxonomy.DEFAULT_TYPES
    span = 730 * DAY
    created = sorted(now - rng.random() * span for _ in range(count))
    fmt = numbering.DEFAULT_FORMAT
    counters: dict[int, int] = {}
    for when in created:
        year = numbering.year_of(when)
        counters[year] = counters.get(year, 0) + 1
        number = numbering.format_number(fmt, year, "人", "调", counters[year])
        case = _case(rng, when, counters[year], number, rng.choice(places), tree, rng.choice(kinds))
        target = _pick(rng, RECENT if now - when < 45 * DAY else OLDER)
        yield case, _history(rng, case, target, now, key, logs)


async def write(
    database: Database,
    count: int,
    key: Ed25519PrivateKey,
    now: float,
    batch: int = 2000,
    logs: bool = True,
) -> Synthetic:
    """Write `count` synthetic cases (module docstring) into a migrated, empty database;
    without `logs`, cases with no log at all (bench/statistics.py: a million cases'
    signed logs would take an hour to make and gigabytes to hold, and no statistic
    reads them)."""
    started = time.perf_counter()
    found = Synthetic()
    tree = found.tree
    async with database.write() as conn:
        for name, value in (("regions", tree), ("dispute_types", taxonomy.DEFAULT_TYPES)):
            await conn.execute(delete(case_config).where(case_config.c.name == name))
            await conn.execute(
                insert(case_config).values(name=name, value=value, updated_at=int(now))
            )
        for n, org in enumerate(ORGANISATIONS, 1):
            settings = {"name": f"第{n}人民调解委员会", "contact": f"0311-8888{n:04d}"}
            await conn.execute(
                insert(case_settings).values(
                    organisation_id=org, settings=settings, updated_at=int(now)
                )
            )
    rows: dict[str, list[dict[str, Any]]] = {"cases": [], "parties": [], "log": []}
    counters: dict[int, int] = {}
    rng = random.Random(7)

    async def flush() -> None:
        """The batch, by the driver itself: COPY on PostgreSQL, executemany on SQLite
        (ten and three times as fast as SQLAlchemy's INSERTs of the same rows)."""
        async with database.write() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            for table, key in ((cases, "cases"), (case_parties, "parties"), (case_log, "log")):
                if not rows[key]:
                    continue
                names = [c.name for c in table.columns]
                records = [
                    tuple(
                        json.dumps(row[n], ensure_ascii=False)
                        if isinstance(table.c[n].type, JSON)
                        else row[n]
                        for n in names
                    )
                    for row in rows[key]
                ]
                if database.kind == "postgresql":
                    await raw.copy_records_to_table(table.name, records=records, columns=names)
                else:
                    marks = ", ".join("?" for _ in names)
                    await raw.executemany(
                        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", records
                    )
        for kind in rows.values():
            kind.clear()

    for i, (case, entries) in enumerate(generate(count, now, key, logs=logs)):
        created_ns = case.created_at * 10**9 + i % 10**9
        rows["cases"].append({**_row(case), "created_ns": created_ns})
        rows["parties"] += [
            {
                "case_id": case.id,
                "position": n,
                "role": str(p.role),
                "name": p.name,
                "phone": p.phone,
                "id_number": p.id_number,
            }
            for n, p in enumerate(case.parties)
        ]
        rows["log"] += [
            {
                "case_id": case.id,
                "seq": e["seq"],
                "type": e["type"],
                "hash": e["hash"],
                "entry": canonical(e).decode("utf-8"),
            }
            for e in entries
        ]
        counters[case.year] = max(counters.get(case.year, 0), case.seq)
        found.count += 1
        found.log_entries += len(entries)
        found.states[str(case.state)] = found.states.get(str(case.state), 0) + 1
        found.overdue += case.overdue(int(now))
        if rng.random() < 2000 / max(count, 1):
            found.codes.append(case.code)
        if len(rows["cases"]) >= batch:
            await flush()
    if rows["cases"]:
        await flush()
    found.last_seq = dict(counters)
    async with database.write() as conn:
        for year, last in counters.items():
            await conn.execute(
                insert(case_counters).values(
                    organisation_id=DEFAULT_ORGANISATION, year=year, last=last
                )
            )
        # the statistics' summary, as the store keeps it for each case (one statement)
        await counts.rebuild(conn)
    found.seconds = time.perf_counter() - started
    return found
