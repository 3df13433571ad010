"""The tables of what follows a successful mediation (migration v0019_court):

- `case_court`: one row per case handed to a court for judicial confirmation (司法确认):
  the court, the agreement it asks to confirm, when that took effect and the 30-day
  deadline, the application's details as the mediator filled them (JSON), when the bundle
  was last made (and its manifest's sha256), and the court's answers (JSON list).
- `case_follow_ups`: each follow-up (回访) recorded: the day it took place, how
  (电话/上门/视频/其他), whether the agreement is being performed, notes, who.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, String, Table, Text

from tiaojie.server.db.schema import ID, metadata

case_court = Table(
    "case_court",
    metadata,
    Column("case_id", ID, primary_key=True),
    Column("court", Text, nullable=True),
    Column("agreement_code", ID, nullable=True),
    Column("effective_at", BigInteger, nullable=True),
    Column("deadline_at", BigInteger, nullable=True),
    Column("application", JSON, nullable=False),
    Column("prepared_at", BigInteger, nullable=True),
    Column("manifest_sha256", String(64), nullable=True),
    #: [{"status", "document_number", "date", "recorded_at", "actor"}], oldest first
    Column("answers", JSON, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

case_follow_ups = Table(
    "case_follow_ups",
    metadata,
    Column("id", ID, primary_key=True),
    Column("case_id", ID, nullable=False, index=True),
    Column("date", String(10), nullable=False),
    Column("method", String(16), nullable=False),
    Column("performance", String(16), nullable=False),
    Column("notes", Text, nullable=False),
    Column("actor", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
)
