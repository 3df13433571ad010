"""The statistics' summaries (tables.py SUMMARIES: `case_counts`, `case_region_counts`,
`case_close_counts`, `case_hour_counts`): a case's row in each, its move from one row to
another in the transaction that changes it (store.py: the case's creation and every
update), and their rebuild from the cases table (the bench after a bulk load; migration
v0020 has its own copy of the statements, as migrations keep theirs). And
`case_session_experts`: a session's expert invites (sessions.py, when it is scheduled),
their case's holder kept as it moves, and their rebuild.

Every figure the dashboard reads from a summary equals the count over the cases
(tests/test_statistics_summary.py checks each against server/statistics/direct.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, and_, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.cases.tables import (
    REGION_PREFIX,
    SUMMARIES,
    case_close_counts,
    case_counts,
    case_hour_counts,
    case_region_counts,
    case_session_experts,
    case_sessions,
    cases,
)

HOUR = 3600
TABLES: dict[str, Table] = {
    t.name: t for t in (case_counts, case_region_counts, case_close_counts, case_hour_counts)
}
#: Each summary's key as SQL over the cases (the rebuild) and which cases it holds.
SQL: dict[str, tuple[dict[str, str], str]] = {
    "case_counts": (
        {
            "region_prefix": f"SUBSTR(region_code, 1, {REGION_PREFIX})",
            "outcome": "COALESCE(outcome, '')",
            "mediator_id": "COALESCE(mediator_id, '')",
        },
        "1 = 1",
    ),
    "case_region_counts": ({}, "1 = 1"),
    # the databases divide integers towards 0 (closed_at is never before created_at)
    "case_close_counts": (
        {"close_hours": f"(closed_at - created_at) / {HOUR}"},
        "closed_at IS NOT NULL",
    ),
    "case_hour_counts": ({"hour": f"created_at - created_at % {HOUR}"}, "1 = 1"),
}

Keys = dict[str, tuple[Any, ...] | None]


def close_hours(created_at: int, closed_at: int) -> int:
    """Whole hours from report to close as the databases divide integers (towards 0)."""
    spent = int(closed_at) - int(created_at)
    return spent // HOUR if spent >= 0 else -((-spent) // HOUR)


def keys(values: Mapping[str, Any]) -> Keys:
    """A case's row in each summary (None: in none of its rows), from its columns (a
    row of `cases`, or case_values)."""
    created = int(values["created_at"])
    column = {
        "dispute_type": str(values["dispute_type"]),
        "region_code": str(values["region_code"]),
        "region_prefix": str(values["region_code"])[:REGION_PREFIX],
        "source": str(values["source"]),
        "state": str(values["state"]),
        "outcome": str(values["outcome"] or ""),
        "holder_organisation_id": str(values["holder_organisation_id"]),
        "coordinator_organisation_id": str(values["coordinator_organisation_id"]),
        "mediator_id": str(values["mediator_id"] or ""),
        "hour": created - created % HOUR,
    }
    closed = values["closed_at"]
    if closed is not None:
        column["close_hours"] = close_hours(created, closed)
    return {
        name: tuple(column[c] for c in key) if all(c in column for c in key) else None
        for name, key in SUMMARIES.items()
    }


def case_values(case: Any) -> dict[str, Any]:
    """The counted columns of a `Case` (server/cases/model.py)."""
    return {
        "created_at": case.created_at,
        "dispute_type": case.dispute_type,
        "region_code": case.region_code,
        "source": case.source,
        "state": case.state,
        "outcome": case.outcome,
        "holder_organisation_id": case.holder_organisation_id,
        "coordinator_organisation_id": case.coordinator_organisation_id,
        "mediator_id": case.mediator_id,
        "closed_at": case.closed_at,
    }


async def move(conn: AsyncConnection, before: Keys | None, after: Keys | None) -> None:
    """One case leaves its rows of `before` and joins those of `after` (None: created,
    or gone), in the caller's transaction. Within a summary the rows are touched in key
    order, the summaries always in one order: two writers moving cases between the same
    rows lock them in the same order (PostgreSQL: no deadlock)."""
    for name, key in SUMMARIES.items():
        old = before[name] if before else None
        new = after[name] if after else None
        if old == new:
            continue
        table = TABLES[name]
        steps = [(k, d) for k, d in ((old, -1), (new, 1)) if k is not None]
        steps.sort(key=lambda step: tuple(str(v) for v in step[0]))
        for row, delta in steps:
            if delta > 0:
                await _add(conn, table, dict(zip(key, row, strict=True)))
            else:
                where = and_(*(table.c[c] == v for c, v in zip(key, row, strict=True)))
                await conn.execute(update(table).where(where).values(n=table.c.n - 1))
                await conn.execute(delete(table).where(where, table.c.n <= 0))


async def _add(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> None:
    dialect = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect(table).values(**values, n=1)
    statement = statement.on_conflict_do_update(
        index_elements=list(values), set_={"n": table.c.n + 1}
    )
    await conn.execute(statement)


def rebuild_sql(name: str) -> str:
    """The summary `name` made from the cases, in one statement."""
    expressions, where = SQL[name]
    key = SUMMARIES[name]
    columns = ", ".join(expressions.get(c, c) for c in key)
    groups = ", ".join(str(n) for n in range(1, len(key) + 1))
    return (
        f"INSERT INTO {name} ({', '.join(key)}, n) SELECT {columns}, COUNT(*) "
        f"FROM cases WHERE {where} GROUP BY {groups}"
    )


async def rebuild(conn: AsyncConnection) -> dict[str, int]:
    """The summaries made again from the cases (after cases were written in bulk, not
    through the store); returns each one's number of rows."""
    made = {}
    for name in SUMMARIES:
        await conn.execute(delete(TABLES[name]))
        await conn.execute(text(rebuild_sql(name)))
        made[name] = int((await conn.execute(text(f"SELECT COUNT(*) FROM {name}"))).scalar_one())
    return made


def _expert_rows(
    session_id: str, invites: list[dict[str, Any]], case: Mapping[str, Any]
) -> list[dict[str, Any]]:
    return [
        {
            "session_id": session_id,
            "invite_id": invite["invite_id"],
            "case_id": case["id"],
            "expert_id": invite.get("expert_id"),
            "created_at": case["created_at"],
            "dispute_type": case["dispute_type"],
            "region_code": case["region_code"],
            "holder_organisation_id": case["holder_organisation_id"],
            "coordinator_organisation_id": case["coordinator_organisation_id"],
        }
        for invite in invites
        if invite.get("kind") == "expert"
    ]


async def add_session_experts(
    conn: AsyncConnection, session_id: str, invites: list[dict[str, Any]], case: Any
) -> None:
    """A scheduled session's expert invites (`invites` as stored in `case_sessions`)."""
    values = {"id": case.id, **case_values(case)}
    rows = _expert_rows(session_id, invites, values)
    if rows:
        await conn.execute(insert(case_session_experts), rows)


async def move_experts(conn: AsyncConnection, case_id: str, holder: str) -> None:
    """The case's sessions' experts follow it to its new holder."""
    await conn.execute(
        update(case_session_experts)
        .where(case_session_experts.c.case_id == case_id)
        .values(holder_organisation_id=holder)
    )


async def rebuild_experts(conn: AsyncConnection) -> int:
    """`case_session_experts` made again from the sessions' invites (after a bulk load);
    returns its number of rows."""
    await conn.execute(delete(case_session_experts))
    query = select(
        case_sessions.c.id.label("session_id"),
        case_sessions.c.invites,
        cases.c.id,
        cases.c.created_at,
        cases.c.dispute_type,
        cases.c.region_code,
        cases.c.holder_organisation_id,
        cases.c.coordinator_organisation_id,
    ).select_from(case_sessions.join(cases, cases.c.id == case_sessions.c.case_id))
    made = 0
    batch: list[dict[str, Any]] = []
    for row in (await conn.execute(query)).mappings().all():
        batch += _expert_rows(row["session_id"], row["invites"] or [], dict(row))
        if len(batch) >= 5000:
            await conn.execute(insert(case_session_experts), batch)
            made, batch = made + len(batch), []
    if batch:
        await conn.execute(insert(case_session_experts), batch)
        made += len(batch)
    return made
