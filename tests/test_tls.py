"""`--tls-cert`/`--tls-key`: a real `tiaojie serve` speaks HTTPS on its port, links are
https, and its recorder (on the loopback-only internal port) still records."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port
from tests.support.server_process import stop
from tests.test_cli import TIAOJIE

ADMIN = "admin-token-for-the-tls-test-0123456789"


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def call(url: str, context: ssl.SSLContext, method: str = "GET", body: Any = None) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return json.loads(response.read())


def test_serve_speaks_https_and_its_recorder_still_records(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    data = tmp_path / "data"
    command = [TIAOJIE, "serve", "--data", str(data), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TIAOJIE_ADMIN_TOKEN": ADMIN},
    )
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert call(f"{url}/api/health", trusted)["status"] == "ok"
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the HTTPS server did not answer"
                time.sleep(0.2)
        # the image's health check speaks HTTPS when TIAOJIE_TLS_CERT is set
        probe = subprocess.run(
            [TIAOJIE, "health"],
            env={**os.environ, "TIAOJIE_PORT": str(port), "TIAOJIE_TLS_CERT": str(cert)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert probe.returncode == 0, probe.stderr
        # plain HTTP on the TLS port gets nothing
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5)
        room = call(f"{url}/api/rooms", trusted, "POST", {"title": "加密连接", "lobby": False})
        invite = call(
            f"{url}/api/rooms/{room['id']}/invites",
            trusted,
            "POST",
            {"role": "party", "name": "甲"},
        )
        assert invite["url"].startswith(f"{url}/join#token=")

        recording = call(f"{url}/api/rooms/{room['id']}/recording", trusted, "POST", {})
        deadline = time.monotonic() + 60
        while not any(
            p["role"] == "recorder"
            for p in call(f"{url}/api/rooms/{room['id']}", trusted)["participants"]
        ):
            assert time.monotonic() < deadline, "the recorder did not join over the internal port"
            time.sleep(0.2)
        call(f"{url}/api/rooms/{room['id']}/recording", trusted, "DELETE")
        summary = json.loads((data / "recordings" / recording["id"] / "recording.json").read_text())
        assert summary["status"] == "sealed"
    finally:
        output = stop(process)
    assert f"open {url}/" in output


def test_unusable_certificate_files_stop_the_start_with_a_clear_error(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    other_key = tmp_path / "other.pem"
    other_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    for extra in (
        ["--tls-cert", str(cert), "--tls-key", str(other_key)],  # a key of another certificate
        ["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(other_key)],
        ["--tls-cert", str(cert)],
    ):
        done = subprocess.run(
            [
                TIAOJIE,
                "serve",
                "--data",
                str(tmp_path / "data"),
                "--port",
                str(free_port()),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done
        assert "--tls-" in done.stderr and "Traceback" not in done.stderr, done.stderr
