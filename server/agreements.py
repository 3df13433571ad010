"""The agreement of a room: the mediator's draft, the signatures, sealing into a signed PDF.

State (`AgreementState`) lives in the room document (`Room.agreement`), so it works on
both stores and changes atomically with the room. The handwritten marks (PNG), the signed
PDF, the agreement log and a public status snapshot live on disk under
`DATA/agreements/<code>/`, where `code` is the agreement's unguessable public code (the
one in the QR code, `/a/{code}`).

Flow (docs/PROTOCOL.md, "Agreement"):
- `drafting`: the mediator sends `agreement_draft` (the model fields; each party line may
  name the participant id of the room participant who signs it). Everyone in the room
  gets `agreement_state` with the canonical text and its fingerprint.
- `signing`: the mediator sends `agreement_request_signatures` with the fingerprint they
  read; the text is final. Each assigned party signs (`agreement_sign`), then a mediator.
  A signature binds the fingerprint of the text the signer read. Any draft change that
  changes the text clears every signature and goes back to `drafting`.
- `sealing`: the last signature (the mediator's) starts the Notary; `signed` when the
  signed PDF is on disk. A failed seal goes back to `signing` with `seal_error` set, and
  the mediator retries with `agreement_finalize`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import inspect
import io
import json
import logging
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server import agreement_page
from server.api import _bearer
from server.errors import TiaojieError, bad_request, forbidden, not_found
from server.model import Participant, Room, now
from server.roles import Role
from server.state import app_state

if TYPE_CHECKING:
    from server.signalling import Signalling

log = logging.getLogger(__name__)

#: 32 URL-safe characters: 192 random bits.
CODE_PATTERN = agreement_page.CODE_PATTERN
#: The largest handwritten mark accepted (decoded PNG bytes).
MAX_MARK_BYTES = 200 * 1024
#: The largest mark image (pixels per side).
MAX_MARK_SIDE = 4000
MARK_PREFIX = "data:image/png;base64,"
#: A seal still "sealing" after this long was interrupted (server restart): retry allowed.
STALE_SEALING_SECONDS = 300
#: Who may download the signed PDF with their own invite link.
PDF_ROLES = frozenset({Role.MEDIATOR, Role.PARTY})
PDF_FILE = "agreement.pdf"


class AgreementStatus(StrEnum):
    DRAFTING = "drafting"
    SIGNING = "signing"
    SEALING = "sealing"
    SIGNED = "signed"


def new_code() -> str:
    return secrets.token_urlsafe(24)


# -- state ---------------------------------------------------------------------------------
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


def _require_state(room: Room) -> AgreementState:
    state = get_state(room)
    if state is None:
        raise TiaojieError("no_agreement", "The mediator has not drafted an agreement yet.", 409)
    return state


def _put(room: Room, state: AgreementState) -> None:
    state.updated_at = time.time()
    room.agreement = state.to_json()


# -- the model (signing/model.py) ------------------------------------------------------------
def _model(draft: dict[str, Any]) -> Any:
    from signing.model import Agreement

    try:
        return Agreement.from_dict(draft)
    except ValueError as error:
        raise TiaojieError("invalid_agreement", f"The agreement is not valid: {error}.") from None


def render(draft: dict[str, Any]) -> tuple[dict[str, Any], str, str, list[str]]:
    """(normalised draft, canonical text, fingerprint, what is missing) of a draft."""
    from signing.model import canonical_text

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
        _put(room, state)
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
    _put(room, state)
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
    state = _require_state(room)
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
    _put(room, state)
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
    state = _require_state(room)
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
    _put(room, state)
    return Change(state, signature=signature)


def finalize(room: Room) -> Change:
    """Start sealing again after a failed (or interrupted) seal."""
    state = _require_state(room)
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
    _put(room, state)
    return Change(state)


def sealed(room: Room, fingerprint: str, pdf_sha256: str) -> AgreementState:
    state = _require_state(room)
    if state.status is not AgreementStatus.SEALING or state.fingerprint != fingerprint:
        raise TiaojieError("agreement_changed", "The agreement changed while sealing.", 409)
    state.status = AgreementStatus.SIGNED
    state.pdf_sha256 = pdf_sha256
    state.sealed_at = time.time()
    _put(room, state)
    return state


def seal_failed(room: Room, fingerprint: str, message: str) -> AgreementState:
    state = _require_state(room)
    if state.status is AgreementStatus.SEALING and state.fingerprint == fingerprint:
        state.status = AgreementStatus.SIGNING
        state.seal_error = message
        _put(room, state)
    return state


# -- marks -----------------------------------------------------------------------------------
def decode_mark(data_url: str) -> bytes:
    """The PNG bytes of a `data:image/png;base64,` mark, checked."""
    if not data_url.startswith(MARK_PREFIX):
        raise bad_request("mark must be a data:image/png;base64, URL")
    encoded = data_url[len(MARK_PREFIX) :]
    if len(encoded) * 3 // 4 > MAX_MARK_BYTES + 3:
        raise _mark_too_large()
    try:
        png = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("mark is not valid base64") from None
    if len(png) > MAX_MARK_BYTES:
        raise _mark_too_large()
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise bad_request("mark is not a PNG image")
    _check_png(png)
    return png


def _mark_too_large() -> TiaojieError:
    return TiaojieError(
        "mark_too_large",
        f"The handwritten mark is too large (at most {MAX_MARK_BYTES // 1024} KiB).",
        413,
    )


def _check_png(png: bytes) -> None:
    """A decodable PNG of sane size with something drawn on it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as image:
            width, height = image.size
            if not (0 < width <= MAX_MARK_SIDE and 0 < height <= MAX_MARK_SIDE):
                raise bad_request(f"mark must be at most {MAX_MARK_SIDE} pixels on each side")
            rgba = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise bad_request("mark is not a valid PNG image") from None
    # On white paper, is anything darker than light grey? (transparent or white: nothing)
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    ink = Image.alpha_composite(paper, rgba).convert("L").point(lambda v: 255 if v < 200 else 0)
    if ink.getbbox() is None:
        raise TiaojieError("mark_empty", "Draw your handwritten mark first.", 400)


# -- files -----------------------------------------------------------------------------------
def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def _append_line(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")


# -- the service -----------------------------------------------------------------------------
class Agreements:
    """Signalling handlers, sealing and the REST/HTML routes of the agreement."""

    def __init__(self, app: web.Application, signalling: Signalling) -> None:
        self.app = app
        self.signalling = signalling
        self._notary: Any = None
        self._tsa: Any = None
        self._sealing: set[asyncio.Future[Any]] = set()
        self._notary_lock = asyncio.Lock()

    # -- wiring -------------------------------------------------------------------------
    def install(self) -> None:
        sig = self.signalling
        sig.add_handler("agreement_draft", self._on_draft)
        sig.add_handler("agreement_request_signatures", self._on_request_signatures)
        sig.add_handler("agreement_sign", self._on_sign)
        sig.add_handler("agreement_finalize", self._on_finalize)
        sig.on_enter.append(self._send_state)
        router = self.app.router
        router.add_get("/a/{code:" + CODE_PATTERN + "}", self.status_page)
        router.add_get("/a/{code}", self.status_page_unknown)
        router.add_get("/api/agreements/{code:" + CODE_PATTERN + "}", self.status_json)
        router.add_get("/api/agreements/{code:" + CODE_PATTERN + "}/pdf", self.download_pdf)
        if not self._settings.tsa_url:
            router.add_post("/tsa", self.tsa)
        self.app.on_cleanup.append(self._cleanup)
        self.app[AGREEMENTS] = self

    async def _cleanup(self, _: web.Application) -> None:
        for task in list(self._sealing):
            task.cancel()

    @property
    def _settings(self) -> Any:
        return app_state(self.app).settings

    @property
    def _store(self) -> Any:
        return app_state(self.app).store

    def folder(self, code: str) -> Path:
        return Path(self._settings.data_dir) / "agreements" / code

    # -- recording --------------------------------------------------------------------
    async def _note(self, room_id: str, kind: str, **fields: Any) -> None:
        """An event in the room's recording chain, when the room is being recorded."""
        recordings = getattr(app_state(self.app), "recordings", None)
        if recordings is None:
            return
        try:
            await recordings.note(room_id, kind, **fields)
        except Exception:
            log.exception("could not note %s in the recording of room %s", kind, room_id)

    def _chain(self, recording_id: str | None) -> bytes | None:
        """The recording's chain as written so far (complete lines only), if any."""
        if not recording_id or not re.fullmatch(r"rec_[a-z2-7]{26}", recording_id):
            return None
        path = Path(self._settings.data_dir) / "recordings" / recording_id / "chain.jsonl"
        try:
            data = path.read_bytes()
        except OSError:
            return None
        data = data[: data.rfind(b"\n") + 1]
        return data or None

    def _chain_head(self, recording_id: str | None) -> str | None:
        chain = self._chain(recording_id)
        if chain is None:
            return None
        try:
            head = json.loads(chain.splitlines()[-1])["hash"]
        except (ValueError, KeyError, IndexError, TypeError):
            return None
        return head if isinstance(head, str) and re.fullmatch("[0-9a-f]{64}", head) else None

    # -- log and public snapshot --------------------------------------------------------
    def _log(self, code: str, kind: str, **fields: Any) -> None:
        entry = {"at": round(time.time(), 3), "kind": kind, **fields}
        _append_line(self.folder(code) / "log.jsonl", entry)

    def _snapshot(self, room_id: str, state: AgreementState) -> None:
        data = {"room_id": room_id, "public": state.public()}
        _write_atomic(
            self.folder(state.code) / "status.json",
            json.dumps(data, ensure_ascii=False, indent=1).encode(),
        )

    async def _publish(self, room_id: str, state: AgreementState) -> None:
        self._snapshot(room_id, state)
        await self.signalling._broadcast(
            room_id, "agreement_state", state.for_room(self._settings.base_url)
        )

    async def _send_state(self, room_id: str, participant: Participant) -> None:
        """The current agreement, to someone entering the room."""
        try:
            room = await self._store.get(room_id)
            state = get_state(room) if room else None
            if state is not None:
                await self.signalling.sio.emit(
                    "agreement_state",
                    state.for_room(self._settings.base_url),
                    to=participant.sid,
                )
        except Exception:
            log.exception("could not send the agreement of room %s", room_id)

    # -- handlers ---------------------------------------------------------------------
    async def _on_draft(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        fields = {k: v for k, v in p.items() if k != "_sid"}
        model_fields = {
            **fields,
            "parties": [
                {k: v for k, v in party.items() if k != "participant_id"}
                for party in fields.get("parties", [])
            ],
        }
        for party in model_fields["parties"]:
            if not party.get("id_number"):
                party.pop("id_number", None)
        await self.signalling._check(event, room_id, pid, p["_sid"])
        room = await self._store.require(room_id)
        existing = get_state(room)
        # The recording this agreement is reached in: the running one, else the one the
        # draft already names.
        recording_id = room.recording["id"] if room.recording else None
        if recording_id is None and existing is not None:
            recording_id = existing.draft.get("recording_id")
        if recording_id:
            model_fields["recording_id"] = recording_id
        rendered = render(model_fields)
        code = existing.code if existing else new_code()
        change: Change = await self.signalling._apply(
            event,
            room_id,
            pid,
            p["_sid"],
            lambda room, sender: draft(room, fields, rendered, code),
        )
        state = change.state
        if change.changed:
            self._log(
                state.code,
                "draft",
                by=pid,
                version=state.version,
                fingerprint=state.fingerprint,
                assignments=state.assignments,
            )
            if change.invalidated:
                self._log(
                    state.code,
                    "signatures_invalidated",
                    by=pid,
                    previous_fingerprint=change.previous_fingerprint,
                    signers=[s.name for s in change.invalidated],
                )
                await self._note(
                    room_id,
                    "agreement_signatures_invalidated",
                    code=state.code,
                    previous_fingerprint=change.previous_fingerprint,
                    fingerprint=state.fingerprint,
                    signers=[s.name for s in change.invalidated],
                )
            await self._publish(room_id, state)
        return self._ack(state)

    async def _on_request_signatures(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        await self.signalling._check(event, room_id, pid, p["_sid"])
        state = _require_state(await self._store.require(room_id))
        # The final text names the recording's chain head as it is now: the agreement is
        # bound to the recording up to this point (and the sealed PDF embeds the chain).
        head = self._chain_head(state.draft.get("recording_id"))
        rendered = render({**state.draft, "chain_head": head}) if head else None
        change: Change = await self.signalling._apply(
            event,
            room_id,
            pid,
            p["_sid"],
            lambda room, sender: request_signatures(room, p["fingerprint"], rendered),
        )
        state = change.state
        if change.changed:
            self._log(state.code, "signatures_requested", by=pid, fingerprint=state.fingerprint)
            self._warm_up()
            await self._note(
                room_id,
                "agreement_signatures_requested",
                code=state.code,
                fingerprint=state.fingerprint,
            )
            await self._publish(room_id, state)
        return self._ack(state)

    async def _on_sign(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        sid = p["_sid"]
        await self.signalling._check(event, room_id, pid, sid)
        if p["consent"] is not True:
            raise TiaojieError(
                "consent_required", "Tick the box to say you agree to this text.", 400
            )
        png = decode_mark(p["mark"])
        mark_sha256 = hashlib.sha256(png).hexdigest()
        signed_at = round(time.time(), 3)

        def change(room: Room, sender: Participant) -> Change:
            return sign(room, sender, p["fingerprint"], p["name"], mark_sha256, signed_at)

        # A dry run on a copy first: only a signature that will be accepted writes its mark.
        # The mark is content-addressed and written before the signature exists, so a
        # crash never leaves a signature without its mark.
        trial = await self._store.require(room_id)
        code = self.signalling._authorized(event, pid, sid, change)(trial).state.code
        _write_atomic(self.folder(code) / "marks" / f"{mark_sha256}.png", png)
        done: Change = await self.signalling._apply(event, room_id, pid, sid, change)
        state, signature = done.state, done.signature
        assert signature is not None
        self._log(
            state.code,
            "signature",
            by=pid,
            role=signature.role,
            name=signature.name,
            typed_name=signature.typed_name,
            fingerprint=signature.fingerprint,
            mark_sha256=mark_sha256,
            signed_at=signed_at,
        )
        await self._note(
            room_id,
            "agreement_signature",
            code=state.code,
            participant_id=pid,
            role=signature.role,
            name=signature.name,
            fingerprint=signature.fingerprint,
            mark_sha256=mark_sha256,
            signed_at=signed_at,
        )
        await self._publish(room_id, state)
        if state.status is AgreementStatus.SEALING:
            self._start_seal(room_id, state)
        return self._ack(state)

    async def _on_finalize(
        self, event: str, room_id: str, pid: str, p: dict[str, Any]
    ) -> dict[str, Any]:
        change: Change = await self.signalling._apply(
            event, room_id, pid, p["_sid"], lambda room, sender: finalize(room)
        )
        state = change.state
        self._log(state.code, "finalize", by=pid, fingerprint=state.fingerprint)
        await self._publish(room_id, state)
        self._start_seal(room_id, state)
        return self._ack(state)

    def _ack(self, state: AgreementState) -> dict[str, Any]:
        return {
            "code": state.code,
            "status": str(state.status),
            "fingerprint": state.fingerprint,
            "version": state.version,
        }

    # -- sealing ----------------------------------------------------------------------
    def _start_seal(self, room_id: str, state: AgreementState) -> None:
        task = asyncio.ensure_future(self._seal(room_id, state))
        self._sealing.add(task)
        task.add_done_callback(self._sealing.discard)

    async def wait_sealed(self) -> None:
        """Wait for every seal in progress (tests)."""
        while self._sealing:
            await asyncio.gather(*self._sealing, return_exceptions=True)

    def _warm_up(self) -> None:
        """Load the Notary's keys while people sign, so sealing starts at once."""
        if self._notary is None:
            task = asyncio.ensure_future(self.notary())
            self._sealing.add(task)
            task.add_done_callback(self._sealing.discard)
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def notary(self) -> Any:
        """The Notary (signing/signer.py), made on first use: loading (on the very first
        run, generating) the local CA, seal and TSA keys takes a while, so in a thread."""
        async with self._notary_lock:
            if self._notary is None:
                from signing.signer import Notary

                keys = Path(self._settings.data_dir) / "keys"
                loop = asyncio.get_running_loop()
                tsa_url = self._settings.tsa_url
                self._notary = await loop.run_in_executor(None, Notary, keys, tsa_url)
        return self._notary

    async def tsa(self, request: web.Request) -> web.StreamResponse:
        """POST /tsa: the built-in RFC 3161 TSA (keys in DATA/keys; not a trusted third
        party). Mounted only when no --tsa-url is configured."""
        if self._tsa is None:
            from signing.authority import Authority
            from signing.tsa import TimeStampAuthority, tsa_handler

            keys = Path(self._settings.data_dir) / "keys"
            loop = asyncio.get_running_loop()
            authority = await loop.run_in_executor(None, Authority.load_or_create, keys)
            self._tsa = tsa_handler(TimeStampAuthority(authority.tsa_key, authority.tsa_cert))
        response: web.StreamResponse = await self._tsa(request)
        return response

    async def _seal(self, room_id: str, state: AgreementState) -> None:
        self._log(state.code, "sealing", fingerprint=state.fingerprint)
        try:
            pdf = await self._make_pdf(room_id, state)
            digest = hashlib.sha256(pdf).hexdigest()
            path = self.folder(state.code) / PDF_FILE
            await asyncio.get_running_loop().run_in_executor(None, _write_atomic, path, pdf)
            done = await self._store.update(
                room_id, lambda room: sealed(room, state.fingerprint, digest)
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("sealing the agreement %s failed", state.code)
            message = str(error) if isinstance(error, TiaojieError) else type(error).__name__
            self._log(state.code, "seal_failed", error=message)
            try:
                failed = await self._store.update(
                    room_id, lambda room: seal_failed(room, state.fingerprint, message)
                )
                await self._publish(room_id, failed)
            except TiaojieError:
                pass
            return
        self._log(state.code, "sealed", sha256=digest, size=len(pdf))
        await self._note(
            room_id,
            "agreement",
            code=state.code,
            sha256=digest,
            fingerprint=state.fingerprint,
            recording_id=state.draft.get("recording_id"),
        )
        await self._publish(room_id, done)

    async def _make_pdf(self, room_id: str, state: AgreementState) -> bytes:
        from signing.model import Agreement, SignerMark

        agreement = Agreement.from_dict(state.draft)
        marks = []
        ordered = sorted(
            state.signatures,
            key=lambda s: (s.party_index is None, s.party_index or 0),
        )
        folder = self.folder(state.code) / "marks"
        for sig in ordered:
            if sig.fingerprint != state.fingerprint:
                raise TiaojieError("agreement_changed", "A signature is for another version.")
            png = (folder / f"{sig.mark_sha256}.png").read_bytes()
            if hashlib.sha256(png).hexdigest() != sig.mark_sha256:
                raise TiaojieError("mark_corrupt", f"The mark of {sig.name} changed on disk.")
            marks.append(
                SignerMark(
                    name=sig.name,
                    role=sig.role,
                    signed_at=sig.signed_at,
                    mark_png=png,
                    fingerprint=sig.fingerprint,
                )
            )
        manifest = self._chain(agreement.recording_id)
        status_url = f"{self._settings.base_url}/a/{state.code}"
        notary = await self.notary()
        seal = notary.seal_agreement
        if inspect.iscoroutinefunction(seal):
            return bytes(await seal(agreement, marks, status_url, manifest))
        call = functools.partial(seal, agreement, marks, status_url, manifest)
        return bytes(await asyncio.get_running_loop().run_in_executor(None, call))

    # -- REST and the public page -------------------------------------------------------
    async def _find(self, code: str) -> tuple[Room | None, dict[str, Any]]:
        """The room holding agreement `code` and its public status; 404 if there is none.

        `status.json` (written on every change) names the room, and keeps the public
        status when the room itself is gone (a restarted in-memory server).
        """
        try:
            snapshot = json.loads((self.folder(code) / "status.json").read_bytes())
        except (OSError, ValueError):
            raise not_found("agreement_not_found", "No such agreement.") from None
        room = await self._store.get(snapshot["room_id"])
        state = get_state(room) if room else None
        if state is not None and state.code == code:
            return room, state.public()
        # the room has moved on to another agreement (or is gone): its links still count
        return room, snapshot["public"]

    async def status_json(self, request: web.Request) -> web.Response:
        _, public = await self._find(request.match_info["code"])
        return web.json_response(
            public,
            dumps=lambda d: json.dumps(d, ensure_ascii=False),
            headers={"Cache-Control": "no-store"},
        )

    async def download_pdf(self, request: web.Request) -> web.StreamResponse:
        code = request.match_info["code"]
        room, public = await self._find(code)
        self._check_download(request, room)
        path = self.folder(code) / PDF_FILE
        if public["status"] != AgreementStatus.SIGNED or not path.is_file():
            raise TiaojieError("agreement_not_signed", "The agreement is not signed yet.", 409)
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "application/pdf",
                "Content-Disposition": f'attachment; filename="agreement-{code[:8]}.pdf"',
                "Cache-Control": "no-store",
            },
        )

    def _check_download(self, request: web.Request, room: Room | None) -> None:
        """Admin token, an archivist token, or a mediator's or party's invite of the room."""
        state = app_state(self.app)
        token = _bearer(request)
        if hmac.compare_digest(token.encode(), state.credentials.admin_token.encode()):
            return
        if _archivist(self.app, token):
            return
        claims = state.signer.verify(token, now())
        if room is None or claims.room_id != room.id:
            raise TiaojieError("token_wrong_room", "This link is for another room.", 403)
        invite = room.invites.get(claims.invite_id)
        if invite is None or invite.role != claims.role:
            raise TiaojieError("token_invalid", "This link is not valid.", 401)
        if invite.revoked:
            raise TiaojieError("token_revoked", "This link has been withdrawn.", 403)
        if invite.role not in PDF_ROLES:
            raise forbidden("Only the parties and the mediator download the signed agreement.")

    async def status_page(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        lang = agreement_page.page_lang(request)
        try:
            _, public = await self._find(code)
        except TiaojieError:
            return agreement_page.html_response(agreement_page.not_found_page(lang, code), 404)
        return agreement_page.html_response(agreement_page.status_page(lang, public))

    async def status_page_unknown(self, request: web.Request) -> web.Response:
        lang = agreement_page.page_lang(request)
        page = agreement_page.not_found_page(lang, request.match_info["code"])
        return agreement_page.html_response(page, 404)


AGREEMENTS = web.AppKey("tiaojie_agreements", Agreements)


def _archivist(app: web.Application, token: str) -> bool:
    """A genuine, unexpired archivist token (`tiaojie archivist-token`)."""
    from server.archive_auth import ArchiveAuth

    if not ArchiveAuth.looks_like_archivist(token):
        return False
    ArchiveAuth(app_state(app).credentials.token_secret).verify_archivist(token)
    return True
