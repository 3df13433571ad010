"""ICE settings: the STUN/TURN servers handed to clients, and the address we announce."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host.*)$", re.MULTILINE)
_CONNECTION = re.compile(r"^c=IN IP[46] (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class IceSettings:
    #: RTCIceServer dictionaries: {"urls": ..., "username": ..., "credential": ...}
    servers: list[dict[str, Any]] = field(default_factory=list)
    #: The address clients should reach us at (behind 1:1 NAT, or loopback-only hosts).
    announce_ip: str | None = None


def parse_ice_servers(text: str | None) -> list[dict[str, Any]]:
    """`--ice-servers` JSON: a list of RTCIceServer dictionaries."""
    if not text:
        return []
    try:
        servers = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--ice-servers is not valid JSON: {error}") from None
    if not isinstance(servers, list):
        raise ValueError("--ice-servers must be a JSON list of {urls, username, credential}")
    allowed = {"urls", "username", "credential"}
    for server in servers:
        if not isinstance(server, dict) or "urls" not in server or set(server) - allowed:
            raise ValueError(f"--ice-servers: bad entry {server!r}: use urls/username/credential")
        urls = server["urls"] if isinstance(server["urls"], list) else [server["urls"]]
        if not all(
            isinstance(u, str) and u.split(":")[0] in ("stun", "turn", "turns") for u in urls
        ):
            raise ValueError(f"--ice-servers: URLs must be stun:, turn: or turns: ({urls})")
    return servers


def check_announce_ip(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"--announce-ip must be an IP address, not {text!r}") from None


def rewrite_candidates(sdp: str, ice: IceSettings) -> str:
    """Announce `ice.announce_ip` in place of our host candidates' addresses."""
    if not ice.announce_ip:
        return sdp
    sdp = _CANDIDATE.sub(lambda m: f"{m.group(1)}{ice.announce_ip}{m.group(3)}", sdp)
    family = "IP6" if ":" in ice.announce_ip else "IP4"
    return _CONNECTION.sub(f"c=IN {family} {ice.announce_ip}", sdp)
