"""The statistics' summary, `case_counts` (tables.py): its key for a case, the move of a
case from one key to another in the transaction that changes it (store.py: the case's
creation and every update), and its rebuild from the cases table (the bench after a bulk
load; migration v0020 has its own copy of the statement, as migrations keep theirs).

The dashboard (server/statistics/queries.py) counts, filters and groups by the report
time, type, region, source, state, outcome, holder, coordinator, mediator and the time
to close; with every one of them in the key, each of its figures is a sum over rows of
this table instead of a count over the cases, and equal to it (tests/
test_statistics_summary.py checks each figure against the cases table).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.cases.tables import COUNT_KEY, case_counts

#: The report time's bucket: a quarter hour (every zone's offset is a multiple of one).
QUARTER = 900
HOUR = 3600
#: `close_hours` of a case not closed (no duration can be this).
OPEN_HOURS = -(2**40)

Key = tuple[Any, ...]


def close_hours(created_at: int, closed_at: int | None) -> int:
    """Whole hours from report to close as the databases divide integers (towards 0)."""
    if closed_at is None:
        return OPEN_HOURS
    spent = int(closed_at) - int(created_at)
    return spent // HOUR if spent >= 0 else -((-spent) // HOUR)


def key(values: Mapping[str, Any]) -> Key:
    """The row of a case given its columns (a row of `cases`, or store.py's values)."""
    created = int(values["created_at"])
    return (
        created - created % QUARTER,
        str(values["dispute_type"]),
        str(values["region_code"]),
        str(values["source"]),
        str(values["state"]),
        str(values["outcome"] or ""),
        str(values["holder_organisation_id"]),
        str(values["coordinator_organisation_id"]),
        str(values["mediator_id"] or ""),
        close_hours(created, values["closed_at"]),
    )


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


async def move(conn: AsyncConnection, before: Key | None, after: Key | None) -> None:
    """One case leaves `before`'s row and joins `after`'s (None: created, or gone), in
    the caller's transaction. Rows are touched in key order, so two writers moving cases
    between the same rows lock them in the same order (PostgreSQL: no deadlock)."""
    if before == after:
        return
    steps = sorted(
        [(k, d) for k, d in ((before, -1), (after, 1)) if k is not None],
        key=lambda step: tuple(str(v) for v in step[0]),
    )
    for row, delta in steps:
        if delta > 0:
            await _add(conn, row)
        else:
            where = and_(
                *(case_counts.c[name] == value for name, value in zip(COUNT_KEY, row, strict=True))
            )
            await conn.execute(update(case_counts).where(where).values(n=case_counts.c.n - 1))
            await conn.execute(delete(case_counts).where(where, case_counts.c.n <= 0))


async def _add(conn: AsyncConnection, row: Key) -> None:
    values = dict(zip(COUNT_KEY, row, strict=True))
    dialect = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect(case_counts).values(**values, n=1)
    statement = statement.on_conflict_do_update(
        index_elements=list(COUNT_KEY), set_={"n": case_counts.c.n + 1}
    )
    await conn.execute(statement)


#: Every case counted in its row (the same expressions as `key`).
REBUILD = f"""
INSERT INTO case_counts ({", ".join(COUNT_KEY)}, n)
SELECT created_at - created_at % {QUARTER}, dispute_type, region_code, source, state,
       COALESCE(outcome, ''), holder_organisation_id, coordinator_organisation_id,
       COALESCE(mediator_id, ''),
       CASE WHEN closed_at IS NULL THEN {OPEN_HOURS}
            ELSE (closed_at - created_at) / {HOUR} END,
       COUNT(*)
FROM cases
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
"""


async def rebuild(conn: AsyncConnection) -> int:
    """The summary made again from the cases (after cases were written in bulk, not
    through the store); returns its number of rows."""
    await conn.execute(delete(case_counts))
    await conn.execute(text(REBUILD))
    return int((await conn.execute(text("SELECT COUNT(*) FROM case_counts"))).scalar_one())
