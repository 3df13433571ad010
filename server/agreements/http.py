"""The agreement's HTTP routes: the public status (JSON and the `/a/{code}` page), the
signed PDF download and who may download it, the agreements in the archive
(`GET /api/agreements`, from the archive index: server/agreements/archive.py) and the
built-in TSA (`POST /tsa`).
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

from aiohttp import web

from tiaojie.server import agreement_page
from tiaojie.server.agreements import archive, storage
from tiaojie.server.agreements.state import CODE_PATTERN, AgreementStatus, get_state
from tiaojie.server.archive_index.index import ArchiveIndex
from tiaojie.server.config import Settings
from tiaojie.server.errors import TiaojieError, forbidden, not_found
from tiaojie.server.http_auth import HttpAuth, json_response
from tiaojie.server.ratelimit import RateLimit
from tiaojie.server.roles import Role
from tiaojie.server.store import RoomStore

#: Who may download the signed PDF with their own invite link.
PDF_ROLES = frozenset({Role.MEDIATOR, Role.PARTY})
#: Timestamps POST /tsa signs a second (after a burst of twice as many), per address and
#: in all: a token is about 3 ms of CPU, so this is at most an eighth of a core.
TSA_RATE_PER_ADDRESS = 10.0
TSA_RATE = 40.0
#: The longest search text (`?q=`).
MAX_SEARCH = 200


class AgreementRoutes:
    """REST handlers, the status page and the built-in TSA."""

    def __init__(
        self,
        settings: Settings,
        store: RoomStore,
        auth: HttpAuth,
        index: ArchiveIndex | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self.auth = auth
        self.index = index
        self._tsa: Any = None
        self._tsa_limits = (
            RateLimit("timestamp requests", TSA_RATE_PER_ADDRESS, 2 * TSA_RATE_PER_ADDRESS),
            RateLimit("timestamp requests", TSA_RATE, 2 * TSA_RATE),
        )

    def install(self, router: web.UrlDispatcher) -> None:
        router.add_get("/a/{code:" + CODE_PATTERN + "}", self.status_page)
        router.add_get("/a/{code}", self.status_page_unknown)
        router.add_get("/api/agreements", self.list_archive)
        router.add_get("/api/agreements/{code:" + CODE_PATTERN + "}", self.status_json)
        router.add_get("/api/agreements/{code:" + CODE_PATTERN + "}/pdf", self.download_pdf)
        if not self._settings.tsa_url:
            router.add_post("/tsa", self.tsa)

    def folder(self, code: str) -> Path:
        return storage.folder(self._settings.data_dir, code)

    async def _find(self, code: str) -> tuple[str, dict[str, Any]]:
        """The id of the room holding agreement `code` and its public status; 404 if
        there is none.

        `status.json` (written on every change) names the room, and keeps the public
        status when the room itself is gone (a restarted in-memory server).
        """
        try:
            snapshot = storage.read_snapshot(self.folder(code))
        except (OSError, ValueError):
            raise not_found("agreement_not_found", "No such agreement.") from None
        room_id: str = snapshot["room_id"]
        room = await self._store.get(room_id)
        state = get_state(room) if room else None
        if state is not None and state.code == code:
            return room_id, state.public()
        # the room has moved on to another agreement (or is gone): its links still count
        return room_id, snapshot["public"]

    async def status_json(self, request: web.Request) -> web.Response:
        _, public = await self._find(request.match_info["code"])
        return json_response(public, headers={"Cache-Control": "no-store"})

    async def download_pdf(self, request: web.Request) -> web.StreamResponse:
        code = request.match_info["code"]
        room_id, public = await self._find(code)
        await self._check_download(request, room_id)
        path = self.folder(code) / storage.PDF_FILE
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

    async def _check_download(self, request: web.Request, room_id: str) -> None:
        """Admin token, an archivist token, a staff account that reads the room's archive
        (server/http_auth.py `account_reader`), or a mediator's or party's invite of the room
        `room_id` (after the room ended too; server/http_auth.py `check_invite`)."""
        caller = self.auth.caller(request, archivists=True)
        if caller.account is not None and not caller.admin:  # a staff account
            await self.auth.check_reads(caller, room_id, "agreements")
            return
        claims = caller.claims
        if claims is None:  # the admin or an archivist
            return
        if claims.room_id != room_id:
            raise TiaojieError("token_wrong_room", "This link is for another room.", 403)
        await self.auth.check_invite(claims)
        if claims.role not in PDF_ROLES:
            raise forbidden("Only the parties and the mediator download the signed agreement.")

    async def list_archive(self, request: web.Request) -> web.Response:
        """`GET /api/agreements`: the agreements of the rooms the caller may read."""
        reader = await self.auth.reader(request, what="agreements")
        search = request.query.get("q", "").strip()
        if len(search) > MAX_SEARCH:
            raise TiaojieError("bad_request", f"Search for at most {MAX_SEARCH} characters.")
        room_id = reader.claims.room_id if reader.claims is not None else None
        if self.index is None:
            raise TiaojieError("no_archive", "This server keeps no archive index.", 404)
        rows = await self.index.agreements(room_id, search or None)
        data_dir = Path(self._settings.data_dir)
        found = [archive.listed(row, data_dir) for row in rows if reader.may_read(row["room_id"])]
        return json_response(
            {"agreements": found, "timezone": self._settings.timezone},
            headers={"Cache-Control": "private, no-store"},
        )

    async def status_page(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        lang = agreement_page.page_lang(request)
        try:
            _, public = await self._find(code)
        except TiaojieError:
            return agreement_page.html_response(agreement_page.not_found_page(lang, code), 404)
        page = agreement_page.status_page(lang, public, self._settings.tz)
        return agreement_page.html_response(page)

    async def status_page_unknown(self, request: web.Request) -> web.Response:
        lang = agreement_page.page_lang(request)
        page = agreement_page.not_found_page(lang, request.match_info["code"])
        return agreement_page.html_response(page, 404)

    async def tsa(self, request: web.Request) -> web.StreamResponse:
        """POST /tsa: the built-in RFC 3161 TSA (keys in DATA/keys; not a trusted third
        party). Mounted only when no --tsa-url is configured; it answers this machine
        only unless --tsa-open, and is rate-limited (TSA_RATE_PER_ADDRESS, TSA_RATE)."""
        address = request.remote or ""
        if not (self._settings.tsa_open or _is_loopback(address)):
            raise TiaojieError(
                "tsa_closed",
                "The built-in timestamp authority serves this machine only "
                "(the operator opens it with --tsa-open).",
                403,
            )
        per_address, in_all = self._tsa_limits
        per_address.take(address)
        in_all.take("all")
        # deferred: the TSA (pyhanko) takes half a second to import, for the first seal
        from tiaojie.signing.tsa import MAX_REQUEST, QUERY_TYPE, REPLY_TYPE

        if request.content_type != QUERY_TYPE:
            raise TiaojieError("unsupported_media_type", f"Send {QUERY_TYPE}.", 415)
        if request.content_length is not None and request.content_length > MAX_REQUEST:
            raise TiaojieError("payload_too_large", "The request is too large.", 413)
        body = await request.read()  # all of it (content.read(n) may stop short)
        if len(body) > MAX_REQUEST:
            raise TiaojieError("payload_too_large", "The request is too large.", 413)
        loop = asyncio.get_running_loop()
        if self._tsa is None:
            from tiaojie.signing.authority import Authority
            from tiaojie.signing.tsa import TimeStampAuthority

            keys = Path(self._settings.data_dir) / "keys"
            authority = await loop.run_in_executor(None, Authority.load_or_create, keys)
            self._tsa = TimeStampAuthority(authority.tsa_key, authority.tsa_cert)
        # signing a token takes milliseconds of CPU: off the event loop
        reply = await loop.run_in_executor(None, self._tsa.respond, body)
        return web.Response(body=reply, content_type=REPLY_TYPE)


def _is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (and ::ffff:127.x.y.z)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
