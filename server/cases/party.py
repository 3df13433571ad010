"""A party's own progress link: `/c/{code}?key=<party key>`.

The public page (`/c/{code}`) shows no name, phone or ID number to whoever holds the
code. A party's own link carries a key that only this server can make: an HMAC of the
case and the party's position, under a key derived from the server's token secret
(DATA/secret_key, as invite links). Nothing is stored, so the link can be given again
in every message; it lasts as long as the secret. With it the page also shows that
party's session links and their signed agreements. `key` is a credential word of the
access log, which writes its value as REDACTED.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from tiaojie.server.cases.model import Case

KEY_PATTERN = r"[A-Za-z0-9_-]{22}"
_KEY = re.compile(KEY_PATTERN)


class PartyKeys:
    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"tiaojie case party links", hashlib.sha256).digest()

    def key(self, case_id: str, position: int) -> str:
        mac = hmac.new(self._key, f"{case_id}\0{position}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")

    def party_of(self, case: Case, key: str | None) -> int | None:
        """The position of the party whose key `key` is, or None."""
        if not key or not _KEY.fullmatch(key):
            return None
        found = None
        for position in range(len(case.parties)):
            if hmac.compare_digest(self.key(case.id, position), key):
                found = position
        return found
