"""The OpenAPI description of the statistics' routes (merged into /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from tiaojie.server.cases import regions, taxonomy
from tiaojie.server.openapi_parts import operation
from tiaojie.server.schemas import ID_PATTERN
from tiaojie.server.statistics.export import TABLE_NAMES
from tiaojie.server.validation import Schema

WHO = "coordinators (their organisation's cases) and the admin; other staff 403"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


DATE: Schema = {"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
FILTERS = [
    _query("from", DATE, "first day reported, in the server's time zone (included)"),
    _query("to", DATE, "last day reported, in the server's time zone (included)"),
    _query(
        "region",
        {"type": "string", "pattern": f"^{regions.CODE_PATTERN}$"},
        "a region code: that region and everything below it; the region counts are then "
        "of its children (drill-down)",
    ),
    _query("type", {"type": "string", "pattern": f"^{taxonomy.CODE_PATTERN}$"}, "dispute type"),
    _query(
        "organisation",
        {"type": "string", "pattern": f"^{ID_PATTERN}$"},
        "the organisation holding the cases",
    ),
]
_COUNT: Schema = {"type": "integer", "minimum": 0}
_NAMED: Schema = {
    "type": "object",
    "properties": {"code": {"type": "string"}, "name": {"type": "string"}, "count": _COUNT},
    "required": ["code", "name", "count"],
}
_LOAD: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "total": _COUNT,
        "in_hand": _COUNT,
        "overdue": _COUNT,
        "succeeded": _COUNT,
        "failed": _COUNT,
    },
    "required": ["id", "name", "total", "in_hand", "overdue", "succeeded", "failed"],
}
_DAYS: Schema = {"type": ["number", "null"], "minimum": 0}
STATISTICS: Schema = {
    "type": "object",
    "properties": {
        "filters": {"type": "object"},
        "timezone": {"type": "string"},
        "generated_at": {"type": "integer"},
        "total": _COUNT,
        "overdue": _COUNT,
        "follow_up_overdue": {
            **_COUNT,
            "description": "closed with an outcome, past the follow-up's (回访) due day",
        },
        "success_rate": {
            "type": "object",
            "description": "rate = succeeded / (succeeded + failed); null with none",
            "properties": {
                "succeeded": _COUNT,
                "failed": _COUNT,
                "withdrawn": _COUNT,
                "concluded": _COUNT,
                "rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            },
            "required": ["succeeded", "failed", "withdrawn", "concluded", "rate"],
        },
        "days_to_close": {
            "type": "object",
            "description": "report to final close (已结案), nearest rank over whole hours",
            "properties": {"closed": _COUNT, "median_days": _DAYS, "p90_days": _DAYS},
            "required": ["closed", "median_days", "p90_days"],
        },
        "by_type": {"type": "array", "items": _NAMED},
        "by_region": {
            "type": "object",
            "properties": {
                "path": {"type": "array", "items": {"type": "object"}},
                "level": {"type": ["string", "null"]},
                "items": {"type": "array", "items": _NAMED},
                "elsewhere": _COUNT,
            },
            "required": ["path", "level", "items", "elsewhere"],
        },
        "by_source": {"type": "array", "items": _NAMED},
        "by_state": {"type": "array", "items": _NAMED},
        "monthly": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"month": {"type": "string"}, "count": _COUNT},
                "required": ["month", "count"],
            },
        },
        "weekly": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "week": {"type": "string"},
                    "starts": {"type": "string"},
                    "count": _COUNT,
                },
                "required": ["week", "starts", "count"],
            },
        },
        "mediators": {"type": "array", "items": _LOAD},
        "organisations": {"type": "array", "items": _LOAD},
        "experts": {"type": "array", "items": {"type": "object"}},
    },
    "required": [
        "filters",
        "timezone",
        "total",
        "overdue",
        "follow_up_overdue",
        "success_rate",
        "days_to_close",
        "by_type",
        "by_region",
        "by_source",
        "by_state",
        "monthly",
        "weekly",
        "mediators",
        "organisations",
        "experts",
    ],
}


def paths() -> dict[str, Any]:
    errors = (400, 401, 403, 503)
    table = _query(
        "table",
        {"type": "string", "enum": TABLE_NAMES},
        "which table: the filtered cases (default) or one statistic",
    )
    return {
        "/api/statistics": {
            "get": operation(
                f"Statistics of the cases ({WHO}): counts by type, region, source and state, "
                "the monthly and weekly trends, the success rate, the days from report to "
                "close, overdue cases, the mediators' and organisations' load, the experts "
                "most used (400: a date that is no date, or from after to)",
                200,
                STATISTICS,
                *errors,
                parameters=FILTERS,
            )
        },
        "/api/statistics/export.csv": {
            "get": operation(
                f"One table of the statistics as CSV, Chinese headers, UTF-8 with a BOM ({WHO})",
                200,
                {"type": "string"},
                *errors,
                content="text/csv",
                parameters=[*FILTERS, table],
            )
        },
        "/api/statistics/export.xlsx": {
            "get": operation(
                f"The statistics as an XLSX workbook, a sheet per statistic and the "
                f"filtered cases ({WHO})",
                200,
                {"type": "string", "format": "binary"},
                *errors,
                content=XLSX,
                parameters=FILTERS,
            )
        },
    }
