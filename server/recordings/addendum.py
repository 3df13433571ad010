"""The addendum: a room event the server itself appends to a sealed chain, with a new
seal (the signed agreement of a session whose recording had already stopped).

Only ADDENDUM_KINDS events are appended, only to a chain that ends in a seal, one writer
at a time (a lock on the chain file); the summary then names the new seal.
"""

from __future__ import annotations

import fcntl
import json
import logging
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tiaojie.archive.chain import ChainWriter, read_entries
from tiaojie.archive.layout import CHAIN_FILE, SUMMARY_FILE, save_summary

log = logging.getLogger(__name__)


def append(directory: Path, recording_id: str, key_file: Path, event: dict[str, Any]) -> bool:
    """Append `event` and a new seal to the sealed chain in `directory` (False: the chain
    is not sealed, or not readable, and nothing was written)."""
    key = load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    with (directory / CHAIN_FILE).open("rb+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one writer at a time
        entries, problems = read_entries(directory / CHAIN_FILE)
        if problems or not entries or entries[-1]["type"] != "seal":
            log.error("recording %s is not sealed: no addendum", recording_id)
            return False
        chain = ChainWriter(directory, recording_id, key)
        try:
            chain.append("event", event=event)
            seal = chain.append("seal", reason="addendum")
        finally:
            chain.close()
    summary = json.loads((directory / SUMMARY_FILE).read_text())
    summary["seal"] = {"seq": seal["seq"], "hash": seal["hash"], "time": seal["time"]}
    summary["chain_head"], summary["chain_length"] = seal["hash"], seal["seq"] + 1
    save_summary(directory, summary)
    return True
