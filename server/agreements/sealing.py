"""Sealing: the Notary (signing/signer.py), made on first use, the seals in progress, and
the signed PDF made from the agreement, its marks and the recording's chain (one seal at
a time, off the event loop).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from tiaojie.server.agreements.chain import read_chain
from tiaojie.server.agreements.marks import load_mark
from tiaojie.server.agreements.state import AgreementState
from tiaojie.server.config import Settings
from tiaojie.server.errors import TiaojieError
from tiaojie.signing.model import Agreement, SignerMark


class Sealer:
    """The Notary and the tasks that seal (or load the Notary) in the background."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.tasks: set[asyncio.Future[Any]] = set()
        self._notary: Any = None
        self._notary_lock = asyncio.Lock()
        self._one_at_a_time = asyncio.Lock()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run `coro` in the background, tracked until it is done."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def wait(self) -> None:
        """Wait for every task in progress (tests)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def warm_up(self) -> None:
        """Load the Notary's keys while people sign, so sealing starts at once."""
        if self._notary is None:
            task = self.spawn(self.notary())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def notary(self) -> Any:
        """The Notary (signing/signer.py), made on first use: loading (on the very first
        run, generating) the local CA, seal and TSA keys takes a while, so in a thread."""
        async with self._notary_lock:
            if self._notary is None:
                # deferred: the signer (pyhanko) takes most of a second to import
                from tiaojie.signing.signer import Notary

                keys = Path(self._settings.data_dir) / "keys"
                loop = asyncio.get_running_loop()
                tsa_url = self._settings.tsa_url
                self._notary = await loop.run_in_executor(None, Notary, keys, tsa_url)
        return self._notary

    async def make_pdf(
        self, state: AgreementState, folder: Path, case_url: str | None = None
    ) -> bytes:
        """The signed PDF of `state`, every mark read from the agreement's `folder`;
        `case_url`, the progress page of its case, is printed as the case's QR code.

        One seal at a time, and off the event loop: reading the marks and the
        recording's chain (megabytes for a long session) and signing take seconds.
        """
        notary = await self.notary()
        async with self._one_at_a_time:
            loop = asyncio.get_running_loop()
            agreement, marks, manifest = await loop.run_in_executor(
                None, self._inputs, state, folder
            )
            agreement.case_url = case_url
            status_url = f"{self._settings.base_url}/a/{state.code}"
            seal = functools.partial(notary.sign_agreement, timezone=self._settings.tz)
            if inspect.iscoroutinefunction(notary.sign_agreement):
                return bytes(await seal(agreement, marks, status_url, manifest))
            call = functools.partial(seal, agreement, marks, status_url, manifest)
            return bytes(await loop.run_in_executor(None, call))

    def _inputs(
        self, state: AgreementState, folder: Path
    ) -> tuple[Agreement, list[SignerMark], bytes | None]:
        """The agreement, its signers' marks (read back and checked) and the recording's
        chain, as the PDF embeds them (blocking: reads files)."""
        agreement = Agreement.from_dict(state.draft)
        marks = []
        ordered = sorted(
            state.signatures,
            key=lambda s: (s.party_index is None, s.party_index or 0),
        )
        for sig in ordered:
            if sig.fingerprint != state.fingerprint:
                raise TiaojieError("agreement_changed", "A signature is for another version.")
            png = load_mark(folder, sig.mark_sha256, sig.name)
            marks.append(
                SignerMark(
                    name=sig.name,
                    role=sig.role,
                    signed_at=sig.signed_at,
                    mark_png=png,
                    fingerprint=sig.fingerprint,
                )
            )
        return agreement, marks, read_chain(self._settings.data_dir, agreement.recording_id)
