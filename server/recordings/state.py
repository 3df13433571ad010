"""The recording in the room document (`Room.recording`) and what clients see of it.

While a room is recorded, `Room.recording` holds the recording's id, `started_at`,
`started_by`, the recorder's `invite_id`, the `node` that runs the recorder
(server/node.py) and the `consents` ({participant_id: {accepted, at, name, role}}); None
when it is not recorded. Kept in the room document, every node
and every client sees the same.
"""

from __future__ import annotations

from typing import Any


def public(recording: dict[str, Any]) -> dict[str, Any]:
    """What clients see of a running recording (never the recorder's invite or node)."""
    return {k: v for k, v in recording.items() if k not in ("invite_id", "node")}


def view(recording: dict[str, Any] | None, is_mediator: bool) -> dict[str, Any] | None:
    """Everyone sees that recording is on; only mediators see who consented."""
    if recording is None:
        return None
    shown = public(recording)
    if not is_mediator:
        shown.pop("consents", None)
    return shown
