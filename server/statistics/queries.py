"""The dashboard's statistics, read from the summaries where they hold the answer.

The summaries (server/cases/tables.py SUMMARIES, kept in the transaction of every case
change by server/cases/counts.py, migration v0020) answer without reading the cases:
- `case_counts` (the region code's first six characters, type, source, state, outcome,
  holder, coordinator, mediator): the counts per type, source, state and outcome, the
  mediators' and organisations' loads, for a district too;
- `case_region_counts` (region, type, holder, coordinator): the region drill-down;
- `case_close_counts` (whole hours to close, type, holder, coordinator): median, p90;
- `case_hour_counts` (cases per hour reported): the trend of all cases, any period;
- `case_session_experts`: the experts most used, with every filter.
Each holds no finer report time than the hour: the combinations of a day's cases are
nearly as many as the cases, so a summary by day would hold nearly a row per case. A
question the summary cannot answer (a period for the counts, loads and days to close;
a region for those; a filter for the trend) is asked of the cases themselves by
direct.py's `DirectStatistics` (the queries before v0020, one covering index each),
where the filter itself narrows what is read. Overdue (open past the deadline *now*)
and the follow-ups overdue are always counted in the cases, through indexes that hold
those few. Every figure equals direct.py's (tests/test_statistics_summary.py).

Filters apply to every number alike: the cases the caller's role reads (the admin all,
a coordinator those its organisation holds or coordinates), reported in the period
(local dates, both ends included), of the type, in the region (and everything below
it), held by the organisation. Each query is a method of its own so bench/statistics.py
can time it alone.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
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

from tiaojie.server.cases.actor import StaffRole
from tiaojie.server.cases.tables import (
    REGION_PREFIX,
    case_close_counts,
    case_counts,
    case_hour_counts,
    case_region_counts,
    case_session_experts,
    cases,
    experts,
)
from tiaojie.server.statistics import periods
from tiaojie.server.statistics.direct import DirectStatistics
from tiaojie.server.statistics.terms import (
    EXPERT_LIMIT,
    HOUR,
    IN_HAND,
    LOAD_LIMIT,
    OPEN,
    TREND_YEARS,
    Filter,
    close_percentiles,
    late,
    may_see,
    region_terms,
)

__all__ = ["Filter", "Statistics", "late", "may_see"]


@dataclass
class Row:
    """A row of the answer: a summary's sums with the overdue cases added (the direct
    queries return database rows with these names; compute and the export read them)."""

    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def _sum(table: Table, condition: Any) -> Any:
    """The summary's cases meeting `condition` (each row counts `n`)."""
    return func.coalesce(func.sum(case((condition, table.c.n), else_=0)), 0)


class Statistics(DirectStatistics):
    """The statistics of one filter, for one actor, at `now`, on one connection: from
    the summaries where they hold the answer (module docstring), else from the cases."""

    _overdue: list[Any] | None = None
    _hours_exact: bool = True
    _held_only: bool = False
    trend_path: str = ""

    # -- which summary answers -------------------------------------------------------------
    def unbounded(self) -> bool:
        """No period asked for: the summaries without a report time hold the answer."""
        return self.filters.start is None and self.filters.end is None

    def plain(self, prefixed: bool = False) -> bool:
        """No period and no region: `case_counts` and `case_close_counts` answer;
        `prefixed`: `case_counts`, which also answers a region no longer than its
        `region_prefix` (a district)."""
        region = self.filters.region
        short = prefixed and region is not None and len(region) <= REGION_PREFIX
        return self.unbounded() and (not region or short)

    def every_case(self) -> bool:
        """No filter but (maybe) the period, and the admin's view: `case_hour_counts`."""
        f = self.filters
        return (
            self.actor.has(StaffRole.ADMIN)
            and not (f.region or f.dispute_type or f.organisation_id)
            and self._hours_exact
        )

    def summed(self, table: Table) -> list[Any]:
        """The filters (no period) on a summary that has the columns they name."""
        f = self.filters
        t = table.c
        terms: list[Any] = []
        if not self.actor.has(StaffRole.ADMIN):
            own = self.actor.organisation_id or ""
            terms.append(or_(t.holder_organisation_id == own, t.coordinator_organisation_id == own))
        if f.dispute_type:
            terms.append(t.dispute_type == f.dispute_type)
        if f.region:
            name = "region_prefix" if table is case_counts else "region_code"
            terms += region_terms(self.kind, f.region, table, name)
        if f.organisation_id:
            terms.append(t.holder_organisation_id == f.organisation_id)
        return terms or [true()]

    def where(self, period: bool = True, table: Table = cases) -> list[Any]:
        """As DirectStatistics.where; a coordinator's scope (held OR coordinated by its
        organisation) is "held by" alone once `held_only` found that the organisation
        coordinates no case it does not hold: the holder's index then reads its cases."""
        terms = super().where(period, table)
        if self._held_only:
            own = self.actor.organisation_id or ""
            terms[0] = table.c.holder_organisation_id == own
        return terms

    async def held_only(self) -> None:
        """Whether the coordinator's organisation coordinates only cases it holds (a
        district centre coordinating what it dispatched does not; a street's committee
        seeing the cases dispatched to it does), from `case_counts`."""
        if self.actor.has(StaffRole.ADMIN):
            return
        own = self.actor.organisation_id or ""
        t = case_counts.c
        query = select(t.n).where(
            t.coordinator_organisation_id == own, t.holder_organisation_id != own
        )
        self._held_only = (await self.conn.execute(query.limit(1))).first() is None

    def indexed(self, query: Select[Any], own: str) -> Select[Any]:
        """As DirectStatistics.indexed, and a region's entries alone when a region is
        asked without an organisation (SQLite; the region's index covers every column
        since v0020): a district is a quarter of the cases, a street a twentieth."""
        f = self.filters
        if self.kind == "sqlite" and f.region and not f.organisation_id:
            return query.with_hint(cases, "INDEXED BY ix_cases_statistics_region", "sqlite")
        return super().indexed(query, own)

    # -- the queries -----------------------------------------------------------------------
    async def overdue(self) -> list[Any]:
        """The cases overdue now (open past their deadline) per (type, source, state,
        outcome, mediator, holder), from the cases: "now" moves, a summary does not.
        Few rows: the queue's state index holds the open states' deadlines and (since
        v0020) every column asked here, so only the overdue cases' entries are read.
        Asked once per `Statistics`."""
        if self._overdue is None:
            grouped = (
                cases.c.dispute_type,
                cases.c.source,
                cases.c.state,
                cases.c.outcome,
                cases.c.mediator_id,
                cases.c.holder_organisation_id,
            )
            query = (
                select(*grouped, func.count().label("n"))
                .where(*self.where(), late(self.now))
                .group_by(*grouped)
                .with_hint(cases, "INDEXED BY ix_cases_queue_state", "sqlite")
            )
            self._overdue = list(await self.conn.execute(query))
        return self._overdue

    async def summary(self) -> list[Any]:
        """(type, source, state, outcome, cases, overdue) per combination."""
        if not self.plain(prefixed=True):
            return await super().summary()
        t = case_counts.c
        query = (
            select(t.dispute_type, t.source, t.state, t.outcome, func.sum(t.n).label("n"))
            .where(*self.summed(case_counts))
            .group_by(t.dispute_type, t.source, t.state, t.outcome)
        )
        late_ones: Counter[tuple[Any, ...]] = Counter()
        for r in await self.overdue():
            late_ones[(r.dispute_type, r.source, r.state, r.outcome)] += int(r.n)
        names = ("dispute_type", "source", "state", "outcome")
        found = []
        for r in await self.conn.execute(query):
            key = (r.dispute_type, r.source, r.state, r.outcome or None)
            row = dict(zip(names, key, strict=True))
            found.append(Row({**row, "n": int(r.n), "overdue": late_ones[key]}))
        return found

    async def by_region_code(self) -> list[Any]:
        if not self.unbounded():
            return await super().by_region_code()
        t = case_region_counts.c
        query = (
            select(t.region_code, func.sum(t.n).label("n"))
            .where(*self.summed(case_region_counts))
            .group_by(t.region_code)
        )
        return list(await self.conn.execute(query))

    async def span(self) -> tuple[int | None, int | None]:
        """The first and last report time's hour (the same local days as the times'
        in a zone whose midnights are whole hours: trend checks)."""
        if not self.every_case():
            return await super().span()
        t = case_hour_counts.c
        query = select(func.min(t.hour), func.max(t.hour))
        if self.filters.start is not None:
            query = query.where(t.hour >= periods.day_start(self.filters.start, self.tz))
        if self.filters.end is not None:
            query = query.where(t.hour < self.end_ts())
        row = (await self.conn.execute(query)).one()
        return row[0], row[1]

    async def trend(self) -> tuple[Counter[date], date | None, date | None]:
        """As DirectStatistics.trend: from the hours when every case counts (the
        admin's, unfiltered but for the period), else per local day from the filtered
        cases, else (summer time within the trend) per piece as DirectStatistics does;
        `trend_path` says which answered."""
        if self.every_case():
            found = await self.trend_by_hour()
            if found is not None:
                self.trend_path = "hours"
                return found
        found = await self.trend_by_day()
        if found is not None:
            self.trend_path = "days"
            return found
        self.trend_path = "pieces"
        return await super().trend()

    async def trend_by_hour(self) -> tuple[Counter[date], date | None, date | None] | None:
        """All cases summed per piece from `case_hour_counts`, when every bound of a
        piece is a whole hour (every zone's midnight but those a half or quarter hour
        off UTC: then None)."""
        lo, hi = await self.span()
        if lo is None or hi is None:
            return Counter(), None, None
        f = self.filters
        last = min(f.end or date.max, periods.local_day(max(self.now, int(hi)), self.tz))
        first = f.start or periods.local_day(int(lo), self.tz)
        if last < date(1990, 1, 1):
            return Counter(), None, None
        first = max(first, last - timedelta(days=366 * TREND_YEARS), date(1970, 1, 2))
        if first > last:
            return Counter(), None, None
        cut = periods.pieces(first, last, self.tz)
        if any(start % HOUR or end % HOUR for _, start, end in cut):
            self._hours_exact = False  # the cases answer, span included
            return None
        pieces = (
            values(column("starts", BigInteger), column("ends", BigInteger), name="pieces")
            .data([(start, end) for _, start, end in cut])
            .cte("pieces")
        )
        t = case_hour_counts.c
        count = select(func.coalesce(func.sum(t.n), 0)).where(
            t.hour >= pieces.c.starts, t.hour < pieces.c.ends
        )
        query = select(pieces.c.starts, count.scalar_subquery().label("n"))
        first_days = {start: day for day, start, _ in cut}
        days: Counter[date] = Counter()
        for row in await self.conn.execute(query):
            if row.n:
                days[first_days[int(row.starts)]] += int(row.n)
        return days, first, last

    async def trend_by_day(self) -> tuple[Counter[date], date | None, date | None] | None:
        """A filtered trend from the cases: the filtered cases counted per local day
        (`(created_at + offset) / 86400`, the zone's offset now) through the index their
        filter narrows (an organisation's, a region's, a type's entries), where
        DirectStatistics.trend reads every report time of the period, filtered or not;
        the first and last day from the same rows (no query for the span). None when
        the offset is not one over the whole trend (summer time in it; China has none)."""
        f = self.filters
        await self.held_only()
        offset = periods.offset(self.now, self.tz)
        day = ((cases.c.created_at + offset) // periods.DAY).label("day")
        query = select(day, func.count().label("n")).where(*self.where()).group_by(day)
        own = "ix_cases_statistics_type" if f.dispute_type else "ix_cases_statistics_holder"
        epoch = date(1970, 1, 1)
        counted = {
            epoch + timedelta(days=int(row.day)): int(row.n)
            for row in await self.conn.execute(self.indexed(query, own))
        }
        if not counted:
            return Counter(), None, None
        today = periods.local_day(self.now, self.tz)
        last = min(f.end or date.max, max(today, max(counted)))
        first = f.start or min(counted)
        if last < date(1990, 1, 1):
            return Counter(), None, None
        first = max(first, last - timedelta(days=366 * TREND_YEARS), date(1970, 1, 2))
        if first > last:
            return Counter(), None, None
        cut = periods.pieces(first, last, self.tz)
        bounds = [start for _, start, _ in cut] + [end - 1 for _, _, end in cut]
        if any(periods.offset(ts, self.tz) != offset for ts in bounds):
            return None
        starts = [piece for piece, _, _ in cut]
        days: Counter[date] = Counter()
        for local, n in counted.items():
            if first <= local <= last:
                days[starts[bisect.bisect_right(starts, local) - 1]] += n
        return days, first, last

    async def days_to_close(self) -> dict[str, Any]:
        """As DirectStatistics.days_to_close, the histogram from `case_close_counts`."""
        if not self.plain():
            return await super().days_to_close()
        t = case_close_counts.c
        histogram = (
            select(t.close_hours.label("hours"), func.sum(t.n).label("n"))
            .where(*self.summed(case_close_counts))
            .group_by(t.close_hours)
            .cte("histogram")
        )
        return await close_percentiles(self.conn, histogram)

    async def _load(self, grouped: Any, in_hand: Any, limit: int, *terms: Any) -> list[Any]:
        """A load table from `case_counts` (grouped by a mediator or the holder), with
        the overdue cases of each row added; ordered as DirectStatistics orders it."""
        t = case_counts.c
        query = (
            select(
                grouped.label("id"),
                func.sum(t.n).label("total"),
                _sum(case_counts, in_hand).label("in_hand"),
                _sum(case_counts, t.outcome == "success").label("succeeded"),
                _sum(case_counts, t.outcome == "failure").label("failed"),
            )
            .where(*self.summed(case_counts), *terms)
            .group_by(grouped)
            .order_by(desc("in_hand"), desc("total"), grouped)
            .limit(limit)
        )
        key = "mediator_id" if grouped is t.mediator_id else "holder_organisation_id"
        late_ones: Counter[str] = Counter()
        for r in await self.overdue():
            if getattr(r, key) is not None:
                late_ones[getattr(r, key)] += int(r.n)
        result = await self.conn.execute(query)
        names = list(result.keys())
        return [
            Row({**dict(zip(names, row, strict=True)), "overdue": late_ones[row.id]})
            for row in result
        ]

    async def mediators(self, limit: int = LOAD_LIMIT) -> list[Any]:
        if not self.plain(prefixed=True):
            return await super().mediators(limit)
        t = case_counts.c
        return await self._load(t.mediator_id, t.state.in_(IN_HAND), limit, t.mediator_id != "")

    async def organisations(self, limit: int = LOAD_LIMIT) -> list[Any]:
        if not self.plain(prefixed=True):
            return await super().organisations(limit)
        t = case_counts.c
        return await self._load(t.holder_organisation_id, t.state.in_(OPEN), limit)

    async def experts(self, limit: int = EXPERT_LIMIT) -> list[Any]:
        """The experts invited to the most sessions of the filtered cases, from each
        session's expert invites with its case's filters (`case_session_experts`):
        every filter, no JSON read."""
        t = case_session_experts.c
        used = (
            select(t.expert_id.label("expert_id"), func.count().label("sessions"))
            .where(*self.where(table=case_session_experts))
            .group_by(t.expert_id)
            .subquery("used")
        )
        query = (
            select(used, experts.c.name, experts.c.organisation)
            .select_from(used.outerjoin(experts, experts.c.id == used.c.expert_id))
            .order_by(desc(used.c.sessions), used.c.expert_id)
            .limit(limit)
        )
        return list(await self.conn.execute(query))
