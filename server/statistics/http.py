"""The statistics' routes (docs/STATISTICS.md): `GET /api/statistics`, its exports
`/api/statistics/export.csv` (`?table=`, default the cases) and `.xlsx`, and the page
`/statistics`. Coordinators and the admin only (403 for other staff, as the staff API
refuses a role: the token check is the cases' `Actors`); a coordinator counts the cases
its organisation holds or coordinates.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import date
from typing import Any

from aiohttp import web

from tiaojie.server.cases import regions, taxonomy
from tiaojie.server.cases.actor import CaseActor
from tiaojie.server.cases.service import Cases
from tiaojie.server.cases.store import guarded
from tiaojie.server.errors import bad_request, forbidden
from tiaojie.server.http_auth import json_response
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.statistics import export
from tiaojie.server.statistics.queries import Filter, Statistics, may_see
from tiaojie.server.statistics.regions import RegionTree
from tiaojie.server.web import NO_STORE

DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
#: The load tables and experts in an export (the JSON has the first 20 and 10).
EXPORT_LIMIT = 1000


def _param(request: web.Request, name: str, pattern: str) -> str | None:
    value = request.query.get(name)
    if value is not None and not re.fullmatch(pattern, value):
        raise bad_request(f"{name} has an invalid format.")
    return value or None


def _date(request: web.Request, name: str) -> date | None:
    value = _param(request, name, DATE_PATTERN)
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{name} is not a date (YYYY-MM-DD).") from None
    return day


def parse_filter(request: web.Request) -> Filter:
    start, end = _date(request, "from"), _date(request, "to")
    if start and end and start > end:
        raise bad_request("from must not be after to.")
    return Filter(
        start=start,
        end=end,
        region=_param(request, "region", regions.CODE_PATTERN),
        dispute_type=_param(request, "type", taxonomy.CODE_PATTERN),
        organisation_id=_param(request, "organisation", ID_PATTERN),
    )


def _attachment(kind: str, filters: Filter) -> dict[str, str]:
    name = "statistics-" + "-".join([v for v in filters.query().values()] or ["all"])
    name = re.sub(r"[^0-9A-Za-z_-]", "_", name)[:120]
    return {**NO_STORE, "Content-Disposition": f'attachment; filename="{name}.{kind}"'}


class StatisticsRoutes:
    def __init__(self, cases: Cases) -> None:
        self.cases = cases

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/statistics", self.statistics)
        r.add_get("/api/statistics/export.csv", self.export_csv)
        r.add_get("/api/statistics/export.xlsx", self.export_xlsx)

    def _actor(self, request: web.Request) -> CaseActor:
        actor = self.cases.actors.staff(request)
        if not may_see(actor):
            raise forbidden("Only coordinators and the admin may see the statistics.")
        return actor

    async def _compute(
        self, stats: Statistics, load_limit: int | None = None, expert_limit: int | None = None
    ) -> dict[str, Any]:
        config = await self.cases.store.config(stats.conn)
        return await stats.compute(
            RegionTree(config.regions), config.dispute_types, load_limit, expert_limit
        )

    async def statistics(self, request: web.Request) -> web.Response:
        actor = self._actor(request)
        filters = parse_filter(request)
        with guarded():
            async with self.cases.database.read() as conn:
                stats = Statistics(conn, actor, filters, self.cases.tz, int(time.time()))
                body = await self._compute(stats)
        return json_response(body, headers=NO_STORE)

    async def export_csv(self, request: web.Request) -> web.StreamResponse:
        actor = self._actor(request)
        filters = parse_filter(request)
        table = request.query.get("table", "cases")
        if table not in export.TABLE_NAMES:
            raise bad_request(f"table must be one of {', '.join(export.TABLE_NAMES)}.")
        headers = {**_attachment("csv", filters), "Content-Type": "text/csv; charset=utf-8"}
        with guarded():
            async with self.cases.database.read() as conn:
                stats = Statistics(conn, actor, filters, self.cases.tz, int(time.time()))
                if table != "cases":
                    body = await self._compute(stats, EXPORT_LIMIT, EXPORT_LIMIT)
                    chosen = next(t for t in export.tables(body) if t.name == table)
                    text = export.csv_text(chosen.headers, chosen.rows, first=True)
                    return web.Response(body=text.encode("utf-8"), headers=headers)
                response = web.StreamResponse(headers=headers)
                await response.prepare(request)
                await response.write(export.csv_text(export.CASE_HEADERS, [], True).encode())
                async for rows in export.case_rows(stats):
                    await response.write(export.csv_text([], rows, first=False).encode("utf-8"))
                await response.write_eof()
                return response

    async def export_xlsx(self, request: web.Request) -> web.Response:
        actor = self._actor(request)
        filters = parse_filter(request)
        with guarded():
            async with self.cases.database.read() as conn:
                stats = Statistics(conn, actor, filters, self.cases.tz, int(time.time()))
                body = await self._compute(stats, EXPORT_LIMIT, EXPORT_LIMIT)
                listed: list[list[Any]] = []
                async for rows in export.case_rows(stats, export.XLSX_CASES + 1):
                    listed += rows
        truncated = len(listed) > export.XLSX_CASES
        data = await asyncio.to_thread(
            export.xlsx_bytes, export.tables(body), listed[: export.XLSX_CASES], truncated
        )
        headers = {
            **_attachment("xlsx", filters),
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
        return web.Response(body=data, headers=headers)
