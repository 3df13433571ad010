"""The dashboard's statistics as SQL (SQLAlchemy Core, the same on SQLite and PostgreSQL).

Every query aggregates in the database and returns rows bounded by the configuration,
never by the number of cases. The counts per (type, source, state, outcome), per region
code, per piece of the period (periods.py), per hour of report-to-close time, per
mediator and per organisation are sums over the summary `case_counts` (server/cases/
counts.py: one row per combination of what is counted, kept in the transaction of every
case change, migration v0020), not counts over the cases. Read from the cases table
still: what depends on the time of asking (overdue: open past the deadline now; the
follow-ups overdue), each through an index that holds those few cases, and the experts
(from the sessions). `Statistics.compute` rolls them up into the JSON of
`GET /api/statistics` (docs/STATISTICS.md says what each number means). Each query is
also a method of its own so bench/statistics.py can time it alone.

Filters apply to every number alike: the cases the caller's role reads (the admin all,
a coordinator those its organisation holds or coordinates), reported in the period
(local dates, both ends included: local midnights are quarter hours, the summary's
grain), of the type, in the region (and everything below it), held by the organisation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    Table,
    and_,
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
from sqlalchemy.ext.compiler import compiles

from tiaojie.server.cases import counts, staff
from tiaojie.server.cases.actor import CaseActor, StaffRole
from tiaojie.server.cases.model import SOURCE_LABELS, Source
from tiaojie.server.cases.states import FOLLOW_UP_PENDING, LABELS, OPEN_STATES, State
from tiaojie.server.cases.tables import (
    case_counts,
    case_sessions,
    case_settings,
    cases,
    experts,
)
from tiaojie.server.statistics import periods
from tiaojie.server.statistics.regions import RegionTree

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


def region_terms(kind: str, region: str, table: Table = cases) -> list[Any]:
    """A region and everything under it: codes starting with its code, also as a range
    an index can seek (as the queue does, server/cases/store.py)."""
    column = table.c.region_code
    terms = [column.startswith(region, autoescape=True)]
    if kind == "postgresql":
        terms += [column.op("~>=~")(region), column.op("~<~")(region + "~")]
    else:
        terms += [column >= region, column < region + "~"]
    return terms


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
    as SQLite wants it (`FROM cases INDEXED BY ix`). Only `Statistics.indexed` gives
    SQLite hints."""
    compiler.get_from_hint_text = _hint_text
    return str(compiler.visit_select(select, **kw))


def _hint_text(table: Any, text: str | None) -> str | None:
    return text


def _sum(condition: Any) -> Any:
    """The summary's cases meeting `condition` (each row counts `n`)."""
    return func.coalesce(func.sum(case((condition, case_counts.c.n), else_=0)), 0)


@dataclass
class Row:
    """A row of the answer: the summary's sums with the overdue cases added (queries
    used to return database rows with these names; compute and the export read them)."""

    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


class Statistics:
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
        self._overdue: list[Any] | None = None

    # -- the WHERE of every query ----------------------------------------------------------
    def where(self, period: bool = True, table: Table = cases) -> list[Any]:
        """The filters as terms on `table`, the cases or their summary (`period=False`:
        without the period's, for a query that bounds the report time itself). The
        summary's report time is its quarter hour: a period's ends are local midnights,
        quarter hours in every zone, so the same cases are in it."""
        f = self.filters
        t = table.c
        reported = t.quarter if table is case_counts else t.created_at
        terms: list[Any] = []
        if not self.actor.has(StaffRole.ADMIN):
            own = self.actor.organisation_id or ""
            terms.append(or_(t.holder_organisation_id == own, t.coordinator_organisation_id == own))
        if period and f.start is not None:
            terms.append(reported >= periods.day_start(f.start, self.tz))
        if period and f.end is not None:
            terms.append(reported < self.end_ts())
        if f.dispute_type:
            terms.append(t.dispute_type == f.dispute_type)
        if f.region:
            terms += region_terms(self.kind, f.region, table)
        if f.organisation_id:
            terms.append(t.holder_organisation_id == f.organisation_id)
        return terms or [true()]

    def counted(self, period: bool = True) -> list[Any]:
        """The filters on the summary."""
        return self.where(period, case_counts)

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
    async def overdue(self) -> list[Any]:
        """The cases overdue now (open past their deadline) per (type, source, state,
        outcome, mediator, holder), from the cases: "now" moves, the summary does not.
        Few rows: the queue's state index holds the open states' deadlines, so only
        the overdue cases are read. Asked once per `Statistics`."""
        if self._overdue is None:
            query = (
                select(
                    cases.c.dispute_type,
                    cases.c.source,
                    cases.c.state,
                    cases.c.outcome,
                    cases.c.mediator_id,
                    cases.c.holder_organisation_id,
                    func.count().label("n"),
                )
                .where(*self.where(), late(self.now))
                .group_by(
                    cases.c.dispute_type,
                    cases.c.source,
                    cases.c.state,
                    cases.c.outcome,
                    cases.c.mediator_id,
                    cases.c.holder_organisation_id,
                )
                .with_hint(cases, "INDEXED BY ix_cases_queue_state", "sqlite")
            )
            self._overdue = list(await self.conn.execute(query))
        return self._overdue

    async def summary(self) -> list[Any]:
        """(type, source, state, outcome, cases, overdue) per combination."""
        t = case_counts.c
        query = (
            select(t.dispute_type, t.source, t.state, t.outcome, func.sum(t.n).label("n"))
            .where(*self.counted())
            .group_by(t.dispute_type, t.source, t.state, t.outcome)
        )
        rows = {
            (r.dispute_type, r.source, r.state, r.outcome or None): int(r.n)
            for r in await self.conn.execute(query)
        }
        late_ones: Counter[tuple[Any, ...]] = Counter()
        for r in await self.overdue():
            late_ones[(r.dispute_type, r.source, r.state, r.outcome)] += int(r.n)
        return [
            Row(
                {
                    "dispute_type": k[0],
                    "source": k[1],
                    "state": k[2],
                    "outcome": k[3],
                    "n": n,
                    "overdue": late_ones[k],
                }
            )
            for k, n in sorted(rows.items(), key=lambda item: tuple(str(v) for v in item[0]))
            if n
        ]

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
        t = case_counts.c
        query = (
            select(t.region_code, func.sum(t.n).label("n"))
            .where(*self.counted())
            .group_by(t.region_code)
        )
        return list(await self.conn.execute(query))

    async def span(self) -> tuple[int | None, int | None]:
        """The first and last report time's quarter hour (the trend's ends when no period
        is given: the same local days as the report times')."""
        query = select(func.min(case_counts.c.quarter), func.max(case_counts.c.quarter)).where(
            *self.counted()
        )
        row = (await self.conn.execute(query)).one()
        return row[0], row[1]

    async def trend(self) -> tuple[Counter[date], date | None, date | None]:
        """Cases reported per piece of the period (periods.pieces: cut at every month
        and week, so each lies in one of each), keyed by the piece's first day, and the
        trend's first and last days: the period asked for (at most TREND_YEARS, never
        past today), else from the first case reported to today. Each piece is a range
        of quarter hours (its bounds computed in the zone, summer time included) summed
        by a correlated subquery on the summary's key, which its quarter leads: every
        row is read once and nothing is sorted; pieces, not days, because each subquery
        costs SQLite a fraction of a millisecond to start."""
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
        count = select(func.coalesce(func.sum(case_counts.c.n), 0)).where(
            *self.counted(period=False),  # the pieces are the period: one range each
            case_counts.c.quarter >= days_cte.c.starts,
            case_counts.c.quarter < days_cte.c.ends,
        )
        query = select(days_cte.c.starts, count.scalar_subquery().label("n"))
        first_days = {start: day for day, start, _ in cut}
        days: Counter[date] = Counter()
        for row in await self.conn.execute(query):
            if row.n:
                days[first_days[int(row.starts)]] += int(row.n)
        return days, first, last

    async def days_to_close(self) -> dict[str, Any]:
        """Median and p90 of the time from report to final close (已结案), nearest rank
        over whole hours: the summary keeps each case's whole hours to close, so its
        rows are the histogram; the running sum by a window function."""
        t = case_counts.c
        histogram = (
            select(t.close_hours.label("hours"), func.sum(t.n).label("n"))
            .where(*self.counted(), t.close_hours != counts.OPEN_HOURS)
            .group_by(t.close_hours)
            .cte("histogram")
        )
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
        median, p90, total = (await self.conn.execute(query)).one()

        def days(value: Any) -> float | None:
            return None if value is None else round(int(value) / 24, 2)

        return {
            "closed": int(total or 0),
            "median_days": days(median),
            "p90_days": days(p90),
        }

    async def mediators(self, limit: int = LOAD_LIMIT) -> list[Any]:
        t = case_counts.c
        query = (
            select(
                t.mediator_id.label("id"),
                func.sum(t.n).label("total"),
                _sum(t.state.in_(IN_HAND)).label("in_hand"),
                _sum(t.outcome == "success").label("succeeded"),
                _sum(t.outcome == "failure").label("failed"),
            )
            .where(*self.counted(), t.mediator_id != "")
            .group_by(t.mediator_id)
            .order_by(desc("in_hand"), desc("total"), t.mediator_id)
            .limit(limit)
        )
        late_ones: Counter[str] = Counter()
        for r in await self.overdue():
            if r.mediator_id is not None:
                late_ones[r.mediator_id] += int(r.n)
        return [
            Row({**row._asdict(), "overdue": late_ones[row.id]})
            for row in await self.conn.execute(query)
        ]

    async def organisations(self, limit: int = LOAD_LIMIT) -> list[Any]:
        t = case_counts.c
        query = (
            select(
                t.holder_organisation_id.label("id"),
                func.sum(t.n).label("total"),
                _sum(t.state.in_(OPEN)).label("in_hand"),
                _sum(t.outcome == "success").label("succeeded"),
                _sum(t.outcome == "failure").label("failed"),
            )
            .where(*self.counted())
            .group_by(t.holder_organisation_id)
            .order_by(desc("in_hand"), desc("total"), t.holder_organisation_id)
            .limit(limit)
        )
        late_ones: Counter[str] = Counter()
        for r in await self.overdue():
            late_ones[r.holder_organisation_id] += int(r.n)
        return [
            Row({**row._asdict(), "overdue": late_ones[row.id]})
            for row in await self.conn.execute(query)
        ]

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
