"""The tables, as SQLAlchemy Core sees them today (the migrations in migrations/versions/
make them; tests/test_database.py checks the two agree on SQLite and PostgreSQL).

- `rooms`: a Room's own fields, its running recording and its agreement (JSON, as the
  room rules keep them), and `version`, raised by every change of the room or its rows.
- `invites`: who may enter a room (role, a party's side, name, expiry), revocations,
  admissions.
- `participants`: who is connected right now, and on which `node`. This is live state
  (a node forgets its own rows when it starts), kept here so that one transaction changes
  a room and its presence together, and several nodes share it.
- Staff accounts (server/accounts/): `organisations`, `accounts` (roles as a JSON list,
  the argon2id hash of the password), `staff_sessions` and `api_keys` (only the sha256 of
  their secrets), `login_attempts` (failures and lockouts, per login name and per
  address, by the sha256 of the key), `audit_log` (who changed what, when). A room's
  `owner_id` and `organisation_id`, an invite's `account_id`, refer to them.

The cases' tables are in server/cases/tables.py, on the same `metadata` (imported at the
end of this module, so that whoever imports the schema gets them all).

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
    UniqueConstraint,
)

ID = String(64)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
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
    Column("owner_id", ID, nullable=True, index=True),
    Column("organisation_id", ID, nullable=True, index=True),
    # screening and caucuses (server/separation.py); NULL in rows from before v0011
    Column("screens", JSON(none_as_null=True), nullable=True),
    Column("caucuses", JSON(none_as_null=True), nullable=True),
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
    Column("account_id", ID, nullable=True),
    # a party's side, applicant / respondent (migration v0005_room_sides)
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
    Column("away_since", BigInteger, nullable=True),
)


# -- staff accounts (server/accounts/) --------------------------------------------------------
#: sha256 in hex: the stored form of session tokens, API key secrets, lockout keys.
DIGEST = String(64)

organisations = Table(
    "organisations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("short_name", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", ID, primary_key=True),
    #: lower case (server/accounts/model.py `normal_login`): one account per login.
    Column("login", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column(
        "organisation_id",
        ID,
        ForeignKey("organisations.id"),
        nullable=False,
        index=True,
    ),
    Column("roles", JSON, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("password_changed_at", BigInteger, nullable=False),
    UniqueConstraint("login"),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    #: sha256 of the cookie's token: the token itself is never stored.
    Column("id", DIGEST, primary_key=True),
    Column(
        "account_id",
        ID,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("address", String(64), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "account_id",
        ID,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("label", Text, nullable=False),
    #: sha256 of the key's secret part.
    Column("secret_hash", DIGEST, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    #: sha256 of "login:<login>" or "address:<address>": no typed text is kept.
    Column("key", DIGEST, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_at", BigInteger, nullable=False),
    Column("locked_until", BigInteger, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    #: account, admin-token, invite or server
    Column("actor_kind", String(16), nullable=False),
    #: the account id or invite id (None for the admin token and the server)
    Column("actor_id", ID, nullable=True, index=True),
    Column("action", String(64), nullable=False, index=True),
    Column("target", String(200), nullable=True, index=True),
    Column("detail", JSON, nullable=False),
    Column("address", String(64), nullable=True),
)
# The archive index (recordings, agreements) keeps its tables in its own module, on this
# metadata; imported here so that `metadata` holds every table the migrations make.
from tiaojie.server.archive_index import schema as _archive_index  # noqa: E402, F401

# The bookings' tables (server/bookings/tables.py) join `metadata` here.
from tiaojie.server.bookings import tables as _booking_tables  # noqa: E402, F401

# The cases' tables (server/cases/tables.py) join `metadata` here.
from tiaojie.server.cases import tables as _cases_tables  # noqa: E402, F401

# The chat's table (server/chat/tables.py) joins `metadata` here.
from tiaojie.server.chat import tables as _chat_tables  # noqa: E402, F401

# The notification outbox (server/notifications/tables.py) joins `metadata` here.
from tiaojie.server.notifications import tables as _notification_tables  # noqa: E402, F401
