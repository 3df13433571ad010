"""Organisations and mediator accounts with the ids the case tests name (a case goes only
to an organisation and a mediator that exist), made straight in the server's database.

The accounts cannot log in (their password hash is no hash); tests that log in make
accounts over the API (tests/test_accounts.py `make_account`)."""

from __future__ import annotations

import time

from tests.conftest import LiveServer
from tiaojie.server.accounts import directory
from tiaojie.server.accounts.model import Account, Organisation, StaffRole
from tiaojie.server.cases.actor import ADMIN
from tiaojie.server.cases.service import CASES

#: organisation id -> its mediators' account ids
ORGANISATIONS = {
    "org-mediation-1": ["mediator-li", "mediator-zhao", "mediator-zhou"],
    "org-mediation-2": ["mediator-wang"],
    "org-centre-1": ["mediator-m1", "mediator-m2"],
    "org-centre-2": ["mediator-x"],
}


async def seed_case_staff(srv: LiveServer, *, intake: str = "org-default") -> None:
    """ORGANISATIONS and their mediators; public reports stay with `intake` (the
    placeholder organisation, as on a server with no organisation, unless told)."""
    cases = srv.app[CASES]
    now = int(time.time())
    async with cases.database.write() as conn:
        for n, (organisation_id, mediators) in enumerate(ORGANISATIONS.items()):
            name = f"第{n + 1}人民调解委员会"
            await directory.add_organisation(
                conn, Organisation(organisation_id, name, name, now + n)
            )
            for mediator_id in mediators:
                account = Account(
                    id=mediator_id,
                    login=mediator_id,
                    name=f"调解员{mediator_id[-2:]}",
                    organisation_id=organisation_id,
                    roles=frozenset({StaffRole.MEDIATOR}),
                    disabled=False,
                    created_at=now,
                    password_changed_at=now,
                )
                await directory.add_account(conn, account, "no-password")
    await cases.store.put_config({"intake_organisation_id": intake}, ADMIN)
