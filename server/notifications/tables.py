"""The notifications' tables (on the shared `metadata` of server/db/schema.py, which
imports this module; migration v0017_notifications makes them).

- `notifications`: the outbox. One row per message that should go out, written in the
  transaction of the change that causes it. `key` is unique (the same event never makes
  two messages). `status` is queued → sending (claimed by one worker until
  `lease_until`) → sent | failed (with `last_error`) | cancelled; `not_before` is when it
  may be tried next (a reminder's time, a retry's backoff). `address` is the phone
  number or e-mail address it goes to (None: none is known); links with tokens are not
  stored: they are made again from the invite and the server's secret when it is sent.
- `notification_templates`: the texts an admin changed (the defaults are in
  server/notifications/templates.py).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text

from tiaojie.server.db.schema import ID, metadata

notifications = Table(
    "notifications",
    metadata,
    Column("id", ID, primary_key=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("case_id", ID, nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("recipient", JSON, nullable=False),
    Column("address_kind", String(16), nullable=True),
    Column("address", Text, nullable=True),
    Column("variables", JSON, nullable=False),
    Column("channel", String(16), nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("not_before", BigInteger, nullable=False),
    Column("lease_until", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Column("created_ns", BigInteger, nullable=False),
    # the worker's question: what is due now
    Index("ix_notifications_due", "status", "not_before"),
)

notification_templates = Table(
    "notification_templates",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("text", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
