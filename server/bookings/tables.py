"""The bookings' tables (on the shared `metadata` of server/db/schema.py, which imports
this module; migration v0018_bookings makes them).

- `availability`: what a provider (an expert of the pool or a mediator's account)
  publishes: `weekly` rows (a weekday, from `start_min` to `end_min` minutes after local
  midnight, cut into `slot_min` slots), `off` rows (a local date with no slots) and
  `extra` rows (hours on one local date, cut the same way).
- `bookings`: a party's consultation with a provider in one slot, with the private
  room made for it. `active_key` is `provider_kind:provider_id:starts_at` while the
  booking is active and NULL once it is cancelled or moved: it is unique, and both
  SQLite and PostgreSQL let many rows hold NULL in a unique column, so two active
  bookings of one provider at one time cannot both commit, whatever the concurrency.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text

from tiaojie.server.db.schema import ID, metadata

availability = Table(
    "availability",
    metadata,
    Column("id", ID, primary_key=True),
    Column("provider_kind", String(16), nullable=False),
    Column("provider_id", ID, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("weekday", Integer, nullable=True),
    Column("date", String(10), nullable=True),
    Column("start_min", Integer, nullable=False),
    Column("end_min", Integer, nullable=False),
    Column("slot_min", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Index("ix_availability_provider", "provider_kind", "provider_id"),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", ID, primary_key=True),
    Column("case_id", ID, nullable=False, index=True),
    Column("party_position", Integer, nullable=False),
    Column("provider_kind", String(16), nullable=False),
    Column("provider_id", ID, nullable=False),
    Column("provider_name", String(200), nullable=False),
    Column("specialty", String(64), nullable=True),
    Column("mediator_id", ID, nullable=True, index=True),
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("active_key", String(200), nullable=True, unique=True),
    Column("room_id", ID, nullable=False),
    Column("invites", JSON, nullable=False),
    Column("reason", Text, nullable=True),
    Column("replaced_by", ID, nullable=True),
    Column("created_by", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_bookings_provider_time", "provider_kind", "provider_id", "starts_at"),
)
