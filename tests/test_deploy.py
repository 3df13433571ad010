"""deploy/docker-compose.yml cannot be run here (no container engine): what it promises is
checked instead. The ports it publishes are the ports the server and coturn are
configured with, published one to one (ICE candidates name the container's port), the
TURN URLs handed to participants point at ports coturn publishes, with the protocol it
listens on, and the image's health check is a command the package has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tiaojie.rtc.ports import parse_port_range

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def example_env() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "example.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip() or f"<{name.strip()}>"
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?message}; a missing required one fails."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if op == ":-":
            return arg or ""
        raise AssertionError(f"{name} is required but example.env does not set it")

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", value, text)


def compose() -> dict[str, Any]:
    text = (DEPLOY / "docker-compose.yml").read_text()
    return dict(yaml.safe_load(interpolate(text, example_env())))


def published(service: dict[str, Any]) -> list[tuple[range, range, str]]:
    """(host ports, container ports, protocol) of each published port entry."""
    out = []
    for entry in service["ports"]:
        mapping, _, protocol = str(entry).partition("/")
        host, _, container = mapping.rpartition(":")

        def span(text: str) -> range:
            low, _, high = text.partition("-")
            return range(int(low), int(high or low) + 1)

        out.append((span(host), span(container), protocol or "tcp"))
    return out


def flags(service: dict[str, Any]) -> dict[str, str]:
    return dict(arg[2:].partition("=")[::2] for arg in service["command"] if arg.startswith("--"))


def test_the_server_publishes_its_http_port_and_its_media_range_one_to_one() -> None:
    tiaojie = compose()["services"]["tiaojie"]
    env = tiaojie["environment"]
    ports = published(tiaojie)
    http = int(env["TIAOJIE_PORT"])
    assert any(http in c and p == "tcp" for _, c, p in ports)
    media = parse_port_range(env["TIAOJIE_RTC_PORTS"])
    assert media is not None
    (udp,) = [(h, c) for h, c, p in ports if p == "udp"]
    assert udp[0] == udp[1] == range(media.first, media.last + 1)
    # the image's default range is the same (Dockerfile ENV and EXPOSE)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"TIAOJIE_RTC_PORTS={media}" in dockerfile
    assert f"{media}/udp" in dockerfile


def test_the_turn_urls_point_at_what_coturn_publishes_and_share_its_secret() -> None:
    services = compose()["services"]
    env = services["tiaojie"]["environment"]
    coturn = services["coturn"]
    options = flags(coturn)
    ports = published(coturn)
    listening = {
        ("udp", int(options["listening-port"])),
        ("tcp", int(options["listening-port"])),
        ("tls", int(options["tls-listening-port"])),
    }
    for url in env["TIAOJIE_TURN_URLS"].split(","):
        parts = urlsplit(url)
        host_port = parts.path.rsplit(":", 1)
        transport = dict(p.split("=") for p in parts.query.split("&"))["transport"]
        port = int(host_port[1])
        kind = "tls" if parts.scheme == "turns" else transport
        assert (kind, port) in listening, url
        assert any(port in h and port in c and p == transport for h, c, p in ports), url
    # the relay range is published one to one
    relay = range(int(options["min-port"]), int(options["max-port"]) + 1)
    assert any(h == c == relay and p == "udp" for h, c, p in ports)
    # one secret for both
    raw = (DEPLOY / "docker-compose.yml").read_text()
    assert "TIAOJIE_TURN_SECRET: ${TURN_SECRET" in raw
    assert "--static-auth-secret=${TURN_SECRET}" in raw
    assert "use-auth-secret" in options


def test_the_stack_needs_its_secrets_and_keeps_them_out_of_the_file() -> None:
    raw = (DEPLOY / "docker-compose.yml").read_text()
    for required in ("POSTGRES_PASSWORD", "SECRET_KEY", "TURN_SECRET", "PUBLIC_IP"):
        assert f"${{{required}:?" in raw
        try:
            interpolate(raw, {k: v for k, v in example_env().items() if k != required})
        except AssertionError:
            continue
        raise AssertionError(f"the stack starts without {required}")
    services = compose()["services"]
    assert services["postgres"]["healthcheck"] and services["redis"]["healthcheck"]
    assert services["tiaojie"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_image_health_check_is_a_command_of_the_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    check = re.search(r'HEALTHCHECK .*\n\s+CMD \["tiaojie", "(\w+)"\]', dockerfile)
    assert check is not None
    done = subprocess.run(
        [sys.executable, "-m", "tiaojie", check.group(1), "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and "does not answer" in done.stderr  # nothing listens on 9
