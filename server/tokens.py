"""Invite tokens: `tj1.<payload>.<mac>`, HMAC-SHA256 with the server secret.

The payload binds room, role, invite and expiry. Revocation is checked against the room
state, not the token. Tokens are secrets: never log them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from tiaojie.server.errors import TiaojieError
from tiaojie.server.roles import Role

PREFIX = "tj1"
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class InviteClaims:
    room_id: str
    role: Role
    invite_id: str
    expires_at: int


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 bytes")
        self._secret = secret

    def _mac(self, message: bytes) -> hmac.HMAC:
        mac = hmac.HMAC(self._secret, hashes.SHA256())
        mac.update(message)
        return mac

    def sign(self, claims: InviteClaims) -> str:
        payload = json.dumps(
            {
                "r": claims.room_id,
                "o": str(claims.role),
                "i": claims.invite_id,
                "x": claims.expires_at,
            },
            separators=(",", ":"),
        ).encode()
        signed = f"{PREFIX}.{_b64encode(payload)}"
        return f"{signed}.{_b64encode(self._mac(signed.encode()).finalize())}"

    def verify(self, token: object, now: int) -> InviteClaims:
        """The claims of a genuine, unexpired token; raises TiaojieError otherwise."""
        invalid = TiaojieError("token_invalid", "This link is not valid.", 401)
        if not isinstance(token, str) or not token:
            raise TiaojieError("token_missing", "No invite token was given.", 401)
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise invalid
        prefix, payload_b64, mac_b64 = token.split(".")
        if prefix != PREFIX:
            raise invalid
        try:
            self._mac(f"{prefix}.{payload_b64}".encode()).verify(_b64decode(mac_b64))
            data = json.loads(_b64decode(payload_b64))
            claims = InviteClaims(
                room_id=str(data["r"]),
                role=Role(data["o"]),
                invite_id=str(data["i"]),
                expires_at=int(data["x"]),
            )
        except (InvalidSignature, ValueError, KeyError, TypeError):
            raise invalid from None
        if claims.expires_at <= now:
            raise TiaojieError("token_expired", "This link has expired.", 401)
        return claims
