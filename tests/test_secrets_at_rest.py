"""Secrets and the data directory: weak secrets are refused, everything written is private.

A guessed TIAOJIE_SECRET_KEY forges archivist tokens for the whole archive, so a short
one stops the server (exit 2, naming the variable, never the value). Whatever the server
and its recorder write (archive, agreements, logs, keys) is for their account alone:
after a real recorded session with a sealed agreement, no file or folder in the data
directory is open to group or others.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import free_port
from tests.support.server_process import wait_healthy
from tests.support.signal_client import SignalClient
from tests.test_agreements import CASE_NUMBER, FACTS, SEAL_TIMEOUT, mark
from tests.test_cli import TIAOJIE

STRONG = "Qm9vLWEtc3Ryb25nLXNlY3JldC1rZXk"  # 31 characters


def run_tiaojie(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`tiaojie ARGS`, which must stop by itself (a server that starts is killed after 20 s
    and fails the test)."""
    return subprocess.run(
        [TIAOJIE, *args],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "TIAOJIE_ADMIN_TOKEN": "", "TIAOJIE_SECRET_KEY": "", **env},
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TIAOJIE_ADMIN_TOKEN", "a"),
        ("TIAOJIE_ADMIN_TOKEN", "hunter2hunter2"),
        ("TIAOJIE_SECRET_KEY", "x"),
        ("TIAOJIE_SECRET_KEY", "0123456789abcdef0123"),  # 80 bits of hex
        ("TIAOJIE_SECRET_KEY", "z" * 64),
    ],
)
def test_serve_refuses_a_weak_secret(tmp_path: Path, variable: str, value: str) -> None:
    port = str(free_port())
    done = run_tiaojie(
        "serve", "--data", str(tmp_path / "d"), "--port", port, env={variable: value}
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert variable in done.stderr and "too weak" in done.stderr, done.stderr
    if len(value) > 1:
        assert value not in done.stdout + done.stderr


def test_archivist_token_refuses_a_weak_secret_key(tmp_path: Path) -> None:
    done = run_tiaojie(
        "archivist-token", "--data", str(tmp_path / "d"), env={"TIAOJIE_SECRET_KEY": "secret"}
    )
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert "TIAOJIE_SECRET_KEY is too weak" in done.stderr
    strong = run_tiaojie(
        "archivist-token", "--data", str(tmp_path / "d"), env={"TIAOJIE_SECRET_KEY": STRONG}
    )
    assert strong.returncode == 0 and strong.stdout.startswith("tja1."), strong.stderr


def test_the_strength_rule() -> None:
    from tiaojie.server.credentials import WeakSecret, check_secret

    for strong in ("A" * 21 + "b", "0123456789abcdef" * 2, STRONG):
        assert check_secret(strong, "X") == strong
    for weak in ("", "A" * 20 + "b", "=" * 40):
        with pytest.raises(WeakSecret, match=r"^X is too weak"):
            check_secret(weak, "X")


def test_a_weak_secret_file_is_refused(tmp_path: Path) -> None:
    from tiaojie.server.credentials import WeakSecret, load_credentials

    (tmp_path / "secret_key").write_text("c2hvcnQ=\n")  # base64 of "short"
    with pytest.raises(WeakSecret, match="secret_key holds a weak secret"):
        load_credentials(tmp_path, admin_token=STRONG)


# -- modes after a recorded session with an agreement -------------------------------------------
class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    async def __call__(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, json=body, headers=headers) as response,
        ):
            assert response.status < 300, (response.status, await response.text())
            return await response.json()


def draft(a_id: str, b_id: str) -> dict[str, Any]:
    return {
        "case_number": CASE_NUMBER,
        "language": "zh-CN",
        "parties": [
            {"name": "王五", "role": "applicant", "participant_id": a_id},
            {"name": "李四", "role": "respondent", "participant_id": b_id},
        ],
        "mediator": "张调解员",
        "experts": [],
        "facts": FACTS,
        "terms": ["被申请人于2025年12月31日前赔偿申请人维修费人民币3000元。"],
        "performance": "银行转账，一次付清。",
        "date": "2025年11月22日",
        "place": "北京市朝阳区人民调解委员会（线上）",
    }


async def recorded_session_with_agreement(url: str, admin: str) -> tuple[str, str]:
    """A room recorded by the real recorder, with an agreement drafted, signed by all and
    sealed, the recording stopped (sealed): the recording id and the agreement code."""
    api = Api(url, admin)
    room = await api("POST", "/api/rooms", {"title": "权限检查", "lobby": False})
    rid = room["id"]
    invites = [
        await api("POST", f"/api/rooms/{rid}/invites", {"role": role, "name": name})
        for role, name in (("mediator", "张调解员"), ("party", "王五"), ("party", "李四"))
    ]
    clients = []
    try:
        for invite in invites:
            client = SignalClient(url)
            clients.append(client)
            await client.connect({"token": invite["token"]})
            await client.wait_for("welcome")
        mediator, a, b = clients
        recording = await api("POST", f"/api/rooms/{rid}/recording")
        deadline = time.monotonic() + 60
        while not any(
            p["role"] == "recorder" for p in (await api("GET", f"/api/rooms/{rid}"))["participants"]
        ):
            assert time.monotonic() < deadline, "the recorder did not join"
            await asyncio.sleep(0.1)
        ack = await mediator.call(
            "agreement_draft", draft(invites[1]["invite_id"], invites[2]["invite_id"])
        )
        assert ack["ok"], ack
        ack = await mediator.call(
            "agreement_request_signatures", {"fingerprint": ack["fingerprint"]}
        )
        assert ack["ok"], ack
        for client, name in ((a, "王五"), (b, "李四"), (mediator, "张调解员")):
            payload = {"fingerprint": ack["fingerprint"], "consent": True, "name": name}
            signed = await client.call("agreement_sign", {**payload, "mark": mark()})
            assert signed["ok"], signed
        await a.wait_for("agreement_state", lambda s: s["status"] == "signed", timeout=SEAL_TIMEOUT)
        await api("DELETE", f"/api/rooms/{rid}/recording")
        return str(recording["id"]), str(ack["code"])
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_the_data_directory_is_private_after_a_recorded_session(tmp_path: Path) -> None:
    data, port, admin = tmp_path / "data", free_port(), "admin-token-for-the-modes-test"
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [TIAOJIE, "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TIAOJIE_ADMIN_TOKEN": admin},
    )
    try:
        wait_healthy(url, process)
        recording_id, code = asyncio.run(recorded_session_with_agreement(url, admin))
    finally:
        process.terminate()
        process.wait(timeout=30)
    found = modes(data)
    # What the session wrote is there: the recording, its recorder's log, the agreement.
    for path in (
        f"recordings/{recording_id}/chain.jsonl",
        f"logs/recorder-{recording_id}.log",
        f"agreements/{code}/status.json",
        "keys/ca.cert.pem",
    ):
        assert path in found, sorted(found)
    assert any(p.startswith(f"agreements/{code}/") and p.endswith(".pdf") for p in found)
    assert found["."] == 0o700
    shared = {path: oct(mode) for path, mode in found.items() if mode & 0o077}
    assert shared == {}, "open to group or others"
