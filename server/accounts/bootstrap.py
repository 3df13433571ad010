"""`tiaojie create-admin`: the first admin account, straight into the database (the
server may be running or not), in the organisation named, made if there is none.

The password comes from the prompt or stdin, never the command line (where `ps` and the
shell history would keep it); it is checked like the API checks it, and only its hash is
stored.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tiaojie.server.accounts.actor import Actor, ActorKind, acting
from tiaojie.server.accounts.model import Account, Organisation
from tiaojie.server.accounts.schemas import LOGIN, PASSWORD
from tiaojie.server.accounts.service import Accounts
from tiaojie.server.db import Database, DatabaseUrl
from tiaojie.server.db.migrate import migrate
from tiaojie.server.errors import TiaojieError
from tiaojie.server.schemas import NAME
from tiaojie.server.validation import validate


@dataclass(frozen=True)
class AdminRequest:
    login: str
    name: str
    organisation: str | None
    password: str

    def checked(self) -> AdminRequest:
        """The request with its name normalised; ValueError naming what is wrong."""
        try:
            login = validate(LOGIN, self.login, "the login")
            name = validate(NAME, self.name, "--name")
            password = validate(PASSWORD, self.password, "the password")
            organisation = (
                validate({**NAME, "maxLength": 200}, self.organisation, "--organisation")
                if self.organisation is not None
                else None
            )
        except TiaojieError as error:
            raise ValueError(error.message) from None
        return AdminRequest(login, name, organisation, password)


def create_admin(url: DatabaseUrl, request: AdminRequest) -> tuple[Account, Organisation, bool]:
    """Migrate the database, then make the admin (TiaojieError: login taken, a name
    refused; DatabaseError: the database cannot be used)."""
    if url.kind == "memory":
        raise ValueError("memory: keeps nothing: name the server's database (--database)")

    async def run() -> tuple[Account, Organisation, bool]:
        database = Database(url)
        try:
            await migrate(database)
            accounts = Accounts(database)
            with acting(Actor(ActorKind.CLI)):
                return await accounts.create_admin(
                    request.login, request.name, request.organisation, request.password
                )
        finally:
            await database.close()

    return asyncio.run(run())
