"""Staff accounts over the REST API, on SQLite and on a real PostgreSQL server: the
permission matrix of the four roles, CSRF, the login lockout, logout (here and
everywhere), API keys, sessions across a restart, passwords never shown or logged, the
audit log, and `tiaojie create-admin`. The browser side is tests/test_browser_staff.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import argon2
import pytest

from tests.conftest import PRODUCTION_HASHER, LiveServer, restart_server, start_server
from tests.support.staff import PASSWORD, StaffBrowser
from tiaojie.server.accounts.actor import Actor, ActorKind, acting
from tiaojie.server.accounts.audit import AuditProjection, entries
from tiaojie.server.db import Database, parse_database_url
from tiaojie.server.db.migrate import migrate
from tiaojie.server.model import Room, new_id, now
from tiaojie.server.store import MemoryRoomStore

TIAOJIE = [sys.executable, "-m", "tiaojie"]


@dataclass
class Centre:
    """Two organisations and their staff (each logged in, in a browser of their own)."""

    srv: LiveServer
    org_a: dict[str, Any]
    org_b: dict[str, Any]
    accounts: dict[str, dict[str, Any]]
    browsers: dict[str, StaffBrowser]

    def __getitem__(self, who: str) -> StaffBrowser:
        return self.browsers[who]


STAFF = {
    # name: (organisation, roles)
    "mediator_a1": ("a", ["mediator"]),
    "mediator_a2": ("a", ["mediator"]),
    "coordinator_a": ("a", ["coordinator"]),
    "archivist_a": ("a", ["archivist"]),
    "coordinator_b": ("b", ["coordinator"]),
    "admin_a": ("a", ["admin"]),
}


async def make_account(
    srv: LiveServer, login: str, organisation_id: str, roles: list[str], name: str = "张三"
) -> dict[str, Any]:
    status, body = await srv.admin(
        "POST",
        "/api/accounts",
        json={
            "login": login,
            "name": name,
            "organisation_id": organisation_id,
            "roles": roles,
            "password": PASSWORD,
        },
    )
    assert status == 201, body
    return body


async def make_organisation(srv: LiveServer, name: str) -> dict[str, Any]:
    status, body = await srv.admin("POST", "/api/organisations", json={"name": name})
    assert status == 201, body
    return body


async def staff_of(srv: LiveServer) -> Centre:
    org_a = await make_organisation(srv, "东城区人民调解委员会")
    org_b = await make_organisation(srv, "西城区人民调解委员会")
    made: dict[str, dict[str, Any]] = {}
    browsers: dict[str, StaffBrowser] = {}
    for login, (org, roles) in STAFF.items():
        organisation = org_a if org == "a" else org_b
        made[login] = await make_account(srv, login, organisation["id"], roles)
        browsers[login] = StaffBrowser(srv.url)
        status, body = await browsers[login].login(login)
        assert status == 201, body
    return Centre(srv, org_a, org_b, made, browsers)


@pytest.fixture
async def centre(room_server: LiveServer) -> AsyncIterator[Centre]:
    made = await staff_of(room_server)
    yield made
    for browser in made.browsers.values():
        await browser.close()


def sqlite_file(srv: LiveServer) -> Path:
    settings = srv.state.settings
    path = parse_database_url(settings.database_url, settings.data_dir).path
    assert path is not None
    return path


def ids(body: dict[str, Any]) -> list[str]:
    return [room["id"] for room in body["rooms"]]


# -- the permission matrix -------------------------------------------------------------------------
async def test_the_four_roles_across_the_room_api(centre: Centre) -> None:
    srv = centre.srv
    med1, med2 = centre["mediator_a1"], centre["mediator_a2"]
    coord_a, coord_b = centre["coordinator_a"], centre["coordinator_b"]
    archivist, admin = centre["archivist_a"], centre["admin_a"]

    # A mediator creates rooms; they are theirs, in their organisation.
    status, r1 = await med1.request("POST", "/api/rooms", json={"title": "邻里纠纷"})
    assert status == 201, r1
    assert r1["owner_id"] == centre.accounts["mediator_a1"]["id"]
    assert r1["organisation_id"] == centre.org_a["id"] and r1["owner_name"] == "张三"
    status, r2 = await med2.request("POST", "/api/rooms", json={"title": "物业纠纷"})
    assert status == 201
    r0 = await srv.create_room(title="管理员的调解室")  # the admin token, as before
    assert "owner_id" not in r0

    # Neither an archivist nor a coordinator creates rooms; nor names an owner.
    for who in (archivist, coord_a):
        status, body = await who.request("POST", "/api/rooms", json={"title": "x"})
        assert status == 403 and body["error"] == "forbidden"
    status, _ = await med1.request(
        "POST", "/api/rooms", json={"title": "x", "owner_id": r2["owner_id"]}
    )
    assert status == 403

    # Who sees which rooms.
    assert ids((await med1.request("GET", "/api/rooms"))[1]) == [r1["id"]]
    assert ids((await med2.request("GET", "/api/rooms"))[1]) == [r2["id"]]
    assert ids((await coord_a.request("GET", "/api/rooms"))[1]) == [r1["id"], r2["id"]]
    assert ids((await coord_b.request("GET", "/api/rooms"))[1]) == []
    assert ids((await admin.request("GET", "/api/rooms"))[1]) == [r1["id"], r2["id"], r0["id"]]
    assert ids((await srv.admin("GET", "/api/rooms"))[1]) == [r1["id"], r2["id"], r0["id"]]
    status, body = await archivist.request("GET", "/api/rooms")
    assert status == 403
    # Another's room is answered as no room at all.
    for who, room in ((med2, r1), (med1, r2), (coord_b, r1), (archivist, r1), (med1, r0)):
        status, body = await who.request("GET", f"/api/rooms/{room['id']}")
        assert (status, body["error"]) == (404, "room_not_found"), body
    status, body = await coord_a.request("GET", f"/api/rooms/{r1['id']}")
    assert status == 200 and body["title"] == "邻里纠纷" and body["invites"] == []

    # Invites: the owner (not a mediator invite), not a colleague, not a coordinator.
    party = {"role": "party", "name": "申请人", "expires_in": 3600}
    status, invite = await med1.request("POST", f"/api/rooms/{r1['id']}/invites", json=party)
    assert status == 201 and invite["url"].startswith(f"{srv.url}/join#token=")
    status, _ = await med2.request("POST", f"/api/rooms/{r1['id']}/invites", json=party)
    assert status == 404
    status, _ = await coord_a.request("POST", f"/api/rooms/{r1['id']}/invites", json=party)
    assert status == 403
    status, _ = await med1.request(
        "POST", f"/api/rooms/{r1['id']}/invites", json={**party, "role": "mediator"}
    )
    assert status == 403
    path = f"/api/rooms/{r1['id']}/invites/{invite['invite_id']}"
    assert (await coord_a.request("DELETE", path))[0] == 403
    assert (await med2.request("DELETE", path))[0] == 404
    status, revoked = await med1.request("DELETE", path)
    assert status == 200 and revoked["revoked"] is True

    # The owner enters as the room's mediator without an invite link.
    status, entry = await med1.request("POST", f"/api/rooms/{r1['id']}/enter")
    assert status == 201 and entry["role"] == "mediator" and entry["name"] == "张三"
    mediator = await srv.join(entry)
    welcome = await mediator.wait_for("welcome")
    assert welcome["participant"]["role"] == "mediator"
    status, again = await med1.request("POST", f"/api/rooms/{r1['id']}/enter")
    assert status == 201 and again["invite_id"] == entry["invite_id"]  # one per account
    for who in (med2, coord_a, archivist):
        status, _ = await who.request("POST", f"/api/rooms/{r1['id']}/enter")
        assert status in (403, 404)
    status, body = await srv.admin("POST", f"/api/rooms/{r1['id']}/enter")
    assert status == 403  # the admin token makes a mediator invite instead
    # Its powers stay bound to its room: the entry token is refused elsewhere.
    status, body = await srv.request("GET", f"/api/rooms/{r2['id']}", entry["token"])
    assert (status, body["error"]) == (403, "token_wrong_room")

    # The archive: archivists and owners, not coordinators; an archivist of A reads A.
    for who, expected in ((archivist, 200), (med1, 200), (coord_a, 403), (admin, 200)):
        assert (await who.request("GET", "/api/recordings"))[0] == expected
        assert (await who.request("GET", "/api/agreements"))[0] == expected

    # Ending: a coordinator cannot, the owner can; then the room is ended for all.
    assert (await coord_a.request("DELETE", f"/api/rooms/{r1['id']}"))[0] == 403
    status, ended = await med1.request("DELETE", f"/api/rooms/{r1['id']}")
    assert status == 200 and ended["status"] == "ended"
    status, body = await med1.request("POST", f"/api/rooms/{r1['id']}/enter")
    assert (status, body["error"]) == (410, "room_ended")
    status, body = await med1.request("GET", f"/api/rooms/{r1['id']}")
    assert status == 200 and body["status"] == "ended"  # staff still see it

    # The admin token still does everything, and an admin account too.
    await srv.create_invite(r2["id"], "mediator", "李调解员")
    status, _ = await admin.request("POST", f"/api/rooms/{r2['id']}/invites", json=party)
    assert status == 201


async def test_an_admin_names_a_rooms_owner(centre: Centre) -> None:
    srv = centre.srv
    mediator = centre.accounts["mediator_a2"]
    status, room = await srv.admin(
        "POST", "/api/rooms", json={"title": "指派的调解室", "owner_id": mediator["id"]}
    )
    assert status == 201 and room["id"]
    assert ids((await centre["mediator_a2"].request("GET", "/api/rooms"))[1]) == [room["id"]]
    status, body = await srv.admin(
        "POST",
        "/api/rooms",
        json={"title": "x", "owner_id": centre.accounts["coordinator_a"]["id"]},
    )
    assert (status, body["error"]) == (409, "not_a_mediator")
    status, body = await srv.admin(
        "POST", "/api/rooms", json={"title": "x", "organisation_id": "no-such-organisation"}
    )
    assert (status, body["error"]) == (404, "organisation_not_found")


# -- CSRF ------------------------------------------------------------------------------------------
async def test_cookie_writes_need_the_csrf_token_and_bearer_keys_do_not(centre: Centre) -> None:
    med = centre["mediator_a1"]
    body = {"title": "CSRF"}
    status, refused = await med.request("POST", "/api/rooms", json=body, csrf=False)
    assert (status, refused["error"]) == (403, "csrf_failed")
    status, refused = await med.request(
        "POST", "/api/rooms", json=body, csrf=False, headers={"X-CSRF-Token": "forged"}
    )
    assert (status, refused["error"]) == (403, "csrf_failed")
    status, _ = await med.request("DELETE", "/api/session", csrf=False)
    assert status == 403  # nor a logout
    assert (await centre.srv.admin("GET", "/api/rooms"))[1]["rooms"] == []  # nothing made
    # The token GET /api/session gives is the one that works.
    status, who = await med.request("GET", "/api/session")
    assert status == 200 and who["csrf_token"] == med.csrf and who["via"] == "session"
    status, room = await med.request("POST", "/api/rooms", json=body)
    assert status == 201, room
    # Another session's token is not this session's.
    other = StaffBrowser(centre.srv.url)
    try:
        await other.login("mediator_a1")
        assert other.csrf != med.csrf
        status, _ = await med.request(
            "POST", "/api/rooms", json=body, csrf=False, headers={"X-CSRF-Token": other.csrf}
        )
        assert status == 403
    finally:
        await other.close()
    # A script with an API key sends no CSRF token (and no cookie).
    status, key = await med.request("POST", "/api/keys", json={"label": "脚本"})
    assert status == 201
    status, room = await centre.srv.request("POST", "/api/rooms", key["key"], json=body)
    assert status == 201 and room["owner_id"] == centre.accounts["mediator_a1"]["id"]


# -- the login lockout -----------------------------------------------------------------------------
class Clock:
    """The accounts' time, moved on by the test (a lockout ends without waiting for it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def strict_server(database_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """A server that locks a login after 3 failures, an address after 8, for 60 s; its
    accounts' clock is the test's."""
    live = await start_server(
        tmp_path / "data",
        database_url=database_url,
        login_failures=3,
        login_address_failures=8,
        login_lockout=60,
    )
    live.state.accounts.clock = Clock()
    yield live
    await live.close()
    await live.server.close()


async def test_a_login_is_locked_after_failures_until_the_lockout_ends(strict_server) -> None:
    srv = strict_server
    org = await make_organisation(srv, "调解中心")
    await make_account(srv, "wang", org["id"], ["mediator"])
    browser = StaffBrowser(srv.url)
    try:
        answers = []
        for login in ("wang", "nobody"):  # an account, and a login no account has
            for _ in range(3):
                status, body = await browser.login(login, "wrong password")
                answers.append((status, body))
        # Failures look alike whether or not the login exists.
        assert {(s, b["error"], b["message"]) for s, b in answers} == {
            (401, "login_failed", "Wrong login or password.")
        }
        # Locked: the right password is refused too, until the lockout ends.
        status, locked = await browser.login("wang")
        assert (status, locked["error"]) == (429, "login_locked")
        retry_after = int(browser.last_headers["Retry-After"])
        assert 55 <= retry_after <= 60
        status, unknown = await browser.login("nobody", "anything at all")
        assert (status, unknown["error"], unknown["message"]) == (
            429,
            "login_locked",
            locked["message"],
        )
        assert browser.cookie() is None
        srv.state.accounts.clock.now += retry_after - 1
        assert (await browser.login("wang"))[0] == 429  # a second before the end
        srv.state.accounts.clock.now += 1
        status, body = await browser.login("wang")
        assert status == 201, body
        # The address counted every failure: two more lock it, whatever the login.
        for login in ("li", "zhou"):
            assert (await browser.login(login, "wrong password"))[0] == 401
        status, body = await browser.login("zheng", "never tried before")
        assert (status, body["error"]) == (429, "login_locked")
    finally:
        await browser.close()
    status, audit = await srv.admin("GET", "/api/audit?action=login_locked")
    assert status == 200
    whats = sorted(e["detail"]["what"] for e in audit["entries"])
    assert whats == ["address", "login", "login"]
    status, audit = await srv.admin("GET", "/api/audit?action=login_failed")
    assert len(audit["entries"]) == 8
    assert all(e["actor"]["kind"] == "anonymous" and e["address"] for e in audit["entries"])
    assert "nobody" not in str(audit) and "wrong password" not in str(audit)


@pytest.mark.parametrize(
    ("options", "headers", "secure"),
    [
        ({}, {}, False),
        ({"public_url": "https://mediation.example.org"}, {}, True),
        ({"trusted_proxies": "127.0.0.1"}, {"X-Forwarded-Proto": "https"}, True),
        ({"trusted_proxies": "127.0.0.1"}, {"X-Forwarded-Proto": "http"}, False),
        ({}, {"X-Forwarded-Proto": "https"}, False),  # not from a trusted proxy: ignored
    ],
    ids=["http", "https-public-url", "https-proxy", "http-proxy", "untrusted-proxy"],
)
async def test_the_session_cookie_is_httponly_strict_and_secure_behind_https(
    tmp_path: Path, options: dict[str, str], headers: dict[str, str], secure: bool
) -> None:
    """HttpOnly and SameSite=Strict always; Secure when the page came over HTTPS (the
    public URL is https://, or a trusted proxy says so), not over plain HTTP, where a
    browser would refuse to send it back."""
    srv = await start_server(tmp_path / "data", database_url="memory:", **options)
    browser = StaffBrowser(srv.url)
    try:
        org = await make_organisation(srv, "调解中心")
        await make_account(srv, "wang", org["id"], ["mediator"])
        status, body = await browser.request(
            "POST",
            "/api/session",
            json={"login": "wang", "password": PASSWORD},
            headers=headers,
        )
        assert status == 201, body
        cookie = SimpleCookie(browser.last_headers["Set-Cookie"])["tiaojie_session"]
        assert cookie["httponly"] is True and cookie["samesite"] == "Strict"
        assert cookie["path"] == "/"
        assert bool(cookie["secure"]) is secure, browser.last_headers["Set-Cookie"]
    finally:
        await browser.close()
        await srv.shutdown()


# -- passwords never shown -------------------------------------------------------------------------
async def test_passwords_and_hashes_are_never_in_responses_or_logs(
    room_server: LiveServer, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    srv = room_server
    secrets_seen: list[str] = []
    org = await make_organisation(srv, "调解中心")
    account = await make_account(srv, "zhao", org["id"], ["mediator", "admin"])
    browser = StaffBrowser(srv.url)
    try:
        answers = [account]
        answers.append((await browser.login("zhao", "a wrong password"))[1])
        answers.append((await browser.login("zhao"))[1])
        answers.append((await browser.request("GET", "/api/session"))[1])
        answers.append((await browser.request("GET", "/api/accounts"))[1])
        answers.append((await browser.request("GET", f"/api/accounts/{account['id']}"))[1])
        new_password = "another long passphrase"
        answers.append(
            (
                await browser.request(
                    "POST",
                    "/api/session/password",
                    json={"current_password": PASSWORD, "new_password": new_password},
                )
            )[1]
        )
        reset = "reset by the admin 123"
        answers.append(
            (
                await srv.admin(
                    "POST", f"/api/accounts/{account['id']}/password", json={"password": reset}
                )
            )[1]
        )
        answers.append((await srv.admin("GET", "/api/audit"))[1])
        secrets_seen += [PASSWORD, new_password, reset, "a wrong password"]
    finally:
        await browser.close()
    text = str(answers) + caplog.text
    for secret in secrets_seen:
        assert secret not in text
    assert "argon2" not in text and "password_hash" not in text
    # What the database keeps: argon2id hashes, never the password.
    if srv.database == "sqlite":
        with sqlite3.connect(sqlite_file(srv)) as db:
            (stored,) = db.execute(
                "SELECT password_hash FROM accounts WHERE login = 'zhao'"
            ).fetchone()
        assert stored.startswith("$argon2id$") and reset not in stored


# -- sessions --------------------------------------------------------------------------------------
async def test_sessions_survive_a_restart(database_url: str, tmp_path: Path) -> None:
    srv = await start_server(tmp_path / "data", database_url=database_url)
    browser = StaffBrowser(srv.url)
    try:
        org = await make_organisation(srv, "调解中心")
        await make_account(srv, "sun", org["id"], ["mediator"])
        await browser.login("sun")
        status, room = await browser.request("POST", "/api/rooms", json={"title": "重启前"})
        assert status == 201
        srv = await restart_server(srv, database_url=database_url)
        browser.base_url = srv.url  # a new port, the same cookie
        status, who = await browser.request("GET", "/api/session")
        assert status == 200 and who["account"]["login"] == "sun"
        assert who["csrf_token"] == browser.csrf
        assert ids((await browser.request("GET", "/api/rooms"))[1]) == [room["id"]]
    finally:
        await browser.close()
        await srv.close()
        await srv.server.close()


async def test_logout_and_logout_everywhere(centre: Centre) -> None:
    srv = centre.srv
    here = centre["mediator_a1"]
    there = StaffBrowser(srv.url)
    third = StaffBrowser(srv.url)
    try:
        await there.login("mediator_a1")
        await third.login("mediator_a1")
        status, key = await here.request("POST", "/api/keys", json={"label": "脚本"})
        assert status == 201
        # Logging out ends this browser's session only.
        status, body = await third.request("DELETE", "/api/session")
        assert status == 200 and body["logged_out"] is True and third.cookie() is None
        status, _ = await third.request("GET", "/api/session")
        assert status == 401
        assert (await here.request("GET", "/api/session"))[0] == 200
        # Everywhere: every session of the account ends; its API keys are not sessions.
        status, body = await here.request("DELETE", "/api/sessions")
        assert status == 200 and body["sessions_ended"] == 2
        for browser in (here, there):
            status, body = await browser.request("GET", "/api/rooms")
            assert (status, body["error"]) == (401, "token_missing")
        assert (await srv.request("GET", "/api/rooms", key["key"]))[0] == 200
        # The admin ends someone's sessions, and a password reset does too.
        await here.login("mediator_a1")
        status, body = await srv.admin(
            "DELETE", f"/api/accounts/{centre.accounts['mediator_a1']['id']}/sessions"
        )
        assert status == 200 and body["sessions_ended"] == 1
        assert (await here.request("GET", "/api/session"))[0] == 401
    finally:
        await there.close()
        await third.close()


# -- API keys --------------------------------------------------------------------------------------
async def test_api_keys_are_shown_once_kept_hashed_and_refused_once_revoked(
    centre: Centre,
) -> None:
    srv = centre.srv
    med = centre["mediator_a1"]
    account_id = centre.accounts["mediator_a1"]["id"]
    status, made = await med.request("POST", "/api/keys", json={"label": "日程同步"})
    assert status == 201 and made["key"].startswith("tjk1.") and made["label"] == "日程同步"
    text = made["key"]
    status, listed = await med.request("GET", "/api/keys")
    assert status == 200 and [k["id"] for k in listed["keys"]] == [made["id"]]
    assert text not in str(listed) and "key" not in listed["keys"][0]
    status, by_admin = await srv.admin("GET", f"/api/accounts/{account_id}/keys")
    assert status == 200 and text not in str(by_admin)
    # Stored as the sha256 of its secret.
    if srv.database == "sqlite":
        with sqlite3.connect(sqlite_file(srv)) as db:
            rows = db.execute("SELECT * FROM api_keys").fetchall()
        assert text not in str(rows) and text.split(".")[2] not in str(rows)
        assert hashlib.sha256(text.split(".")[2].encode()).hexdigest() in str(rows)
    # It acts with the account's roles: a mediator's rooms, not the admin's routes.
    status, who = await srv.request("GET", "/api/session", text)
    assert status == 200 and who["via"] == "api_key" and who["csrf_token"] is None
    status, room = await srv.request("POST", "/api/rooms", text, json={"title": "脚本建的"})
    assert status == 201 and room["owner_id"] == account_id
    assert (await srv.request("GET", "/api/accounts", text))[0] == 403
    # A forged key, then the revoked key, are refused.
    forged = text[:-4] + ("AAAA" if not text.endswith("AAAA") else "BBBB")
    status, body = await srv.request("GET", "/api/rooms", forged)
    assert (status, body["error"]) == (401, "token_invalid")
    status, _ = await centre["mediator_a2"].request("DELETE", f"/api/keys/{made['id']}")
    assert status == 404  # not theirs
    status, revoked = await med.request("DELETE", f"/api/keys/{made['id']}")
    assert status == 200 and revoked["revoked_at"] is not None
    status, body = await srv.request("GET", "/api/rooms", text)
    assert (status, body["error"]) == (401, "token_invalid")
    # A disabled account's keys and sessions stop working.
    status, second = await med.request("POST", "/api/keys", json={"label": "二号"})
    status, _ = await srv.admin("PATCH", f"/api/accounts/{account_id}", json={"disabled": True})
    assert status == 200
    assert (await srv.request("GET", "/api/rooms", second["key"]))[0] == 401
    assert (await med.request("GET", "/api/session"))[0] == 401
    status, body = await med.login("mediator_a1")
    assert (status, body["error"]) == (403, "account_disabled")


# -- admin -----------------------------------------------------------------------------------------
async def test_admins_manage_accounts_and_read_the_audit_log(centre: Centre) -> None:
    srv = centre.srv
    admin = centre["admin_a"]
    admin_id = centre.accounts["admin_a"]["id"]
    med_id = centre.accounts["mediator_a2"]["id"]
    # An admin account: list, change roles, reset a password, rename.
    status, listed = await admin.request("GET", "/api/accounts")
    assert status == 200 and len(listed["accounts"]) == len(STAFF)
    status, changed = await admin.request(
        "PATCH", f"/api/accounts/{med_id}", json={"roles": ["mediator", "coordinator"]}
    )
    assert status == 200 and changed["roles"] == ["coordinator", "mediator"]
    status, body = await admin.request(
        "POST", f"/api/accounts/{med_id}/password", json={"password": "a brand new password"}
    )
    assert status == 200
    assert (await centre["mediator_a2"].request("GET", "/api/session"))[0] == 401
    assert (await centre["mediator_a2"].login("mediator_a2", "a brand new password"))[0] == 201
    # Not their own admin role, not their own account.
    status, body = await admin.request(
        "PATCH", f"/api/accounts/{admin_id}", json={"roles": ["mediator"]}
    )
    assert (status, body["error"]) == (409, "own_account")
    status, body = await admin.request(
        "PATCH", f"/api/accounts/{admin_id}", json={"disabled": True}
    )
    assert (status, body["error"]) == (409, "own_account")
    # The same login twice; an unknown organisation.
    status, body = await admin.request(
        "POST",
        "/api/accounts",
        json={
            "login": "MEDIATOR_A1",
            "name": "重名",
            "organisation_id": centre.org_a["id"],
            "password": PASSWORD,
        },
    )
    assert (status, body["error"]) == (409, "login_taken")
    # Organisations.
    status, orgs = await admin.request("GET", "/api/organisations")
    assert [o["name"] for o in orgs["organisations"]] == [
        "东城区人民调解委员会",
        "西城区人民调解委员会",
    ]
    status, org = await admin.request(
        "PATCH", f"/api/organisations/{centre.org_b['id']}", json={"short_name": "西城调委会"}
    )
    assert status == 200 and org["short_name"] == "西城调委会"
    # Only admins.
    for who in ("mediator_a1", "coordinator_a", "archivist_a"):
        for path in ("/api/accounts", "/api/organisations", "/api/audit"):
            assert (await centre[who].request("GET", path))[0] == 403
    # The audit log: who did what, filtered and paged.
    status, page = await admin.request("GET", f"/api/audit?account={admin_id}&limit=2")
    assert status == 200 and len(page["entries"]) == 2
    assert [e["action"] for e in page["entries"]] == ["organisation_changed", "password_reset"]
    status, older = await admin.request(
        "GET", f"/api/audit?account={admin_id}&limit=2&before={page['next_before']}"
    )
    assert [e["action"] for e in older["entries"]] == ["account_changed", "login"]
    assert older["entries"][0]["detail"] == {
        "fields": ["roles"],
        "roles": ["coordinator", "mediator"],
    }
    status, made = await srv.admin("GET", "/api/audit?action=account_created")
    assert len(made["entries"]) == len(STAFF)
    assert {e["actor"]["kind"] for e in made["entries"]} == {"admin-token"}
    assert (await srv.admin("GET", "/api/audit?limit=many"))[0] == 400


async def test_every_room_action_is_in_the_audit_log(centre: Centre) -> None:
    srv = centre.srv
    med = centre["mediator_a1"]
    med_id = centre.accounts["mediator_a1"]["id"]
    _, room = await med.request("POST", "/api/rooms", json={"title": "审计"})
    party = {"role": "party", "name": "申请人"}
    _, invite = await med.request("POST", f"/api/rooms/{room['id']}/invites", json=party)
    expert = await srv.create_invite(room["id"], "expert", "律师")  # the admin token
    await med.request("DELETE", f"/api/rooms/{room['id']}/invites/{invite['invite_id']}")
    _status, entry = await med.request("POST", f"/api/rooms/{room['id']}/enter")
    # the mediator, inside the room, ends it over signalling: the invite acts
    inside = await srv.join(entry)
    await inside.wait_for("room_state")
    ack = await inside.call("end_room", {})
    assert ack["ok"] is True, ack
    await inside.wait_for("closed")  # the room's end is done
    _, log = await srv.admin("GET", "/api/audit?limit=200")
    found = [
        (e["action"], e["target"], e["actor"]["kind"], e["actor"]["id"])
        for e in reversed(log["entries"])
        if e["target"] in (room["id"], invite["invite_id"], expert["invite_id"], entry["invite_id"])
    ]
    assert found == [
        ("room_created", room["id"], "account", med_id),
        ("invite_created", invite["invite_id"], "account", med_id),
        ("invite_created", expert["invite_id"], "admin-token", None),
        ("invite_revoked", invite["invite_id"], "account", med_id),
        ("invite_created", entry["invite_id"], "account", med_id),
        ("room_entered", room["id"], "account", med_id),
        ("room_ended", room["id"], "invite", entry["invite_id"]),
    ]


async def test_recordings_and_agreements_are_audited_by_the_room_store(tmp_path) -> None:
    """The store's audit projection sees a recording start and stop and an agreement sealed, and
    writes them with whoever acts (the server itself when nobody asked)."""
    database = Database(parse_database_url("memory:", tmp_path))
    await migrate(database)
    store = MemoryRoomStore((AuditProjection(database),))
    room = Room(id=new_id(), title="录像", lobby=True, max_participants=4, created_at=now())
    try:
        with acting(Actor(ActorKind.INVITE, "mediator-invite")):
            await store.create(room)
            await store.update(room.id, lambda r: setattr(r, "recording", {"id": "rec_1"}))
            await store.update(
                room.id,
                lambda r: setattr(r, "agreement", {"code": "c0de", "status": "sealing"}),
            )
            await store.update(
                room.id,
                lambda r: setattr(r, "agreement", {"code": "c0de", "status": "signed"}),
            )
        await store.update(room.id, lambda r: setattr(r, "recording", None))  # a crash
        async with database.read() as conn:
            found = await entries(conn, limit=10)
    finally:
        await database.close()
    assert [(e["action"], e["target"], e["actor"]["kind"]) for e in reversed(found)] == [
        ("room_created", room.id, "invite"),
        ("recording_started", "rec_1", "invite"),
        ("agreement_sealed", "c0de", "invite"),
        ("recording_stopped", "rec_1", "server"),
    ]


# -- tiaojie create-admin, memory: -----------------------------------------------------------------
def test_create_admin_from_the_command_line_then_log_in(tmp_path) -> None:
    data = tmp_path / "data"
    weak = subprocess.run(
        [*TIAOJIE, "create-admin", "boss", "--name", "刘主任", "--password-stdin", "--data", data],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert weak.returncode == 2 and "at least 10" in weak.stderr and "short" not in weak.stdout
    made = subprocess.run(
        [
            *TIAOJIE,
            "create-admin",
            "boss",
            "--name",
            "刘主任",
            "--organisation",
            "朝阳区调解中心",
            "--password-stdin",
            "--data",
            str(data),
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert "admin account boss" in made.stdout and "朝阳区调解中心 (new)" in made.stdout
    assert PASSWORD not in made.stdout + made.stderr
    # The command hashes at production cost (RFC 9106's second recommendation), the cost
    # the product's hasher has (servers in this test process hash at a test-only cost).
    assert PRODUCTION_HASHER.type is argon2.Type.ID
    production = argon2.profiles.RFC_9106_LOW_MEMORY
    for name in ("time_cost", "memory_cost", "parallelism", "hash_len", "salt_len"):
        assert getattr(PRODUCTION_HASHER, name) == getattr(production, name), name
    with sqlite3.connect(data / "tiaojie.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM accounts WHERE login = 'boss'").fetchone()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), stored
    assert PRODUCTION_HASHER.verify(stored, PASSWORD)
    again = subprocess.run(
        [*TIAOJIE, "create-admin", "BOSS", "--name", "刘", "--password-stdin", "--data", data],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "Another account has this login" in again.stderr

    async def log_in() -> None:
        srv = await start_server(data)
        browser = StaffBrowser(srv.url)
        try:
            status, who = await browser.login("boss")
            assert status == 201, who
            assert who["account"]["roles"] == ["admin"] and who["account"]["name"] == "刘主任"
            assert who["organisation"]["name"] == "朝阳区调解中心"
            status, log = await browser.request("GET", "/api/audit?action=account_created")
            assert [e["actor"]["kind"] for e in log["entries"]] == ["cli"]
        finally:
            await browser.close()
            await srv.close()
            await srv.server.close()

    asyncio.run(log_in())


async def test_accounts_work_on_the_memory_store(tmp_path) -> None:
    srv = await start_server(tmp_path / "data", database_url="memory:")
    browser = StaffBrowser(srv.url)
    try:
        org = await make_organisation(srv, "调解中心")
        await make_account(srv, "qian", org["id"], ["mediator"])
        assert (await browser.login("qian"))[0] == 201
        status, room = await browser.request("POST", "/api/rooms", json={"title": "内存"})
        assert status == 201 and room["owner_id"]
        assert ids((await browser.request("GET", "/api/rooms"))[1]) == [room["id"]]
    finally:
        await browser.close()
        await srv.close()
        await srv.server.close()
