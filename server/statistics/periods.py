"""Periods in the installation's time zone (`--timezone`, tiaojie.archive.localtime): the
filter's dates as Unix seconds, the period cut into pieces that each lie in one month and
one ISO week (Monday first; the database counts the cases reported in each), and the
pieces summed into months and weeks.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DAY = 86400


def day_start(day: date, tz: tzinfo) -> int:
    """Unix seconds of local midnight starting `day`."""
    return int(datetime.combine(day, time(), tz).timestamp())


def offset(ts: int, tz: tzinfo) -> int:
    """The zone's offset from UTC at `ts`, in seconds."""
    found = datetime.fromtimestamp(ts, UTC).astimezone(tz).utcoffset()
    return int(found.total_seconds()) if found is not None else 0


def local_day(ts: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(ts, UTC).astimezone(tz).date()


def pieces(first: date, last: date, tz: tzinfo) -> list[tuple[date, int, int]]:
    """The days from `first` to `last` cut at every month and every week (Monday): each
    piece lies in one month and one ISO week; (its first day, [start, end) in Unix
    seconds, local midnights: summer time included)."""
    cuts = {first, last + timedelta(days=1)}
    day = first
    while day <= last:
        if day.day == 1 or day.weekday() == 0:
            cuts.add(day)
        day += timedelta(days=1)
    ordered = sorted(cuts)
    return [(a, day_start(a, tz), day_start(b, tz)) for a, b in itertools.pairwise(ordered)]


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
    reported), from counts keyed by a day (a piece's first day) of their month and week."""
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
