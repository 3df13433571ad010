"""The UDP port range every ICE socket of this process binds in (`--rtc-ports`).

aioice binds its host candidates' sockets to port 0 (any port the kernel picks), so a
firewall in front of the server would have to open every port. With a range, the
internals module (rtc/aiortc_internals.py `bind_ice_in`) hands aioice a socket bound by
`PortRange.bind`. The server and its recorder processes share one range: a port in use
by another process is skipped like any taken port.

A range of one port ("40000") is single-port mode: every ICE connection of the server
shares that one socket, demultiplexed by ICE username and then by the peer's address
(rtc/aiortc_internals.py `_SharedPort`), so a firewall opens one UDP port.
"""

from __future__ import annotations

import errno
import logging
import random
import socket
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: The widest range accepted; and at least this many ports (two per participant).
MIN_PORT = 1024
MAX_PORT = 65535


class PortsExhausted(OSError):
    """Every port of the range is taken: no new ICE socket until one is freed."""


@dataclass
class PortRange:
    first: int
    last: int
    #: where the next search starts: successive sockets take successive ports, so a
    #: port just freed is not handed out again at once (late packets of the old stream)
    _cursor: int = field(default=0, repr=False, compare=False)
    exhausted: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._cursor = random.randrange(self.size)

    @property
    def single(self) -> bool:
        """One port: every ICE connection shares it (single-port mode)."""
        return self.first == self.last

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"

    def bind(self, host: str) -> socket.socket:
        """A UDP socket bound to `host` on a free port of the range, or PortsExhausted."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for step in range(self.size):
            port = self.first + (self._cursor + step) % self.size
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError as error:
                sock.close()
                if error.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            self._cursor = (port - self.first + 1) % self.size
            return sock
        self.exhausted += 1
        log.warning(
            "no free UDP port on %s in --rtc-ports %s (%d ports, all in use): "
            "a media connection cannot be made; widen the range",
            host,
            self,
            self.size,
        )
        raise PortsExhausted(
            errno.EADDRINUSE, f"every UDP port of --rtc-ports {self} is in use on {host}"
        )


def parse_port_range(text: str | None) -> PortRange | None:
    """`--rtc-ports` "40000-40199" (or one port, "40000"); None or "" is any port."""
    if not text or not text.strip():
        return None
    first_text, dash, last_text = text.strip().partition("-")
    try:
        first = int(first_text)
        last = int(last_text) if dash else first
    except ValueError:
        raise ValueError(f"--rtc-ports must look like 40000-40199, not {text.strip()!r}") from None
    if not MIN_PORT <= first <= last <= MAX_PORT:
        raise ValueError(
            f"--rtc-ports {text.strip()}: the ports must be between {MIN_PORT} and "
            f"{MAX_PORT}, the first not above the last"
        )
    return PortRange(first, last)
