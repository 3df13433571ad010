"""The case a room's agreement belongs to, as agreements need it: what the editor's
prefill takes from it (the case number, the facts) and the case's progress link, printed
on the PDF as its second QR code (一案一码). Cases provide it (server/cases/service.py);
a room of no case has none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class AgreementCase:
    case_number: str
    facts: str
    case_url: str


class AgreementCases(Protocol):
    async def agreement_case(self, room_id: str) -> AgreementCase | None: ...


def with_case(proposal: dict[str, Any], case: AgreementCase | None) -> dict[str, Any]:
    """The editor's proposal (server/agreements/prefill.py) with what the case says."""
    if case is None:
        return proposal
    return {**proposal, "case_number": case.case_number, "facts": case.facts}
