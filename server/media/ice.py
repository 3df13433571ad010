"""ICE settings: the STUN/TURN servers handed to clients, and the address we announce."""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import socket
from dataclasses import dataclass, field
from typing import Any

from tiaojie.rtc import aiortc_internals

_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host.*)$", re.MULTILINE)
_CONNECTION = re.compile(r"^c=IN IP[46] [^\s]+(\r?)$", re.MULTILINE)


@dataclass(frozen=True)
class IceSettings:
    #: RTCIceServer dictionaries: {"urls": ..., "username": ..., "credential": ...}
    servers: list[dict[str, Any]] = field(default_factory=list)
    #: The address clients should reach us at. If it is one of ours (127.0.0.1 on a
    #: loopback-only host), ICE gathers on it alone; otherwise (the public address of a
    #: 1:1 NAT) our host candidates are rewritten to it.
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


@functools.lru_cache(maxsize=16)
def is_local_address(ip: str) -> bool:
    """True if `ip` is assigned to this machine (we can bind to it)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((ip, 0))
        return True
    except OSError:
        return False


def apply(ice: IceSettings) -> None:
    """Gather on the announced address itself when it is ours (127.0.0.1 included)."""
    local = ice.announce_ip is not None and is_local_address(ice.announce_ip)
    aiortc_internals.gather_only_on([ice.announce_ip] if local and ice.announce_ip else None)


def rewrite_candidates(sdp: str, ice: IceSettings) -> str:
    """Announce `ice.announce_ip` in place of our host candidates' addresses (NAT)."""
    if not ice.announce_ip or is_local_address(ice.announce_ip):
        return sdp
    sdp = _CANDIDATE.sub(lambda m: f"{m.group(1)}{ice.announce_ip}{m.group(3)}", sdp)
    family = "IP6" if ":" in ice.announce_ip else "IP4"
    return _CONNECTION.sub(lambda m: f"c=IN {family} {ice.announce_ip}{m.group(1)}", sdp)
