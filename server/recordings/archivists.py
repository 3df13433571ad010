"""The register of issued archivist tokens: `DATA/archivist_tokens.jsonl` (mode 0600).

One JSON object a line, appended, never rewritten:

- `{"event": "issued", "id", "label", "issued", "expires"}` when `tiaojie archivist-token`
  issues a token (times are Unix seconds);
- `{"event": "revoked", "id", "at"}` when `tiaojie archivist-token --revoke ID` withdraws it.

The token itself is never written: it carries its id, and the server accepts an archivist
token only if its id is registered, not revoked, and the register's expiry agrees
(server/recordings/access.py). The server re-reads the file when its size, mtime or inode
change, so the command line can issue and revoke while it runs; a register it cannot read
refuses every archivist token. Several nodes must share the data directory (or this file)
for a revocation to reach them all.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

from tiaojie.archive.localtime import shown

log = logging.getLogger(__name__)

REGISTER_FILE = "archivist_tokens.jsonl"
#: The longest an archivist token may live; a longer need gets a new token each year.
MAX_LIFETIME = 365 * 86400
TOKEN_ID = re.compile(r"[0-9a-f]{16}")
MAX_LABEL = 64


def new_token_id() -> str:
    """64 random bits, as hex: names the token in the register, never a secret."""
    return secrets.token_hex(8)


def when(unix: float, tz: tzinfo | None = None) -> str:
    """A register time as people read it: in `tz` (the installation's zone,
    tiaojie.archive.localtime), UTC without one (the server's log)."""
    if tz is not None:
        return shown(unix, tz)
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(unix))


def check_label(label: str) -> str:
    """Who holds the token: 1-64 printable characters (it is logged and listed)."""
    if not 1 <= len(label) <= MAX_LABEL or not label.isprintable():
        raise ValueError(f"the label must be 1-{MAX_LABEL} printable characters")
    return label


@dataclass(frozen=True)
class IssuedToken:
    id: str
    label: str
    issued: int
    expires: int
    revoked: int | None = None

    def status(self, at: float) -> str:
        if self.revoked is not None:
            return "revoked"
        return "expired" if self.expires <= at else "active"


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a time: {value!r}")
    return value


def _parse(lines: list[str]) -> dict[str, IssuedToken]:
    """The tokens of the register, revocations applied; ValueError on any line that is
    not what the register holds (every token is then refused: see the module)."""
    tokens: dict[str, IssuedToken] = {}
    revoked: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            event, token_id = entry["event"], entry["id"]
            if not isinstance(token_id, str) or not TOKEN_ID.fullmatch(token_id):
                raise ValueError(f"bad id {token_id!r}")
            if event == "issued":
                if token_id in tokens:
                    raise ValueError(f"{token_id} issued twice")
                tokens[token_id] = IssuedToken(
                    token_id,
                    check_label(entry["label"]),
                    _int(entry["issued"]),
                    _int(entry["expires"]),
                )
            elif event == "revoked":
                revoked.setdefault(token_id, _int(entry["at"]))
            else:
                raise ValueError(f"unknown event {event!r}")
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"line {number}: {error}") from None
    for token_id, at in revoked.items():
        if token_id in tokens:
            old = tokens[token_id]
            tokens[token_id] = IssuedToken(old.id, old.label, old.issued, old.expires, at)
    return tokens


class ArchivistRegister:
    """`DATA/archivist_tokens.jsonl`: issue, revoke, and what is registered."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: tuple[tuple[int, int, int], dict[str, IssuedToken]] | None = None
        self._unreadable: tuple[int, int, int] | None = None

    @classmethod
    def of(cls, data_dir: Path) -> ArchivistRegister:
        return cls(Path(data_dir) / REGISTER_FILE)

    def tokens(self) -> dict[str, IssuedToken]:
        """Every registered token by id (none when there is no register yet); OSError or
        ValueError when the register cannot be read. Re-read only when the file changed;
        the changes seen are logged."""
        try:
            stat = self.path.lstat()
        except FileNotFoundError:
            return {}
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        try:
            if self.path.is_symlink():
                raise ValueError("it is a symbolic link")
            tokens = _parse(self.path.read_text(encoding="utf-8").splitlines())
        except (OSError, ValueError) as error:
            if key != self._unreadable:
                log.error("cannot read the register %s: %s", self.path, error)
                self._unreadable = key
            raise
        self._log_changes(self._cache[1] if self._cache else None, tokens)
        self._cache = (key, tokens)
        return tokens

    def _log_changes(
        self, before: dict[str, IssuedToken] | None, after: dict[str, IssuedToken]
    ) -> None:
        if before is None:
            revoked = sum(1 for t in after.values() if t.revoked is not None)
            log.debug("archivist tokens: %d registered, %d of them revoked", len(after), revoked)
            return
        for token in after.values():
            old = before.get(token.id)
            if old is None:
                log.info("archivist token %s (%s) issued", token.id, token.label)
            if token.revoked is not None and (old is None or old.revoked is None):
                log.info("archivist token %s (%s) revoked", token.id, token.label)

    def issue(self, label: str, lifetime: int) -> IssuedToken:
        """Register a new token of `lifetime` seconds (at most MAX_LIFETIME)."""
        if not 1 <= lifetime <= MAX_LIFETIME:
            raise ValueError(f"an archivist token lives 1 s to {MAX_LIFETIME // 86400} days")
        now = int(time.time())
        token = IssuedToken(new_token_id(), check_label(label), now, now + lifetime)
        self.tokens()  # refuse to add to a register that cannot be read
        self._append(
            {
                "event": "issued",
                "id": token.id,
                "label": token.label,
                "issued": token.issued,
                "expires": token.expires,
            }
        )
        log.info(
            "archivist token %s (%s) issued, expires %s", token.id, token.label, when(token.expires)
        )
        return token

    def revoke(self, token_id: str) -> IssuedToken:
        """Withdraw a registered token (KeyError when there is none of that id)."""
        token = self.tokens().get(token_id)
        if token is None:
            raise KeyError(token_id)
        if token.revoked is not None:
            return token
        at = int(time.time())
        self._append({"event": "revoked", "id": token_id, "at": at})
        log.info("archivist token %s (%s) revoked", token.id, token.label)
        return IssuedToken(token.id, token.label, token.issued, token.expires, at)

    def _append(self, entry: dict[str, Any]) -> None:
        """One whole line in one write, on a 0600 file."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
