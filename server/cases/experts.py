"""The expert pool: lawyers, psychologists, engineers, land or labour specialists whom a
mediator invites into a session.

An expert has a name, an organisation, specialties (tags, a row each in
`expert_specialties` so that a search by specialty is an index lookup), a phone, a short
profile and whether they are available now. Staff see the pool; the admin and
coordinators add to it (server/cases/permissions.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from tiaojie.server.accounts import audit
from tiaojie.server.accounts.audit import Action as Audit
from tiaojie.server.cases.actor import CaseActor
from tiaojie.server.cases.store import guarded
from tiaojie.server.cases.tables import expert_specialties, experts
from tiaojie.server.db import Database
from tiaojie.server.model import new_id
from tiaojie.signing.text import clean_text


@dataclass(frozen=True)
class Expert:
    id: str
    name: str
    organisation: str
    specialties: list[str]
    phone: str | None
    profile: str
    available: bool
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "expert_id": self.id,
            "name": self.name,
            "organisation": self.organisation,
            "specialties": self.specialties,
            "phone": self.phone,
            "profile": self.profile,
            "available": self.available,
            "created_at": self.created_at,
        }


def tags(raw: list[str]) -> list[str]:
    """Specialties as stored: each in its normal form, once, sorted."""
    return sorted({clean_text(tag, "specialty") for tag in raw})


class ExpertPool:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(self, body: dict[str, Any], actor: CaseActor) -> Expert:
        now = int(time.time())
        expert = Expert(
            id=new_id(),
            name=body["name"],
            organisation=body.get("organisation", ""),
            specialties=tags(body["specialties"]),
            phone=body.get("phone"),
            profile=body.get("profile", ""),
            available=body.get("available", True),
            created_at=now,
        )
        with guarded():
            async with self.database.write() as conn:
                await conn.execute(
                    insert(experts).values(
                        id=expert.id,
                        name=expert.name,
                        organisation=expert.organisation,
                        phone=expert.phone,
                        profile=expert.profile,
                        available=expert.available,
                        created_at=now,
                        updated_at=now,
                        created_ns=time.time_ns(),
                    )
                )
                if expert.specialties:
                    await conn.execute(
                        insert(expert_specialties),
                        [{"expert_id": expert.id, "specialty": s} for s in expert.specialties],
                    )
                if actor.audited:
                    await audit.record(conn, Audit.EXPERT_ADDED, expert.id, {})
        return expert

    async def by_ids(self, ids: list[str]) -> list[Expert]:
        """The experts of the pool among `ids` (those that are not are left out)."""
        return await self.search(ids=ids) if ids else []

    async def search(
        self,
        specialty: str | None = None,
        available: bool | None = None,
        limit: int = 100,
        ids: list[str] | None = None,
    ) -> list[Expert]:
        """Experts with `specialty` (an exact tag) and availability (and among `ids`),
        oldest first."""
        query = select(experts)
        if ids is not None:
            query = query.where(experts.c.id.in_(ids))
        if specialty:
            having = select(expert_specialties.c.expert_id).where(
                expert_specialties.c.specialty == specialty
            )
            query = query.where(experts.c.id.in_(having))
        if available is not None:
            query = query.where(experts.c.available == available)
        query = query.order_by(experts.c.created_ns).limit(limit)
        with guarded():
            async with self.database.read() as conn:
                rows = (await conn.execute(query)).mappings().all()
                ids = [row["id"] for row in rows]
                by_expert: dict[str, list[str]] = {i: [] for i in ids}
                if ids:
                    tags_query = select(expert_specialties).where(
                        expert_specialties.c.expert_id.in_(ids)
                    )
                    for tag in (await conn.execute(tags_query)).mappings():
                        by_expert[tag["expert_id"]].append(tag["specialty"])
        return [
            Expert(
                id=row["id"],
                name=row["name"],
                organisation=row["organisation"],
                specialties=sorted(by_expert[row["id"]]),
                phone=row["phone"],
                profile=row["profile"],
                available=row["available"],
                created_at=row["created_at"],
            )
            for row in rows
        ]
