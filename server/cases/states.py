"""A case's states and the actions that move it, as pure rules (no database, no roles).

    待受理 reported --accept--> 待分派 accepted --dispatch--> 已分派 dispatched
      --take--> 调解中 mediating --close(outcome)--> 调解成功 succeeded | 调解不成功 failed
    reported, accepted, dispatched, mediating --withdraw--> 已撤回 withdrawn
    succeeded, failed, withdrawn (and following_up again) --follow_up--> 回访 following_up
    following_up --close--> 已结案 closed
    dispatched, mediating --return(reason)--> accepted (退回: back to the centre)
    accepted, dispatched, mediating --transfer(organisation)--> dispatched (转办)

`plan` checks one action against a case and says what changes and what the log records,
or raises `transition_not_allowed` (409) naming the state and where the action applies,
or a `bad_request` for what the action needs (a reason, a target, an outcome). Who may
act is server/cases/permissions.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tiaojie.server.errors import TiaojieError, bad_request

DAY = 86400


class State(StrEnum):
    REPORTED = "reported"
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    MEDIATING = "mediating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"
    FOLLOWING_UP = "following_up"
    CLOSED = "closed"


class Action(StrEnum):
    ACCEPT = "accept"
    DISPATCH = "dispatch"
    TAKE = "take"
    RETURN = "return"
    TRANSFER = "transfer"
    CLOSE = "close"
    WITHDRAW = "withdraw"
    FOLLOW_UP = "follow_up"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


LABELS: dict[str, dict[State, str]] = {
    "zh-CN": {
        State.REPORTED: "待受理",
        State.ACCEPTED: "待分派",
        State.DISPATCHED: "已分派",
        State.MEDIATING: "调解中",
        State.SUCCEEDED: "调解成功",
        State.FAILED: "调解不成功",
        State.WITHDRAWN: "已撤回",
        State.FOLLOWING_UP: "回访",
        State.CLOSED: "已结案",
    },
    "en": {
        State.REPORTED: "reported",
        State.ACCEPTED: "accepted, awaiting dispatch",
        State.DISPATCHED: "dispatched",
        State.MEDIATING: "in mediation",
        State.SUCCEEDED: "mediation succeeded",
        State.FAILED: "mediation unsuccessful",
        State.WITHDRAWN: "withdrawn",
        State.FOLLOWING_UP: "follow-up",
        State.CLOSED: "closed",
    },
}

#: Where each action applies.
SOURCES: dict[Action, frozenset[State]] = {
    Action.ACCEPT: frozenset({State.REPORTED}),
    Action.DISPATCH: frozenset({State.ACCEPTED}),
    Action.TAKE: frozenset({State.DISPATCHED}),
    Action.RETURN: frozenset({State.DISPATCHED, State.MEDIATING}),
    Action.TRANSFER: frozenset({State.ACCEPTED, State.DISPATCHED, State.MEDIATING}),
    Action.CLOSE: frozenset({State.MEDIATING, State.FOLLOWING_UP}),
    Action.WITHDRAW: frozenset({State.REPORTED, State.ACCEPTED, State.DISPATCHED, State.MEDIATING}),
    Action.FOLLOW_UP: frozenset(
        {State.SUCCEEDED, State.FAILED, State.WITHDRAWN, State.FOLLOWING_UP}
    ),
}
#: The states in which the deadline runs (an overdue case is one of these, late).
OPEN_STATES = frozenset({State.ACCEPTED, State.DISPATCHED, State.MEDIATING})
#: A case closed with an outcome and not followed up yet (回访 due at `follow_up_due_at`).
FOLLOW_UP_PENDING = frozenset({State.SUCCEEDED, State.FAILED})
#: How a follow-up was made, and whether the agreement is being performed.
FOLLOW_UP_METHODS = ("电话", "上门", "视频", "其他")
PERFORMANCE = ("履行中", "已履行", "未履行", "部分履行")
#: What the log calls each action.
EVENT_OF: dict[Action, str] = {
    Action.ACCEPT: "accepted",
    Action.DISPATCH: "dispatched",
    Action.TAKE: "taken",
    Action.RETURN: "returned",
    Action.TRANSFER: "transferred",
    Action.CLOSE: "closed",
    Action.WITHDRAW: "withdrawn",
    Action.FOLLOW_UP: "followed_up",
}


@dataclass(frozen=True)
class CaseState:
    """What the rules look at: the state and who holds the case."""

    state: State
    holder_organisation_id: str
    coordinator_organisation_id: str
    mediator_id: str | None = None


@dataclass(frozen=True)
class Change:
    """What an action changes (`updates`: column -> value) and what the log records."""

    target: State
    updates: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)


def label(state: State | str, lang: str = "zh-CN") -> str:
    return LABELS.get(lang, LABELS["zh-CN"]).get(State(state), str(state))


def not_allowed(case: CaseState, action: Action) -> TiaojieError:
    sources = "、".join(label(s) for s in State if s in SOURCES[action])
    names = ", ".join(str(s) for s in State if s in SOURCES[action])
    return TiaojieError(
        "transition_not_allowed",
        f"This case is {label(case.state)} ({case.state}): '{action}' applies only to a case "
        f"that is {sources} ({names}). Nothing was changed.",
        409,
    )


def _need(params: dict[str, Any], name: str, action: Action) -> Any:
    value = params.get(name)
    if value in (None, ""):
        raise bad_request(f"'{action}' needs {name}.")
    return value


def plan(
    case: CaseState,
    action: Action,
    params: dict[str, Any],
    now: int,
    deadline_days: int,
    follow_up_days: int = 30,
) -> Change:
    """What `action` does to `case` (module docstring); raises, changing nothing, if it
    does not apply or lacks what it needs."""
    if case.state not in SOURCES[action]:
        raise not_allowed(case, action)
    reason = params.get("reason") or None
    event: dict[str, Any] = {"kind": EVENT_OF[action], "from": str(case.state)}
    updates: dict[str, Any] = {}
    if action is Action.ACCEPT:
        target = State.ACCEPTED
        updates = {"accepted_at": now, "deadline_at": now + deadline_days * DAY}
        event["deadline_at"] = updates["deadline_at"]
    elif action is Action.DISPATCH:
        target = State.DISPATCHED
        organisation = params.get("organisation_id") or case.holder_organisation_id
        mediator = params.get("mediator_id") or None
        if not params.get("organisation_id") and mediator is None:
            raise bad_request("'dispatch' needs organisation_id or mediator_id (or both).")
        updates = {"holder_organisation_id": organisation, "mediator_id": mediator}
        event |= {"organisation_id": organisation, "mediator_id": mediator}
    elif action is Action.TAKE:
        target = State.MEDIATING
        mediator = params.get("mediator_id") or case.mediator_id
        if mediator is None:
            raise bad_request("'take' needs mediator_id: the case was dispatched to no one.")
        updates = {"mediator_id": mediator}
        event["mediator_id"] = mediator
    elif action is Action.RETURN:
        target = State.ACCEPTED
        reason = _need(params, "reason", action)
        updates = {
            "holder_organisation_id": case.coordinator_organisation_id,
            "mediator_id": None,
        }
        event |= {"returned_to": case.coordinator_organisation_id}
    elif action is Action.TRANSFER:
        target = State.DISPATCHED
        organisation = _need(params, "organisation_id", action)
        mediator = params.get("mediator_id") or None
        updates = {"holder_organisation_id": organisation, "mediator_id": mediator}
        event |= {"organisation_id": organisation, "mediator_id": mediator}
    elif action is Action.CLOSE and case.state is State.MEDIATING:
        outcome = Outcome(_need(params, "outcome", action))
        target = State.SUCCEEDED if outcome is Outcome.SUCCESS else State.FAILED
        updates = {"outcome": str(outcome), "follow_up_due_at": now + follow_up_days * DAY}
        event["outcome"] = str(outcome)
        event["follow_up_due_at"] = updates["follow_up_due_at"]
    elif action is Action.CLOSE:
        target = State.CLOSED
        updates = {"closed_at": now}
    elif action is Action.WITHDRAW:
        target = State.WITHDRAWN
        reason = _need(params, "reason", action)
        updates = {"outcome": "withdrawn"}
    else:  # FOLLOW_UP: a note, or a follow-up's record (server/cases/court.py)
        target = State.FOLLOWING_UP
        if params.get("performance"):
            for name in ("date", "method", "performance"):
                event[name] = _need(params, name, action)
            if params.get("note"):
                event["note"] = params["note"]
        else:
            event["note"] = _need(params, "note", action)
    if reason:
        event["reason"] = reason
    event["to"] = str(target)
    return Change(target, {"state": str(target), **updates}, event)


def overdue(state: State | str, deadline_at: int | None, now: int) -> bool:
    return State(state) in OPEN_STATES and deadline_at is not None and deadline_at < now
