"""Short-lived TURN credentials by the TURN REST convention (coturn's `use-auth-secret`).

Each participant gets their own: username `<expiry unix seconds>:<participant id>`,
password base64(HMAC-SHA1(shared secret, username)). coturn recomputes the password from
the secret it shares with us and refuses a username whose expiry has passed, so nothing
is stored and a leaked credential dies on its own. A participant gets fresh ones each
time they enter the room (a reconnect included).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

#: How long a credential lasts: longer than any session, short enough to be worthless
#: soon after (a reconnect brings new ones).
DEFAULT_TURN_TTL_S = 12 * 3600


@dataclass(frozen=True)
class TurnSettings:
    secret: str
    urls: tuple[str, ...]
    ttl: int = DEFAULT_TURN_TTL_S

    def __repr__(self) -> str:  # the secret never reaches a log
        return f"TurnSettings(urls={self.urls!r}, ttl={self.ttl})"

    def credentials(self, user: str, now: float | None = None) -> dict[str, Any]:
        """An RTCIceServer for `user` (a participant id): all the TURN URLs, one login."""
        expiry = int(now if now is not None else time.time()) + self.ttl
        username = f"{expiry}:{user}"
        return {
            "urls": list(self.urls),
            "username": username,
            "credential": turn_password(self.secret, username),
        }


def turn_password(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def parse_turn(secret: str | None, urls: str | None, ttl: int) -> TurnSettings | None:
    """`--turn-secret` and `--turn-urls` (comma-separated turn:/turns: URLs) together,
    or neither."""
    listed = tuple(u.strip() for u in (urls or "").replace(" ", ",").split(",") if u.strip())
    if not secret and not listed:
        return None
    if not secret:
        raise ValueError("--turn-urls needs --turn-secret (coturn's static-auth-secret)")
    if not listed:
        raise ValueError(
            "--turn-secret needs --turn-urls, e.g. "
            "'turn:turn.example.org:3478?transport=udp,turns:turn.example.org:443?transport=tcp'"
        )
    for url in listed:
        if url.split(":")[0] not in ("turn", "turns"):
            raise ValueError(f"--turn-urls: {url!r} is not a turn: or turns: URL")
    if ttl < 60:
        raise ValueError("--turn-ttl must be at least 60 seconds")
    return TurnSettings(secret, listed, ttl)
