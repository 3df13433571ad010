"""The chat's table (SQLAlchemy Core, on the shared `metadata` of server/db/schema.py,
which imports this module; migration v0010_chat makes it).

- `chat_messages`: one row per message: the room, the sender (id and name as shown
  then), the recipient of a private message, the caucus it was said in, the text (its
  normal form), the time (`at_ms`), and `audience`: the participant ids it was delivered
  to, as a JSON list; a person's history is the messages whose audience holds them.
  `room_id` has no foreign key: with `memory:` the rooms are not in SQL.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Integer, Table, Text

from tiaojie.server.db.schema import ID, metadata

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", ID, nullable=False, unique=True),
    Column("room_id", ID, nullable=False, index=True),
    Column("sender_id", ID, nullable=False),
    Column("sender_name", Text, nullable=False),
    Column("recipient_id", ID, nullable=True),
    Column("caucus_id", ID, nullable=True),
    Column("text", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("audience", JSON, nullable=False),
)
