"""The agreement and the room's recording: its hash chain, as far as it is written.

Agreement events are noted in the chain when the room is being recorded; the final text
names the chain's head; the signed PDF embeds the chain (tiaojie.archive.chain).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from tiaojie.archive.chain import read_written
from tiaojie.archive.layout import CHAIN_FILE, is_recording_id, recording_dir
from tiaojie.server.recordings import Recordings

log = logging.getLogger(__name__)


async def note(recordings: Recordings, room_id: str, kind: str, **fields: Any) -> None:
    """An event in the room's recording chain, when the room is being recorded (or an
    addendum to it); a failure is logged, never the signer's problem."""
    try:
        await recordings.note(room_id, kind, **fields)
    except Exception:
        log.exception("could not note %s in the recording of room %s", kind, room_id)


def read_chain(data_dir: str | Path, recording_id: str | None) -> bytes | None:
    """The recording's chain as written so far (complete lines only), if any."""
    if not is_recording_id(recording_id):
        return None
    assert recording_id is not None
    return read_written(recording_dir(Path(data_dir), recording_id) / CHAIN_FILE)


def chain_head(data_dir: str | Path, recording_id: str | None) -> str | None:
    """The hash of the last complete entry of the recording's chain, if any."""
    chain = read_chain(data_dir, recording_id)
    if chain is None:
        return None
    try:
        head = json.loads(chain.splitlines()[-1])["hash"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return head if isinstance(head, str) and re.fullmatch("[0-9a-f]{64}", head) else None
