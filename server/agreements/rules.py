"""The agreement's rules, as pure changes of a Room (like server/rooms.py).

Each rule reads the `AgreementState` from the room, raises TiaojieError before changing
anything, and writes the changed state back into the room; the caller stores the room.
The draft is normalised and rendered by the model in signing/model.py.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tiaojie.server.agreements.state import (
    AgreementState,
    AgreementStatus,
    Signature,
    get_state,
    put_state,
    require_state,
)
from tiaojie.server.errors import TiaojieError, forbidden
from tiaojie.server.model import Participant, Room
from tiaojie.server.roles import Role
from tiaojie.signing.model import Agreement, canonical_text

#: A seal still "sealing" after this long was interrupted (server restart): retry allowed.
STALE_SEALING_SECONDS = 300


# -- the model (signing/model.py) ------------------------------------------------------------
def _model(draft: dict[str, Any]) -> Any:
    try:
        return Agreement.from_dict(draft)
    except ValueError as error:
        raise TiaojieError("invalid_agreement", f"The agreement is not valid: {error}.") from None


def render(draft: dict[str, Any]) -> tuple[dict[str, Any], str, str, list[str]]:
    """(normalised draft, canonical text, fingerprint, what is missing) of a draft."""
    agreement = _model(draft)
    text = canonical_text(agreement)
    return (
        agreement.to_dict(),
        text,
        hashlib.sha256(text.encode()).hexdigest(),
        agreement.incomplete(),
    )


# -- room rules (pure: raise before changing anything) -----------------------------------------
def _not_sealed(state: AgreementState) -> None:
    if state.status is AgreementStatus.SEALING:
        raise TiaojieError("agreement_sealing", "The agreement is being sealed.", 409)
    if state.status is AgreementStatus.SIGNED:
        raise TiaojieError("agreement_signed", "The agreement is signed and sealed.", 409)


def _check_assignments(room: Room, parties: list[dict[str, Any]]) -> dict[str, str]:
    assignments: dict[str, str] = {}
    for i, party in enumerate(parties):
        pid = party.get("participant_id")
        if not pid:
            continue
        invite = room.invites.get(pid)
        if invite is None or invite.revoked or invite.role is not Role.PARTY:
            raise TiaojieError(
                "bad_assignment", f"Party line {i + 1} is assigned to someone who is not a party."
            )
        if pid in assignments.values():
            raise TiaojieError(
                "bad_assignment", "One participant cannot sign two party lines.", 400
            )
        assignments[str(i)] = pid
    return assignments


@dataclass
class Change:
    """What a rule did, for the log, the chain and the broadcast."""

    state: AgreementState
    changed: bool = True
    invalidated: list[Signature] = field(default_factory=list)
    signature: Signature | None = None
    previous_fingerprint: str | None = None


def draft(
    room: Room,
    fields: dict[str, Any],
    rendered: tuple[dict[str, Any], str, str, list[str]],
    code: str,
) -> Change:
    """The mediator's new draft. A changed text clears every signature."""
    normalised, text, fp, incomplete = rendered
    assignments = _check_assignments(room, fields.get("parties", []))
    state = get_state(room)
    if state is None:
        at = time.time()
        state = AgreementState(
            code=code, draft=normalised, fingerprint=fp, text=text, created_at=at
        )
        state.assignments = assignments
        state.incomplete = incomplete
        put_state(room, state)
        return Change(state)
    _not_sealed(state)
    if fp == state.fingerprint and assignments == state.assignments:
        return Change(state, changed=False)
    change = Change(state, previous_fingerprint=state.fingerprint)
    if fp != state.fingerprint:
        change.invalidated = state.signatures
        state.signatures = []
        state.status = AgreementStatus.DRAFTING
        state.version += 1
        state.seal_error = None
    else:  # only who signs which line changed: a signature of a reassigned line goes
        kept = []
        for sig in state.signatures:
            if sig.party_index is None or assignments.get(str(sig.party_index)) == (
                sig.participant_id
            ):
                kept.append(sig)
            else:
                change.invalidated.append(sig)
        state.signatures = kept
    state.draft, state.text, state.fingerprint, state.incomplete = (
        normalised,
        text,
        fp,
        incomplete,
    )
    state.assignments = assignments
    put_state(room, state)
    return change


def _outdated() -> TiaojieError:
    return TiaojieError(
        "agreement_outdated",
        "The agreement text changed since you read it: read the current version, then sign again.",
        409,
    )


def request_signatures(
    room: Room,
    fingerprint: str,
    final: tuple[dict[str, Any], str, str, list[str]] | None = None,
) -> Change:
    """The mediator declares the text they read (`fingerprint`) final: signing starts.

    `final` is that text with the recording's chain head filled in, when recorded.
    """
    state = require_state(room)
    _not_sealed(state)
    if fingerprint != state.fingerprint:
        raise _outdated()
    if state.incomplete:
        raise TiaojieError(
            "agreement_incomplete",
            "The agreement is not complete: " + ", ".join(state.incomplete) + ".",
            409,
        )
    unassigned = [
        p["name"]
        for i, p in enumerate(state.draft.get("parties", []))
        if str(i) not in state.assignments
    ]
    if unassigned:
        raise TiaojieError(
            "parties_unassigned",
            "Choose who signs for: " + ", ".join(unassigned) + ".",
            409,
        )
    signers = [(s["name"], s["role"]) for s in state.signers()]
    if len(set(signers)) != len(signers):
        raise TiaojieError(
            "duplicate_signer",
            "Two signers have the same name and role: tell them apart (e.g. add a "
            "middle name or an ID number to the name).",
            409,
        )
    if state.status is AgreementStatus.SIGNING:
        return Change(state, changed=False)
    if final is not None and final[2] != state.fingerprint:
        state.draft, state.text, state.fingerprint, state.incomplete = final
        state.version += 1
    state.status = AgreementStatus.SIGNING
    put_state(room, state)
    return Change(state)


def _same_name(typed: str, expected: str) -> bool:
    def norm(s: str) -> str:
        return re.sub(r"\s+", " ", s).strip().casefold()

    return norm(typed) == norm(expected)


def sign(
    room: Room,
    sender: Participant,
    fingerprint: str,
    typed_name: str,
    mark_sha256: str,
    signed_at: float,
) -> Change:
    """`sender` signs the line that is theirs. Parties first, then a mediator."""
    state = require_state(room)
    _not_sealed(state)
    if state.status is not AgreementStatus.SIGNING:
        raise TiaojieError(
            "agreement_not_ready", "The mediator has not asked for signatures yet.", 409
        )
    if fingerprint != state.fingerprint:
        raise _outdated()
    parties = state.draft.get("parties", [])
    signed = {(s.role, s.party_index) for s in state.signatures}
    if sender.role is Role.PARTY:
        index = next((int(i) for i, p in state.assignments.items() if p == sender.id), None)
        if index is None:
            raise TiaojieError(
                "not_a_signer", "No party line of this agreement is yours to sign.", 403
            )
        role, name = parties[index]["role"], parties[index]["name"]
        if (role, index) in signed:
            raise TiaojieError("already_signed", "You have already signed this version.", 409)
    elif sender.role is Role.MEDIATOR:
        index, role, name = None, "mediator", state.draft.get("mediator", "")
        if ("mediator", None) in signed:
            raise TiaojieError("already_signed", "A mediator has already signed.", 409)
        missing = [p["name"] for i, p in enumerate(parties) if (p["role"], i) not in signed]
        if missing:
            raise TiaojieError(
                "parties_not_signed",
                "The parties sign first. Not signed yet: " + ", ".join(missing) + ".",
                409,
            )
    else:
        raise forbidden(f"A {sender.role} does not sign the agreement.")
    if not _same_name(typed_name, name):
        raise TiaojieError(
            "name_mismatch", f"Type your name as it stands in the agreement: {name}.", 400
        )
    signature = Signature(
        participant_id=sender.id,
        role=role,
        name=name,
        typed_name=typed_name.strip(),
        party_index=index,
        fingerprint=fingerprint,
        signed_at=signed_at,
        mark_sha256=mark_sha256,
    )
    state.signatures.append(signature)
    if role == "mediator":
        state.status = AgreementStatus.SEALING
        state.sealing_started_at = time.time()
        state.seal_error = None
    put_state(room, state)
    return Change(state, signature=signature)


def finalize(room: Room) -> Change:
    """Start sealing again after a failed (or interrupted) seal."""
    state = require_state(room)
    if state.status is AgreementStatus.SIGNED:
        raise TiaojieError("agreement_signed", "The agreement is signed and sealed.", 409)
    if state.status is AgreementStatus.SEALING:
        started = state.sealing_started_at or 0
        if time.time() - started < STALE_SEALING_SECONDS:
            raise TiaojieError("agreement_sealing", "The agreement is being sealed.", 409)
    signed = {(s.role, s.party_index) for s in state.signatures}
    missing = [s["name"] for s in state.signers() if (s["role"], s["party_index"]) not in signed]
    if state.status is AgreementStatus.DRAFTING or missing:
        raise TiaojieError(
            "not_all_signed",
            "Everyone signs before the agreement is sealed. Not signed yet: "
            + ", ".join(missing)
            + ".",
            409,
        )
    state.status = AgreementStatus.SEALING
    state.sealing_started_at = time.time()
    state.seal_error = None
    put_state(room, state)
    return Change(state)


def sealed(room: Room, fingerprint: str, pdf_sha256: str) -> AgreementState:
    state = require_state(room)
    if state.status is not AgreementStatus.SEALING or state.fingerprint != fingerprint:
        raise TiaojieError("agreement_changed", "The agreement changed while sealing.", 409)
    state.status = AgreementStatus.SIGNED
    state.pdf_sha256 = pdf_sha256
    state.sealed_at = time.time()
    put_state(room, state)
    return state


def seal_failed(room: Room, fingerprint: str, message: str) -> AgreementState:
    state = require_state(room)
    if state.status is AgreementStatus.SEALING and state.fingerprint == fingerprint:
        state.status = AgreementStatus.SIGNING
        state.seal_error = message
        put_state(room, state)
    return state
