"""Times as people read them, in one time zone for the whole installation.

`--timezone` (serve, verify) or TIAOJIE_TIMEZONE names an IANA zone (default
Asia/Shanghai, 北京时间); every time a person reads (the agreement PDF's signature times,
the status page, the recordings page, `tiaojie verify`'s text report) is shown in it, with
its offset, so two documents never disagree. Machines keep UTC: the JSON reports, the
Chain and the summaries hold Unix seconds or ISO 8601 UTC.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"
ENV = "TIAOJIE_TIMEZONE"
#: Zones that are China Standard Time, which Chinese readers call 北京时间.
BEIJING = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})


def zone_name(name: str | None = None) -> str:
    """`name`, else TIAOJIE_TIMEZONE, else the default."""
    return (name or os.environ.get(ENV) or DEFAULT_TIMEZONE).strip()


def zone(name: str | None = None) -> ZoneInfo:
    """The zone `name` (see `zone_name`); ValueError naming it when there is no such zone."""
    chosen = zone_name(name)
    try:
        return ZoneInfo(chosen)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {chosen!r}: give an IANA name such as Asia/Shanghai or UTC"
        ) from None


def offset(moment: datetime) -> str:
    """`UTC+08:00`: the offset of an aware `moment`."""
    delta = moment.utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def label(moment: datetime, lang: str = "en") -> str:
    """How the zone of `moment` is named next to it: 北京时间 for Chinese readers of China
    Standard Time, else its offset."""
    key = getattr(moment.tzinfo, "key", None)
    if lang.startswith("zh") and key in BEIJING:
        return "北京时间"
    return offset(moment)


def shown(ts: float | None, tz: tzinfo, lang: str = "en") -> str:
    """Unix seconds as `2025-11-22 14:03:05 UTC+08:00` (`... 北京时间` for Chinese readers
    of China Standard Time); "" for no time."""
    if ts is None:
        return ""
    moment = datetime.fromtimestamp(ts, UTC).astimezone(tz)
    return f"{moment:%Y-%m-%d %H:%M:%S} {label(moment, lang)}"


def shown_iso(value: str | None, tz: tzinfo, lang: str = "en") -> str | None:
    """An ISO 8601 time (as the JSON reports hold them) as `shown`; the value itself when
    it is not one, None for None."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(tz)
    fraction = f".{moment.microsecond // 1000:03d}" if moment.microsecond else ""
    return f"{moment:%Y-%m-%d %H:%M:%S}{fraction} {label(moment, lang)}"
