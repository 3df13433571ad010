"""Archivist tokens: issued into a register (never the token itself), listed, revoked, and
refused by a running server once revoked or when never registered."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import start_server
from tiaojie.server.recordings import ArchiveAuth, ArchivistRegister
from tiaojie.server.recordings.archivists import MAX_LIFETIME


async def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`tiaojie archivist-token --data DATA ...` in its own process, as an operator runs it."""
    command = [sys.executable, "-m", "tiaojie", "archivist-token", "--data", str(data_dir)]
    return await asyncio.to_thread(
        subprocess.run, [*command, *args], capture_output=True, text=True, timeout=60
    )


async def test_issue_list_revoke_and_the_server_refuses_revoked_tokens(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tiaojie")
    srv = await start_server(tmp_path / "data")
    data_dir = srv.state.settings.data_dir
    try:
        issued = await cli(data_dir, "--label", "张档案员", "--days", "30")
        assert issued.returncode == 0, issued.stderr
        token = issued.stdout.strip()
        assert token.startswith("tja1.")
        status, body = await srv.request("GET", "/api/recordings", token)
        assert (status, body) == (200, {"recordings": [], "timezone": "Asia/Shanghai"})

        # The register: id, label, issued, expires; never the token; only the owner reads it.
        register = data_dir / "archivist_tokens.jsonl"
        assert stat.S_IMODE(register.stat().st_mode) == 0o600
        (entry,) = [json.loads(line) for line in register.read_text().splitlines()]
        assert entry["event"] == "issued" and entry["label"] == "张档案员"
        assert 29 * 86400 < entry["expires"] - entry["issued"] <= 30 * 86400
        assert token not in register.read_text()
        token_id = entry["id"]
        # Issuance is logged by id and label, never the token.
        assert token_id in issued.stderr and "张档案员" in issued.stderr
        assert token not in issued.stderr

        listing = await cli(data_dir, "--list")
        assert listing.returncode == 0, listing.stderr
        assert token_id in listing.stdout and "active" in listing.stdout
        assert "张档案员" in listing.stdout and token not in listing.stdout

        revoked = await cli(data_dir, "--revoke", token_id)
        assert revoked.returncode == 0, revoked.stderr
        assert token_id in revoked.stderr and token not in revoked.stderr
        # The running server reads the register again: refused from now on, and logged.
        status, body = await srv.request("GET", "/api/recordings", token)
        assert (status, body["error"]) == (403, "token_revoked")
        assert f"archivist token {token_id} (张档案员) revoked" in caplog.text
        assert token not in caplog.text
        listing = await cli(data_dir, "--list")
        assert "revoked" in listing.stdout
        unknown = await cli(data_dir, "--revoke", "0" * 16)
        assert unknown.returncode == 1 and "no archivist token" in unknown.stderr

        # At most a year.
        too_long = await cli(data_dir, "--label", "x", "--days", str(MAX_LIFETIME // 86400 + 1))
        assert too_long.returncode == 2 and "--days" in too_long.stderr
        year = await cli(data_dir, "--label", "x", "--days", str(MAX_LIFETIME // 86400))
        assert year.returncode == 0, year.stderr
        with pytest.raises(ValueError):
            ArchivistRegister.of(data_dir).issue("x", MAX_LIFETIME + 1)

        # Signed with the server's secret but never registered, or registered with another
        # expiry: refused all the same.
        secret = srv.state.credentials.token_secret
        status, body = await srv.request(
            "GET", "/api/recordings", ArchiveAuth(secret).archivist_token("mallory", 600)
        )
        assert (status, body["error"]) == (401, "token_invalid")
        other_id = json.loads(register.read_text().splitlines()[-1])["id"]
        stretched = ArchiveAuth(secret).archivist_token("x", 2 * MAX_LIFETIME, other_id)
        status, body = await srv.request("GET", "/api/recordings", stretched)
        assert (status, body["error"]) == (401, "token_invalid")
        status, _ = await srv.request("GET", "/api/recordings", year.stdout.strip())
        assert status == 200

        # A register the server cannot read refuses every archivist token (fail closed).
        with register.open("a") as f:
            f.write('{"event": "revoked", "id": "not an id"}\n')
        for _ in range(2):
            status, body = await srv.request("GET", "/api/recordings", year.stdout.strip())
            assert (status, body["error"]) == (503, "register_unreadable")
        assert caplog.text.count("cannot read the register") == 1  # once, not per request
    finally:
        await srv.close()
        await srv.server.close()


def test_a_revocation_outlives_a_later_line_of_the_same_token(tmp_path):
    register = ArchivistRegister.of(tmp_path)
    first = register.issue("甲", 3600)
    register.revoke(first.id)
    with register.path.open("a") as f:  # a revocation cannot be undone by editing
        f.write(json.dumps({"event": "revoked", "id": first.id, "at": 1}) + "\n")
    tokens = register.tokens()
    assert tokens[first.id].revoked is not None and tokens[first.id].status(0) == "revoked"
    with register.path.open("a") as f:
        entry = {"event": "issued", "id": first.id, "label": "甲", "issued": 1, "expires": 9}
        f.write(json.dumps(entry) + "\n")
    with pytest.raises(ValueError, match="issued twice"):
        ArchivistRegister.of(tmp_path).tokens()
