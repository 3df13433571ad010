"""`--trusted-proxies`: behind a reverse proxy, the client's address and scheme come from
the proxy's `X-Forwarded-For` / `X-Forwarded-Proto` (and only from a proxy we trust).

Without it every request behind a proxy seems to come from the proxy: the per-address
login lockout, rate limits, the audit log's addresses and the "this machine only" rule of
the built-in TSA would all see one address. The client is the right-most address of
`X-Forwarded-For` that is not itself a trusted proxy (what each trusted hop appended);
anything further left was written by the client and is ignored. A request whose peer is
not a trusted proxy keeps its own address, whatever headers it sends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_trusted_proxies(text: str | None) -> tuple[IPNetwork, ...]:
    """`--trusted-proxies` "127.0.0.1, 10.0.0.0/8": addresses or CIDR ranges."""
    ranges = []
    for item in (text or "").replace(" ", ",").split(","):
        if not item.strip():
            continue
        try:
            ranges.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"--trusted-proxies: {item.strip()!r} is not an address or a CIDR range"
            ) from None
    return tuple(ranges)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class Forwarded:
    def __init__(self, trusted: tuple[IPNetwork, ...]) -> None:
        self.trusted = trusted

    def is_trusted(self, address: str | None) -> bool:
        ip = _ip(address or "")
        return ip is not None and any(ip in network for network in self.trusted)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client's address: the right-most untrusted hop of X-Forwarded-For."""
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        for hop in reversed(hops):
            if _ip(hop) is None:
                return peer  # a hop we cannot read: trust nothing further left
            if not self.is_trusted(hop):
                return str(_ip(hop))
        return peer

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.trusted and self.is_trusted(request.remote):
            client = self.client(
                request.remote or "", request.headers.getall("X-Forwarded-For", [])
            )
            proto = request.headers.getall("X-Forwarded-Proto", [""])[-1].split(",")[-1].strip()
            scheme = proto.lower() if proto.lower() in ("http", "https") else request.scheme
            request = request.clone(remote=client, scheme=scheme)
        return await handler(request)
