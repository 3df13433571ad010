"""The dashboard's statistics counted straight from the cases table, each query through
one covering index of the cases (migration v0015; docs/PERFORMANCE.md "Statistics at
scale"). queries.py's `Statistics` reads the summaries instead where they hold the
answer and asks these where they do not (a period, a region); they are also the
reference the summaries must equal (tests/test_statistics_summary.py) and the "before"
of bench/statistics.py.

Every query aggregates in the database and returns rows bounded by the configuration,
never by the number of cases: the counts per (type, source, state, outcome), per region
code, per piece of the period (periods.py), per hour of report-to-close time, per
mediator, per organisation and per expert. `compute` rolls them up into the JSON of
`GET /api/statistics` (docs/STATISTICS.md says what each number means).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    Table,
    case,
    column,
    desc,
    func,
    or_,
    select,
    true,
    values,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.cases import staff
from tiaojie.server.cases.actor import CaseActor, StaffRole
from tiaojie.server.cases.model import SOURCE_LABELS, Source
from tiaojie.server.cases.states import LABELS, State
from tiaojie.server.cases.tables import case_sessions, case_settings, cases, experts
from tiaojie.server.statistics import periods
from tiaojie.server.statistics.regions import RegionTree
from tiaojie.server.statistics.terms import (
    EXPERT_LIMIT,
    HOUR,
    IN_HAND,
    LOAD_LIMIT,
    OPEN,
    TREND_YEARS,
    Filter,
    close_percentiles,
    follow_up_late,
    late,
    region_terms,
)


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


class DirectStatistics:
    """The statistics of one filter, for one actor, at `now`, on one connection."""

    def __init__(
        self, conn: AsyncConnection, actor: CaseActor, filters: Filter, tz: tzinfo, now: int
    ) -> None:
        self.conn = conn
        self.actor = actor
        self.filters = filters
        self.tz = tz
        self.now = now
        self.kind = conn.dialect.name

    # -- the WHERE of every query ----------------------------------------------------------
    def where(self, period: bool = True, table: Table = cases) -> list[Any]:
        """The filters as terms on `table` (the cases, or a table with their filtered
        columns: `case_session_experts`); `period=False`: without the period's, for a
        query that bounds the report time itself."""
        f = self.filters
        t = table.c
        terms: list[Any] = []
        if not self.actor.has(StaffRole.ADMIN):
            own = self.actor.organisation_id or ""
            terms.append(or_(t.holder_organisation_id == own, t.coordinator_organisation_id == own))
        if period and f.start is not None:
            terms.append(t.created_at >= periods.day_start(f.start, self.tz))
        if period and f.end is not None:
            terms.append(t.created_at < self.end_ts())
        if f.dispute_type:
            terms.append(t.dispute_type == f.dispute_type)
        if f.region:
            terms += region_terms(self.kind, f.region, table)
        if f.organisation_id:
            terms.append(t.holder_organisation_id == f.organisation_id)
        return terms or [true()]

    def indexed(self, query: Select[Any], own: str) -> Select[Any]:
        """On SQLite, the index that serves `query` (its planner, costing every index
        alike, took the queue's indexes and read the rows behind them: seconds at a
        million cases): the report time's when a period is asked, the holder's for an
        organisation, else `own`, the one led by what the query groups by. Each covers
        every column the queries name (tables.py); PostgreSQL chooses well alone."""
        if self.kind != "sqlite":
            return query
        if self.filters.start or self.filters.end:
            own = "ix_cases_statistics"
        elif self.filters.organisation_id:
            own = "ix_cases_statistics_holder"
        return query.with_hint(cases, f"INDEXED BY {own}", "sqlite")

    def end_ts(self) -> int:
        end = self.filters.end
        assert end is not None
        if end == date.max:
            return periods.day_start(end, self.tz) + periods.DAY
        return periods.day_start(end + timedelta(days=1), self.tz)

    # -- the queries -----------------------------------------------------------------------
    async def summary(self) -> list[Any]:
        """(type, source, state, outcome, cases, overdue) per combination."""
        query = (
            select(
                cases.c.dispute_type,
                cases.c.source,
                cases.c.state,
                cases.c.outcome,
                func.count().label("n"),
                _count(late(self.now)).label("overdue"),
            )
            .where(*self.where())
            .group_by(cases.c.dispute_type, cases.c.source, cases.c.state, cases.c.outcome)
        )
        query = self.indexed(query, "ix_cases_statistics_type")
        return list(await self.conn.execute(query))

    async def follow_ups_overdue(self) -> int:
        """Cases whose follow-up is overdue, by the follow-up index (few rows: the cases
        closed and waiting for their 回访)."""
        query = select(func.count()).where(*self.where(), follow_up_late(self.now))
        if self.kind == "sqlite":  # whatever the filters: the waiting cases are few
            query = query.with_hint(cases, "INDEXED BY ix_cases_follow_up", "sqlite")
        return int((await self.conn.execute(query)).scalar_one())

    async def type_names(self, codes: set[str]) -> dict[str, str]:
        """The names cases kept for types no longer configured (rare: a type removed)."""
        if not codes:
            return {}
        query = (
            select(cases.c.dispute_type, func.max(cases.c.dispute_type_name))
            .where(cases.c.dispute_type.in_(sorted(codes)))
            .group_by(cases.c.dispute_type)
        )
        return {row[0]: row[1] for row in await self.conn.execute(query)}

    async def by_region_code(self) -> list[Any]:
        query = (
            select(cases.c.region_code, func.count().label("n"))
            .where(*self.where())
            .group_by(cases.c.region_code)
        )
        query = self.indexed(query, "ix_cases_statistics_region")
        return list(await self.conn.execute(query))

    async def span(self) -> tuple[int | None, int | None]:
        """The first and last report time (the trend's ends when no period is given)."""
        query = select(func.min(cases.c.created_at), func.max(cases.c.created_at)).where(
            *self.where()
        )
        row = (await self.conn.execute(query)).one()
        return row[0], row[1]

    async def trend(self) -> tuple[Counter[date], date | None, date | None]:
        """Cases reported per piece of the period (periods.pieces: cut at every month
        and week, so each lies in one of each), keyed by the piece's first day, and the
        trend's first and last days: the period asked for (at most TREND_YEARS, never
        past today), else from the first case reported to today. Each piece is a range
        of report times (its bounds computed in the zone, summer time included) counted
        by a correlated subquery on the report time's index: every entry is read once
        and nothing is sorted, where a GROUP BY over an expression of the time sorted
        every case on SQLite (twice as slow at a million); pieces, not days, because
        each subquery costs SQLite a fraction of a millisecond to start."""
        lo, hi = await self.span()
        if lo is None or hi is None:
            return Counter(), None, None
        f = self.filters
        last = min(f.end or date.max, periods.local_day(max(self.now, int(hi)), self.tz))
        first = f.start or periods.local_day(int(lo), self.tz)
        if last < date(1990, 1, 1):  # before any case this software registered
            return Counter(), None, None
        first = max(first, last - timedelta(days=366 * TREND_YEARS), date(1970, 1, 2))
        if first > last:
            return Counter(), None, None
        cut = periods.pieces(first, last, self.tz)
        days_cte = (
            values(column("starts", BigInteger), column("ends", BigInteger), name="pieces")
            .data([(start, end) for _, start, end in cut])
            .cte("pieces")
        )
        count = select(func.count()).where(
            *self.where(period=False),  # the pieces are the period: one range each
            cases.c.created_at >= days_cte.c.starts,
            cases.c.created_at < days_cte.c.ends,
        )
        # always the report time's index: each piece is a range of it
        count = count.with_hint(cases, "INDEXED BY ix_cases_statistics", "sqlite")
        query = select(days_cte.c.starts, count.scalar_subquery().label("n"))
        first_days = {start: day for day, start, _ in cut}
        days: Counter[date] = Counter()
        for row in await self.conn.execute(query):
            if row.n:
                days[first_days[int(row.starts)]] += int(row.n)
        return days, first, last

    async def days_to_close(self) -> dict[str, Any]:
        """Median and p90 of the time from report to final close (已结案), nearest rank
        over whole hours: a histogram per hour, its running sum by a window function."""
        hours = ((cases.c.closed_at - cases.c.created_at) // HOUR).label("hours")
        histogram = self.indexed(
            select(hours, func.count().label("n"))
            .where(*self.where(), cases.c.closed_at.is_not(None))
            .group_by(hours),
            "ix_cases_statistics",
        ).cte("histogram")
        return await close_percentiles(self.conn, histogram)

    async def mediators(self, limit: int = LOAD_LIMIT) -> list[Any]:
        in_hand = _count(cases.c.state.in_(IN_HAND)).label("in_hand")
        query = (
            select(
                cases.c.mediator_id.label("id"),
                func.count().label("total"),
                in_hand,
                _count(late(self.now)).label("overdue"),
                _count(cases.c.outcome == "success").label("succeeded"),
                _count(cases.c.outcome == "failure").label("failed"),
            )
            .where(*self.where(), cases.c.mediator_id.is_not(None))
            .group_by(cases.c.mediator_id)
            .order_by(desc("in_hand"), desc("total"), cases.c.mediator_id)
            .limit(limit)
        )
        query = self.indexed(query, "ix_cases_statistics_mediator")
        return list(await self.conn.execute(query))

    async def organisations(self, limit: int = LOAD_LIMIT) -> list[Any]:
        holding = _count(cases.c.state.in_(OPEN)).label("in_hand")
        query = (
            select(
                cases.c.holder_organisation_id.label("id"),
                func.count().label("total"),
                holding,
                _count(late(self.now)).label("overdue"),
                _count(cases.c.outcome == "success").label("succeeded"),
                _count(cases.c.outcome == "failure").label("failed"),
            )
            .where(*self.where())
            .group_by(cases.c.holder_organisation_id)
            .order_by(desc("in_hand"), desc("total"), cases.c.holder_organisation_id)
            .limit(limit)
        )
        query = self.indexed(query, "ix_cases_statistics_holder")
        return list(await self.conn.execute(query))

    async def experts(self, limit: int = EXPERT_LIMIT) -> list[Any]:
        """The experts invited to the most sessions of the filtered cases (each session's
        `invites` is a JSON array: json_each on SQLite, json_array_elements on PostgreSQL)."""
        kind: Any
        expert_id: Any
        if self.kind == "postgresql":
            item = func.json_array_elements(case_sessions.c.invites).table_valued("value")
            kind = item.c.value.op("->>")("kind")
            expert_id = item.c.value.op("->>")("expert_id")
        else:
            item = func.json_each(case_sessions.c.invites).table_valued("value")
            kind = func.json_extract(item.c.value, "$.kind")
            expert_id = func.json_extract(item.c.value, "$.expert_id")
        used = (
            select(
                expert_id.label("expert_id"),
                func.count().label("sessions"),
            )
            .select_from(cases.join(case_sessions, case_sessions.c.case_id == cases.c.id))
            .join(item, true())
            .where(*self.where(), kind == "expert")
            .group_by(expert_id)
            # SQLite: from each session to its case by id, the filters read in the index
            .with_hint(cases, "INDEXED BY ix_cases_statistics_id", "sqlite")
            .subquery("used")
        )
        query = (
            select(used, experts.c.name, experts.c.organisation)
            .select_from(used.outerjoin(experts, experts.c.id == used.c.expert_id))
            .order_by(desc(used.c.sessions), used.c.expert_id)
            .limit(limit)
        )
        return list(await self.conn.execute(query))

    # -- the answer ------------------------------------------------------------------------
    async def compute(
        self,
        tree: RegionTree,
        types: list[dict[str, Any]],
        load_limit: int | None = None,
        expert_limit: int | None = None,
    ) -> dict[str, Any]:
        summary = await self.summary()
        by_type: dict[str, dict[str, Any]] = {}
        by_source: Counter[str] = Counter()
        by_state: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        total = overdue = 0
        names = {t["code"]: t for t in types}
        kept = await self.type_names({row.dispute_type for row in summary} - set(names))
        for row in summary:
            n = int(row.n)
            total += n
            overdue += int(row.overdue)
            kind = by_type.setdefault(
                row.dispute_type,
                {
                    "code": row.dispute_type,
                    "name": names.get(row.dispute_type, {}).get("name")
                    or kept.get(row.dispute_type, row.dispute_type),
                    "name_en": names.get(row.dispute_type, {}).get("name_en"),
                    "count": 0,
                    "succeeded": 0,
                    "failed": 0,
                },
            )
            kind["count"] += n
            if row.outcome == "success":
                kind["succeeded"] += n
            elif row.outcome == "failure":
                kind["failed"] += n
            by_source[row.source] += n
            by_state[row.state] += n
            if row.outcome:
                outcomes[row.outcome] += n
        concluded = outcomes["success"] + outcomes["failure"]
        days, first, last = await self.trend()
        trends = periods.rollup(days, first, last)
        return {
            "filters": self.filters.query(),
            "timezone": getattr(self.tz, "key", str(self.tz)),
            "generated_at": self.now,
            "total": total,
            "overdue": overdue,
            "follow_up_overdue": await self.follow_ups_overdue(),
            "success_rate": {
                "succeeded": outcomes["success"],
                "failed": outcomes["failure"],
                "withdrawn": outcomes["withdrawn"],
                "concluded": concluded,
                "rate": round(outcomes["success"] / concluded, 4) if concluded else None,
            },
            "days_to_close": await self.days_to_close(),
            "by_type": sorted(by_type.values(), key=lambda t: (-t["count"], t["code"])),
            "by_region": tree.rollup(self.filters.region, await self.by_region_code()),
            "by_source": [
                {"code": str(s), "name": SOURCE_LABELS[s], "count": by_source[str(s)]}
                for s in Source
            ],
            "by_state": [
                {
                    "code": str(s),
                    "name": LABELS["zh-CN"][s],
                    "name_en": LABELS["en"][s],
                    "count": by_state[str(s)],
                }
                for s in State
            ],
            **trends,
            "mediators": await self._named(await self.mediators(load_limit or LOAD_LIMIT)),
            "organisations": await self._named(await self.organisations(load_limit or LOAD_LIMIT)),
            "experts": [
                {
                    "id": row.expert_id,
                    "name": row.name or row.expert_id,
                    "organisation": row.organisation or "",
                    "sessions": int(row.sessions),
                }
                for row in await self.experts(expert_limit or EXPERT_LIMIT)
            ],
        }

    async def _named(self, rows: list[Any]) -> list[dict[str, Any]]:
        """Load rows with the organisation's or account's name (an organisation known
        only by its case settings, as the placeholder is, by the name set there)."""
        ids = {row.id for row in rows}
        found = await staff.names(self.conn, ids)
        missing = sorted(ids - set(found))
        if missing:
            query = select(case_settings.c.organisation_id, case_settings.c.settings).where(
                case_settings.c.organisation_id.in_(missing)
            )
            for row in await self.conn.execute(query):
                if isinstance(row.settings, dict) and row.settings.get("name"):
                    found[row.organisation_id] = row.settings["name"]
        return [
            {
                "id": row.id,
                "name": found.get(row.id, row.id),
                "total": int(row.total),
                "in_hand": int(row.in_hand),
                "overdue": int(row.overdue),
                "succeeded": int(row.succeeded),
                "failed": int(row.failed),
            }
            for row in rows
        ]
