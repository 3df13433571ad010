"""Server settings: command-line options, each with a TIAOJIE_* environment variable."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from tiaojie.archive.localtime import DEFAULT_TIMEZONE, zone


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    redis_url: str | None = None
    #: Where durable records live: None is SQLite in the data directory (server/db/url.py).
    database_url: str | None = None
    public_url: str | None = None
    #: This node's own address, where participants are sent when their room's media is
    #: here (server/cluster/): None is `base_url`. Behind one load-balanced public URL
    #: each node needs its own.
    node_url: str | None = None
    #: Seconds a node's heartbeat and its rooms' placement leases live in Redis without
    #: renewal (renewed every third of it): how long a vanished node is still believed.
    node_ttl: float = 10.0
    #: Start draining: no new rooms are placed on this node (`tiaojie drain`).
    draining: bool = False
    admin_token: str | None = None
    secret_key: str | None = None
    ice_servers: str | None = None
    announce_ip: str | None = None
    #: CIDR ranges the server's ICE never checks (server/media/ice.py `deny_ranges`).
    ice_deny: str | None = None
    #: The UDP ports of every ICE socket, "40000-40199" (rtc/ports.py); None: any port.
    rtc_ports: str | None = None
    #: coturn's static-auth-secret and the TURN URLs handed out with per-participant
    #: credentials (server/media/turn.py); credentials last `turn_ttl` seconds.
    turn_secret: str | None = None
    turn_urls: str | None = None
    turn_ttl: int = 12 * 3600
    #: Reverse proxies whose X-Forwarded-For/-Proto are believed (server/forwarded.py).
    trusted_proxies: str | None = None
    #: The bearer token /metrics asks for; None: /metrics is off (server/metrics.py).
    metrics_token: str | None = None
    #: "text" (one line per event) or "json" (one JSON object per line)
    log_format: str = "text"
    #: Serve HTTPS with this certificate chain and key (PEM) (server/listener.py).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: With TLS: the loopback-only plain HTTP port the recorder and the built-in TSA
    #: use (chosen by `serve` at start; server/listener.py).
    internal_port: int | None = None
    transcode: bool = False
    #: What the SFU forwards: "packets" (rewritten RTP) or "frames" (re-packetized)
    media_plane: str = "packets"
    #: RFC 3161 timestamp authority for seals; None: the built-in one (POST /tsa).
    tsa_url: str | None = None
    #: Seconds a client has to send a request's headers (and, after a response, the next
    #: request: the keep-alive time) and, separately, its body (server/limits.py).
    request_timeout: float = 20.0
    #: Open connections one address may hold; 0: no limit (server/limits.py).
    max_connections_per_ip: int = 64
    #: Serve the built-in TSA (POST /tsa) to every address, not only this machine's.
    tsa_open: bool = False
    #: Failed logins of one login name that lock it, and of one address (0: no limit);
    #: how long a lock lasts, in seconds (server/accounts/lockout.py).
    login_failures: int = 5
    login_address_failures: int = 50
    login_lockout: int = 900
    #: The time zone every time people read is shown in (archive/localtime.py).
    timezone: str = DEFAULT_TIMEZONE
    #: Seconds someone whose connection dropped keeps their seat (presence
    #: `reconnecting`); 0: gone at once (server/signalling.py).
    reconnect_grace: float = 30.0

    @property
    def tz(self) -> ZoneInfo:
        """`timezone` as a zone (ValueError naming it when there is none)."""
        return zone(self.timezone)

    @property
    def base_url(self) -> str:
        """The address people open: --public-url, else what we listen on."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.tls:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            return f"https://{host}:{self.port}"
        return self.local_url

    @property
    def own_url(self) -> str:
        """This node's own address among several (--node-url, else `base_url`)."""
        return self.node_url.rstrip("/") if self.node_url else self.base_url

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def local_url(self) -> str:
        """Where processes on this machine (the recorder) reach the server."""
        if self.internal_port is not None:
            return f"http://127.0.0.1:{self.internal_port}"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"TIAOJIE_{name}")
    return value if value not in (None, "") else default


def local_port() -> int:
    """The port `serve` listens on by default: TIAOJIE_PORT, else 8080."""
    try:
        return int(_env("PORT", "8080") or 8080)
    except ValueError:
        return 8080


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600 seconds")
    return value


def _grace_seconds(text: str) -> float:
    """0 or more seconds, at most a day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError("between 0 and 86400 seconds")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (no limit) or more")
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=_env("HOST", "127.0.0.1"),
        help="address to listen on (TIAOJIE_HOST; default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=local_port(),
        help="port to listen on (TIAOJIE_PORT; default 8080)",
    )
    parser.add_argument(
        "--data",
        dest="data_dir",
        type=Path,
        default=Path(_env("DATA", "data") or "data"),
        help="data directory: keys, archive (TIAOJIE_DATA; default ./data)",
    )
    parser.add_argument(
        "--database",
        dest="database_url",
        default=_env("DATABASE"),
        help="where rooms, invites and agreements are kept: sqlite:///PATH or "
        "postgresql://USER:PASSWORD@HOST:PORT/NAME (several nodes share one PostgreSQL), "
        "or memory: (lost when the process ends) (TIAOJIE_DATABASE; default "
        "sqlite:///DATA/tiaojie.db)",
    )
    parser.add_argument(
        "--reconnect-grace",
        type=_grace_seconds,
        default=_grace_seconds(_env("RECONNECT_GRACE", "30") or "30"),
        help="seconds a participant whose connection dropped keeps their seat (others see "
        "them reconnecting) before they count as gone; 0: at once "
        "(TIAOJIE_RECONNECT_GRACE; default 30)",
    )
    parser.add_argument(
        "--redis",
        dest="redis_url",
        default=_env("REDIS"),
        help="Redis URL that carries socket.io events between nodes, e.g. "
        "redis://127.0.0.1:6379/0 (TIAOJIE_REDIS; default: one node)",
    )
    parser.add_argument(
        "--node-url",
        default=_env("NODE_URL"),
        help="with --redis: this node's own address, where participants of the rooms whose "
        "media it hosts are sent (TIAOJIE_NODE_URL; default: --public-url, else "
        "http://HOST:PORT); behind one load-balanced public URL give each node its own",
    )
    parser.add_argument(
        "--node-ttl",
        type=_positive_seconds,
        default=_positive_seconds(_env("NODE_TTL", "10") or "10"),
        help="with --redis: seconds after its last heartbeat that a node counts as gone "
        "and its rooms can be placed on another node (TIAOJIE_NODE_TTL; default 10)",
    )
    parser.add_argument(
        "--drain",
        dest="draining",
        action="store_true",
        default=_env("DRAIN") == "1",
        help="with --redis: start draining: no new room is placed on this node; its own "
        "rooms stay until they end (TIAOJIE_DRAIN=1; or later: tiaojie drain)",
    )
    parser.add_argument(
        "--ice-servers",
        default=_env("ICE_SERVERS"),
        help="STUN/TURN servers for clients and the server, as JSON: "
        '\'[{"urls": "turn:turn.example.org", "username": "u", "credential": "p"}]\' '
        "(TIAOJIE_ICE_SERVERS; default none)",
    )
    parser.add_argument(
        "--announce-ip",
        default=_env("ANNOUNCE_IP"),
        help="address announced in ICE candidates instead of the local one: the public "
        "address behind 1:1 NAT, or 127.0.0.1 on loopback-only hosts (TIAOJIE_ANNOUNCE_IP)",
    )
    parser.add_argument(
        "--ice-deny",
        default=_env("ICE_DENY"),
        help="CIDR ranges the server's ICE checks never go to, whatever a participant's "
        "candidates say, e.g. '10.0.0.0/8, 192.168.0.0/16' (TIAOJIE_ICE_DENY); loopback and "
        "link-local are always denied unless --announce-ip is a loopback address",
    )
    parser.add_argument(
        "--rtc-ports",
        default=_env("RTC_PORTS"),
        help="UDP port range for all media (ICE) sockets of the server and its recorders, "
        "e.g. 40000-40199: open it in the firewall; two ports per participant "
        "(TIAOJIE_RTC_PORTS; default: any port)",
    )
    parser.add_argument(
        "--turn-urls",
        default=_env("TURN_URLS"),
        help="TURN servers handed to participants with their own short-lived credentials, "
        "comma-separated, e.g. 'turn:turn.example.org:3478?transport=udp,"
        "turn:turn.example.org:3478?transport=tcp,turns:turn.example.org:443?transport=tcp' "
        "(TIAOJIE_TURN_URLS); needs the secret",
    )
    parser.add_argument(
        "--turn-secret",
        default=_env("TURN_SECRET"),
        help="coturn's static-auth-secret (use-auth-secret); prefer the environment "
        "variable TIAOJIE_TURN_SECRET, which other users of the machine cannot read",
    )
    parser.add_argument(
        "--turn-ttl",
        type=int,
        default=int(_env("TURN_TTL", str(12 * 3600)) or 12 * 3600),
        help="seconds a participant's TURN credentials last (TIAOJIE_TURN_TTL; default 43200)",
    )
    parser.add_argument(
        "--tls-cert",
        default=_env("TLS_CERT"),
        help="serve HTTPS with this certificate chain (PEM; phones give the camera only to "
        "HTTPS pages) (TIAOJIE_TLS_CERT); or put a reverse proxy in front (deploy/README.md)",
    )
    parser.add_argument(
        "--tls-key", default=_env("TLS_KEY"), help="its private key (PEM) (TIAOJIE_TLS_KEY)"
    )
    parser.add_argument(
        "--trusted-proxies",
        default=_env("TRUSTED_PROXIES"),
        help="addresses or CIDR ranges of your reverse proxies, e.g. '127.0.0.1' "
        "(TIAOJIE_TRUSTED_PROXIES): their X-Forwarded-For and X-Forwarded-Proto give the "
        "client's address and scheme, and they are not held to the per-address connection limit",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=_env("LOG_FORMAT", "text"),
        help="log lines as text or as one JSON object per line (TIAOJIE_LOG_FORMAT); "
        "neither carries tokens or personal data",
    )
    parser.add_argument(
        "--transcode",
        action="store_true",
        default=_env("TRANSCODE") == "1",
        help="decode and re-encode media instead of forwarding it (the benchmark baseline; "
        "much slower) (TIAOJIE_TRANSCODE=1)",
    )
    parser.add_argument(
        "--media-plane",
        choices=("packets", "frames"),
        default=_env("MEDIA_PLANE", "packets"),
        help="forward media as RTP packets with rewritten headers (default), or as frames "
        "each subscriber's sender packetizes again (the earlier path) (TIAOJIE_MEDIA_PLANE)",
    )
    parser.add_argument(
        "--tsa-url",
        default=_env("TSA_URL"),
        help="RFC 3161 timestamp authority for the seals of agreements and recordings "
        "(TIAOJIE_TSA_URL; default: the built-in one at POST /tsa, keys in DATA/keys)",
    )
    parser.add_argument(
        "--request-timeout",
        type=_positive_seconds,
        default=_env("REQUEST_TIMEOUT", "20"),
        help="seconds a client has to send a request's headers, and then its body; also "
        "how long an idle connection stays open (TIAOJIE_REQUEST_TIMEOUT; default 20)",
    )
    parser.add_argument(
        "--max-connections-per-ip",
        type=_count,
        default=_env("MAX_CONNECTIONS_PER_IP", "64"),
        help="open connections one client address may hold, 0 for no limit; behind a "
        "reverse proxy every connection comes from the proxy's address "
        "(TIAOJIE_MAX_CONNECTIONS_PER_IP; default 64)",
    )
    parser.add_argument(
        "--tsa-open",
        action="store_true",
        default=_env("TSA_OPEN") == "1",
        help="serve the built-in TSA at POST /tsa to every address (rate-limited); by "
        "default only to this machine (TIAOJIE_TSA_OPEN=1)",
    )
    parser.add_argument(
        "--login-failures",
        type=_count,
        default=_env("LOGIN_FAILURES", "5"),
        help="failed logins of one login name within 15 minutes that lock it "
        "(TIAOJIE_LOGIN_FAILURES; default 5)",
    )
    parser.add_argument(
        "--login-address-failures",
        type=_count,
        default=_env("LOGIN_ADDRESS_FAILURES", "50"),
        help="failed logins from one address within 15 minutes that lock the address, 0 "
        "for no limit; behind a reverse proxy every login comes from the proxy's address "
        "(TIAOJIE_LOGIN_ADDRESS_FAILURES; default 50)",
    )
    parser.add_argument(
        "--login-lockout",
        type=_count,
        default=_env("LOGIN_LOCKOUT", "900"),
        help="seconds a locked login or address stays locked (TIAOJIE_LOGIN_LOCKOUT; default 900)",
    )
    parser.add_argument(
        "--timezone",
        default=_env("TIMEZONE", DEFAULT_TIMEZONE),
        help="the IANA time zone people read times in: the agreement PDF, the status page, "
        f"the recordings page (TIAOJIE_TIMEZONE; default {DEFAULT_TIMEZONE})",
    )
    parser.add_argument(
        "--public-url",
        default=_env("PUBLIC_URL"),
        help="base URL invite links use, e.g. https://mediation.example.org "
        "(TIAOJIE_PUBLIC_URL; default http://HOST:PORT)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        redis_url=args.redis_url,
        database_url=args.database_url,
        public_url=args.public_url,
        node_url=args.node_url,
        node_ttl=args.node_ttl,
        draining=args.draining,
        admin_token=_env("ADMIN_TOKEN"),
        secret_key=_env("SECRET_KEY"),
        ice_servers=args.ice_servers,
        announce_ip=args.announce_ip,
        ice_deny=args.ice_deny,
        rtc_ports=args.rtc_ports,
        turn_secret=args.turn_secret,
        turn_urls=args.turn_urls,
        turn_ttl=args.turn_ttl,
        metrics_token=_env("METRICS_TOKEN"),
        trusted_proxies=args.trusted_proxies,
        log_format=args.log_format,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        transcode=args.transcode,
        media_plane=args.media_plane,
        tsa_url=args.tsa_url,
        request_timeout=args.request_timeout,
        max_connections_per_ip=args.max_connections_per_ip,
        tsa_open=args.tsa_open,
        login_failures=args.login_failures,
        login_address_failures=args.login_address_failures,
        login_lockout=args.login_lockout,
        timezone=args.timezone,
        reconnect_grace=args.reconnect_grace,
    )
