"""The cases' tables (SQLAlchemy Core, on the shared `metadata` of server/db/schema.py,
which imports this module; migration v0004_cases makes them).

- `cases`: one row per case: its number (organisation, year, sequence: unique together),
  its public `code`, state, type, region, who holds it, the dates, `version` (raised by
  every change) and the head of its log (`log_seq`, `log_head`); indexed for the queue
  (migration v0013_case_queue_indexes, docs/PERFORMANCE.md "Cases") and for the
  statistics (v0015_statistics, "Statistics at scale").
- `case_parties`, `case_attachments`: the parties (with their phones and ID numbers:
  never shown to the public) and the attachments' sha256, size and type (the bytes are
  files, DATA/cases/<case id>/attachments/<sha256>).
- `case_log`: the CaseLog, one row per Chain entry: its canonical JSON line as written.
- `case_counters`: the last sequence number per organisation per year.
- `case_settings`, `case_config`: an organisation's numbering, deadline and contact; the
  taxonomy, the regions and where public reports go.
- `experts`, `expert_specialties`: the expert pool (a row per specialty tag, for search).
- `case_sessions` (migration v0014_case_sessions): a Session, a room scheduled for a case: its
  room, time, the invites made for the case's parties and experts, when it was held and
  ended. Its room's recordings and agreements belong to the case.
- `case_court`, `case_follow_ups` (server/cases/court_tables.py, migration v0019): the
  application for judicial confirmation and the court's answers; the follow-ups (回访).
- `case_outbox`: what should be sent to whom (a party's or an expert's session link);
  the rows hold no link or token: those are made again when the outbox is read.
- `case_counts`, `case_region_counts`, `case_close_counts`, `case_hour_counts`
  (server/cases/counts.py, migration v0020): the statistics' summaries, the number of
  cases per combination of what the dashboard counts, kept by every change;
  `case_session_experts`: each expert invited to a session, with its case's filters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from tiaojie.server.db.schema import ID, metadata

#: The columns after the leading ones of the queue's indexes (see `cases`).
QUEUE_COLUMNS = (
    "holder_organisation_id",
    "coordinator_organisation_id",
    "mediator_id",
    "created_ns",
    "id",
)

#: After the queue's columns in its state index (v0020): what the statistics group and
#: filter the overdue cases by (server/statistics/queries.py `overdue`).
OVERDUE_COLUMNS = ("source", "outcome", "created_at")

#: The statistics' indexes (server/statistics/queries.py, migration v0015): each holds
#: every column its queries filter, group or count by, led by what they group by.
STATISTICS_INDEXES = {
    "ix_cases_statistics": (
        "created_at",
        "dispute_type",
        "region_code",
        "holder_organisation_id",
        "coordinator_organisation_id",
        "state",
        "outcome",
        "source",
        "mediator_id",
        "deadline_at",
        "closed_at",
    ),
    "ix_cases_statistics_type": (
        "dispute_type",
        "source",
        "state",
        "outcome",
        "created_at",
        "region_code",
        "holder_organisation_id",
        "coordinator_organisation_id",
        "deadline_at",
    ),
    "ix_cases_statistics_mediator": (
        "mediator_id",
        "state",
        "outcome",
        "deadline_at",
        "created_at",
        "dispute_type",
        "region_code",
        "holder_organisation_id",
        "coordinator_organisation_id",
    ),
    "ix_cases_statistics_holder": (
        "holder_organisation_id",
        "state",
        "outcome",
        "deadline_at",
        "created_at",
        "dispute_type",
        "region_code",
        "coordinator_organisation_id",
        "source",
        "mediator_id",
        "closed_at",
    ),
    # every column since v0020: a region's questions the summaries cannot answer read
    # this region's entries alone
    "ix_cases_statistics_region": (
        "region_code",
        "created_at",
        "dispute_type",
        "holder_organisation_id",
        "coordinator_organisation_id",
        "source",
        "state",
        "outcome",
        "mediator_id",
        "deadline_at",
        "closed_at",
    ),
    # the experts: a session's case found by id, its filters read from the index
    "ix_cases_statistics_id": (
        "id",
        "created_at",
        "dispute_type",
        "region_code",
        "holder_organisation_id",
        "coordinator_organisation_id",
    ),
}

#: PostgreSQL: a region's prefix is a byte-wise range whatever the collation (v0020)
STATISTICS_OPS = {"ix_cases_statistics_region": {"region_code": "text_pattern_ops"}}

cases = Table(
    "cases",
    metadata,
    Column("id", ID, primary_key=True),
    Column("number", Text, nullable=False),
    Column("organisation_id", ID, nullable=False),
    Column("year", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("code", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("dispute_type", String(32), nullable=False),
    Column("dispute_type_name", Text, nullable=False),
    Column("region_code", String(32), nullable=False),
    Column("region", JSON, nullable=False),
    Column("description", Text, nullable=False),
    Column("risk_level", String(16), nullable=False),
    Column("holder_organisation_id", ID, nullable=False),
    Column("coordinator_organisation_id", ID, nullable=False),
    Column("mediator_id", ID, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("reported_by", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("accepted_at", BigInteger, nullable=True),
    Column("deadline_at", BigInteger, nullable=True),
    Column("closed_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("log_seq", Integer, nullable=False),
    Column("log_head", String(64), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    #: when a case closed with an outcome is to be followed up (回访; migration v0019)
    Column("follow_up_due_at", BigInteger, nullable=True),
    UniqueConstraint("organisation_id", "year", "seq", name="uq_cases_number"),
    UniqueConstraint("code", name="uq_cases_code"),
    Index("ix_cases_created_ns", "created_ns"),
    # The queue (GET /api/cases) first finds the ids of a page from one of these alone
    # (each holds every column a filter or scope names, then created_ns and id), then
    # reads those rows: no row is read only to be filtered out or sorted away.
    Index(
        "ix_cases_queue_state",
        "state",
        "deadline_at",
        "dispute_type",
        "region_code",
        *QUEUE_COLUMNS,
        # since v0020, for the statistics' overdue cases: read from this index alone
        *OVERDUE_COLUMNS,
    ),
    Index(
        "ix_cases_queue_type",
        "dispute_type",
        "region_code",
        "state",
        "deadline_at",
        *QUEUE_COLUMNS,
        # PostgreSQL: a region's prefix is a byte-wise range whatever the collation
        postgresql_ops={"region_code": "text_pattern_ops"},
    ),
    Index(
        "ix_cases_queue_mediator",
        "mediator_id",
        "state",
        "holder_organisation_id",
        "created_ns",
        "id",
    ),
    Index("ix_cases_queue_holder", "holder_organisation_id", "state", "created_ns", "id"),
    # The statistics (server/statistics/queries.py, migration v0015).
    *(
        Index(name, *columns, postgresql_ops=STATISTICS_OPS.get(name, {}))
        for name, columns in STATISTICS_INDEXES.items()
    ),
    Index("ix_cases_follow_up", "state", "follow_up_due_at"),
)

case_parties = Table(
    "case_parties",
    metadata,
    Column("case_id", ID, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("phone", String(32), nullable=True),
    Column("id_number", Text, nullable=True),
    PrimaryKeyConstraint("case_id", "position", name="pk_case_parties"),
)

case_attachments = Table(
    "case_attachments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("case_id", ID, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("filename", Text, nullable=False),
    Column("added_at", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
)

case_log = Table(
    "case_log",
    metadata,
    Column("case_id", ID, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", String(16), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("entry", Text, nullable=False),
    PrimaryKeyConstraint("case_id", "seq", name="pk_case_log"),
)

case_counters = Table(
    "case_counters",
    metadata,
    Column("organisation_id", ID, nullable=False),
    Column("year", Integer, nullable=False),
    Column("last", Integer, nullable=False),
    PrimaryKeyConstraint("organisation_id", "year", name="pk_case_counters"),
)

case_settings = Table(
    "case_settings",
    metadata,
    Column("organisation_id", ID, primary_key=True),
    Column("settings", JSON, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

case_config = Table(
    "case_config",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

experts = Table(
    "experts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("organisation", Text, nullable=False),
    Column("phone", String(32), nullable=True),
    Column("profile", Text, nullable=False),
    Column("available", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
)

expert_specialties = Table(
    "expert_specialties",
    metadata,
    Column("expert_id", ID, ForeignKey("experts.id", ondelete="CASCADE"), nullable=False),
    Column("specialty", String(64), nullable=False, index=True),
    PrimaryKeyConstraint("expert_id", "specialty", name="pk_expert_specialties"),
)

case_sessions = Table(
    "case_sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("case_id", ID, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("room_id", ID, nullable=False),
    Column("scheduled_at", BigInteger, nullable=False),
    Column("mediator_id", ID, nullable=True),
    Column("organisation_id", ID, nullable=False),
    Column("invites", JSON, nullable=False),
    Column("created_by", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("held_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    Column("created_ns", BigInteger, nullable=False),
    UniqueConstraint("room_id", name="uq_case_sessions_room_id"),
)

case_outbox = Table(
    "case_outbox",
    metadata,
    Column("id", ID, primary_key=True),
    Column("case_id", ID, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("session_id", ID, nullable=True),
    Column("kind", String(32), nullable=False),
    Column("recipient", JSON, nullable=False),
    Column("invite_id", ID, nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Column("created_ns", BigInteger, nullable=False),
)

#: The statistics' summaries (server/cases/counts.py, migration v0020): how many cases
#: share each combination of what one group of the dashboard's questions counts, groups
#: and filters by, kept in the transaction of every case change. None has the report
#: time (but the hours'): a dimension as fine as a day times the others would have
#: nearly as many rows as there are cases; a question with a period or a region the
#: summary lacks is counted in the cases (server/statistics/queries.py says which). An
#: absent outcome or mediator is ''. Rows reaching 0 are deleted. On SQLite the key is
#: the table (WITHOUT ROWID). name -> key columns:
REGION_PREFIX = 6
SUMMARIES: dict[str, tuple[str, ...]] = {
    # counts by type, source, state, outcome; the mediators' and organisations' loads;
    # `region_prefix`: the region code's first REGION_PREFIX characters (a district's, in
    # national division codes), which answers any region filter that long or shorter
    "case_counts": (
        "region_prefix",
        "dispute_type",
        "source",
        "state",
        "outcome",
        "holder_organisation_id",
        "coordinator_organisation_id",
        "mediator_id",
    ),
    # the region drill-down (a region filter too)
    "case_region_counts": (
        "region_code",
        "dispute_type",
        "holder_organisation_id",
        "coordinator_organisation_id",
    ),
    # whole hours from report to close of the closed cases (median, p90)
    "case_close_counts": (
        "close_hours",
        "dispute_type",
        "holder_organisation_id",
        "coordinator_organisation_id",
    ),
    # cases reported per hour (Unix seconds of its start): the trend (any period)
    "case_hour_counts": ("hour",),
}
_SUMMARY_TYPES: dict[str, Any] = {"close_hours": BigInteger, "hour": BigInteger}
_SUMMARY_TYPES |= {"dispute_type": String(32), "region_code": String(32)}
_SUMMARY_TYPES |= {"region_prefix": String(32)}
_SUMMARY_TYPES |= {"source": String(16), "state": String(16), "outcome": String(16)}


def _summary(name: str, key: tuple[str, ...]) -> Table:
    return Table(
        name,
        metadata,
        *(Column(c, _SUMMARY_TYPES.get(c, ID), nullable=False) for c in key),
        Column("n", BigInteger, nullable=False),
        PrimaryKeyConstraint(*key, name=f"pk_{name}"),
        sqlite_with_rowid=False,
    )


case_counts = _summary("case_counts", SUMMARIES["case_counts"])
case_region_counts = _summary("case_region_counts", SUMMARIES["case_region_counts"])
case_close_counts = _summary("case_close_counts", SUMMARIES["case_close_counts"])
case_hour_counts = _summary("case_hour_counts", SUMMARIES["case_hour_counts"])

#: The experts invited to sessions (server/cases/counts.py, migration v0020): one row per
#: expert invite of a session (written with the session), with the filters of its case
#: (its holder kept as the case moves), so the experts most used are counted here
#: instead of in every session's JSON invites joined to its case.
case_session_experts = Table(
    "case_session_experts",
    metadata,
    Column("session_id", ID, nullable=False),
    Column("invite_id", ID, nullable=False),
    Column("case_id", ID, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("expert_id", ID, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("dispute_type", String(32), nullable=False),
    Column("region_code", String(32), nullable=False),
    Column("holder_organisation_id", ID, nullable=False),
    Column("coordinator_organisation_id", ID, nullable=False),
    PrimaryKeyConstraint("session_id", "invite_id", name="pk_case_session_experts"),
)

# The court hand-off and the follow-ups (server/cases/court_tables.py) join `metadata` here.
from tiaojie.server.cases import court_tables as _court_tables  # noqa: E402, F401
