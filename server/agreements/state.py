"""The agreement's state in the room document: `AgreementState` and its views.

State lives in `Room.agreement` (as JSON), so it works on both stores and changes
atomically with the room. The rules that change it are in server/agreements/rules.py.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from tiaojie.server import agreement_page
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import Room

#: 32 URL-safe characters: 192 random bits.
CODE_PATTERN = agreement_page.CODE_PATTERN


class AgreementStatus(StrEnum):
    DRAFTING = "drafting"
    SIGNING = "signing"
    SEALING = "sealing"
    SIGNED = "signed"


def new_code() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class Signature:
    """One signer's consent to one text version."""

    participant_id: str
    role: str  # "applicant" | "respondent" | "mediator"
    name: str  # the name on the agreement's line
    typed_name: str
    party_index: int | None  # None for the mediator
    fingerprint: str
    signed_at: float
    mark_sha256: str


@dataclass
class AgreementState:
    code: str
    draft: dict[str, Any]  # signing.model.Agreement.to_dict()
    fingerprint: str
    text: str
    #: party line index (as a string) -> participant id (the party's invite id)
    assignments: dict[str, str] = field(default_factory=dict)
    version: int = 1
    status: AgreementStatus = AgreementStatus.DRAFTING
    signatures: list[Signature] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0
    sealing_started_at: float | None = None
    seal_error: str | None = None
    pdf_sha256: str | None = None
    sealed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgreementState:
        return cls(
            **{
                **data,
                "status": AgreementStatus(data["status"]),
                "signatures": [Signature(**s) for s in data.get("signatures", [])],
            }
        )

    # -- who signs --------------------------------------------------------------------
    def signers(self) -> list[dict[str, Any]]:
        """Every signer line in signing order: the parties, then the mediator."""
        signed = {(s.role, s.party_index): s for s in self.signatures}
        lines = []
        for i, party in enumerate(self.draft.get("parties", [])):
            sig = signed.get((party["role"], i))
            lines.append(
                {
                    "role": party["role"],
                    "name": party["name"],
                    "party_index": i,
                    "participant_id": self.assignments.get(str(i)),
                    "signed_at": sig.signed_at if sig else None,
                    "signed_by": sig.participant_id if sig else None,
                }
            )
        sig = signed.get(("mediator", None))
        lines.append(
            {
                "role": "mediator",
                "name": self.draft.get("mediator", ""),
                "party_index": None,
                "participant_id": None,
                "signed_at": sig.signed_at if sig else None,
                "signed_by": sig.participant_id if sig else None,
            }
        )
        return lines

    def for_room(self, base_url: str) -> dict[str, Any]:
        """`agreement_state`: what everyone in the room sees."""
        parties = [
            {**p, "participant_id": self.assignments.get(str(i))}
            for i, p in enumerate(self.draft.get("parties", []))
        ]
        return {
            "code": self.code,
            "status": str(self.status),
            "version": self.version,
            "fingerprint": self.fingerprint,
            "text": self.text,
            "draft": {**self.draft, "parties": parties},
            "incomplete": self.incomplete,
            "signers": self.signers(),
            "seal_error": self.seal_error,
            "pdf_ready": self.status is AgreementStatus.SIGNED,
            "pdf_sha256": self.pdf_sha256,
            "sealed_at": self.sealed_at,
            "status_url": f"{base_url}/a/{self.code}",
        }

    def public(self) -> dict[str, Any]:
        """The public status (`/a/{code}`): no text, no ID numbers, only names."""
        return {
            "code": self.code,
            "status": str(self.status),
            "case_number": self.draft.get("case_number", ""),
            "signers": [
                {"role": s["role"], "name": s["name"], "signed_at": s["signed_at"]}
                for s in self.signers()
            ],
            "pdf_sha256": self.pdf_sha256,
            "sealed_at": self.sealed_at,
            "updated_at": self.updated_at,
        }


def get_state(room: Room) -> AgreementState | None:
    return AgreementState.from_json(room.agreement) if room.agreement else None


def require_state(room: Room) -> AgreementState:
    state = get_state(room)
    if state is None:
        raise TiaojieError("no_agreement", "The mediator has not drafted an agreement yet.", 409)
    return state


def put_state(room: Room, state: AgreementState) -> None:
    state.updated_at = time.time()
    room.agreement = state.to_json()
