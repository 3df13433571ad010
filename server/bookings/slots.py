"""Free slots: the slots a provider's availability makes on local dates, minus the times
they are busy. Pure functions over plain values (times in Unix seconds, rules in local
wall-clock minutes of the installation's --timezone).

A weekly rule gives its slots on every date of its weekday, unless that date has an
`off` row; an `extra` row adds slots on its own date. A slot is free when no busy
interval overlaps it. Local times are made with zoneinfo, so a zone with daylight
saving time gets its slots at the wall-clock times people published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo


@dataclass(frozen=True)
class Rule:
    kind: str  # "weekly" | "off" | "extra"
    start_min: int
    end_min: int
    slot_min: int
    weekday: int | None = None  # 0 = Monday
    day: date | None = None


@dataclass(frozen=True)
class Slot:
    starts_at: int
    ends_at: int


def _at(day: date, minute: int, tz: tzinfo) -> int:
    return int(datetime.combine(day, time(0), tz).timestamp()) + minute * 60


def slots(rules: list[Rule], first: date, last: date, tz: tzinfo) -> list[Slot]:
    """Every slot from local date `first` to `last` (inclusive), in order, each once."""
    off = {r.day for r in rules if r.kind == "off"}
    found: set[Slot] = set()
    day = first
    while day <= last:
        for rule in rules:
            applies = (
                rule.kind == "weekly" and rule.weekday == day.weekday() and day not in off
            ) or (rule.kind == "extra" and rule.day == day)
            if not applies:
                continue
            minute = rule.start_min
            while minute + rule.slot_min <= rule.end_min:
                start = _at(day, minute, tz)
                found.add(Slot(start, start + rule.slot_min * 60))
                minute += rule.slot_min
        day += timedelta(days=1)
    return sorted(found, key=lambda s: (s.starts_at, s.ends_at))


def free(all_slots: list[Slot], busy: list[tuple[int, int]], after: int) -> list[Slot]:
    """The slots starting after `after` that no busy interval overlaps."""
    return [
        s
        for s in all_slots
        if s.starts_at > after and not any(b0 < s.ends_at and s.starts_at < b1 for b0, b1 in busy)
    ]
