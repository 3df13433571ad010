"""Recording a caucus, only while every member consents: the rules on the stored Room.

A caucus is never recorded by default (the recorder is in the main room). The mediator
may ask (`caucus_record`); each member answers as for the room's recording
(`caucus_recording_consent`), and the recorder receives the caucus's members only while
the room is being recorded, the request stands for that recording, and every member now
in the caucus has accepted. Someone moved in who has not answered, or one refusal,
stops it (ForwardingRules withhold the members from the recorder again). Consent is per
room recording, like the room's: a new recording asks again.

`caucus["recording"]` holds `{"recording_id", "by", "consents": {participant_id: bool},
"on": bool}`; `on` is what the forwarding last allowed, kept so each change of it is
chained once (`refresh`).
"""

from __future__ import annotations

from typing import Any

from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import Participant, Room


def _current(room: Room, caucus: dict[str, Any]) -> dict[str, Any] | None:
    """The caucus's recording request, if it is for the room's running recording."""
    request = caucus.get("recording")
    if not request or room.recording is None or request["recording_id"] != room.recording["id"]:
        return None
    return dict(request)


def recorded(room: Room, caucus: dict[str, Any]) -> bool:
    """May the recorder receive this caucus's members now?"""
    request = _current(room, caucus)
    members = caucus["members"]
    return bool(request and members and all(request["consents"].get(m) is True for m in members))


def view(room: Room, caucus: dict[str, Any], mediator: bool) -> dict[str, Any] | None:
    """The caucus's recording as shown: `state` ("asking", "on", "refused") and who has
    not answered yet (`waiting`); mediators also get each member's answer."""
    request = _current(room, caucus)
    if request is None:
        return None
    members, consents = caucus["members"], request["consents"]
    if recorded(room, caucus):
        state = "on"
    elif any(consents.get(m) is False for m in members):
        state = "refused"
    else:
        state = "asking"
    shown: dict[str, Any] = {"state": state, "waiting": [m for m in members if m not in consents]}
    if mediator:
        shown["consents"] = {m: consents[m] for m in members if m in consents}
    return shown


def ask(room: Room, caucus: dict[str, Any], by: str) -> None:
    """The mediator asks to record the caucus (their asking is their own consent)."""
    if room.recording is None:
        raise TiaojieError("not_recording", "Start recording the room first.", 409)
    before = _current(room, caucus)
    caucus["recording"] = {
        "recording_id": room.recording["id"],
        "by": by,
        "consents": {by: True} if by in caucus["members"] else {},
        # what the forwarding allowed until now (asking again asks everyone again)
        "on": bool(before and before.get("on")),
    }


def withdraw(caucus: dict[str, Any]) -> None:
    """The mediator stops recording the caucus (or stops asking)."""
    if caucus.get("recording"):
        caucus["recording"] = {**caucus["recording"], "consents": {}, "withdrawn": True}


def answer(room: Room, caucus: dict[str, Any], person: Participant, accepted: bool) -> None:
    """A member's answer to the request to record their caucus."""
    if person.id not in caucus["members"]:
        raise TiaojieError("not_member", "Only the caucus's members answer this.", 403)
    request = caucus.get("recording")
    if _current(room, caucus) is None or request is None or request.get("withdrawn"):
        raise TiaojieError("not_asked", "Nobody asked to record this caucus.", 409)
    request["consents"][person.id] = accepted


def refresh(room: Room) -> list[tuple[str, bool]]:
    """Bring each caucus's stored `on` in line with the rules: the (caucus id, on) that
    changed, for the chain. A request for an earlier recording is dropped silently (that
    recording's chain was sealed with it)."""
    flips = []
    for caucus_id, caucus in room.caucuses.items():
        request = caucus.get("recording")
        if not request:
            continue
        if _current(room, caucus) is None:
            caucus["recording"] = None
            continue
        on = recorded(room, caucus)
        if on != request.get("on", False):
            request["on"] = on
            flips.append((caucus_id, on))
        if request.get("withdrawn") and not on:
            caucus["recording"] = None
    return flips
