"""What every statistics query shares: the filter (`Filter`, the URL's parameters), who
may see statistics, the SQL terms of a region and of being overdue, the limits, and
SQLite's `INDEXED BY` hint (direct.py and queries.py name the index of a query)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, Table, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles

from tiaojie.server.cases.actor import CaseActor, StaffRole
from tiaojie.server.cases.states import FOLLOW_UP_PENDING, OPEN_STATES, State
from tiaojie.server.cases.store import region_terms as store_region_terms
from tiaojie.server.cases.tables import cases

HOUR = 3600
#: Rows of the load tables and the experts in the JSON (the export takes more).
LOAD_LIMIT = 20
EXPERT_LIMIT = 10
#: The longest trend shown (months and weeks).
TREND_YEARS = 20
#: What "in hand" means for a mediator: dispatched to them or in mediation.
IN_HAND = (str(State.DISPATCHED), str(State.MEDIATING))
OPEN = tuple(str(s) for s in OPEN_STATES)


@dataclass(frozen=True)
class Filter:
    """`GET /api/statistics`'s query: local dates (both included), a region code, a
    dispute type code, an organisation id; None is no filter."""

    start: date | None = None
    end: date | None = None
    region: str | None = None
    dispute_type: str | None = None
    organisation_id: str | None = None

    def query(self) -> dict[str, str]:
        """As URL parameters (the export's links, the page's address)."""
        values = {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "region": self.region,
            "type": self.dispute_type,
            "organisation": self.organisation_id,
        }
        return {k: v for k, v in values.items() if v}


def may_see(actor: CaseActor) -> bool:
    """Statistics are the coordinators' and the admin's (a mediator's own cases are on
    their inbox; an archivist reads recordings)."""
    return actor.has(StaffRole.ADMIN) or actor.has(StaffRole.COORDINATOR)


def region_terms(
    kind: str, region: str, table: Table = cases, name: str = "region_code"
) -> list[Any]:
    """A region and everything under it, in `table`'s column `name` (the queue's rule,
    server/cases/store.py `region_terms`)."""
    return store_region_terms(kind, region, table.c[name])


def follow_up_late(now: int) -> Any:
    """A follow-up (回访) overdue: closed with an outcome, not followed up, past its due
    day (server/cases/court.py sets it on closing; `GET /api/cases?follow_up=overdue`)."""
    return and_(
        cases.c.state.in_([str(s) for s in FOLLOW_UP_PENDING]),
        cases.c.follow_up_due_at.is_not(None),
        cases.c.follow_up_due_at < now,
    )


def late(now: int) -> Any:
    """Overdue: open (accepted, dispatched, in mediation) past its deadline."""
    return and_(
        cases.c.state.in_(OPEN), cases.c.deadline_at.is_not(None), cases.c.deadline_at < now
    )


@compiles(Select, "sqlite")
def _select_with_index(select: Select[Any], compiler: Any, **kw: Any) -> str:
    """SQLAlchemy renders `Select.with_hint` for some dialects, not SQLite's `INDEXED BY`
    (its `get_from_hint_text` answers nothing): here it writes the hint after the table,
    as SQLite wants it (`FROM cases INDEXED BY ix`). Only the statistics give SQLite
    hints."""
    compiler.get_from_hint_text = _hint_text
    return str(compiler.visit_select(select, **kw))


def _hint_text(table: Any, text: str | None) -> str | None:
    return text


async def close_percentiles(conn: AsyncConnection, histogram: Any) -> dict[str, Any]:
    """Median and p90 (nearest rank) of a histogram CTE of whole hours to close
    (columns `hours`, `n`), by a running sum over a window function; in days."""
    running = select(
        histogram.c.hours,
        func.sum(histogram.c.n).over(order_by=histogram.c.hours).label("cum"),
        func.sum(histogram.c.n).over().label("total"),
    ).cte("running")
    query = select(
        func.min(case((running.c.cum * 2 >= running.c.total, running.c.hours))),
        func.min(case((running.c.cum * 10 >= running.c.total * 9, running.c.hours))),
        func.max(running.c.total),
    )
    median, p90, total = (await conn.execute(query)).one()

    def days(value: Any) -> float | None:
        return None if value is None else round(int(value) / 24, 2)

    return {"closed": int(total or 0), "median_days": days(median), "p90_days": days(p90)}
