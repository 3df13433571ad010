"""Who may do what with cases: every role and organisation check of server/cases.

The matrix (docs/CASES.md): the admin everything; a coordinator the cases its
organisation holds or coordinates (the centre that accepted them): registers, accepts,
dispatches, transfers, takes back, withdraws, follows up and finally closes them; a
mediator the cases dispatched to them, or to their organisation with no mediator yet:
takes (for themselves), returns, closes with an outcome, withdraws, follows up; an
archivist reads the cases of their organisation; a resident only reports and follows
the public progress. Someone who may not read a case is told it does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiaojie.server.cases.actor import CaseActor, StaffRole
from tiaojie.server.cases.states import Action, CaseState, State
from tiaojie.server.errors import TiaojieError, forbidden

Role = StaffRole


@dataclass(frozen=True)
class Scope:
    """The cases an actor may list: `everything`, or those held or coordinated by
    `organisations`, or dispatched to `mediator_id` (or to `mediator_organisation`
    with no mediator yet)."""

    everything: bool = False
    organisations: frozenset[str] = frozenset()
    mediator_id: str | None = None
    mediator_organisation: str | None = None


def case_not_found() -> TiaojieError:
    return TiaojieError("case_not_found", "There is no such case.", 404)


def _coordinates(actor: CaseActor, case: CaseState) -> bool:
    return actor.has(Role.COORDINATOR) and actor.organisation_id in (
        case.holder_organisation_id,
        case.coordinator_organisation_id,
    )


def _mediates(actor: CaseActor, case: CaseState) -> bool:
    """The case is this mediator's, or waits in their organisation for a mediator."""
    if not actor.has(Role.MEDIATOR):
        return False
    if case.mediator_id is not None:
        return case.mediator_id == actor.id
    return case.state is State.DISPATCHED and case.holder_organisation_id == actor.organisation_id


def read_scope(actor: CaseActor) -> Scope:
    if actor.has(Role.ADMIN):
        return Scope(everything=True)
    organisations: set[str] = set()
    if actor.organisation_id and (actor.has(Role.COORDINATOR) or actor.has(Role.ARCHIVIST)):
        organisations.add(actor.organisation_id)
    mediator = actor.id if actor.has(Role.MEDIATOR) else None
    return Scope(
        organisations=frozenset(organisations),
        mediator_id=mediator,
        mediator_organisation=actor.organisation_id if mediator else None,
    )


def may_read(actor: CaseActor, case: CaseState) -> bool:
    if actor.has(Role.ADMIN) or _coordinates(actor, case) or _mediates(actor, case):
        return True
    return actor.has(Role.ARCHIVIST) and actor.organisation_id in (
        case.holder_organisation_id,
        case.coordinator_organisation_id,
    )


def check_read(actor: CaseActor, case: CaseState) -> None:
    if not may_read(actor, case):
        raise case_not_found()


def check_intake(actor: CaseActor) -> None:
    """Staff intake (a case registered with a token): admin, coordinators, mediators."""
    if not (actor.has(Role.ADMIN) or actor.has(Role.COORDINATOR) or actor.has(Role.MEDIATOR)):
        raise forbidden("Only the admin, a coordinator or a mediator may register a case.")


def intake_organisation(actor: CaseActor, asked: str | None, default: str) -> str:
    """The organisation a staff member's case is registered (and numbered) in: their own;
    the admin may name one."""
    if actor.has(Role.ADMIN):
        return asked or actor.organisation_id or default
    if asked and asked != actor.organisation_id:
        raise forbidden("Staff register cases in their own organisation.")
    return actor.organisation_id or default


def check_action(
    actor: CaseActor, action: Action, case: CaseState, params: dict[str, Any]
) -> dict[str, Any]:
    """Refuse (403) an action the actor may not take on a case they may read; the
    parameters as the rules get them (a mediator takes a case for themselves)."""
    if actor.has(Role.ADMIN):
        return params
    coordinator, mediator = _coordinates(actor, case), _mediates(actor, case)
    allowed = {
        Action.ACCEPT: coordinator,
        Action.DISPATCH: coordinator,
        Action.TRANSFER: coordinator,
        Action.TAKE: mediator,
        Action.RETURN: mediator or coordinator,
        Action.CLOSE: mediator if case.state is State.MEDIATING else mediator or coordinator,
        Action.WITHDRAW: mediator or coordinator,
        Action.FOLLOW_UP: mediator or coordinator,
    }[action]
    if not allowed:
        raise forbidden(f"Your role may not '{action}' this case.")
    if action is Action.TAKE:
        if params.get("mediator_id") not in (None, actor.id):
            raise forbidden("A mediator takes a case for themselves.")
        return {**params, "mediator_id": actor.id}
    return params


def check_schedule(actor: CaseActor, case: CaseState) -> None:
    """Sessions: the case's own mediator, or the admin (403 for others who read it)."""
    if actor.has(Role.ADMIN):
        return
    if not (actor.has(Role.MEDIATOR) and case.mediator_id == actor.id):
        raise forbidden("Only the case's mediator (or the admin) schedules its sessions.")


def may_see_links(actor: CaseActor, case: CaseState) -> bool:
    """The sessions' links and the outbox (they hold the parties' invite links): the
    admin, the case's mediator, a coordinator of the case; not an archivist."""
    return actor.has(Role.ADMIN) or _coordinates(actor, case) or _mediates(actor, case)


def check_experts_read(actor: CaseActor) -> None:
    if not actor.is_staff:
        raise forbidden("Only staff may see the expert pool.")


def check_experts_write(actor: CaseActor) -> None:
    if not (actor.has(Role.ADMIN) or actor.has(Role.COORDINATOR)):
        raise forbidden("Only the admin or a coordinator may change the expert pool.")


def check_configure(actor: CaseActor) -> None:
    """The dispute taxonomy, the regions, an organisation's numbering and contact."""
    if not actor.has(Role.ADMIN):
        raise forbidden("Only the admin may change the case settings.")
