"""A Case as the server reads it: its row, parties and attachments, and how staff see it.

`Case.staff_view` is what `GET /api/cases/{id}` answers (parties with phones and ID
numbers: staff only); `Case.summary` a line of the queue; `Case.report` the content a
report registered (hashed into the log's `reported` event, and checked again by the
dossier's verifier). The public progress (no names, phones, ID numbers) is
server/cases/progress.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tiaojie.server.cases.states import FOLLOW_UP_PENDING, CaseState, State, label, overdue


class Source(StrEnum):
    RESIDENT = "resident"
    GRID_WORKER = "grid_worker"
    MEDIATOR = "mediator"
    POLICE_110 = "police_110"
    COURT = "court"


SOURCE_LABELS = {
    Source.RESIDENT: "群众上报",
    Source.GRID_WORKER: "网格员上报",
    Source.MEDIATOR: "调解员登记",
    Source.POLICE_110: "110 转来",
    Source.COURT: "法院委派",
}


class Risk(StrEnum):
    UNASSESSED = "unassessed"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class PartyRole(StrEnum):
    APPLICANT = "applicant"
    RESPONDENT = "respondent"


PARTY_LABELS = {PartyRole.APPLICANT: "申请人", PartyRole.RESPONDENT: "被申请人"}


@dataclass(frozen=True)
class Party:
    role: PartyRole
    name: str
    phone: str | None = None
    id_number: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": str(self.role),
            "role_label": PARTY_LABELS[self.role],
            "name": self.name,
            "phone": self.phone,
            "id_number": self.id_number,
        }


@dataclass(frozen=True)
class Attachment:
    id: str
    sha256: str
    size: int
    media_type: str
    filename: str
    added_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha256": self.sha256,
            "size": self.size,
            "media_type": self.media_type,
            "filename": self.filename,
            "added_at": self.added_at,
        }

    def logged(self) -> dict[str, Any]:
        """How the log names it: by content, not by name."""
        return {"sha256": self.sha256, "size": self.size, "media_type": self.media_type}


@dataclass
class Case:
    id: str
    number: str
    organisation_id: str
    year: int
    seq: int
    code: str
    state: State
    source: Source
    dispute_type: str
    dispute_type_name: str
    region_code: str
    region: list[dict[str, str]]
    description: str
    risk_level: Risk
    holder_organisation_id: str
    coordinator_organisation_id: str
    mediator_id: str | None
    outcome: str | None
    reported_by: dict[str, Any]
    created_at: int
    accepted_at: int | None
    deadline_at: int | None
    closed_at: int | None
    updated_at: int
    version: int
    log_seq: int
    log_head: str
    follow_up_due_at: int | None = None
    parties: list[Party] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def rules(self) -> CaseState:
        return CaseState(
            self.state,
            self.holder_organisation_id,
            self.coordinator_organisation_id,
            self.mediator_id,
        )

    def overdue(self, now: int) -> bool:
        return overdue(self.state, self.deadline_at, now)

    def follow_up_overdue(self, now: int) -> bool:
        """Closed with an outcome, not followed up, and past the day it was due (回访)."""
        due = self.follow_up_due_at
        return self.state in FOLLOW_UP_PENDING and due is not None and due < now

    def report(self) -> dict[str, Any]:
        """What was reported, as registered: hashed into the `reported` event."""
        return {
            "case_id": self.id,
            "number": self.number,
            "organisation_id": self.organisation_id,
            "source": str(self.source),
            "dispute_type": self.dispute_type,
            "region_code": self.region_code,
            "description": self.description,
            "risk_level": str(self.risk_level),
            "parties": [
                {"role": str(p.role), "name": p.name, "phone": p.phone, "id_number": p.id_number}
                for p in self.parties
            ],
            "created_at": self.created_at,
        }

    def summary(self, now: int) -> dict[str, Any]:
        return {
            "case_id": self.id,
            "case_number": self.number,
            "state": str(self.state),
            "state_label": label(self.state),
            "source": str(self.source),
            "dispute_type": {"code": self.dispute_type, "name": self.dispute_type_name},
            "region": self.region,
            "risk_level": str(self.risk_level),
            "holder_organisation_id": self.holder_organisation_id,
            "mediator_id": self.mediator_id,
            "parties": [{"role": str(p.role), "name": p.name} for p in self.parties],
            "created_at": self.created_at,
            "deadline_at": self.deadline_at,
            "overdue": self.overdue(now),
            "follow_up_due_at": self.follow_up_due_at,
            "follow_up_overdue": self.follow_up_overdue(now),
            "updated_at": self.updated_at,
        }

    def staff_view(self, now: int, actions: list[str], progress_url: str) -> dict[str, Any]:
        return {
            **self.summary(now),
            "code": self.code,
            "progress_url": progress_url,
            "organisation_id": self.organisation_id,
            "coordinator_organisation_id": self.coordinator_organisation_id,
            "description": self.description,
            "outcome": self.outcome,
            "parties": [p.to_dict() for p in self.parties],
            "attachments": [a.to_dict() for a in self.attachments],
            "reported_by": self.reported_by,
            "accepted_at": self.accepted_at,
            "closed_at": self.closed_at,
            "version": self.version,
            "log": {"entries": self.log_seq, "head": self.log_head},
            "actions": actions,
        }
