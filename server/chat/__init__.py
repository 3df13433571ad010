"""Chat in a room: room chat, private messages, and (with caucuses) chat inside a caucus.

Kept light on purpose: server/db/schema.py imports `tables` from here. What the package
holds: `tables` (the `chat_messages` table), `routing` (who may write to whom, and who
gets a message: the one function caucuses extend), `log` (stored messages and each
person's history), `service` (the `chat_send` handler, the history sent on entering,
the chain note of room chat).
"""
