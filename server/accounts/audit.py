"""The audit log: who (an account, the admin token, an invite, the server) changed what,
and when.

Account changes write their entry in their own transaction (server/accounts/service.py),
so both commit or neither. Room changes (created, ended, invites made or withdrawn,
recordings started or stopped, the agreement sealed) are seen by `AuditProjection`, a
projection of the room store: it compares what a change did and writes the entries in
the room's own transaction. Who acted comes
from server/accounts/actor.py. A detail is small JSON: ids, roles, field names; never a
password, a token, a key or a name typed into the login field.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.server.accounts.actor import Actor, current
from tiaojie.server.db import Database
from tiaojie.server.db.schema import audit_log
from tiaojie.server.model import Room
from tiaojie.server.roles import Role
from tiaojie.server.store.base import Document

log = logging.getLogger(__name__)


class Action:
    """The actions the log names (docs/ACCOUNTS.md)."""

    ORGANISATION_CREATED = "organisation_created"
    ORGANISATION_CHANGED = "organisation_changed"
    ACCOUNT_CREATED = "account_created"
    ACCOUNT_CHANGED = "account_changed"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_ENABLED = "account_enabled"
    PASSWORD_RESET = "password_reset"
    PASSWORD_CHANGED = "password_changed"
    SESSIONS_REVOKED = "sessions_revoked"
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"
    LOGIN = "login"
    LOGOUT = "logout"
    LOGIN_FAILED = "login_failed"
    LOGIN_LOCKED = "login_locked"
    ROOM_CREATED = "room_created"
    ROOM_ENDED = "room_ended"
    ROOM_ENTERED = "room_entered"
    INVITE_CREATED = "invite_created"
    INVITE_REVOKED = "invite_revoked"
    RECORDING_STARTED = "recording_started"
    RECORDING_STOPPED = "recording_stopped"
    AGREEMENT_SEALED = "agreement_sealed"
    # cases (server/cases/), written in the case change's own transaction
    CASE_REGISTERED = "case_registered"
    CASE_CHANGED = "case_changed"
    CASE_ATTACHMENT_ADDED = "case_attachment_added"
    CASE_SESSION_SCHEDULED = "case_session_scheduled"
    CASE_SETTINGS_CHANGED = "case_settings_changed"
    EXPERT_ADDED = "expert_added"


ACTIONS = sorted(v for k, v in vars(Action).items() if k.isupper())


@dataclass(frozen=True)
class Entry:
    action: str
    target: str | None
    detail: dict[str, Any]


async def record(
    conn: AsyncConnection,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> None:
    """One entry, in the caller's transaction, by `actor` (default: who acts now)."""
    who = actor or current()
    await conn.execute(
        insert(audit_log).values(
            at=int(time.time()),
            actor_kind=str(who.kind),
            actor_id=who.id,
            action=action,
            target=target,
            detail=detail or {},
            address=(who.address or None) and who.address[:64],
        )
    )


async def entries(
    conn: AsyncConnection,
    *,
    action: str | None = None,
    actor_id: str | None = None,
    target: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The newest entries first, `limit` of them, older than entry `before`."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if actor_id is not None:
        query = query.where(audit_log.c.actor_id == actor_id)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    return [
        {
            "id": int(row["id"]),
            "at": int(row["at"]),
            "actor": {"kind": row["actor_kind"], "id": row["actor_id"]},
            "action": row["action"],
            "target": row["target"],
            "detail": row["detail"],
            "address": row["address"],
        }
        for row in (await conn.execute(query)).mappings()
    ]


# -- room changes ------------------------------------------------------------------------------
def _facts(room: Room) -> dict[str, Any]:
    """What the log cares about in a room."""
    agreement = room.agreement or {}
    return {
        "ended": room.ended,
        "recording": room.recording["id"] if room.recording else None,
        "agreement": (agreement.get("code"), agreement.get("status")),
        "invites": {
            i.invite_id: (str(i.role), i.revoked)
            for i in room.invites.values()
            if i.role is not Role.RECORDER  # the server's own, part of a recording
        },
    }


def room_changes(room_id: str, before: dict[str, Any], after: dict[str, Any]) -> list[Entry]:
    """The entries a change of a room makes (its facts before and after)."""
    found: list[Entry] = []
    in_room = {"room_id": room_id}
    for invite_id, (role, revoked) in after["invites"].items():
        old = before["invites"].get(invite_id)
        if old is None:
            found.append(Entry(Action.INVITE_CREATED, invite_id, {**in_room, "role": role}))
        if revoked and (old is None or not old[1]):
            found.append(Entry(Action.INVITE_REVOKED, invite_id, {**in_room, "role": role}))
    if before["recording"] != after["recording"]:
        if before["recording"] is not None:
            found.append(Entry(Action.RECORDING_STOPPED, before["recording"], in_room))
        if after["recording"] is not None:
            found.append(Entry(Action.RECORDING_STARTED, after["recording"], in_room))
    code, status = after["agreement"]
    if status == "signed" and before["agreement"] != after["agreement"]:
        found.append(Entry(Action.AGREEMENT_SEALED, code, in_room))
    if after["ended"] and not before["ended"]:
        found.append(Entry(Action.ROOM_ENDED, room_id, {}))
    return found


class AuditProjection:
    """The audit entries of every room change (a RoomProjection, server/store/base.py):
    written in the room's own transaction on the SQL store, so a change and its entries
    commit together or not at all; in one of their own on the memory store."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def room_written(
        self, conn: AsyncConnection | None, before: Document | None, after: Document
    ) -> None:
        room = Room.from_json(after)
        if before is None:
            detail = {"organisation_id": room.organisation_id, "owner_id": room.owner_id}
            found = [Entry(Action.ROOM_CREATED, room.id, detail)]
        else:
            found = room_changes(room.id, _facts(Room.from_json(before)), _facts(room))
        if not found:
            return
        if conn is not None:
            await _write(conn, found)
            return
        async with self.database.write() as own:
            await _write(own, found)


async def _write(conn: AsyncConnection, found: list[Entry]) -> None:
    for entry in found:
        await record(conn, entry.action, entry.target, entry.detail)
