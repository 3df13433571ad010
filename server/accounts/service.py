"""`Accounts`: every operation on organisations, accounts, sessions and API keys, each one
transaction with its audit entry, and who a session cookie or an API key belongs to.

Who may call which operation is the REST layer's business (server/accounts/http.py);
these methods check what the data itself demands (a login is free, an organisation
exists, an admin does not lock themself out). Database failures become the 503 of
server/db/database.py and change nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts import audit, directory, lockout, tokens
from tiaojie.server.accounts.actor import Actor, ActorKind
from tiaojie.server.accounts.audit import Action
from tiaojie.server.accounts.lockout import LoginPolicy
from tiaojie.server.accounts.model import (
    Account,
    ApiKey,
    Organisation,
    StaffRole,
    normal_login,
    sorted_roles,
)
from tiaojie.server.accounts.passwords import Passwords
from tiaojie.server.accounts.tokens import SessionPolicy, StaffSession
from tiaojie.server.db import Database
from tiaojie.server.db.database import FAILURES, unavailable
from tiaojie.server.db.migrate import migrate
from tiaojie.server.errors import TiaojieError, forbidden, not_found
from tiaojie.server.model import new_id
from tiaojie.server.names import check_name
from tiaojie.server.ratelimit import RateLimit
from tiaojie.server.roles import Role

log = logging.getLogger(__name__)

#: The organisation `tiaojie create-admin` makes when there is none.
DEFAULT_ORGANISATION = "调解中心"
#: Password checks one address may start a second (after a burst): each costs 0.1 s of
#: CPU and 64 MiB (server/accounts/passwords.py); the lockout counts the failures.
LOGIN_RATE = 2.0
LOGIN_BURST = 30


def login_failed() -> TiaojieError:
    return TiaojieError("login_failed", "Wrong login or password.", 401)


def login_locked(seconds: int) -> TiaojieError:
    minutes = max(1, math.ceil(seconds / 60))
    return TiaojieError(
        "login_locked",
        f"Too many failed logins: try again in {minutes} minute(s).",
        429,
        headers={"Retry-After": str(max(1, seconds))},
    )


def account_not_found() -> TiaojieError:
    return not_found("account_not_found", "No such account.")


def organisation_not_found() -> TiaojieError:
    return not_found("organisation_not_found", "No such organisation.")


class Accounts:
    def __init__(
        self,
        database: Database,
        *,
        login_policy: LoginPolicy | None = None,
        session_policy: SessionPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.login_policy = login_policy or LoginPolicy()
        self.session_policy = session_policy or SessionPolicy()
        self.passwords = Passwords()
        #: The time (seconds): sessions, keys, lockouts (tests move it on).
        self.clock = clock
        self._login_rate = RateLimit("login attempts", LOGIN_RATE, LOGIN_BURST)

    def now(self) -> int:
        return int(self.clock())

    async def open(self) -> None:
        """`memory:` has nobody else to migrate its database (the SQL room store does)."""
        if self.database.kind == "memory":
            await migrate(self.database)

    async def close(self) -> None:
        await self.database.close()

    # -- transactions ------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.database.write() as conn:
                yield conn
        except IntegrityError as error:  # two writers made the same login at once
            log.info("refused a change that breaks a constraint: %s", error.orig)
            raise TiaojieError("conflict", "That conflicts with a change just made.", 409) from None
        except FAILURES as error:
            log.error("database error: %s", error)
            raise unavailable() from None

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.database.read() as conn:
                yield conn
        except FAILURES as error:
            log.error("database error: %s", error)
            raise unavailable() from None

    async def record(
        self, action: str, target: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        """An audit entry of its own (what changed was kept elsewhere)."""
        async with self._write() as conn:
            await audit.record(conn, action, target, detail)

    # -- who is calling ----------------------------------------------------------------------------
    async def by_session(self, token: str) -> tuple[Account, StaffSession] | None:
        """The enabled account of a live session cookie; the session is used now."""
        now = self.now()
        async with self._read() as conn:
            session = await tokens.find_session(conn, token, now, self.session_policy)
            account = await directory.account(conn, session.account_id) if session else None
        if session is None or account is None or account.disabled:
            return None
        if now - session.last_seen_at >= self.session_policy.touch:
            async with self._write() as conn:
                await tokens.touch_session(conn, session.id, now)
        return account, session

    async def by_key(self, text: str) -> tuple[Account, ApiKey] | None:
        """The enabled account of a genuine, unrevoked API key."""
        now = self.now()
        async with self._read() as conn:
            key = await tokens.find_key(conn, text)
            account = await directory.account(conn, key.account_id) if key else None
        if key is None or account is None or account.disabled:
            return None
        if key.last_used_at is None or now - key.last_used_at >= self.session_policy.touch:
            async with self._write() as conn:
                await tokens.mark_key_used(conn, key.id, now)
        return account, key

    # -- logging in and out ------------------------------------------------------------------------
    def _lock_keys(self, login: str, address: str) -> list[str]:
        keys = [lockout.login_key(login)]
        if self.login_policy.address_failures:
            keys.append(lockout.address_key(address))
        return keys

    async def login(
        self, login_text: str, password: str, address: str
    ) -> tuple[str, StaffSession, Account]:
        """A new session for the right password: (cookie token, session, account).

        Refused alike whether or not the login exists (401 `login_failed`, 429
        `login_locked` with Retry-After, as long as that login or address is locked);
        a disabled account's right password gets 403 `account_disabled`."""
        self._login_rate.take(address)
        login = normal_login(login_text)
        keys = self._lock_keys(login, address)
        async with self._read() as conn:
            locked = await lockout.locked_for(conn, keys, self.now())
            found = await directory.with_password(conn, login)
        if locked:
            raise login_locked(locked)
        stored = found[1] if found else None
        if not await self.passwords.verify(stored, password) or found is None:
            await self._failed(found[0] if found else None, keys, address)
            raise login_failed()
        account = found[0]
        if account.disabled:
            raise TiaojieError("account_disabled", "This account is disabled.", 403)
        actor = Actor(ActorKind.ACCOUNT, account.id, address)
        now = self.now()
        async with self._write() as conn:
            locked = await lockout.locked_for(conn, keys, now)  # a failure meanwhile
            if locked:
                raise login_locked(locked)
            await lockout.clear(conn, keys[0])
            await tokens.purge_sessions(conn, now, self.session_policy)
            token, session = await tokens.open_session(
                conn, account.id, address, now, self.session_policy
            )
            await audit.record(conn, Action.LOGIN, account.id, {}, actor)
        return token, session, account

    async def _failed(self, account: Account | None, keys: list[str], address: str) -> None:
        policy = self.login_policy
        now = self.now()
        actor = Actor(ActorKind.ANONYMOUS, None, address)
        target = account.id if account else None
        async with self._write() as conn:
            await audit.record(
                conn, Action.LOGIN_FAILED, target, {"known_login": account is not None}, actor
            )
            if await lockout.record_failure(conn, keys[0], policy.failures, now, policy):
                detail = {"what": "login", "seconds": policy.lockout}
                await audit.record(conn, Action.LOGIN_LOCKED, target, detail, actor)
            if len(keys) > 1 and await lockout.record_failure(
                conn, keys[1], policy.address_failures, now, policy
            ):
                detail = {"what": "address", "seconds": policy.lockout}
                await audit.record(conn, Action.LOGIN_LOCKED, None, detail, actor)

    async def logout(self, session_id: str, account_id: str) -> None:
        async with self._write() as conn:
            await tokens.close_session(conn, session_id)
            await audit.record(conn, Action.LOGOUT, account_id)

    async def logout_everywhere(self, account_id: str) -> int:
        """End every session of the account; how many there were."""
        async with self._write() as conn:
            closed = await tokens.close_sessions(conn, account_id)
            await audit.record(conn, Action.SESSIONS_REVOKED, account_id, {"sessions": closed})
        return closed

    # -- organisations -----------------------------------------------------------------------------
    async def create_organisation(self, name: str, short_name: str) -> Organisation:
        made = Organisation(new_id(), name, short_name, self.now())
        async with self._write() as conn:
            await directory.add_organisation(conn, made)
            await audit.record(conn, Action.ORGANISATION_CREATED, made.id)
        return made

    async def organisations(self) -> list[Organisation]:
        async with self._read() as conn:
            return await directory.all_organisations(conn)

    async def organisation(self, organisation_id: str) -> Organisation:
        async with self._read() as conn:
            found = await directory.organisation(conn, organisation_id)
        if found is None:
            raise organisation_not_found()
        return found

    async def change_organisation(
        self, organisation_id: str, changes: dict[str, Any]
    ) -> Organisation:
        async with self._write() as conn:
            if await directory.organisation(conn, organisation_id) is None:
                raise organisation_not_found()
            if changes:
                await directory.change_organisation(conn, organisation_id, changes)
                detail = {"fields": sorted(changes)}
                await audit.record(conn, Action.ORGANISATION_CHANGED, organisation_id, detail)
            found = await directory.organisation(conn, organisation_id)
        assert found is not None
        return found

    # -- accounts ----------------------------------------------------------------------------------
    async def create_account(
        self,
        login_text: str,
        name: str,
        organisation_id: str,
        roles: frozenset[StaffRole],
        password: str,
    ) -> Account:
        login = normal_login(login_text)
        check_name(name, Role.MEDIATOR)  # a person's name, not one of the system's labels
        hashed = await self.passwords.hash(password)
        now = self.now()
        account = Account(new_id(), login, name, organisation_id, roles, False, now, now)
        async with self._write() as conn:
            if await directory.organisation(conn, organisation_id) is None:
                raise organisation_not_found()
            if await directory.login_taken(conn, login):
                raise TiaojieError("login_taken", "Another account has this login.", 409)
            await directory.add_account(conn, account, hashed)
            detail = {"organisation_id": organisation_id, "roles": sorted_roles(roles)}
            await audit.record(conn, Action.ACCOUNT_CREATED, account.id, detail)
        return account

    async def account(self, account_id: str) -> Account:
        async with self._read() as conn:
            found = await directory.account(conn, account_id)
        if found is None:
            raise account_not_found()
        return found

    async def accounts(self, organisation_id: str | None = None) -> list[Account]:
        async with self._read() as conn:
            return await directory.all_accounts(conn, organisation_id)

    async def names(self, ids: set[str]) -> dict[str, str]:
        """Display names of accounts by id (the owners of listed rooms)."""
        async with self._read() as conn:
            found = await directory.accounts_by_id(conn, ids)
        return {account_id: account.name for account_id, account in found.items()}

    async def change_account(
        self, account_id: str, changes: dict[str, Any], by: Account | None
    ) -> Account:
        """Change name, roles, organisation, disabled (`by`: the admin account doing it;
        None for the admin token). An admin cannot disable themself or drop their own
        admin role (409 `own_account`): the admin token stays for that."""
        if "name" in changes:
            check_name(changes["name"], Role.MEDIATOR)
        drops_admin = "roles" in changes and StaffRole.ADMIN not in changes["roles"]
        if by is not None and by.id == account_id and (changes.get("disabled") or drops_admin):
            raise TiaojieError(
                "own_account",
                "You cannot disable your own account or take away your own admin role.",
                409,
            )
        async with self._write() as conn:
            before = await directory.account(conn, account_id)
            if before is None:
                raise account_not_found()
            organisation_id = changes.get("organisation_id")
            if organisation_id is not None and (
                await directory.organisation(conn, organisation_id) is None
            ):
                raise organisation_not_found()
            old = before.public()
            new = {**old, **changes}
            if "roles" in changes:
                new["roles"] = sorted_roles(changes["roles"])
            changed = sorted(k for k in changes if new[k] != old[k])
            if changed:
                await directory.change_account(conn, account_id, changes)
            if "disabled" in changed:
                action = Action.ACCOUNT_DISABLED if new["disabled"] else Action.ACCOUNT_ENABLED
                await audit.record(conn, action, account_id)
                if new["disabled"]:
                    await tokens.close_sessions(conn, account_id)
            others = [k for k in changed if k != "disabled"]
            if others:
                detail: dict[str, Any] = {"fields": others}
                if "roles" in others:
                    detail["roles"] = new["roles"]
                await audit.record(conn, Action.ACCOUNT_CHANGED, account_id, detail)
            after = await directory.account(conn, account_id)
        assert after is not None
        return after

    async def reset_password(self, account_id: str, password: str) -> Account:
        """A new password set by an admin: every session of the account ends."""
        hashed = await self.passwords.hash(password)
        async with self._write() as conn:
            if await directory.account(conn, account_id) is None:
                raise account_not_found()
            await directory.change_account(
                conn, account_id, {"password_hash": hashed, "password_changed_at": self.now()}
            )
            closed = await tokens.close_sessions(conn, account_id)
            await audit.record(conn, Action.PASSWORD_RESET, account_id, {"sessions": closed})
            account = await directory.account(conn, account_id)
        assert account is not None
        return account

    async def change_own_password(
        self, account: Account, current: str, new: str, keep_session: str | None
    ) -> None:
        """The account holder's new password, given the current one; their other
        sessions end. A wrong current password counts towards the login's lockout."""
        keys = [lockout.login_key(account.login)]
        async with self._read() as conn:
            locked = await lockout.locked_for(conn, keys, self.now())
            stored = await directory.password_hash(conn, account.id)
        if locked:
            raise login_locked(locked)
        if not await self.passwords.verify(stored, current):
            await self._failed(account, keys, "")
            raise TiaojieError("password_wrong", "The current password is wrong.", 403)
        hashed = await self.passwords.hash(new)
        async with self._write() as conn:
            await directory.change_account(
                conn, account.id, {"password_hash": hashed, "password_changed_at": self.now()}
            )
            closed = await tokens.close_sessions(conn, account.id, keep=keep_session)
            await audit.record(conn, Action.PASSWORD_CHANGED, account.id, {"sessions": closed})

    # -- API keys ----------------------------------------------------------------------------------
    async def create_key(self, account: Account, label: str) -> tuple[ApiKey, str]:
        async with self._write() as conn:
            key, text = await tokens.make_key(conn, account.id, label, self.now())
            await audit.record(conn, Action.API_KEY_CREATED, key.id, {"account_id": account.id})
        return key, text

    async def keys(self, account_id: str) -> list[ApiKey]:
        async with self._read() as conn:
            return await tokens.keys_of(conn, account_id)

    async def revoke_key(self, key_id: str, by: Account | None) -> ApiKey:
        """Revoke a key: its owner or an admin (`by` None: the admin token)."""
        async with self._write() as conn:
            key = await tokens.key(conn, key_id)
            if key is None or (by is not None and not by.admin and key.account_id != by.id):
                raise not_found("api_key_not_found", "No such API key (or not yours).")
            if key.revoked_at is None:
                await tokens.revoke_key(conn, key_id, self.now())
                detail = {"account_id": key.account_id}
                await audit.record(conn, Action.API_KEY_REVOKED, key_id, detail)
            revoked = await tokens.key(conn, key_id)
        assert revoked is not None
        return revoked

    # -- the audit log -----------------------------------------------------------------------------
    async def audit(self, **query: Any) -> list[dict[str, Any]]:
        async with self._read() as conn:
            return await audit.entries(conn, **query)

    # -- the first admin ---------------------------------------------------------------------------
    async def create_admin(
        self, login: str, name: str, organisation: str | None, password: str
    ) -> tuple[Account, Organisation, bool]:
        """An admin account in the organisation named `organisation` (made if there is none
        of that name; None: the first organisation, or DEFAULT_ORGANISATION made anew).
        Returns the account, its organisation and whether the organisation is new."""
        wanted = organisation or DEFAULT_ORGANISATION
        existing = await self.organisations()
        found = [o for o in existing if o.name == wanted] or (
            existing[:1] if organisation is None else []
        )
        made = not found
        chosen = found[0] if found else await self.create_organisation(wanted, wanted[:32])
        admin = await self.create_account(
            login, name, chosen.id, frozenset({StaffRole.ADMIN}), password
        )
        return admin, chosen, made


def forbidden_without_account() -> TiaojieError:
    return forbidden("This needs a staff account (log in, or use the account's API key).")
