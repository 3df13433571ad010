"""Who may do what with a case (server/cases/permissions.py), for every role and across
organisations; the queue each sees, on SQLite and PostgreSQL (the same rule as a query);
and the case routes for logged-in staff accounts of two organisations."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.support.case_staff import seed_case_staff
from tests.support.staff import StaffBrowser
from tests.test_accounts import Centre, centre, make_account  # noqa: F401 - the fixture
from tiaojie.server.cases import permissions
from tiaojie.server.cases.actor import ADMIN, CaseActor, CaseActorKind, StaffRole, resident
from tiaojie.server.cases.model import Party, PartyRole, Source
from tiaojie.server.cases.service import CASES, new_code
from tiaojie.server.cases.states import Action, CaseState, State
from tiaojie.server.cases.store import Filters, NewCase
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import new_id

CENTRE, OTHER = "org-centre-1", "org-centre-2"


def staff(id_: str, organisation: str, *roles: StaffRole) -> CaseActor:
    return CaseActor(CaseActorKind.ACCOUNT, id_, organisation, frozenset(roles))


COORDINATOR = staff("coordinator-a", CENTRE, StaffRole.COORDINATOR)
FOREIGN_COORDINATOR = staff("coordinator-b", OTHER, StaffRole.COORDINATOR)
MEDIATOR = staff("mediator-m1", CENTRE, StaffRole.MEDIATOR)
COLLEAGUE = staff("mediator-m2", CENTRE, StaffRole.MEDIATOR)
FOREIGN_MEDIATOR = staff("mediator-x", OTHER, StaffRole.MEDIATOR)
ARCHIVIST = staff("archivist-a", CENTRE, StaffRole.ARCHIVIST)
RESIDENT = resident("r-someone")


def allowed(actor: CaseActor, action: Action, case: CaseState) -> bool:
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
    await seed_case_staff(room_server)
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

    async def listed(actor: CaseActor) -> set[str]:
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


# -- the case routes, with staff accounts ------------------------------------------------------
async def test_the_case_routes_for_the_four_roles_and_two_organisations(centre: Centre) -> None:  # noqa: F811
    """Logged-in accounts of two organisations (tests/test_accounts.py `centre`) on every
    case route: who sees, changes, registers and configures what; the case log and the
    audit log name the account; cookie writes need the CSRF token, an API key does not."""
    srv = centre.srv
    org_a, org_b = centre.org_a["id"], centre.org_b["id"]
    ids = {login: account["id"] for login, account in centre.accounts.items()}
    coord_a, coord_b = centre["coordinator_a"], centre["coordinator_b"]
    med1, med2 = centre["mediator_a1"], centre["mediator_a2"]
    archivist, admin = centre["archivist_a"], centre["admin_a"]
    mediator_b = await make_account(srv, "mediator_b1", org_b, ["mediator"], name="赵调解员")
    med_b = StaffBrowser(srv.url)
    assert (await med_b.login("mediator_b1"))[0] == 201
    everyone = {
        "coordinator_a": coord_a,
        "coordinator_b": coord_b,
        "mediator_a1": med1,
        "mediator_a2": med2,
        "mediator_b1": med_b,
        "archivist_a": archivist,
        "admin_a": admin,
    }
    # Public reports go to A, the first organisation (nothing configured).
    status, config = await srv.admin("GET", "/api/case-config")
    assert config["intake_organisation_id"] == org_a
    status, receipt = await srv.request(
        "POST",
        "/api/cases",
        json={
            "name": "张秀兰",
            "phone": "13912345678",
            "dispute_type": "neighbourhood",
            "community": "900001001001",
            "description": "楼上漏水。",
        },
    )
    assert status == 201, receipt
    cid = receipt["case_id"]
    path = f"/api/cases/{cid}"

    async def readers() -> set[str]:
        seen = set()
        for login, who in everyone.items():
            status, listed = await who.request("GET", "/api/cases")
            assert status == 200, (login, listed)
            status, one = await who.request("GET", path)
            listed_it = cid in [c["case_id"] for c in listed["cases"]]
            assert listed_it is (status == 200), (login, status)  # the list is the rule
            if status == 200:
                seen.add(login)
            else:
                assert (status, one["error"]) == (404, "case_not_found"), login
        return seen

    async def act(who: StaffBrowser, action: str, **params: Any) -> tuple[int, Any]:
        return await who.request("POST", f"{path}/transitions", json={"action": action, **params})

    assert await readers() == {"coordinator_a", "archivist_a", "admin_a"}
    assert (await act(archivist, "accept"))[0] == 403
    assert (await act(coord_b, "accept"))[0] == 404
    assert (await act(med1, "accept"))[0] == 404
    status, case = await act(coord_a, "accept")
    assert status == 200 and case["state"] == "accepted"
    assert case["holder_organisation_name"] == "东城区人民调解委员会"
    # Dispatch names real people: no such mediator, a mediator of another organisation.
    status, body = await act(coord_a, "dispatch", mediator_id="nobody-at-all")
    assert status == 400 and "no enabled mediator" in body["message"]
    status, body = await act(
        coord_a, "dispatch", organisation_id=org_a, mediator_id=mediator_b["id"]
    )
    assert status == 400
    status, body = await act(coord_a, "dispatch", organisation_id="org-nowhere-1")
    assert status == 400 and "names no organisation" in body["message"]
    status, case = await act(coord_a, "dispatch", mediator_id=ids["mediator_a1"])
    assert status == 200 and case["mediator_id"] == ids["mediator_a1"]
    assert case["holder_organisation_id"] == org_a and case["mediator_name"] == "张三"
    assert await readers() == {"coordinator_a", "archivist_a", "admin_a", "mediator_a1"}
    status, case = await med1.request("GET", path)
    assert case["actions"] == ["take", "return", "withdraw"]
    assert (await act(med2, "take"))[0] == 404
    status, case = await act(med1, "take", mediator_id=ids["mediator_a2"])
    assert status == 403  # for themselves only
    status, case = await act(med1, "take")
    assert status == 200 and case["state"] == "mediating"
    assert (await act(coord_a, "close", outcome="success"))[0] == 403  # the mediator's
    # 转办 to organisation B: its coordinator and its mediators see it; A's centre keeps it.
    status, case = await act(coord_a, "transfer", organisation_id=org_b)
    assert status == 200 and case["holder_organisation_id"] == org_b
    assert await readers() == {
        "coordinator_a", "archivist_a", "admin_a", "coordinator_b", "mediator_b1",
    }  # fmt: skip
    assert (await act(med1, "take"))[0] == 404  # no longer theirs
    status, case = await act(med_b, "take")
    assert status == 200 and case["mediator_id"] == mediator_b["id"]
    status, case = await act(med_b, "close", outcome="success")
    assert status == 200 and case["state"] == "succeeded"
    status, case = await act(coord_b, "follow_up", note="电话回访")
    assert status == 200
    status, case = await act(admin, "close")
    assert status == 200 and case["state"] == "closed"

    # The log names each account; everything verifies.
    status, log = await archivist.request("GET", f"{path}/log")
    assert status == 200 and log["verification"]["authentic"] is True
    actors = [
        (e["event"]["kind"], e["event"]["actor"]["kind"], e["event"]["actor"]["id"])
        for e in log["entries"]
        if e["type"] == "event"
    ]
    assert actors[1:] == [
        ("accepted", "account", ids["coordinator_a"]),
        ("dispatched", "account", ids["coordinator_a"]),
        ("taken", "account", ids["mediator_a1"]),
        ("transferred", "account", ids["coordinator_a"]),
        ("taken", "account", mediator_b["id"]),
        ("closed", "account", mediator_b["id"]),
        ("followed_up", "account", ids["coordinator_b"]),
        ("closed", "account", ids["admin_a"]),
    ]
    assert actors[0][:2] == ("reported", "resident")
    # ... and the audit log each change by staff, in the change's transaction.
    status, audit = await srv.admin("GET", f"/api/audit?target={cid}")
    assert [(e["action"], e["actor"]["id"], e["detail"]["kind"]) for e in audit["entries"]][
        ::-1
    ] == [("case_changed", account, kind) for kind, _, account in actors[1:]]
    for who, expected in ((archivist, 200), (med1, 404), (med_b, 200), (coord_b, 200)):
        assert (await who.request("GET", f"{path}/dossier"))[0] == expected

    # Staff intake: in one's own organisation; archivists register nothing.
    staff_case = {
        "source": "grid_worker",
        "dispute_type": "labour",
        "region": "900001001",
        "description": "拖欠工资。",
        "parties": [{"role": "applicant", "name": "李建国"}],
    }
    status, made = await coord_a.request("POST", "/api/cases", json=staff_case)
    assert status == 201, made
    status, body = await med1.request("GET", f"/api/cases/{made['case_id']}")
    assert status == 404  # registered in A, not given to them
    status, body = await coord_a.request("GET", f"/api/cases/{made['case_id']}")
    assert body["organisation_id"] == org_a and body["reported_by"]["id"] == ids["coordinator_a"]
    status, _ = await coord_a.request(
        "POST", "/api/cases", json={**staff_case, "organisation_id": org_b}
    )
    assert status == 403
    assert (await archivist.request("POST", "/api/cases", json=staff_case))[0] == 403
    status, made_b = await admin.request(
        "POST", "/api/cases", json={**staff_case, "organisation_id": org_b}
    )
    assert status == 201
    status, body = await coord_b.request("GET", f"/api/cases/{made_b['case_id']}")
    assert status == 200 and body["organisation_id"] == org_b
    status, _ = await srv.admin(
        "POST", "/api/cases", json={**staff_case, "organisation_id": "org-nowhere-1"}
    )
    assert status == 400

    # Cookie writes need the CSRF token; an API key of the account needs none.
    status, body = await coord_a.request(
        "POST", f"/api/cases/{made['case_id']}/transitions", json={"action": "accept"}, csrf=False
    )
    assert (status, body["error"]) == (403, "csrf_failed")
    status, key = await coord_a.request("POST", "/api/keys", json={"label": "队列脚本"})
    status, body = await srv.request(
        "POST", f"/api/cases/{made['case_id']}/transitions", key["key"], json={"action": "accept"}
    )
    assert status == 200 and body["state"] == "accepted"
    # An invite token is no staff credential.
    room = await srv.create_room()
    invite = await srv.create_invite(room["id"], "mediator", "李调解员")
    status, body = await srv.request("GET", "/api/cases", invite["token"])
    assert status == 403

    # The expert pool: staff read it; coordinators and admins add to it.
    expert = {"name": "周律师", "specialties": ["劳动争议"]}
    for who, expected in ((coord_a, 201), (admin, 201), (med1, 403), (archivist, 403)):
        assert (await who.request("POST", "/api/experts", json=expert))[0] == expected
    for who in everyone.values():
        assert (await who.request("GET", "/api/experts"))[0] == 200
    status, directory = await med1.request("GET", "/api/case-staff")
    assert status == 200
    assert {o["id"] for o in directory["organisations"]} == {org_a, org_b}
    assert {m["id"] for m in directory["mediators"]} == {
        ids["mediator_a1"],
        ids["mediator_a2"],
        mediator_b["id"],
    }
    # The settings: admins (token or account) only; the organisation must exist.
    settings = "/api/case-config/organisations/"
    assert (await coord_a.request("PUT", "/api/case-config", json={}))[0] == 403
    status, body = await admin.request("PUT", settings + org_b, json={"short_name": "西"})
    assert status == 200 and body["name"] == "西城区人民调解委员会" and body["short_name"] == "西"
    status, body = await admin.request("PUT", settings + org_b, json={"name": "改名"})
    assert status == 400  # the organisation's own name is changed where it lives
    assert (await admin.request("PUT", settings + "org-nowhere-1", json={}))[0] == 400
    status, made_b2 = await admin.request(
        "POST", "/api/cases", json={**staff_case, "organisation_id": org_b}
    )
    assert re.fullmatch(r"（\d{4}）西调字第0002号", made_b2["case_number"])
    status, audit = await srv.admin("GET", "/api/audit?action=case_settings_changed")
    assert [e["target"] for e in audit["entries"]] == [org_b]
    status, audit = await srv.admin("GET", "/api/audit?action=case_registered")
    assert len(audit["entries"]) == 3  # staff intake only: not the resident's report
    await med_b.close()
