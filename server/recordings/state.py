"""The recording in the room document (`Room.recording`) and what clients see of it.

While a room is recorded, `Room.recording` holds the recording's id, `started_at`,
`started_by`, the recorder's `invite_id`, the `node` that runs the recorder
(server/node.py) and the `consents` ({participant_id: {accepted, at, name, role}}); a
recording that continues a lost or drained node's has `follows` (its id, node, reason and
the chain entry seen last: server/recordings/service.py); None when it is not recorded.
Kept in the room document, every node and every client sees the same.
"""

from __future__ import annotations

from typing import Any


def public(recording: dict[str, Any]) -> dict[str, Any]:
    """What clients see of a running recording (never the recorder's invite or node; of
    the recording it follows, its id)."""
    shown = {k: v for k, v in recording.items() if k not in ("invite_id", "node")}
    if isinstance(shown.get("follows"), dict):
        shown["follows"] = shown["follows"].get("recording_id")
    return shown


def view(
    recording: dict[str, Any] | None, is_mediator: bool, participant_id: str | None = None
) -> dict[str, Any] | None:
    """Everyone sees that recording is on; only mediators see who consented, the others
    their own answer (in their `room_state`: a recording that follows a lost or drained
    node's keeps the answers, and their page on the new node must not ask again)."""
    if recording is None:
        return None
    shown = public(recording)
    if not is_mediator:
        consents = shown.pop("consents", None) or {}
        if participant_id is not None and participant_id in consents:
            shown["consents"] = {participant_id: consents[participant_id]}
    return shown
