"""The archive index's tables (on the shared `metadata` of server/db/schema.py, which
imports this module; the migration is server/db/migrations/versions/v0003_index.py).

The evidence stays in files under the data directory; these rows say what is there:

- `recordings`: one Recording (recorder run): its room and the room's title, when it
  started and ended, how it was sealed (the Seal's reason, hash and sequence number, the
  sha256 of the chain as sealed: the manifest an agreement PDF embeds), its folder
  (relative to the data directory), who was in it (names, roles, consent).
- `agreements`: one Agreement: its room, status and text version, its signer lines, the
  Recording it is bound to, the sealed PDF's path (relative to the data directory) and
  sha256.
- `agreement_signatures`: who signed which text (fingerprint) and when, with the mark.
- `agreement_events`: the agreement's log (`log.jsonl`), one row a line.

Times are Unix seconds (floats, as the files have them).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Double,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
)

from tiaojie.server.db.schema import ID, metadata

HASH = String(64)

recordings = Table(
    "recordings",
    metadata,
    Column("recording_id", ID, primary_key=True),
    Column("room_id", ID, nullable=False, index=True),
    Column("room_title", Text, nullable=False),
    #: The node that ran the recorder (its files are on that node's disk).
    Column("node", String(200), nullable=False),
    Column("started_by", String(64), nullable=False),
    #: recording | sealed | unsealed (stopped, and no seal was found)
    Column("status", String(16), nullable=False),
    Column("started_at", Double, nullable=True),
    #: When recording stopped: the recorder's Seal (before that, when it was asked to stop).
    Column("ended_at", Double, nullable=True),
    #: Why the recorder sealed: stopped, room_ended, disconnected ... (the Seal's reason).
    Column("seal_reason", String(64), nullable=True),
    #: The last Seal (a later addendum's, if any): its hash is the chain's head.
    Column("seal_hash", HASH, nullable=True),
    Column("seal_seq", Integer, nullable=True),
    Column("sealed_at", Double, nullable=True),
    #: sha256 of chain.jsonl as sealed: the manifest an agreement PDF embeds.
    Column("chain_sha256", HASH, nullable=True),
    Column("addenda", Integer, nullable=False),
    Column("key_id", String(64), nullable=True),
    #: The Seal's RFC 3161 timestamp, as the summary says: {"file", "tsa_url"} or {"error"}.
    Column("timestamp", JSON(none_as_null=True), nullable=True),
    #: {participant_id: {"name", "role", "consent"?, "consent_at"?}}
    Column("participants", JSON, nullable=False),
    #: The folder, relative to the data directory: recordings/<recording_id>
    Column("folder", Text, nullable=False),
    #: What a search looks in (titles, ids, names), case-folded.
    Column("search", Text, nullable=False),
    Column("indexed_at", Double, nullable=False),
)

agreements = Table(
    "agreements",
    metadata,
    Column("code", ID, primary_key=True),
    Column("room_id", ID, nullable=False, index=True),
    Column("room_title", Text, nullable=False),
    Column("recording_id", ID, nullable=True, index=True),
    #: drafting | signing | sealing | signed
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("fingerprint", HASH, nullable=False),
    Column("case_number", Text, nullable=False),
    #: Every signer line, signed or not: [{"role", "name", "signed_at"}], in signing order.
    Column("signers", JSON, nullable=False),
    Column("created_at", Double, nullable=True),
    Column("updated_at", Double, nullable=True),
    Column("sealed_at", Double, nullable=True),
    Column("seal_error", Text, nullable=True),
    #: agreements/<code>/agreement.pdf once sealed, relative to the data directory.
    Column("pdf_path", Text, nullable=True),
    Column("pdf_sha256", HASH, nullable=True),
    #: The agreement's folder, relative to the data directory: agreements/<code>
    Column("folder", Text, nullable=False),
    #: What a search looks in (case number, titles, ids, signers), case-folded.
    Column("search", Text, nullable=False),
    Column("indexed_at", Double, nullable=False),
)

agreement_signatures = Table(
    "agreement_signatures",
    metadata,
    Column(
        "code",
        ID,
        ForeignKey("agreements.code", ondelete="CASCADE"),
        primary_key=True,
    ),
    #: The signature's place in the order they were given (0, 1, ...).
    Column("seq", Integer, primary_key=True),
    Column("role", String(16), nullable=False),
    Column("party_index", Integer, nullable=True),
    Column("name", Text, nullable=False),
    Column("typed_name", Text, nullable=False),
    Column("participant_id", ID, nullable=False),
    #: The text signed.
    Column("fingerprint", HASH, nullable=False),
    Column("signed_at", Double, nullable=False),
    Column("mark_sha256", HASH, nullable=False),
)

agreement_events = Table(
    "agreement_events",
    metadata,
    Column(
        "code",
        ID,
        ForeignKey("agreements.code", ondelete="CASCADE"),
        primary_key=True,
    ),
    #: The line of log.jsonl (0, 1, ...).
    Column("seq", Integer, primary_key=True),
    Column("at", Double, nullable=True),
    Column("kind", String(64), nullable=False),
    Column("detail", JSON, nullable=False),
)
