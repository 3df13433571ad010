"""Who may do what with a case (server/cases/permissions.py), for every role and across
organisations, as staff accounts will map onto Actors; and the queue each sees, on SQLite
and PostgreSQL (the same rule as a query)."""

from __future__ import annotations

import time

import pytest

from tiaojie.server.cases import permissions
from tiaojie.server.cases.actor import ADMIN, Actor, ActorKind, StaffRole, resident
from tiaojie.server.cases.model import Party, PartyRole, Source
from tiaojie.server.cases.service import CASES, new_code
from tiaojie.server.cases.states import Action, CaseState, State
from tiaojie.server.cases.store import Filters, NewCase
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import new_id

CENTRE, OTHER = "org-centre-1", "org-centre-2"


def staff(id_: str, organisation: str, *roles: StaffRole) -> Actor:
    return Actor(ActorKind.ACCOUNT, id_, organisation, frozenset(roles))


COORDINATOR = staff("coordinator-a", CENTRE, StaffRole.COORDINATOR)
FOREIGN_COORDINATOR = staff("coordinator-b", OTHER, StaffRole.COORDINATOR)
MEDIATOR = staff("mediator-m1", CENTRE, StaffRole.MEDIATOR)
COLLEAGUE = staff("mediator-m2", CENTRE, StaffRole.MEDIATOR)
FOREIGN_MEDIATOR = staff("mediator-x", OTHER, StaffRole.MEDIATOR)
ARCHIVIST = staff("archivist-a", CENTRE, StaffRole.ARCHIVIST)
RESIDENT = resident("r-someone")


def allowed(actor: Actor, action: Action, case: CaseState) -> bool:
    if not permissions.may_read(actor, case):
        return False
    try:
        permissions.check_action(actor, action, case, {})
    except TiaojieError as error:
        assert error.status == 403
        return False
    return True


REPORTED = CaseState(State.REPORTED, CENTRE, CENTRE)
TO_ORGANISATION = CaseState(State.DISPATCHED, CENTRE, CENTRE)
TO_MEDIATOR = CaseState(State.DISPATCHED, CENTRE, CENTRE, "mediator-m1")
MEDIATING = CaseState(State.MEDIATING, CENTRE, CENTRE, "mediator-m1")
FOLLOWING_UP = CaseState(State.FOLLOWING_UP, CENTRE, CENTRE, "mediator-m1")
TRANSFERRED = CaseState(State.MEDIATING, OTHER, CENTRE, "mediator-x")


@pytest.mark.parametrize(
    ("actor", "action", "case", "expected"),
    [
        # The admin may do everything.
        *[(ADMIN, a, c, True) for a in Action for c in (REPORTED, MEDIATING)],
        # A coordinator: the cases its organisation holds or coordinates.
        (COORDINATOR, Action.ACCEPT, REPORTED, True),
        (COORDINATOR, Action.DISPATCH, REPORTED, True),
        (COORDINATOR, Action.TRANSFER, MEDIATING, True),
        (COORDINATOR, Action.TAKE, TO_ORGANISATION, False),
        (COORDINATOR, Action.CLOSE, MEDIATING, False),  # the outcome is the mediator's
        (COORDINATOR, Action.CLOSE, FOLLOWING_UP, True),
        (COORDINATOR, Action.WITHDRAW, TRANSFERRED, True),  # coordinated by its centre
        (FOREIGN_COORDINATOR, Action.ACCEPT, REPORTED, False),
        (FOREIGN_COORDINATOR, Action.TRANSFER, TRANSFERRED, True),  # now held by it
        # A mediator: their own cases, or those waiting in their organisation.
        (MEDIATOR, Action.TAKE, TO_ORGANISATION, True),
        (COLLEAGUE, Action.TAKE, TO_ORGANISATION, True),
        (MEDIATOR, Action.TAKE, TO_MEDIATOR, True),
        (COLLEAGUE, Action.TAKE, TO_MEDIATOR, False),  # dispatched to someone else
        (FOREIGN_MEDIATOR, Action.TAKE, TO_ORGANISATION, False),
        (MEDIATOR, Action.RETURN, TO_MEDIATOR, True),
        (MEDIATOR, Action.CLOSE, MEDIATING, True),
        (MEDIATOR, Action.FOLLOW_UP, FOLLOWING_UP, True),
        (MEDIATOR, Action.ACCEPT, REPORTED, False),
        (MEDIATOR, Action.DISPATCH, MEDIATING, False),
        (COLLEAGUE, Action.CLOSE, MEDIATING, False),
        (FOREIGN_MEDIATOR, Action.CLOSE, TRANSFERRED, True),
        (MEDIATOR, Action.CLOSE, TRANSFERRED, False),  # transferred away from them
        # An archivist reads, never acts; a resident neither.
        *[(ARCHIVIST, a, MEDIATING, False) for a in Action],
        *[(RESIDENT, a, c, False) for a in Action for c in (REPORTED, MEDIATING)],
    ],
)
def test_the_permission_matrix(actor, action, case, expected):
    assert allowed(actor, action, case) is expected


def test_who_reads_a_case():
    assert permissions.may_read(ARCHIVIST, MEDIATING)
    assert permissions.may_read(ARCHIVIST, TRANSFERRED)  # coordinated by its centre
    assert not permissions.may_read(staff("archivist-b", OTHER, StaffRole.ARCHIVIST), MEDIATING)
    assert not permissions.may_read(COLLEAGUE, MEDIATING)
    assert permissions.may_read(COLLEAGUE, TO_ORGANISATION)
    assert not permissions.may_read(RESIDENT, REPORTED)
    with pytest.raises(TiaojieError) as refused:
        permissions.check_read(FOREIGN_MEDIATOR, MEDIATING)
    assert (refused.value.status, refused.value.code) == (404, "case_not_found")


def test_a_mediator_takes_a_case_only_for_themselves():
    params = permissions.check_action(MEDIATOR, Action.TAKE, TO_ORGANISATION, {})
    assert params["mediator_id"] == "mediator-m1"
    with pytest.raises(TiaojieError) as refused:
        permissions.check_action(MEDIATOR, Action.TAKE, TO_ORGANISATION, {"mediator_id": "x" * 8})
    assert refused.value.status == 403


def test_who_registers_cases_and_where():
    for actor in (ADMIN, COORDINATOR, MEDIATOR):
        permissions.check_intake(actor)
    for actor in (ARCHIVIST, RESIDENT):
        with pytest.raises(TiaojieError):
            permissions.check_intake(actor)
    assert permissions.intake_organisation(ADMIN, OTHER, CENTRE) == OTHER
    assert permissions.intake_organisation(COORDINATOR, None, "org-default") == CENTRE
    with pytest.raises(TiaojieError):
        permissions.intake_organisation(COORDINATOR, OTHER, CENTRE)
    permissions.check_experts_write(COORDINATOR)
    with pytest.raises(TiaojieError):
        permissions.check_experts_write(MEDIATOR)
    permissions.check_experts_read(ARCHIVIST)
    with pytest.raises(TiaojieError):
        permissions.check_experts_read(RESIDENT)
    with pytest.raises(TiaojieError):
        permissions.check_configure(COORDINATOR)


async def test_each_role_lists_only_what_it_may_read(room_server):
    """The queue's scope is the same rule as `may_read`, as SQL, on both databases."""
    store = room_server.app[CASES].store
    new = NewCase(
        Source.COURT, "contract", "900001001", "合同纠纷", [Party(PartyRole.APPLICANT, "甲")]
    )

    async def case(organisation: str, *steps: tuple[Action, dict]) -> str:
        made = await store.create(
            NewCase(**{**vars(new), "organisation_id": organisation}),
            ADMIN,
            new_id(),
            new_code(),
            [],
            time.time(),
        )
        for action, params in steps:
            await store.transition(made.id, ADMIN, action, params, time.time())
        return made.id

    accept = (Action.ACCEPT, {})
    reported = await case(CENTRE)
    to_organisation = await case(CENTRE, accept, (Action.DISPATCH, {"organisation_id": CENTRE}))
    to_mediator = await case(CENTRE, accept, (Action.DISPATCH, {"mediator_id": "mediator-m1"}))
    transferred = await case(
        CENTRE, accept, (Action.TRANSFER, {"organisation_id": OTHER, "mediator_id": "mediator-x"})
    )
    elsewhere = await case(OTHER)
    everything = {reported, to_organisation, to_mediator, transferred, elsewhere}

    async def listed(actor: Actor) -> set[str]:
        found, _ = await store.list(
            permissions.read_scope(actor), Filters(), int(time.time()), 100, None
        )
        return {c.id for c in found}

    assert await listed(ADMIN) == everything
    assert await listed(COORDINATOR) == everything - {elsewhere}
    assert await listed(ARCHIVIST) == everything - {elsewhere}
    assert await listed(FOREIGN_COORDINATOR) == {transferred, elsewhere}
    assert await listed(MEDIATOR) == {to_organisation, to_mediator}
    assert await listed(COLLEAGUE) == {to_organisation}
    assert await listed(FOREIGN_MEDIATOR) == {transferred}
    assert await listed(RESIDENT) == set()
    # and every case each lists is one it may read
    for actor in (COORDINATOR, MEDIATOR, COLLEAGUE, FOREIGN_MEDIATOR, ARCHIVIST):
        for case_id in await listed(actor):
            found = await store.get(case_id)
            assert found is not None and permissions.may_read(actor, found.rules)
