"""Case numbers in the usual Chinese form, e.g. `（2026）桃调字第0001号`.

An organisation's `number_format` (server/cases/settings.py) is a Python format string
over four fields: `{year}`, `{short}` (the organisation's short name), `{word}` (its type
word) and `{seq}` (the sequence, e.g. `{seq:04d}`); nothing else may be named. The
sequence counts per organisation per year in `case_counters`, raised in the transaction
that registers the case (`next_seq`): the row's lock makes concurrent intakes take turns,
and a registration that fails rolls its number back, so numbers never repeat or skip.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.cases.tables import case_counters
from tiaojie.server.errors import bad_request

#: Years and dates of cases are China Standard Time.
CST = timezone(timedelta(hours=8))
DEFAULT_FORMAT = "（{year}）{short}{word}字第{seq:04d}号"
FIELDS = frozenset({"year", "short", "word", "seq"})


def check_format(fmt: str) -> None:
    """bad_request unless `fmt` names only FIELDS, names `year` and `seq`, and formats."""
    try:
        named = {name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None}
    except ValueError as error:
        raise bad_request(f"number_format is not a format: {error}") from None
    unknown = named - FIELDS
    if unknown or "" in named:
        raise bad_request(
            "number_format may name only {year}, {short}, {word} and {seq}, "
            f"not {', '.join(sorted(repr(n) for n in unknown or {''}))}"
        )
    if not {"year", "seq"} <= named:
        raise bad_request("number_format must hold {year} and {seq}.")
    try:
        format_number(fmt, 2026, "桃", "调", 1)
    except (ValueError, TypeError, IndexError, KeyError) as error:
        raise bad_request(f"number_format does not format: {error}") from None


def format_number(fmt: str, year: int, short: str, word: str, seq: int) -> str:
    return fmt.format(year=year, short=short, word=word, seq=seq)


def year_of(ts: float) -> int:
    return datetime.fromtimestamp(ts, UTC).astimezone(CST).year


async def next_seq(conn: AsyncConnection, organisation_id: str, year: int) -> int:
    """The next sequence number of `organisation_id` in `year`, inside the caller's write
    transaction (one atomic upsert; the row stays locked until it commits)."""
    dialect = conn.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = insert(case_counters).values(organisation_id=organisation_id, year=year, last=1)
    statement = values.on_conflict_do_update(
        index_elements=[case_counters.c.organisation_id, case_counters.c.year],
        set_={"last": case_counters.c.last + 1},
    ).returning(case_counters.c.last)
    return int((await conn.execute(statement)).scalar_one())
