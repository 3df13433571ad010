"""Periods in the installation's time zone (`--timezone`, tiaojie.archive.localtime): the
filter's dates as Unix seconds, and how the database groups report times into days.

The database groups by day as `(created_at + offset) // 86400` when the zone's offset is
the same all through the period (Asia/Shanghai has had no summer time since 1991: one
day bucket per local day); a zone whose offset changes within it (summer time) is
grouped by quarter hour instead, every zone's offset being a multiple of 15 minutes,
and each quarter hour is placed in its local day here. Either way the database returns
at most a row per day or quarter hour, never a row per case; `Days` rolls them up into
months and weeks (ISO weeks, Monday first).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DAY = 86400
QUARTER = 900


def day_start(day: date, tz: tzinfo) -> int:
    """Unix seconds of local midnight starting `day`."""
    return int(datetime.combine(day, time(), tz).timestamp())


def local_day(ts: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(ts, UTC).astimezone(tz).date()


@dataclass(frozen=True)
class Grouping:
    """How the database buckets times: `(t + offset) // width`; `width` is a day when
    the offset holds over the whole period, else a quarter hour."""

    offset: int
    width: int

    def day_of(self, bucket: int, tz: tzinfo) -> date:
        if self.width == DAY:
            return date(1970, 1, 1) + timedelta(days=bucket)
        return local_day(bucket * self.width - self.offset, tz)


def grouping(tz: tzinfo, start: int, end: int) -> Grouping:
    """The grouping for times in [start, end): by day when the zone's offset is one
    value all through it (sampled every 6 days and at both ends: summer time lasts
    months, a change of a zone's rules lasts, so such a sample misses neither)."""
    first = datetime.fromtimestamp(start, UTC).astimezone(tz)
    offsets = set()
    moment = first
    stop = datetime.fromtimestamp(end, UTC)
    while moment <= stop:
        delta = moment.utcoffset()
        offsets.add(int(delta.total_seconds()) if delta is not None else 0)
        moment += timedelta(days=6)
    last = stop.astimezone(tz).utcoffset()
    offsets.add(int(last.total_seconds()) if last is not None else 0)
    if len(offsets) == 1:
        return Grouping(offsets.pop(), DAY)
    return Grouping(0, QUARTER)


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
