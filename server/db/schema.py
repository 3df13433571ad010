"""The tables, as SQLAlchemy Core sees them today (the migrations in migrations/versions/
make them; tests/test_database.py checks the two agree on SQLite and PostgreSQL).

- `rooms`: a Room's own fields, its running recording and its agreement (JSON, as the
  room rules keep them), and `version`, raised by every change of the room or its rows.
- `invites`: who may enter a room (role, a party's side, name, expiry), revocations,
  admissions.
- `participants`: who is connected right now, and on which `node`. This is live state
  (a node forgets its own rows when it starts), kept here so that one transaction changes
  a room and its presence together, and several nodes share it.

Column names are the model's field names (server/model.py), so a row maps to the room
document field by field. `created_ns` (when a row was first written, in ns) keeps rooms,
invites and participants in the order the document had them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

ID = String(64)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

rooms = Table(
    "rooms",
    metadata,
    Column("id", ID, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("lobby", Boolean, nullable=False),
    Column("max_participants", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("locked", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    Column("recording", JSON(none_as_null=True), nullable=True),
    Column("agreement", JSON(none_as_null=True), nullable=True),
    Column("created_ns", BigInteger, nullable=False),
)

invites = Table(
    "invites",
    metadata,
    Column("invite_id", ID, primary_key=True),
    Column("room_id", ID, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("admitted", Boolean, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    # a party's side, applicant / respondent (migration v0100_roomui)
    Column("side", String(16), nullable=True),
)

participants = Table(
    "participants",
    metadata,
    Column("id", ID, ForeignKey("invites.invite_id", ondelete="CASCADE"), primary_key=True),
    Column("room_id", ID, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("node", String(200), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("sid", String(64), nullable=False),
    Column("joined_at", BigInteger, nullable=False),
    Column("muted_audio", Boolean, nullable=False),
    Column("muted_video", Boolean, nullable=False),
    Column("muted_by_mediator", Boolean, nullable=False),
    Column("unmute_requested", Boolean, nullable=False),
    Column("hand_raised", Boolean, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("side", String(16), nullable=True),
)
