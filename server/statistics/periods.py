"""Periods in the installation's time zone (`--timezone`, tiaojie.archive.localtime): the
filter's dates as Unix seconds, each local day's bounds (the database counts the cases
reported in each), and the days rolled up into months and ISO weeks (Monday first).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DAY = 86400


def day_start(day: date, tz: tzinfo) -> int:
    """Unix seconds of local midnight starting `day`."""
    return int(datetime.combine(day, time(), tz).timestamp())


def local_day(ts: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(ts, UTC).astimezone(tz).date()


def day_bounds(first: date, last: date, tz: tzinfo) -> list[tuple[int, int]]:
    """Each local day from `first` to `last` as [start, end) in Unix seconds (a day of
    a summer-time change is 23 or 25 hours long)."""
    bounds = []
    day = first
    start = day_start(day, tz)
    while day <= last:
        end = day_start(day + timedelta(days=1), tz)
        bounds.append((start, end))
        day, start = day + timedelta(days=1), end
    return bounds


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def week_key(day: date) -> str:
    """The ISO week, `2026-W05` (Monday first; a week belongs to the year of its Thursday)."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def rollup(per_day: Counter[date], first: date | None, last: date | None) -> dict[str, list]:
    """Months and weeks from `first` to `last` (each present, with 0 when nothing was
    reported), from the counts per local day."""
    if first is None or last is None:
        return {"monthly": [], "weekly": []}
    months: dict[str, int] = {}
    month = date(first.year, first.month, 1)
    while month <= last:
        months[month_key(month)] = 0
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    weeks: dict[str, tuple[date, int]] = {}
    monday = week_monday(first)
    while monday <= last:
        weeks[week_key(monday)] = (monday, 0)
        monday += timedelta(days=7)
    for day, count in per_day.items():
        months[month_key(day)] = months.get(month_key(day), 0) + count
        key = week_key(day)
        start, total = weeks.get(key, (week_monday(day), 0))
        weeks[key] = (start, total + count)
    return {
        "monthly": [{"month": k, "count": v} for k, v in sorted(months.items())],
        "weekly": [
            {"week": k, "starts": start.isoformat(), "count": v}
            for k, (start, v) in sorted(weeks.items())
        ],
    }
