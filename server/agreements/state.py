"""The agreement's state in the room document: `AgreementState` and its views.

State lives in `Room.agreement` (as JSON), so it works on both stores and changes
atomically with the room. The rules that change it are in server/agreements/rules.py.

The parties' ID numbers are personal data: `for_participant` gives the mediator every
one, a party the one of the line they sign, and nobody else any (experts, observers,
the recorder). A hidden number is left out of the draft and masked (ID_MASK) in the
text; the fingerprint stays that of the full text, which is what is signed and printed.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from tiaojie.server import agreement_page
from tiaojie.server.errors import TiaojieError
from tiaojie.server.model import Participant, Room
from tiaojie.server.roles import Role
from tiaojie.signing.model import Agreement, canonical_text

#: 32 URL-safe characters: 192 random bits.
CODE_PATTERN = agreement_page.CODE_PATTERN
#: What stands in the text for an ID number the viewer may not see.
ID_MASK = "******"


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

    def id_numbers_seen_by(self, participant: Participant) -> set[int]:
        """The party lines whose ID number `participant` may see."""
        lines = range(len(self.draft.get("parties", [])))
        if participant.role is Role.MEDIATOR:
            return set(lines)
        if participant.role is Role.PARTY:
            return {i for i in lines if self.assignments.get(str(i)) == participant.id}
        return set()

    def for_participant(self, base_url: str, participant: Participant) -> dict[str, Any]:
        """`agreement_state` as `participant` sees it (ID numbers: module docstring)."""
        return self.view(base_url, self.id_numbers_seen_by(participant))

    def view(self, base_url: str, shown: set[int]) -> dict[str, Any]:
        """`agreement_state` with the ID numbers of the party lines in `shown` only."""
        parties = []
        for i, party in enumerate(self.draft.get("parties", [])):
            line = {**party, "participant_id": self.assignments.get(str(i))}
            if i not in shown:
                line.pop("id_number", None)
            parties.append(line)
        return {
            "code": self.code,
            "status": str(self.status),
            "version": self.version,
            "fingerprint": self.fingerprint,
            "text": self._text_showing(shown),
            "draft": {**self.draft, "parties": parties},
            "incomplete": self.incomplete,
            "signers": self.signers(),
            "seal_error": self.seal_error,
            "pdf_ready": self.status is AgreementStatus.SIGNED,
            "pdf_sha256": self.pdf_sha256,
            "sealed_at": self.sealed_at,
            "status_url": f"{base_url}/a/{self.code}",
        }

    def _text_showing(self, shown: set[int]) -> str:
        """The text with the ID numbers of the lines not in `shown` masked."""
        parties = self.draft.get("parties", [])
        hidden = [p["id_number"] for i, p in enumerate(parties) if i not in shown]
        hidden = [number for number in hidden if number]
        if not hidden:
            return self.text
        masked = {
            **self.draft,
            "parties": [
                {**p, "id_number": ID_MASK} if i not in shown and p.get("id_number") else p
                for i, p in enumerate(parties)
            ],
        }
        try:
            if canonical_text(Agreement.from_dict(self.draft)) == self.text:
                return canonical_text(Agreement.from_dict(masked))
        except ValueError:  # a stored draft the model no longer takes: as below
            pass
        text = self.text  # rendered otherwise: mask the numbers where they stand
        for number in sorted(hidden, key=len, reverse=True):
            text = text.replace(number, ID_MASK)
        return text

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
