"""Real networks for tests and benchmarks, on one machine, as root.

What it holds today:

- `nat_lab()`: a client network namespace whose only way out is a router namespace that
  masquerades (nftables) onto a veth link to the root namespace, with addresses in
  10.213.0.0/16 (unlikely to clash). Everything it made is removed when the block ends,
  even on failure; labs left behind by a killed run are swept on the next start.
- `socket_in()` / `tcp_bridge()`: sockets made inside a namespace from this process (a
  thread that enters the namespace), so the root namespace can reach a Chromium's CDP port
  inside one without routing the client's network.
- `ImpairmentRelay`: an asyncio UDP relay between a listening address and an upstream one,
  one upstream socket per client, with random loss, one-way delay and a rate limit (a
  FIFO link with a bounded queue) per direction, counting what it dropped; `RelayProcess`
  runs one in a child process, away from the event loop of the server under test. This
  kernel has no netem qdisc; the relay is how tests put a bad link in a media path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

#: Every lab's addresses are /24s of this /16: 10.213.X.0/24.
LAB_PREFIX = "10.213"
#: Namespace names: "tjlab<pid>-<n>r" (router) / "…c" (client); the root veth "tjl<pid>-<n>".
_NAME = re.compile(r"^tjlab(\d+)-(\d+)[rc]$")
_CLONE_NEWNET = 0x40000000
#: Where `python -m tests.support.netlab` runs from.
_REPOSITORY = str(Path(__file__).resolve().parents[2])
_counter = 0
_lock = threading.Lock()

T = TypeVar("T")


class NetlabUnavailable(RuntimeError):
    """This machine cannot make namespaces (not root, no iproute2 / nft)."""


def _run(*command: str, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(
        list(command), input=stdin, capture_output=True, text=True, check=False, timeout=30
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def available() -> str | None:
    """Why namespace labs cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: iproute2, nftables; `make setup-test`)"
    return None


def in_namespace(namespace: str, function: Callable[[], T]) -> T:
    """Run `function` on a thread that entered `namespace`: sockets it makes live there
    (a socket keeps its namespace for life; the thread ends right after)."""
    result: list[Any] = []

    def work() -> None:
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            with open(f"/run/netns/{namespace}") as handle:
                if libc.setns(handle.fileno(), _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {namespace}")
            result.append((True, function()))
        except BaseException as error:  # handed to the caller
            result.append((False, error))

    thread = threading.Thread(target=work, name=f"netns-{namespace}")
    thread.start()
    thread.join()
    ok, value = result[0]
    if not ok:
        raise value
    return value


def socket_in(namespace: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A non-blocking IPv4 socket inside `namespace`."""
    sock = in_namespace(namespace, lambda: socket.socket(socket.AF_INET, kind))
    sock.setblocking(False)
    return sock


def _used_subnets() -> set[int]:
    used = set()
    for match in re.finditer(rf"inet {re.escape(LAB_PREFIX)}\.(\d+)\.", _run("ip", "-o", "addr")):
        used.add(int(match.group(1)))
    return used


def sweep_stale_labs() -> list[str]:
    """Remove namespaces (and their veths) left by a lab whose process is gone."""
    removed = []
    for line in _run("ip", "netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME.match(name)
        if match is None:
            continue
        try:
            os.kill(int(match.group(1)), 0)
            continue  # its process lives: in use
        except ProcessLookupError:
            pass
        _remove_namespace(name)
        removed.append(name)
    return removed


def _remove_namespace(name: str) -> None:
    """Stop what still runs inside (processes a lab started), then delete it."""
    for pid in _run("ip", "netns", "pids", name, check=False).split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    _run("ip", "netns", "del", name, check=False)


@dataclass
class NatLab:
    """Root namespace ↔ router (masquerading) ↔ client."""

    router: str
    client: str
    #: The root namespace's address on the link to the router (where a server listens).
    server_ip: str
    #: The router's outside address: what the server sees a NATed client come from.
    public_ip: str
    #: The client's own address, behind the NAT (never seen outside).
    client_ip: str
    #: The router's inside address, the client's gateway.
    gateway_ip: str
    root_link: str
    #: Whether a UDP probe from the client arrived from `public_ip` (checked on creation).
    translates: bool = False
    made: list[str] = field(default_factory=list)

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside the client namespace."""
        return ["ip", "netns", "exec", self.client, *argv]


def _probe_nat(lab: NatLab) -> bool:
    """Send UDP from the client namespace to the root; did it arrive from `public_ip`?"""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((lab.server_ip, 0))
    receiver.settimeout(0.2)
    sender = in_namespace(lab.client, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            sender.sendto(b"netlab-probe", receiver.getsockname())
            try:
                _, source = receiver.recvfrom(64)
            except TimeoutError:
                continue
            return bool(source[0] == lab.public_ip)
        return False
    finally:
        sender.close()
        receiver.close()


@contextlib.contextmanager
def nat_lab(masquerade: bool = True) -> Iterator[NatLab]:
    """A client namespace behind a masquerading router namespace; removed afterwards.

    Root 10.213.A.1 ⇄ router 10.213.A.2 (outside) / 10.213.B.1 (inside) ⇄ client
    10.213.B.2. The root namespace has no route to 10.213.B.0/24: the client can only
    be reached through the translation its own traffic set up.
    """
    why = available()
    if why:
        raise NetlabUnavailable(why)
    global _counter
    sweep_stale_labs()
    with _lock:
        _counter += 1
        tag = f"{os.getpid()}-{_counter}"
        free = sorted(set(range(20, 250)) - _used_subnets(), key=lambda _: random.random())
        outside, inside = free[0], free[1]
    lab = NatLab(
        router=f"tjlab{tag}r",
        client=f"tjlab{tag}c",
        server_ip=f"{LAB_PREFIX}.{outside}.1",
        public_ip=f"{LAB_PREFIX}.{outside}.2",
        client_ip=f"{LAB_PREFIX}.{inside}.2",
        gateway_ip=f"{LAB_PREFIX}.{inside}.1",
        root_link=f"tjl{tag}"[:15],
    )
    gateway = lab.gateway_ip
    try:
        for name in (lab.router, lab.client):
            _run("ip", "netns", "add", name)
            lab.made.append(name)
            _run("ip", "-n", name, "link", "set", "lo", "up")
        # root ⇄ router
        # the peer is made inside the router at once: no "tjo" in the root namespace
        # that another test process making its lab at the same moment could collide with
        _run(
            "ip", "link", "add", lab.root_link, "type", "veth",
            "peer", "name", "tjo", "netns", lab.router,
        )  # fmt: skip
        _run("ip", "addr", "add", f"{lab.server_ip}/24", "dev", lab.root_link)
        _run("ip", "link", "set", lab.root_link, "up")
        _run("ip", "-n", lab.router, "addr", "add", f"{lab.public_ip}/24", "dev", "tjo")
        _run("ip", "-n", lab.router, "link", "set", "tjo", "up")
        # router ⇄ client
        _run("ip", "-n", lab.router, "link", "add", "tji", "type", "veth", "peer", "name", "eth0")
        _run("ip", "-n", lab.router, "link", "set", "eth0", "netns", lab.client)
        _run("ip", "-n", lab.router, "addr", "add", f"{gateway}/24", "dev", "tji")
        _run("ip", "-n", lab.router, "link", "set", "tji", "up")
        _run("ip", "-n", lab.client, "addr", "add", f"{lab.client_ip}/24", "dev", "eth0")
        _run("ip", "-n", lab.client, "link", "set", "eth0", "up")
        _run("ip", "-n", lab.client, "route", "add", "default", "via", gateway)
        _run("ip", "netns", "exec", lab.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        if masquerade:
            _run(
                "ip", "netns", "exec", lab.router, "nft", "-f", "-",
                stdin="table ip tjnat {\n"
                " chain post { type nat hook postrouting priority srcnat; policy accept;\n"
                '  oifname "tjo" masquerade; }\n'
                "}\n",
            )  # fmt: skip
            lab.translates = _probe_nat(lab)
        yield lab
    finally:
        for name in reversed(lab.made):
            _remove_namespace(name)
        _run("ip", "link", "del", lab.root_link, check=False)  # gone with the router


async def tcp_bridge(namespace: str, port: int) -> tuple[asyncio.Server, int]:
    """A listener on 127.0.0.1 (root namespace) whose connections are carried to
    127.0.0.1:`port` inside `namespace`. Returns the server and its port."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = socket_in(namespace)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except OSError:
            sock.close()
            writer.close()
            return
        inner_reader, inner_writer = await asyncio.open_connection(sock=sock)
        await asyncio.gather(pipe(reader, inner_writer), pipe(inner_reader, writer))

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


# ----------------------------------------------------------------------- impairment relay


@dataclass
class Impairment:
    """One direction of a bad link."""

    #: Probability that a datagram is dropped (0.03: 3 %).
    loss: float = 0.0
    #: Added one-way delay, milliseconds.
    delay_ms: float = 0.0
    #: Link rate in bits per second (None: unlimited).
    rate_bps: float | None = None
    #: Bytes that may wait for the link; a datagram that does not fit is dropped.
    queue_bytes: int = 30_000


@dataclass
class DirectionCounters:
    packets: int = 0
    bytes: int = 0
    forwarded: int = 0
    #: Dropped at random (`loss`).
    lost: int = 0
    #: Dropped because the rate limiter's queue was full.
    overflowed: int = 0
    #: Dropped during an outage.
    blacked_out: int = 0

    @property
    def dropped(self) -> int:
        return self.lost + self.overflowed + self.blacked_out


class _Direction:
    """A FIFO link: random loss, then a queue drained at `rate_bps`, then `delay_ms`."""

    def __init__(self, impairment: Impairment, rng: random.Random) -> None:
        self.impairment = impairment
        self.counters = DirectionCounters()
        self.rng = rng
        self.free_at = 0.0  # when the link finishes sending what is queued
        self.outage = False

    def schedule(self, size: int, send: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        c, imp = self.counters, self.impairment
        c.packets += 1
        c.bytes += size
        if self.outage:
            c.blacked_out += 1
            return
        if imp.loss and self.rng.random() < imp.loss:
            c.lost += 1
            return
        leave = now
        if imp.rate_bps:
            backlog = max(0.0, self.free_at - now) * imp.rate_bps / 8
            if backlog + size > imp.queue_bytes:
                c.overflowed += 1
                return
            leave = max(now, self.free_at) + size * 8 / imp.rate_bps
            self.free_at = leave
        c.forwarded += 1
        at = leave + imp.delay_ms / 1000
        if at <= now:
            send()
        else:
            loop.call_at(at, send)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, relay: ImpairmentRelay, route: int) -> None:
        self.relay = relay
        self.route = route

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay._from_client(self.route, data, addr)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: ImpairmentRelay, route: int, client: tuple[str, int]) -> None:
        self.relay = relay
        self.route = route
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for data in self.pending:
            self.transport.sendto(data)  # type: ignore[union-attr]
        self.pending.clear()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay._from_upstream(self.route, data, self.client)

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self.pending.append(data)
        elif not self.transport.is_closing():
            self.transport.sendto(data)


Address = tuple[str, int]


class ImpairmentRelay:
    """UDP from clients at `listen` goes to `upstream` through `up`; replies come back
    through `down`. Each client address gets its own upstream socket, so the upstream
    (a TURN server, an SFU port) tells clients apart as it would without the relay.

    `routes`: several (listen, upstream) pairs sharing the one impaired link (the
    relay in front of every port of a range), instead of `listen` and `upstream`.
    `namespace`: make the sockets inside this network namespace (see `in_namespace`).
    """

    def __init__(
        self,
        upstream: Address | None = None,
        up: Impairment | None = None,
        down: Impairment | None = None,
        listen: Address = ("127.0.0.1", 0),
        namespace: str | None = None,
        seed: int = 14,
        routes: list[tuple[Address, Address]] | None = None,
    ) -> None:
        rng = random.Random(seed)
        if routes is None:
            assert upstream is not None, "an upstream or routes"
            routes = [(listen, upstream)]
        self.routes = routes
        self.namespace = namespace
        self.up = _Direction(up or Impairment(), rng)
        self.down = _Direction(down or Impairment(), rng)
        self._listeners: list[asyncio.DatagramTransport] = []
        self._clients: dict[tuple[int, Address], _Upstream] = {}
        self._transports: list[asyncio.DatagramTransport] = []
        self._opening: set[asyncio.Future[None]] = set()

    def _socket(self) -> socket.socket:
        if self.namespace is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            return sock
        return socket_in(self.namespace, socket.SOCK_DGRAM)

    async def start(self) -> ImpairmentRelay:
        loop = asyncio.get_running_loop()
        for index, (listen, _) in enumerate(self.routes):
            sock = self._socket()
            sock.bind(listen)
            transport, _ = await loop.create_datagram_endpoint(
                lambda index=index: _Listener(self, index),  # type: ignore[misc]
                sock=sock,
            )
            self._listeners.append(transport)
        return self

    @property
    def address(self) -> Address:
        """Where the (first) route listens."""
        assert self._listeners, "start() first"
        host, port = self._listeners[0].get_extra_info("sockname")[:2]
        return str(host), int(port)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def configure(self, up: Impairment, down: Impairment) -> None:
        """Change the link from now on (queues and counters carry over)."""
        self.up.impairment, self.down.impairment = up, down

    def set_outage(self, on: bool) -> None:
        """Drop everything in both directions while `on` (a link that went away)."""
        self.up.outage = self.down.outage = on

    def _from_client(self, route: int, data: bytes, client: Address) -> None:
        upstream = self._clients.get((route, client))
        if upstream is None:
            upstream = self._clients[route, client] = _Upstream(self, route, client)
            self._opening.add(task := asyncio.ensure_future(self._open_upstream(upstream)))
            task.add_done_callback(self._opening.discard)
        self.up.schedule(len(data), lambda: upstream.send(data))

    async def _open_upstream(self, upstream: _Upstream) -> None:
        sock = self._socket()
        sock.connect(self.routes[upstream.route][1])
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: upstream, sock=sock
        )
        self._transports.append(transport)

    def _from_upstream(self, route: int, data: bytes, client: Address) -> None:
        listener = self._listeners[route]

        def send() -> None:
            if not listener.is_closing():
                listener.sendto(data, client)

        self.down.schedule(len(data), send)

    def close(self) -> None:
        for transport in [*self._transports, *self._listeners]:
            transport.close()

    def report(self) -> dict[str, Any]:
        """What went through and what was dropped, per direction."""
        return {"up": vars(self.up.counters), "down": vars(self.down.counters)}


# ------------------------------------------------- the relay in a process of its own


def _raise_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(-10)


class RelayProcess:
    """An `ImpairmentRelay` in a child process: its timers do not wait for the test's
    event loop (which also runs the SFU), so the delays it adds are the ones asked for.

    Talks over the child's stdin/stdout, one JSON line each way.
    """

    def __init__(self, process: asyncio.subprocess.Process, address: tuple[str, int]) -> None:
        self.process = process
        self.address = address

    @classmethod
    async def start(
        cls,
        upstream: Address | None = None,
        up: Impairment | None = None,
        down: Impairment | None = None,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        namespace: str | None = None,
        routes: list[tuple[Address, Address]] | None = None,
    ) -> RelayProcess:
        """`namespace`: run the relay inside it (`ip netns exec`); see ImpairmentRelay."""
        config = {
            "routes": routes or [(listen, upstream)],
            "up": vars(up or Impairment()),
            "down": vars(down or Impairment()),
        }
        wrapper = ["ip", "netns", "exec", namespace] if namespace else []
        process = await asyncio.create_subprocess_exec(
            *wrapper, sys.executable, "-m", "tests.support.netlab", json.dumps(config),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=_REPOSITORY,
            # the network should not wait for a CPU that browsers and servers share
            preexec_fn=_raise_priority,
        )  # fmt: skip
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line:
            raise RuntimeError("the impairment relay process did not start")
        host, port = json.loads(line)["address"]
        return cls(process, (host, int(port)))

    async def _ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        answer: dict[str, Any] = json.loads(await self.process.stdout.readline())
        return answer

    async def report(self) -> dict[str, Any]:
        """{"up": DirectionCounters, "down": ...} as dictionaries, and "clients"."""
        return await self._ask("report")

    async def set_outage(self, on: bool) -> None:
        await self._ask("outage on" if on else "outage off")

    async def configure(self, up: Impairment, down: Impairment) -> None:
        """Change the link from now on."""
        await self._ask("configure " + json.dumps({"up": vars(up), "down": vars(down)}))

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


async def _serve_relay(config: dict[str, Any]) -> None:
    relay = await ImpairmentRelay(
        routes=[(tuple(a), tuple(b)) for a, b in config["routes"]],
        up=Impairment(**config["up"]),
        down=Impairment(**config["down"]),
    ).start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"address": relay.address}), flush=True)
    while line := (await reader.readline()).decode().strip():
        if line.startswith("outage"):
            relay.set_outage(line.endswith("on"))
        elif line.startswith("configure "):
            link = json.loads(line.removeprefix("configure "))
            relay.configure(Impairment(**link["up"]), Impairment(**link["down"]))
        print(json.dumps({**relay.report(), "clients": relay.clients}), flush=True)
    relay.close()


if __name__ == "__main__":
    asyncio.run(_serve_relay(json.loads(sys.argv[1])))
