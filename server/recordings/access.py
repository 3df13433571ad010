"""Who may read the archive: archivist tokens and short-lived playback tickets.

* An archivist token (`tja1.<payload>.<mac>`, made by `tiaojie archivist-token`) lists,
  plays and downloads every recording. It is signed with a key derived from the server
  secret for this purpose only, so it can never pass as an invite token or vice versa.
  Its payload names its id in the register of issued tokens
  (server/recordings/archivists.py): a token that is not registered, or was revoked, is
  refused, however genuine its signature.
* A playback ticket (`tjt1.<recording>.<expiry>.<mac>`) lets an HTML5 <video> element,
  which cannot send an Authorization header, fetch the files of ONE recording for a few
  minutes. Whoever may read a recording can get one.

Who reads what (the admin, archivists, a mediator's invite of the room) is decided by
server/http_auth.py, which is given an ArchiveAuth to check archivist tokens with.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from dataclasses import dataclass

from tiaojie.server.errors import TiaojieError
from tiaojie.server.recordings.archivists import TOKEN_ID, ArchivistRegister, IssuedToken

ARCHIVIST_PREFIX = "tja1"
TICKET_PREFIX = "tjt1"
TICKET_SECONDS = 600


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Archivist:
    id: str
    name: str
    expires_at: int


class ArchiveAuth:
    """Archivist tokens (checked against `register`; without one, none is accepted) and
    playback tickets."""

    def __init__(self, secret: bytes, register: ArchivistRegister | None = None) -> None:
        self._archivist_key = hmac.new(secret, b"tiaojie archivist token", "sha256").digest()
        self._ticket_key = hmac.new(secret, b"tiaojie playback ticket", "sha256").digest()
        self.register = register

    # -- archivist tokens --------------------------------------------------------------
    def issue(self, label: str, lifetime: int) -> tuple[str, IssuedToken]:
        """A new archivist token, registered first (`tiaojie archivist-token`)."""
        if self.register is None:
            raise RuntimeError("archivist tokens are issued into a register")
        issued = self.register.issue(label, lifetime)
        return self._sign(issued.id, issued.label, issued.expires), issued

    def archivist_token(self, name: str, lifetime: int, token_id: str = "") -> str:
        """A signed token alone, never registered: accepted only if `token_id` is."""
        return self._sign(token_id, name, int(time.time()) + lifetime)

    def _sign(self, token_id: str, name: str, expires_at: int) -> str:
        payload = json.dumps(
            {"i": token_id, "n": name[:64], "x": expires_at}, separators=(",", ":")
        ).encode()
        signed = f"{ARCHIVIST_PREFIX}.{_b64(payload)}"
        mac = hmac.new(self._archivist_key, signed.encode(), "sha256").digest()
        return f"{signed}.{_b64(mac)}"

    @staticmethod
    def looks_like_archivist(token: str) -> bool:
        return token.startswith(ARCHIVIST_PREFIX + ".")

    def verify_archivist(self, token: str) -> Archivist:
        invalid = TiaojieError("token_invalid", "This archivist token is not valid.", 401)
        parts = token.split(".")
        if len(token) > 512 or len(parts) != 3 or parts[0] != ARCHIVIST_PREFIX:
            raise invalid
        signed = f"{parts[0]}.{parts[1]}"
        expected = hmac.new(self._archivist_key, signed.encode(), "sha256").digest()
        try:
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                raise invalid
            data = json.loads(_unb64(parts[1]))
            archivist = Archivist(str(data.get("i", "")), str(data["n"]), int(data["x"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise invalid from None
        if archivist.expires_at <= time.time():
            raise TiaojieError("token_expired", "This archivist token has expired.", 401)
        self._check_registered(archivist)
        return archivist

    def _check_registered(self, archivist: Archivist) -> None:
        """Registered as issued, and not revoked (the register is read when it changed)."""
        unregistered = TiaojieError(
            "token_invalid", "This archivist token is not in the register of issued tokens.", 401
        )
        if self.register is None or not TOKEN_ID.fullmatch(archivist.id):
            raise unregistered
        try:
            issued = self.register.tokens().get(archivist.id)
        except (OSError, ValueError):  # logged by the register, once per state of the file
            raise TiaojieError(
                "register_unreadable",
                "The register of archivist tokens cannot be read; ask the operator.",
                503,
            ) from None
        if issued is None or issued.expires != archivist.expires_at:
            raise unregistered
        if issued.revoked is not None:
            raise TiaojieError("token_revoked", "This archivist token has been revoked.", 403)

    # -- playback tickets --------------------------------------------------------------
    def ticket(self, recording_id: str, lifetime: int = TICKET_SECONDS) -> tuple[str, int]:
        expires_at = int(time.time()) + lifetime
        signed = f"{TICKET_PREFIX}.{recording_id}.{expires_at}"
        mac = hmac.new(self._ticket_key, signed.encode(), "sha256").digest()
        return f"{signed}.{_b64(mac)}", expires_at

    def check_ticket(self, ticket: str, recording_id: str) -> None:
        invalid = TiaojieError("ticket_invalid", "This playback ticket is not valid.", 401)
        parts = ticket.split(".")
        if len(ticket) > 256 or len(parts) != 4 or parts[0] != TICKET_PREFIX:
            raise invalid
        signed = ".".join(parts[:3])
        expected = hmac.new(self._ticket_key, signed.encode(), "sha256").digest()
        try:
            genuine = hmac.compare_digest(expected, _unb64(parts[3]))
            expires_at = int(parts[2])
        except ValueError:
            raise invalid from None
        if not genuine or parts[1] != recording_id:
            raise invalid
        if expires_at <= time.time():
            raise TiaojieError("ticket_expired", "This playback ticket has expired.", 401)
