"""ICE settings: the STUN/TURN servers handed to clients, the address we announce, and
which remote candidates the server's ICE may check (`screen_candidates`).

A participant names the addresses the server's connectivity checks go to (the candidates
of its offer or answer). So that nobody can aim those UDP probes at the server's own
network, every remote candidate is screened in the SDP text before aiortc sees it: an IP
address (never a name: mDNS `.local` names would make the server resolve names on its
own link), over UDP, outside the denied ranges (`--ice-deny`, plus loopback and
link-local unless the server itself is on loopback), and at most MAX_REMOTE_CANDIDATES
per connection. A browser whose candidates are all dropped still connects when its own
checks reach the server (peer-reflexive candidates).
"""

from __future__ import annotations

import collections
import functools
import ipaddress
import json
import re
import socket
from dataclasses import dataclass, field
from typing import Any

from tiaojie.rtc import aiortc_internals
from tiaojie.rtc.ports import PortRange
from tiaojie.server.media.turn import TurnSettings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Remote candidates the server's ICE checks on one connection, over its whole life.
MAX_REMOTE_CANDIDATES = 16
#: Denied unless the server itself is on loopback: loopback and link-local.
LOCAL_RANGES: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10")
)

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
    #: Remote candidates in these ranges are dropped (`deny_ranges`).
    deny: tuple[IPNetwork, ...] = ()
    max_remote_candidates: int = MAX_REMOTE_CANDIDATES
    #: Short-lived TURN credentials per participant (server/media/turn.py), or None.
    turn: TurnSettings | None = None
    #: The UDP ports every ICE socket binds in (`--rtc-ports`); None: any port.
    ports: PortRange | None = None

    def servers_for(self, participant_id: str, relay: bool = True) -> list[dict[str, Any]]:
        """The RTCIceServers a participant gets: the static ones, and their own TURN
        login (`relay` False for the recorder, which is on this machine)."""
        servers = list(self.servers)
        if self.turn is not None and relay:
            servers.append(self.turn.credentials(participant_id))
        return servers


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


def parse_ice_deny(text: str | None) -> tuple[IPNetwork, ...]:
    """`--ice-deny`: CIDR ranges separated by commas or spaces (`10.0.0.0/8, fd00::/8`)."""
    ranges = []
    for item in re.split(r"[,\s]+", text or ""):
        if not item:
            continue
        try:
            ranges.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"--ice-deny: {item!r} is not a CIDR range like 10.0.0.0/8") from None
    return tuple(ranges)


def deny_ranges(text: str | None, announce_ip: str | None) -> tuple[IPNetwork, ...]:
    """The operator's ranges, plus loopback and link-local unless the server is on
    loopback: its announced address is a loopback one (it then gathers there alone;
    otherwise aioice gathers on the machine's other addresses, never on loopback)."""
    listed = parse_ice_deny(text)
    on_loopback = announce_ip is not None and ipaddress.ip_address(announce_ip).is_loopback
    return listed if on_loopback else LOCAL_RANGES + listed


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
    """Gather on the announced address itself when it is ours (127.0.0.1 included), on
    ports of the range when there is one."""
    aiortc_internals.bind_ice_in(ice.ports)
    local = ice.announce_ip is not None and is_local_address(ice.announce_ip)
    aiortc_internals.gather_only_on([ice.announce_ip] if local and ice.announce_ip else None)


def rewrite_candidates(sdp: str, ice: IceSettings) -> str:
    """Announce `ice.announce_ip` in place of our host candidates' addresses (NAT)."""
    if not ice.announce_ip or is_local_address(ice.announce_ip):
        return sdp
    sdp = _CANDIDATE.sub(lambda m: f"{m.group(1)}{ice.announce_ip}{m.group(3)}", sdp)
    family = "IP6" if ":" in ice.announce_ip else "IP4"
    return _CONNECTION.sub(lambda m: f"c=IN {family} {ice.announce_ip}{m.group(1)}", sdp)


class RemoteCandidates:
    """The remote candidates accepted on one connection so far (the limit counts them
    over renegotiations; one signalled again is not counted twice)."""

    def __init__(self) -> None:
        self.accepted: set[tuple[str, str, int]] = set()


def _verdict(line: str, ice: IceSettings, seen: RemoteCandidates) -> str | None:
    """Why a candidate line is dropped, or None to keep it (and count it)."""
    bits = line.split()
    if len(bits) < 8 or bits[6] != "typ":
        return "unreadable"
    component, transport, address, port = bits[1], bits[2], bits[4], bits[5]
    if not (bits[3].isdigit() and component.isdigit() and port.isdigit() and 0 < int(port) < 65536):
        return "unreadable"
    if transport.lower() != "udp":
        return "not_udp"  # the server's ICE checks only UDP candidates
    if address.lower().endswith(".local"):
        return "mdns"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not_an_address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast or any(ip in net for net in ice.deny):
        return "denied"
    key = (component, str(ip), int(port))
    if key in seen.accepted:
        return None
    if len(seen.accepted) >= ice.max_remote_candidates:
        return "over_limit"
    seen.accepted.add(key)
    return None


def screen_candidates(
    sdp: str, ice: IceSettings, seen: RemoteCandidates
) -> tuple[str, dict[str, int]]:
    """`sdp` (a remote offer or answer) without the candidates the server must not check
    (see the module), and how many were dropped for which reason."""
    kept: list[str] = []
    dropped: collections.Counter[str] = collections.Counter()
    for line in sdp.splitlines(keepends=True):  # the lines aiortc's parser sees
        attribute, _, value = line.removeprefix("a=").partition(":")
        if line.startswith("a=") and attribute.rstrip("\r\n") == "candidate":
            reason = _verdict(value, ice, seen)
            if reason is not None:
                dropped[reason] += 1
                continue
        kept.append(line)
    return "".join(kept), dict(dropped)
