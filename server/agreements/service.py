"""The agreement service: the socket.io handlers, sealing in the background, publishing
the state to the room and to `status.json`, and noting each step in the logs.

Each handler checks the sender through signalling's public API (server/signalling.py),
applies a rule of server/agreements/rules.py to the stored room, then logs, notes in the
recording's chain and broadcasts what changed. The HTTP routes are in
server/agreements/http.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tiaojie.server.agreements import storage
from tiaojie.server.agreements.case import AgreementCases, with_case
from tiaojie.server.agreements.chain import chain_head, note
from tiaojie.server.agreements.http import AgreementRoutes
from tiaojie.server.agreements.marks import MarkChecker, decode_mark, store_mark
from tiaojie.server.agreements.prefill import prefill
from tiaojie.server.agreements.rules import (
    Change,
    draft,
    finalize,
    render,
    request_signatures,
    seal_failed,
    sealed,
    sign,
)
from tiaojie.server.agreements.sealing import Sealer
from tiaojie.server.agreements.state import (
    AgreementState,
    AgreementStatus,
    get_state,
    new_code,
    require_state,
)
from tiaojie.server.agreements.storage import PDF_FILE, write_atomic
from tiaojie.server.archive_index.index import ArchiveIndex
from tiaojie.server.archive_index.rows import agreement_rows
from tiaojie.server.config import Settings
from tiaojie.server.errors import TiaojieError
from tiaojie.server.http_auth import HttpAuth
from tiaojie.server.model import Participant, Room
from tiaojie.server.ratelimit import RateLimit
from tiaojie.server.recordings import Recordings, RoomEvent
from tiaojie.server.signalling import Request, Signalling
from tiaojie.server.store import RoomStore

log = logging.getLogger(__name__)

#: Marks one signer may have decoded: a few at once (a retry after "draw your mark
#: first"), then one every MARK_INTERVAL seconds.
MARK_BURST = 5
MARK_INTERVAL = 3.0


class Agreements:
    """Signalling handlers, sealing and the REST/HTML routes of the agreement."""

    def __init__(
        self,
        settings: Settings,
        store: RoomStore,
        signalling: Signalling,
        recordings: Recordings,
        auth: HttpAuth,
        index: ArchiveIndex,
        cases: AgreementCases | None = None,
    ) -> None:
        self._settings = settings
        #: agreements sealed since this process started (/metrics)
        self.seals_total = 0
        #: The case a room belongs to (server/agreements/case.py), if any.
        self.cases = cases
        self._store = store
        self.signalling = signalling
        self.recordings = recordings
        self.index = index
        self.sealer = Sealer(settings)
        self._marks = MarkChecker()
        self._mark_limit = RateLimit("handwritten marks", 1 / MARK_INTERVAL, MARK_BURST)
        self.routes = AgreementRoutes(settings, store, auth, index)

    # -- wiring -------------------------------------------------------------------------
    def install(self, app: web.Application) -> None:
        sig = self.signalling
        sig.add_handler("agreement_draft", self._on_draft)
        sig.add_handler("agreement_request_signatures", self._on_request_signatures)
        sig.add_handler("agreement_sign", self._on_sign)
        sig.add_handler("agreement_finalize", self._on_finalize)
        sig.add_handler("agreement_prefill", self._on_prefill)
        sig.on_enter(self._send_state)
        # the zone the room's clients show times in (signatures), as the PDF prints them
        sig.add_room_state("timezone", lambda room, participant: self._settings.timezone)
        self.routes.install(app.router)
        app.on_cleanup.append(self._cleanup)
        app[AGREEMENTS] = self

    async def _cleanup(self, _: web.Application) -> None:
        self.sealer.cancel()
        await self._marks.close()

    def folder(self, code: str) -> Path:
        return storage.folder(self._settings.data_dir, code)

    # -- log and public snapshot --------------------------------------------------------
    async def _log(self, code: str, kind: str, **fields: Any) -> None:
        """A line of the agreement's log: the file first, then the archive index (a
        database that is down is logged; `tiaojie reindex` reads the file back)."""
        entry = storage.append_log(self.folder(code), kind, **fields)
        try:
            await self.index.agreement_logged(code, entry)
        except TiaojieError as error:
            log.error("agreement %s: log line %r not indexed (%s)", code, kind, error.code)

    def _snapshot(self, room_id: str, title: str, state: AgreementState) -> None:
        row, signatures = agreement_rows(room_id, title, state.to_json())
        del row["indexed_at"]
        kept = {"agreement": row, "signatures": signatures}
        storage.write_snapshot(self.folder(state.code), room_id, state.public(), kept)

    async def _publish(self, room_id: str, state: AgreementState) -> None:
        """The state to everyone in the room, each seeing only the ID numbers they may."""
        try:
            room = await self._store.get(room_id)
        except TiaojieError:  # the database is down: the snapshot is written all the same
            self._snapshot(room_id, "", state)
            raise
        self._snapshot(room_id, room.title if room else "", state)
        views: dict[frozenset[int], dict[str, Any]] = {}
        for participant in room.joined() if room else []:
            shown = frozenset(state.id_numbers_seen_by(participant))
            if shown not in views:
                views[shown] = state.view(self._settings.base_url, set(shown))
            await self.signalling.send(participant.sid, "agreement_state", views[shown])

    async def _send_state(self, room_id: str, participant: Participant) -> None:
        """The current agreement, to someone entering the room."""
        try:
            room = await self._store.get(room_id)
            state = get_state(room) if room else None
            if state is not None:
                view = state.for_participant(self._settings.base_url, participant)
                await self.signalling.send(participant.sid, "agreement_state", view)
        except Exception:
            log.exception("could not send the agreement of room %s", room_id)

    # -- handlers ---------------------------------------------------------------------
    async def _on_draft(self, request: Request) -> dict[str, Any]:
        room_id, pid = request.room_id, request.participant_id
        fields = request.payload
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
        await self.signalling.check(request)
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
        change = await self.signalling.apply(
            request, lambda room, sender: draft(room, fields, rendered, code)
        )
        state = change.state
        if change.changed:
            await self._log(
                state.code,
                "draft",
                by=pid,
                version=state.version,
                fingerprint=state.fingerprint,
                assignments=state.assignments,
            )
            if change.invalidated:
                await self._log(
                    state.code,
                    "signatures_invalidated",
                    by=pid,
                    previous_fingerprint=change.previous_fingerprint,
                    signers=[s.name for s in change.invalidated],
                )
                await note(
                    self.recordings,
                    room_id,
                    RoomEvent.AGREEMENT_SIGNATURES_INVALIDATED,
                    code=state.code,
                    previous_fingerprint=change.previous_fingerprint,
                    fingerprint=state.fingerprint,
                    signers=[s.name for s in change.invalidated],
                )
            await self._publish(room_id, state)
        return self._ack(state)

    async def _on_request_signatures(self, request: Request) -> dict[str, Any]:
        room_id, pid = request.room_id, request.participant_id
        fingerprint = request.payload["fingerprint"]
        await self.signalling.check(request)
        state = require_state(await self._store.require(room_id))
        # The final text names the recording's chain head as it is now: the agreement is
        # bound to the recording up to this point (and the sealed PDF embeds the chain).
        # (in a thread: a long recording's chain is megabytes)
        head = await asyncio.to_thread(
            chain_head, self._settings.data_dir, state.draft.get("recording_id")
        )
        rendered = render({**state.draft, "chain_head": head}) if head else None
        change = await self.signalling.apply(
            request, lambda room, sender: request_signatures(room, fingerprint, rendered)
        )
        state = change.state
        if change.changed:
            await self._log(
                state.code, "signatures_requested", by=pid, fingerprint=state.fingerprint
            )
            self.sealer.warm_up()
            self._marks.warm_up()
            await note(
                self.recordings,
                room_id,
                RoomEvent.AGREEMENT_SIGNATURES_REQUESTED,
                code=state.code,
                fingerprint=state.fingerprint,
            )
            await self._publish(room_id, state)
        return self._ack(state)

    async def _on_sign(self, request: Request) -> dict[str, Any]:
        room_id, pid, p = request.room_id, request.participant_id, request.payload
        await self.signalling.check(request)
        if p["consent"] is not True:
            raise TiaojieError(
                "consent_required", "Tick the box to say you agree to this text.", 400
            )
        signed_at = round(time.time(), 3)

        def signing(mark_sha256: str) -> Callable[[Room, Participant], Change]:
            def change(room: Room, sender: Participant) -> Change:
                return sign(room, sender, p["fingerprint"], p["name"], mark_sha256, signed_at)

            return change

        # The cheap refusals first (no agreement, not open for signatures, another
        # version, not this sender's line, signed already), then the mark's size from its
        # header; only then is it decoded, in a thread, and a signer gets MARK_BURST
        # decodes, then one every MARK_INTERVAL seconds (server/agreements/marks.py).
        await self.signalling.dry_run(request, signing("0" * 64))
        png = decode_mark(p["mark"])
        self._mark_limit.take((room_id, pid))
        await self._marks.check(png)
        mark_sha256 = hashlib.sha256(png).hexdigest()
        change = signing(mark_sha256)

        # A dry run on a copy first: only a signature that will be accepted writes its mark.
        # The mark is content-addressed and written before the signature exists, so a
        # crash never leaves a signature without its mark.
        code = (await self.signalling.dry_run(request, change)).state.code
        store_mark(self.folder(code), mark_sha256, png)
        done = await self.signalling.apply(request, change)
        state, signature = done.state, done.signature
        assert signature is not None
        await self._log(
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
        await note(
            self.recordings,
            room_id,
            RoomEvent.AGREEMENT_SIGNATURE,
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

    async def _on_finalize(self, request: Request) -> dict[str, Any]:
        change = await self.signalling.apply(request, lambda room, sender: finalize(room))
        state = change.state
        await self._log(
            state.code, "finalize", by=request.participant_id, fingerprint=state.fingerprint
        )
        await self._publish(request.room_id, state)
        self._start_seal(request.room_id, state)
        return self._ack(state)

    async def _on_prefill(self, request: Request) -> dict[str, Any]:
        """What the editor proposes (server/agreements/prefill.py); changes nothing."""
        proposal = await self.signalling.dry_run(request, prefill)
        case = await self.cases.agreement_case(request.room_id) if self.cases else None
        return {"prefill": with_case(proposal, case)}

    def _ack(self, state: AgreementState) -> dict[str, Any]:
        return {
            "code": state.code,
            "status": str(state.status),
            "fingerprint": state.fingerprint,
            "version": state.version,
        }

    # -- sealing ----------------------------------------------------------------------
    def _start_seal(self, room_id: str, state: AgreementState) -> None:
        self.sealer.spawn(self._seal(room_id, state))

    async def wait_sealed(self) -> None:
        """Wait for every seal in progress (tests)."""
        await self.sealer.wait()

    async def _seal(self, room_id: str, state: AgreementState) -> None:
        await self._log(state.code, "sealing", fingerprint=state.fingerprint)
        # The PDF embeds the recording's chain as written now: first the events queued for
        # the recorder (the last signature's among them) go into it.
        await self.recordings.flush(room_id)
        try:
            case = await self.cases.agreement_case(room_id) if self.cases else None
            pdf = await self.sealer.make_pdf(
                state, self.folder(state.code), case.case_url if case else None
            )
            digest = hashlib.sha256(pdf).hexdigest()
            path = self.folder(state.code) / PDF_FILE
            await asyncio.get_running_loop().run_in_executor(None, write_atomic, path, pdf)
            done = await self._store.update(
                room_id, lambda room: sealed(room, state.fingerprint, digest)
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("sealing the agreement %s failed", state.code)
            message = str(error) if isinstance(error, TiaojieError) else type(error).__name__
            await self._log(state.code, "seal_failed", error=message)
            try:
                failed = await self._store.update(
                    room_id, lambda room: seal_failed(room, state.fingerprint, message)
                )
                await self._publish(room_id, failed)
            except TiaojieError:
                pass
            return
        self.seals_total += 1
        await self._log(state.code, "sealed", sha256=digest, size=len(pdf))
        await note(
            self.recordings,
            room_id,
            RoomEvent.AGREEMENT,
            code=state.code,
            sha256=digest,
            fingerprint=state.fingerprint,
            recording_id=state.draft.get("recording_id"),
        )
        await self._publish(room_id, done)


AGREEMENTS = web.AppKey("tiaojie_agreements", Agreements)
