"""The statistics as tables with Chinese headers, for `GET /api/statistics/export.csv`
(one table, `?table=`, UTF-8 with a byte order mark so Excel reads the Chinese) and
`.xlsx` (one sheet per statistic, then the filtered cases).

The cases list holds what a statistician needs and no personal data: the number, type,
region, source, state, outcome, who holds it, the dates in the installation's zone and
whether it is overdue; never a party's name, phone, ID number or the description. It is
read from the database in batches (the CSV streams all of them; the XLSX, held in memory
while it is written, stops at XLSX_CASES rows and says so on its last row).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts import directory
from tiaojie.server.cases.model import SOURCE_LABELS, Source
from tiaojie.server.cases.states import LABELS, State
from tiaojie.server.cases.tables import cases
from tiaojie.server.statistics.queries import Statistics, late

BOM = "\ufeff"
XLSX_CASES = 100_000
BATCH = 2000
OUTCOMES = {"success": "调解成功", "failure": "调解不成功", "withdrawn": "已撤回"}
CASE_HEADERS = [
    "案件编号",
    "纠纷类型",
    "区域",
    "来源",
    "状态",
    "调解结果",
    "承办机构",
    "调解员",
    "登记时间",
    "受理时间",
    "办理期限",
    "结案时间",
    "是否超期",
]


@dataclass(frozen=True)
class Table:
    """One statistic as rows: `name` in URLs (`?table=`), `title` the sheet's name."""

    name: str
    title: str
    headers: list[str]
    rows: list[list[Any]]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def tables(stats: dict[str, Any]) -> list[Table]:
    """The statistics of `GET /api/statistics` (its JSON) as tables."""
    rate, close = stats["success_rate"], stats["days_to_close"]
    f = stats["filters"]
    overview = [
        ["统计期间", f"{f.get('from', '最早')} 至 {f.get('to', '最近')}"],
        ["区域", f.get("region", "全部")],
        ["纠纷类型", f.get("type", "全部")],
        ["承办机构", f.get("organisation", "全部")],
        ["时区", stats["timezone"]],
        ["案件总数", stats["total"]],
        ["超期案件", stats["overdue"]],
        ["回访逾期", stats["follow_up_overdue"]],
        ["调解成功", rate["succeeded"]],
        ["调解不成功", rate["failed"]],
        ["已撤回", rate["withdrawn"]],
        ["调解成功率（成功 / 调解结束）", _pct(rate["rate"])],
        ["已结案件", close["closed"]],
        ["登记至结案天数中位数", close["median_days"]],
        ["登记至结案天数第 90 百分位", close["p90_days"]],
    ]
    region = stats["by_region"]
    load = ["名称", "案件数", "在办", "超期", "调解成功", "调解不成功"]

    def loads(rows: list[dict[str, Any]]) -> list[list[Any]]:
        return [
            [r["name"], r["total"], r["in_hand"], r["overdue"], r["succeeded"], r["failed"]]
            for r in rows
        ]

    return [
        Table("overview", "概览", ["项目", "数值"], overview),
        Table(
            "by_type",
            "按纠纷类型",
            ["纠纷类型", "代码", "案件数", "调解成功", "调解不成功"],
            [
                [t["name"], t["code"], t["count"], t["succeeded"], t["failed"]]
                for t in stats["by_type"]
            ],
        ),
        Table(
            "by_region",
            "按区域",
            ["区域", "代码", "案件数"],
            [[r["name"], r["code"], r["count"]] for r in region["items"]]
            + ([["本级或其他", "", region["elsewhere"]]] if region["elsewhere"] else []),
        ),
        Table(
            "by_source",
            "按来源",
            ["来源", "代码", "案件数"],
            [[s["name"], s["code"], s["count"]] for s in stats["by_source"]],
        ),
        Table(
            "by_state",
            "按状态",
            ["状态", "代码", "案件数"],
            [[s["name"], s["code"], s["count"]] for s in stats["by_state"]],
        ),
        Table(
            "monthly",
            "月度趋势",
            ["月份", "登记案件数"],
            [[m["month"], m["count"]] for m in stats["monthly"]],
        ),
        Table(
            "weekly",
            "每周趋势",
            ["周", "起始日", "登记案件数"],
            [[w["week"], w["starts"], w["count"]] for w in stats["weekly"]],
        ),
        Table("mediators", "调解员工作量", ["调解员", *load[1:]], loads(stats["mediators"])),
        Table("organisations", "机构工作量", ["机构", *load[1:]], loads(stats["organisations"])),
        Table(
            "experts",
            "常用专家",
            ["专家", "所在单位", "参加调解次数"],
            [[e["name"], e["organisation"], e["sessions"]] for e in stats["experts"]],
        ),
    ]


#: What `?table=` may name (the cases, or one of `tables`).
TABLE_NAMES = [
    "cases",
    "overview",
    "by_type",
    "by_region",
    "by_source",
    "by_state",
    "monthly",
    "weekly",
    "mediators",
    "organisations",
    "experts",
]


def _time(ts: int | None, tz: tzinfo) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M")


async def case_rows(stats: Statistics, limit: int | None = None) -> AsyncIterator[list[list[Any]]]:
    """The filtered cases, oldest first, in batches of rows under CASE_HEADERS."""
    overdue = late(stats.now).label("late")
    query = (
        select(
            cases.c.number,
            cases.c.dispute_type_name,
            cases.c.region,
            cases.c.source,
            cases.c.state,
            cases.c.outcome,
            cases.c.holder_organisation_id,
            cases.c.mediator_id,
            cases.c.created_at,
            cases.c.accepted_at,
            cases.c.deadline_at,
            cases.c.closed_at,
            overdue,
        )
        .where(*stats.where())
        .order_by(cases.c.created_at, cases.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    conn: AsyncConnection = stats.conn
    names = await _all_names(conn)
    result = await conn.stream(query)
    async for batch in result.partitions(BATCH):
        yield [
            [
                r.number,
                r.dispute_type_name,
                " / ".join(p.get("name", "") for p in r.region or []),
                SOURCE_LABELS.get(Source(r.source), r.source),
                LABELS["zh-CN"].get(State(r.state), r.state),
                OUTCOMES.get(r.outcome or "", ""),
                names.get(r.holder_organisation_id, r.holder_organisation_id),
                names.get(r.mediator_id, r.mediator_id or "") if r.mediator_id else "",
                _time(r.created_at, stats.tz),
                _time(r.accepted_at, stats.tz),
                _time(r.deadline_at, stats.tz),
                _time(r.closed_at, stats.tz),
                "是" if r.late else "否",
            ]
            for r in batch
        ]


async def _all_names(conn: AsyncConnection) -> dict[str, str]:
    """Every organisation's and account's name (a few thousand at most), read before
    the cases' cursor opens: no other query runs while it streams."""
    found = {o.id: o.name for o in await directory.all_organisations(conn)}
    found.update({a.id: a.name for a in await directory.all_accounts(conn)})
    return found


def csv_text(headers: list[str], rows: list[list[Any]], first: bool) -> str:
    """Rows as CSV (CRLF, as Excel writes it); the BOM and headers before the first."""
    out = io.StringIO()
    writer = csv.writer(out)
    if first:
        out.write(BOM)
        writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def xlsx_bytes(sheets: list[Table], case_list: list[list[Any]], truncated: bool) -> bytes:
    """One sheet per statistic, then 案件清单 (the cases); a write-only workbook."""
    from openpyxl import Workbook  # imported when used: the server starts without it loaded

    book = Workbook(write_only=True)
    for table in [*sheets, Table("cases", "案件清单", CASE_HEADERS, case_list)]:
        sheet = book.create_sheet(table.title)
        sheet.append(table.headers)
        for row in table.rows:
            sheet.append(row)
        if table.name == "cases" and truncated:
            sheet.append([f"（只列出前 {XLSX_CASES} 件；全部案件请导出 CSV）"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
