"""Cases in the database: registering, changing, reading and listing them, and their log.

Every change is one write transaction that holds the case (PostgreSQL: its row `FOR
UPDATE`; SQLite: the write lock), checks who acts and what the rules allow, writes the
new state with `version` raised under `WHERE version = :old`, and appends the change to
the case's log (an `event` and a signed `checkpoint`, tiaojie.archive.caselog) in the same
transaction: a change is never without its log entry, nor an entry without its change.
A refusal raises inside the transaction, which rolls back: nothing changed.
Database failures become the 503 `database_unavailable`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import and_, false, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tiaojie.archive.caselog import report_digest
from tiaojie.archive.chain import GENESIS, canonical, case_chain_name, make_entry
from tiaojie.server.accounts import audit, directory
from tiaojie.server.accounts.audit import Action as Audit
from tiaojie.server.cases import counts, numbering, permissions, regions, staff, taxonomy
from tiaojie.server.cases.actor import CaseActor
from tiaojie.server.cases.model import Attachment, Case, Party, PartyRole, Risk, Source
from tiaojie.server.cases.permissions import Scope, case_not_found
from tiaojie.server.cases.settings import (
    DEFAULT_ORGANISATION,
    OrganisationSettings,
    organisation_settings,
)
from tiaojie.server.cases.states import FOLLOW_UP_PENDING, OPEN_STATES, Action, State, plan
from tiaojie.server.cases.tables import (
    case_attachments,
    case_config,
    case_log,
    case_parties,
    case_settings,
    cases,
)
from tiaojie.server.db import Database
from tiaojie.server.db.database import FAILURES, unavailable
from tiaojie.server.errors import TiaojieError, bad_request
from tiaojie.server.model import new_id

log = logging.getLogger(__name__)


@contextmanager
def guarded() -> Iterator[None]:
    """Database failures as the 503 every client understands (the transaction rolled back)."""
    try:
        yield
    except FAILURES as error:
        log.error("database error: %s", error)
        raise unavailable() from None


@dataclass(frozen=True)
class CaseConfig:
    dispute_types: list[dict[str, Any]] = field(default_factory=lambda: taxonomy.DEFAULT_TYPES)
    regions: list[dict[str, Any]] = field(default_factory=lambda: regions.DEFAULT_REGIONS)
    intake_organisation_id: str = DEFAULT_ORGANISATION

    def to_dict(self) -> dict[str, Any]:
        return {
            "dispute_types": self.dispute_types,
            "regions": self.regions,
            "intake_organisation_id": self.intake_organisation_id,
        }


@dataclass(frozen=True)
class NewCase:
    """A case to register, as validated at the edge."""

    source: Source
    dispute_type: str
    region_code: str
    description: str
    parties: list[Party]
    risk_level: Risk = Risk.UNASSESSED
    organisation_id: str | None = None


@dataclass(frozen=True)
class Filters:
    states: tuple[State, ...] = ()
    dispute_type: str | None = None
    region: str | None = None
    overdue: bool | None = None
    organisation_id: str | None = None
    mediator_id: str | None = None
    #: "overdue": closed with an outcome, not followed up, past `follow_up_due_at` (回访)
    follow_up: str | None = None


#: Told of the events about to be appended to a case's log, in their transaction (the
#: connection, the case, the events, the log sequence number of the first, the time):
#: the notifications' outbox (server/notifications/events.py) is written so.
CaseListener = Callable[[AsyncConnection, Case, list[dict[str, Any]], int, float], Awaitable[None]]


class CaseStore:
    def __init__(self, database: Database, key: Ed25519PrivateKey) -> None:
        self.database = database
        self.key = key
        self.listeners: list[CaseListener] = []
        #: days from closing with an outcome to the follow-up (TIAOJIE_NOTIFY_FOLLOW_UP_DAYS)
        self.follow_up_days = 30

    # -- configuration ---------------------------------------------------------------------
    async def config(self, conn: AsyncConnection | None = None) -> CaseConfig:
        if conn is None:
            with guarded():
                async with self.database.read() as conn:
                    return await self.config(conn)
        rows = (await conn.execute(select(case_config))).mappings().all()
        values = {row["name"]: row["value"] for row in rows}
        if "intake_organisation_id" not in values:
            values["intake_organisation_id"] = await staff.first_organisation(conn)
        return CaseConfig(
            **{k: v for k, v in values.items() if k in CaseConfig.__dataclass_fields__}
        )

    async def put_config(self, changes: dict[str, Any], actor: CaseActor) -> CaseConfig:
        now = int(time.time())
        with guarded():
            async with self.database.write() as conn:
                if "intake_organisation_id" in changes:
                    await staff.check_organisation(conn, changes["intake_organisation_id"])
                if actor.audited:
                    await audit.record(
                        conn, Audit.CASE_SETTINGS_CHANGED, None, {"fields": sorted(changes)}
                    )
                for name, value in changes.items():
                    await _upsert(
                        conn, case_config, {"name": name}, {"value": value, "updated_at": now}
                    )
                return await self.config(conn)

    async def organisation(
        self, organisation_id: str, conn: AsyncConnection | None = None
    ) -> OrganisationSettings:
        if conn is None:
            with guarded():
                async with self.database.read() as conn:
                    return await self.organisation(organisation_id, conn)
        query = select(case_settings.c.settings).where(
            case_settings.c.organisation_id == organisation_id
        )
        stored = (await conn.execute(query)).scalar_one_or_none() or {}
        real = await directory.organisation(conn, organisation_id)
        return organisation_settings(organisation_id, real, stored)

    async def put_organisation(
        self, organisation_id: str, changes: dict[str, Any], actor: CaseActor
    ) -> OrganisationSettings:
        with guarded():
            async with self.database.write() as conn:
                real = await staff.check_organisation(conn, organisation_id)
                if real is not None and "name" in changes:
                    raise bad_request(
                        "An organisation's name is its own: change it with "
                        "PATCH /api/organisations/{id}."
                    )
                query = select(case_settings.c.settings).where(
                    case_settings.c.organisation_id == organisation_id
                )
                stored = dict((await conn.execute(query)).scalar_one_or_none() or {})
                stored.update(changes)
                await _upsert(
                    conn,
                    case_settings,
                    {"organisation_id": organisation_id},
                    {"settings": stored, "updated_at": int(time.time())},
                )
                if actor.audited:
                    await audit.record(
                        conn,
                        Audit.CASE_SETTINGS_CHANGED,
                        organisation_id,
                        {"fields": sorted(changes)},
                    )
                return await self.organisation(organisation_id, conn)

    # -- changes ---------------------------------------------------------------------------
    async def create(
        self,
        new: NewCase,
        actor: CaseActor,
        case_id: str,
        code: str,
        attachments: list[Attachment],
        now: float,
    ) -> Case:
        """Register a case: its number, rows, attachments and first log entries."""
        with guarded():
            async with self.database.write() as conn:
                config = await self.config(conn)
                kind = taxonomy.find(config.dispute_types, new.dispute_type)
                region = regions.path_to(config.regions, new.region_code)
                organisation_id = new.organisation_id or config.intake_organisation_id
                await staff.check_organisation(conn, organisation_id)
                settings = await self.organisation(organisation_id, conn)
                year = numbering.year_of(now)
                seq = await numbering.next_seq(conn, organisation_id, year)
                number = numbering.format_number(
                    settings.number_format, year, settings.short_name, settings.type_word, seq
                )
                at = int(now)
                case = Case(
                    id=case_id,
                    number=number,
                    organisation_id=organisation_id,
                    year=year,
                    seq=seq,
                    code=code,
                    state=State.REPORTED,
                    source=new.source,
                    dispute_type=kind["code"],
                    dispute_type_name=kind["name"],
                    region_code=new.region_code,
                    region=region,
                    description=new.description,
                    risk_level=new.risk_level,
                    holder_organisation_id=organisation_id,
                    coordinator_organisation_id=organisation_id,
                    mediator_id=None,
                    outcome=None,
                    reported_by=actor.logged(),
                    created_at=at,
                    accepted_at=None,
                    deadline_at=None,
                    closed_at=None,
                    updated_at=at,
                    version=1,
                    log_seq=0,
                    log_head=GENESIS,
                    parties=new.parties,
                    attachments=attachments,
                )
                row = _row(case)
                await conn.execute(insert(cases).values(**row, created_ns=time.time_ns()))
                await counts.move(conn, None, counts.keys(counts.case_values(case)))
                if case.parties:
                    await conn.execute(
                        insert(case_parties),
                        [
                            {
                                "case_id": case.id,
                                "position": i,
                                "role": str(p.role),
                                "name": p.name,
                                "phone": p.phone,
                                "id_number": p.id_number,
                            }
                            for i, p in enumerate(case.parties)
                        ],
                    )
                await self._insert_attachments(conn, case.id, attachments)
                event = {
                    "kind": "reported",
                    "actor": actor.logged(),
                    "number": number,
                    "source": str(new.source),
                    "dispute_type": kind["code"],
                    "region_code": new.region_code,
                    "to": str(State.REPORTED),
                    "report_sha256": report_digest(case.report()),
                    "attachments": [a.logged() for a in attachments],
                }
                await self._append(conn, case, [event], now)
                if actor.audited:
                    detail = {"number": number, "organisation_id": organisation_id}
                    await audit.record(conn, Audit.CASE_REGISTERED, case.id, detail)
                return case

    async def transition(
        self,
        case_id: str,
        actor: CaseActor,
        action: Action,
        params: dict[str, Any],
        now: float,
        also: Callable[[AsyncConnection, Case], Awaitable[None]] | None = None,
    ) -> Case:
        """One action on a case; `also` writes rows of its own in the same transaction
        (a follow-up's record, server/cases/court.py)."""
        with guarded():
            async with self.database.write() as conn:
                case = await self._load(conn, case_id, lock=True)
                if case is None:
                    raise case_not_found()
                permissions.check_read(actor, case.rules)
                params = permissions.check_action(actor, action, case.rules, params)
                if action in (Action.DISPATCH, Action.TRANSFER, Action.TAKE):
                    params = await staff.check_target(conn, params)
                settings = await self.organisation(case.holder_organisation_id, conn)
                change = plan(
                    case.rules,
                    action,
                    params,
                    int(now),
                    settings.deadline_days,
                    self.follow_up_days,
                )
                await self._update(conn, case, {**change.updates, "updated_at": int(now)})
                for name, value in change.updates.items():
                    setattr(case, name, State(value) if name == "state" else value)
                case.updated_at = int(now)
                if also is not None:
                    await also(conn, case)
                await self._append(conn, case, [{**change.event, "actor": actor.logged()}], now)
                if actor.audited:
                    detail = {
                        k: v
                        for k, v in change.event.items()
                        if k in ("kind", "from", "to", "organisation_id", "mediator_id", "outcome")
                    }
                    await audit.record(conn, Audit.CASE_CHANGED, case.id, detail)
                return case

    async def add_attachments(
        self, case_id: str, actor: CaseActor, attachments: list[Attachment], now: float, limit: int
    ) -> Case:
        with guarded():
            async with self.database.write() as conn:
                case = await self._load(conn, case_id, lock=True)
                if case is None:
                    raise case_not_found()
                permissions.check_read(actor, case.rules)
                if case.state is State.CLOSED:
                    raise TiaojieError(
                        "case_closed", "This case is closed; nothing can be added.", 409
                    )
                if len(case.attachments) + len(attachments) > limit:
                    raise TiaojieError(
                        "too_many_attachments", f"A case holds at most {limit} attachments.", 409
                    )
                await self._update(conn, case, {"updated_at": int(now)})
                await self._insert_attachments(conn, case.id, attachments)
                case.attachments += attachments
                case.updated_at = int(now)
                events = [
                    {"kind": "attachment_added", "actor": actor.logged(), **a.logged()}
                    for a in attachments
                ]
                await self._append(conn, case, events, now)
                if actor.audited:
                    detail = {"attachments": [a.sha256 for a in attachments]}
                    await audit.record(conn, Audit.CASE_ATTACHMENT_ADDED, case.id, detail)
                return case

    async def change(
        self,
        case_id: str,
        check: Callable[[Case], None],
        write: Callable[[AsyncConnection, Case], Awaitable[list[dict[str, Any]]]],
        now: float,
        conn: AsyncConnection | None = None,
    ) -> Case:
        """A change of a case made elsewhere (sessions, what happens in their rooms):
        the case held, `check` (raises to refuse), `write` (its rows; returns the log's
        events), the version raised and the events appended, in one transaction: `conn`'s
        (a room's, server/cases/projection.py) or one of its own."""
        if conn is None:
            with guarded():
                async with self.database.write() as own:
                    return await self.change(case_id, check, write, now, own)
        case = await self._load(conn, case_id, lock=True)
        if case is None:
            raise case_not_found()
        check(case)
        events = await write(conn, case)
        await self._update(conn, case, {"updated_at": int(now)})
        case.updated_at = int(now)
        if events:
            await self._append(conn, case, events, now)
        return case

    async def _insert_attachments(
        self, conn: AsyncConnection, case_id: str, attachments: list[Attachment]
    ) -> None:
        if attachments:
            await conn.execute(
                insert(case_attachments),
                [
                    {
                        "id": a.id,
                        "case_id": case_id,
                        "sha256": a.sha256,
                        "size": a.size,
                        "media_type": a.media_type,
                        "filename": a.filename,
                        "added_at": a.added_at,
                        "created_ns": time.time_ns() + i,
                    }
                    for i, a in enumerate(attachments)
                ],
            )

    async def _update(self, conn: AsyncConnection, case: Case, values: dict[str, Any]) -> None:
        done = await conn.execute(
            update(cases)
            .where(cases.c.id == case.id, cases.c.version == case.version)
            .values(**values, version=case.version + 1)
        )
        if done.rowcount != 1:  # a writer that did not lock: refuse rather than overwrite
            raise TiaojieError(
                "case_changed", "The case changed meanwhile; nothing was changed. Try again.", 409
            )
        # the statistics' summary follows, in this transaction (counts.py)
        before = counts.case_values(case)
        after = {**before, **{k: v for k, v in values.items() if k in before}}
        await counts.move(conn, counts.keys(before), counts.keys(after))
        if after["holder_organisation_id"] != before["holder_organisation_id"]:
            await counts.move_experts(conn, case.id, after["holder_organisation_id"])
        case.version += 1

    async def _append(
        self, conn: AsyncConnection, case: Case, events: list[dict[str, Any]], now: float
    ) -> None:
        """Each event, then a checkpoint signing them, to the case's log (the listeners
        told first, in the same transaction)."""
        for listener in self.listeners:
            await listener(conn, case, events, case.log_seq, now)
        chain = case_chain_name(case.id)
        seq, head = case.log_seq, case.log_head
        rows = []
        for type_, extra in [*(("event", {"event": e}) for e in events), ("checkpoint", {})]:
            entry = make_entry(
                type_, chain=chain, seq=seq, head=head, key=self.key, at=now, **extra
            )
            rows.append(
                {
                    "case_id": case.id,
                    "seq": seq,
                    "type": type_,
                    "hash": entry["hash"],
                    "entry": canonical(entry).decode("utf-8"),
                }
            )
            seq, head = seq + 1, entry["hash"]
        await conn.execute(insert(case_log), rows)
        await conn.execute(
            update(cases).where(cases.c.id == case.id).values(log_seq=seq, log_head=head)
        )
        case.log_seq, case.log_head = seq, head

    # -- reading ---------------------------------------------------------------------------
    async def get(self, case_id: str) -> Case | None:
        with guarded():
            async with self.database.read() as conn:
                return await self._load(conn, case_id, lock=False)

    async def by_code(self, code: str) -> tuple[Case, list[dict[str, Any]]] | None:
        """The case with this public code, and its log's entries."""
        with guarded():
            async with self.database.read() as conn:
                case_id = (
                    await conn.execute(select(cases.c.id).where(cases.c.code == code))
                ).scalar_one_or_none()
                if case_id is None:
                    return None
                case = await self._load(conn, case_id, lock=False)
                assert case is not None
                return case, await self._log(conn, case_id)

    async def log_entries(self, case_id: str) -> tuple[Case, list[dict[str, Any]]] | None:
        with guarded():
            async with self.database.read() as conn:
                case = await self._load(conn, case_id, lock=False)
                if case is None:
                    return None
                return case, await self._log(conn, case_id)

    async def _log(self, conn: AsyncConnection, case_id: str) -> list[dict[str, Any]]:
        query = select(case_log.c.entry).where(case_log.c.case_id == case_id)
        rows = (await conn.execute(query.order_by(case_log.c.seq))).scalars().all()
        return [json.loads(row) for row in rows]

    async def _load(self, conn: AsyncConnection, case_id: str, *, lock: bool) -> Case | None:
        query = select(cases).where(cases.c.id == case_id)
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        case = _case(row)
        query = select(case_parties).where(case_parties.c.case_id == case_id)
        for party in (await conn.execute(query.order_by(case_parties.c.position))).mappings():
            case.parties.append(_party(party))
        query = select(case_attachments).where(case_attachments.c.case_id == case_id)
        for item in (await conn.execute(query.order_by(case_attachments.c.created_ns))).mappings():
            case.attachments.append(_attachment(item))
        return case

    async def list(
        self, scope: Scope, filters: Filters, now: int, limit: int, before: int | None
    ) -> tuple[list[Case], int | None]:
        """Cases the scope may see, newest first, `limit` of them after the cursor
        `before` (a `created_ns`); the next cursor, or None at the end.

        Two steps: the page's ids from one of the queue's indexes, which hold every
        column a filter names (tables.py), then those rows. Selecting whole rows at once
        read every matching row before sorting: 30-100 ms for a filter matching a few
        thousand of 100,000 cases (docs/PERFORMANCE.md, "Cases")."""
        query = select(cases.c.id, cases.c.created_ns).where(_visible(scope))
        if filters.states:
            query = query.where(cases.c.state.in_([str(s) for s in filters.states]))
        if filters.dispute_type:
            query = query.where(cases.c.dispute_type == filters.dispute_type)
        if filters.region:
            query = query.where(*region_terms(self.database.kind, filters.region))
        if filters.organisation_id:
            query = query.where(cases.c.holder_organisation_id == filters.organisation_id)
        if filters.mediator_id:
            query = query.where(cases.c.mediator_id == filters.mediator_id)
        late = and_(
            cases.c.state.in_([str(s) for s in OPEN_STATES]),
            cases.c.deadline_at.is_not(None),
            cases.c.deadline_at < now,
        )
        if filters.follow_up == "overdue":
            query = query.where(
                cases.c.state.in_([str(s) for s in FOLLOW_UP_PENDING]),
                cases.c.follow_up_due_at < now,
            )
        if filters.overdue is True:
            query = query.where(late)
        elif filters.overdue is False:
            query = query.where(~late)
        if before is not None:
            query = query.where(cases.c.created_ns < before)
        query = query.order_by(cases.c.created_ns.desc()).limit(limit + 1)
        with guarded():
            async with self.database.read() as conn:
                page = (await conn.execute(query)).all()
                ids = [row.id for row in page[:limit]]
                by_id: dict[str, Case] = {}
                if ids:
                    rows = await conn.execute(select(cases).where(cases.c.id.in_(ids)))
                    by_id = {row["id"]: _case(row) for row in rows.mappings()}
                    parties = select(case_parties).where(case_parties.c.case_id.in_(ids))
                    for party in (
                        await conn.execute(parties.order_by(case_parties.c.position))
                    ).mappings():
                        by_id[party["case_id"]].parties.append(_party(party))
        found = [by_id[i] for i in ids if i in by_id]
        cursor = int(page[limit - 1].created_ns) if len(page) > limit else None
        return found, cursor


def region_terms(kind: str, region: str, column: Any = cases.c.region_code) -> list[Any]:
    """A region and everything under it: the codes that start with its code. The
    prefix is also given as a range an index can seek (LIKE is case-insensitive in
    SQLite, so no index serves it there; PostgreSQL's pattern operators compare
    bytes whatever the collation, as ix_cases_queue_type's text_pattern_ops do).
    Codes are letters and digits (regions.CODE_PATTERN), all below "~"."""
    terms = [column.startswith(region, autoescape=True)]
    if kind == "postgresql":
        terms += [column.op("~>=~")(region), column.op("~<~")(region + "~")]
    else:
        terms += [column >= region, column < region + "~"]
    return terms


def _visible(scope: Scope) -> Any:
    if scope.everything:
        return cases.c.id.is_not(None)
    clauses: list[Any] = []
    if scope.organisations:
        clauses.append(cases.c.holder_organisation_id.in_(sorted(scope.organisations)))
        clauses.append(cases.c.coordinator_organisation_id.in_(sorted(scope.organisations)))
    if scope.mediator_id:
        clauses.append(cases.c.mediator_id == scope.mediator_id)
        if scope.mediator_organisation:
            clauses.append(
                and_(
                    cases.c.mediator_id.is_(None),
                    cases.c.state == str(State.DISPATCHED),
                    cases.c.holder_organisation_id == scope.mediator_organisation,
                )
            )
    return or_(*clauses) if clauses else false()


async def _upsert(
    conn: AsyncConnection, table: Any, key: dict[str, Any], values: dict[str, Any]
) -> None:
    done = await conn.execute(
        update(table).where(*(table.c[k] == v for k, v in key.items())).values(**values)
    )
    if done.rowcount == 0:
        await conn.execute(insert(table).values(**key, **values))


#: The Case's plain fields, each a column of `cases` (state and risk are enums).
_CASE_COLUMNS = [
    f.name for f in fields(Case) if f.name not in ("parties", "attachments", "state", "risk_level")
]


def _row(case: Case) -> dict[str, Any]:
    row = {name: getattr(case, name) for name in _CASE_COLUMNS}
    row["state"] = str(case.state)
    row["source"] = str(case.source)
    row["risk_level"] = str(case.risk_level)
    return row


def _case(row: Any) -> Case:
    return Case(
        **{name: row[name] for name in _CASE_COLUMNS if name != "source"},
        state=State(row["state"]),
        source=Source(row["source"]),
        risk_level=Risk(row["risk_level"]),
    )


def _party(row: Any) -> Party:
    return Party(PartyRole(row["role"]), row["name"], row["phone"], row["id_number"])


def _attachment(row: Any) -> Attachment:
    return Attachment(
        row["id"], row["sha256"], row["size"], row["media_type"], row["filename"], row["added_at"]
    )


def new_attachment(sha256: str, size: int, media_type: str, filename: str, at: int) -> Attachment:
    return Attachment(new_id(), sha256, size, media_type, filename, at)
