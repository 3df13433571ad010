"""kill -9 of `tiaojie serve` in the middle of a session loses nothing confirmed to a user.

A real server process on the default database (SQLite in the data directory): a mediator
publishing media, party 王五 admitted from the lobby, party 李四 still waiting, a withdrawn
link, a recording running, an agreement draft open for signatures with 王五's signature
given. The server is killed with SIGKILL and started again on the same data directory.
Then an online backup of it is restored into a fresh data directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.support.server_process import stop, wait_healthy
from tests.support.signal_client import Refused, SignalClient
from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tests.test_agreements import mark
from tests.test_cli import TIAOJIE
from tests.test_recording import (
    _recorder_pids,
    chain,
    events_so_far,
    fragments_chained,
    segments_started,
    verify,
)
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient

ADMIN = "admin-token-for-the-restart-test"


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    return make_test_mp4(
        tmp_path_factory.mktemp("media") / "av.mp4", seconds=4, keyframe_interval_s=0.5
    )


def api(url: str, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def serve(data: Path, port: int, log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(
            [TIAOJIE, "serve", "--data", str(data), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TIAOJIE_ADMIN_TOKEN": ADMIN},
        )


def draft(a_id: str, b_id: str) -> dict[str, Any]:
    return {
        "case_number": "（2025）京0105民调7号",
        "language": "zh-CN",
        "parties": [
            {"name": "王五", "role": "applicant", "participant_id": a_id},
            {"name": "李四", "role": "respondent", "participant_id": b_id},
        ],
        "mediator": "张调解员",
        "experts": [],
        "facts": "申请人王五与被申请人李四系邻居，因楼上漏水发生纠纷。",
        "terms": ["被申请人于2025年12月31日前赔偿申请人维修费人民币3000元。"],
        "performance": "银行转账，一次付清。",
        "date": "2025年11月22日",
        "place": "北京市朝阳区人民调解委员会（线上）",
    }


def test_kill_9_in_a_session_loses_nothing_confirmed(tmp_path, test_mp4):
    data, port, log = tmp_path / "data", free_port(), tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    server = serve(data, port, log)
    recording_id = ""
    try:
        wait_healthy(url, server, timeout=60)
        _, room = api(url, "POST", "/api/rooms", {"title": "漏水纠纷", "lobby": True})
        rid = room["id"]
        links = {}
        for role, name in (
            ("mediator", "张调解员"),
            ("party", "王五"),
            ("party", "李四"),
            ("party", "撤回"),
        ):
            status, links[name] = api(
                url, "POST", f"/api/rooms/{rid}/invites", {"role": role, "name": name}
            )
            assert status == 201
        status, _ = api(url, "DELETE", f"/api/rooms/{rid}/invites/{links['撤回']['invite_id']}")
        assert status == 200
        a_id, b_id = links["王五"]["invite_id"], links["李四"]["invite_id"]

        async def before_the_crash() -> tuple[str, str]:
            mediator = RoomClient(links["张调解员"]["url"])
            source = FileSource(test_mp4)
            a, b = SignalClient(url), SignalClient(url)
            try:
                await mediator.join()
                await mediator.publish(source)
                await a.connect({"token": links["王五"]["token"]})
                assert (await a.wait_for("welcome"))["participant"]["status"] == "lobby"
                await mediator.call("admit", {"participant_id": a_id})
                await a.wait_for("room_state")
                await b.connect({"token": links["李四"]["token"]})
                assert (await b.wait_for("welcome"))["participant"]["status"] == "lobby"

                status, started = api(url, "POST", f"/api/rooms/{rid}/recording")
                assert status == 201, started
                directory = data / "recordings" / started["id"]
                segments = await segments_started(directory, 1)
                await fragments_chained(directory, segments, 2)

                drafted = await mediator.call("agreement_draft", draft(a_id, b_id))
                ready = await mediator.call(
                    "agreement_request_signatures", {"fingerprint": drafted["fingerprint"]}
                )
                signed = await a.call(
                    "agreement_sign",
                    {
                        "fingerprint": ready["fingerprint"],
                        "consent": True,
                        "name": "王五",
                        "mark": mark(),
                    },
                )
                assert signed["ok"] is True and signed["status"] == "signing", signed
                # The chain hears of it through the recorder; wait until it has.
                await eventually(
                    lambda: events_so_far(directory, "agreement_signature"),
                    timeout=20,
                    what="the signature in the chain",
                )

                server.send_signal(signal.SIGKILL)
                server.wait(timeout=10)
                # The recorder outlives the server, notices it is gone, seals and exits.
                await eventually(
                    lambda: not _recorder_pids(started["id"]),
                    timeout=20,
                    what="the recorder to finish after the server died",
                )
                return started["id"], ready["fingerprint"]
            finally:
                await source.stop()
                for client in (a, b):
                    await client.close()
                await mediator.close()

        recording_id, fingerprint = asyncio.run(before_the_crash())

        # The same data directory, the same port: the links that went out still work.
        server = serve(data, port, log)
        wait_healthy(url, server, timeout=60)
        status, full = api(url, "GET", f"/api/rooms/{rid}")
        assert status == 200 and full["title"] == "漏水纠纷" and full["status"] == "open"
        invites = {i["name"]: i for i in full["invites"]}
        assert {n: invites[n]["revoked"] for n in links} == {
            "张调解员": False,
            "王五": False,
            "李四": False,
            "撤回": True,
        }
        # Nobody is connected any more: who was in the room keeps their seat for the
        # reconnect grace (presence `reconnecting`), the lobby is empty, and the recording
        # that was running is over (the recorder is gone with its invite).
        seats = {p["name"]: (p["presence"], p["status"]) for p in full["participants"]}
        assert seats == {"张调解员": ("reconnecting", "joined"), "王五": ("reconnecting", "joined")}
        assert full["recording"] is None
        recorder_invites = [i for i in full["invites"] if i["role"] == "recorder"]
        assert [i["revoked"] for i in recorder_invites] == [True]

        async def after_the_restart() -> None:
            mediator, a, b, gone = (SignalClient(url) for _ in range(4))
            try:
                await mediator.connect({"token": links["张调解员"]["token"]})
                await mediator.wait_for("room_state")
                state = await mediator.wait_for("agreement_state")
                assert state["status"] == "signing" and state["fingerprint"] == fingerprint
                signed = {s["name"]: s["signed_at"] is not None for s in state["signers"]}
                assert signed == {"王五": True, "李四": False, "张调解员": False}
                # 王五 was admitted: straight into the room; 李四 waits in the lobby again.
                await a.connect({"token": links["王五"]["token"]})
                assert (await a.wait_for("welcome"))["participant"]["status"] == "joined"
                await a.wait_for("room_state")
                await b.connect({"token": links["李四"]["token"]})
                assert (await b.wait_for("welcome"))["participant"]["status"] == "lobby"
                lobby = await mediator.wait_for("lobby_updated", lambda d: d["lobby"])
                assert [p["name"] for p in lobby["lobby"]] == ["李四"]
                # The withdrawn link stays withdrawn.
                with pytest.raises(Refused) as refused:
                    await gone.connect({"token": links["撤回"]["token"]})
                assert refused.value.code == "token_revoked"
            finally:
                for client in (mediator, a, b, gone):
                    await client.close()

        asyncio.run(after_the_restart())
        # The archive index: the recording that was running, sealed by its recorder
        # (indexed once the restarted node saw the seal), bound to the agreement whose
        # signature was given; what it says is what the files say.
        indexed = index_after_restart(url, data, recording_id, rid)
        assert indexed["agreements"][0]["status"] == "signing"
        # An online backup, taken while the server runs.
        made = subprocess.run(
            [TIAOJIE, "backup", str(tmp_path / "backup"), "--data", str(data)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stdout + made.stderr
    finally:
        if server.poll() is None:
            stop(server)
        for pid in _recorder_pids(recording_id) if recording_id else []:
            os.kill(pid, signal.SIGKILL)

    # The recording that was running: sealed by its recorder as `disconnected`, verifiable.
    directory = data / "recordings" / recording_id
    entries = chain(directory)
    assert entries[-1]["type"] == "seal" and entries[-1]["reason"] == "disconnected"
    signatures = [
        e for e in entries if e["type"] == "event" and e["event"]["kind"] == "agreement_signature"
    ]
    assert [e["event"]["name"] for e in signatures] == ["王五"]
    result = verify(directory, data)
    assert result.returncode == 0, result.stdout + result.stderr
    return_from_backup(tmp_path, room_id=full["id"], links=links, recording_id=recording_id)


def listed_recording(url: str, recording_id: str) -> dict[str, Any] | None:
    status, body = api(url, "GET", "/api/recordings")
    assert status == 200, body
    found = [r for r in body["recordings"] if r["recording_id"] == recording_id]
    return found[0] if found else None


def index_after_restart(url: str, data: Path, recording_id: str, room_id: str) -> dict[str, Any]:
    """The index's view of the recording that ran through the kill -9, checked against its
    folder; the recording as listed."""
    deadline = time.monotonic() + 60
    while (listed := listed_recording(url, recording_id)) is None or listed["status"] != "sealed":
        assert time.monotonic() < deadline, f"the index never saw the seal: {listed}"
        time.sleep(0.2)
    folder = data / "recordings" / recording_id
    entries = chain(folder)
    assert (listed["room_id"], listed["room_title"]) == (room_id, "漏水纠纷")
    assert (listed["seal_reason"], listed["chain_head"]) == ("disconnected", entries[-1]["hash"])
    chain_sha256 = hashlib.sha256((folder / "chain.jsonl").read_bytes()).hexdigest()
    assert listed["chain_sha256"] == chain_sha256
    assert {p["name"] for p in listed["participants"].values()} >= {"张调解员", "王五"}
    (bound,) = listed["agreements"]
    status, body = api(url, "GET", "/api/agreements")
    assert status == 200, body
    (agreement,) = body["agreements"]
    assert (agreement["code"], agreement["recording_id"]) == (bound["code"], recording_id)
    signed = {s["name"]: s["signed_at"] is not None for s in agreement["signers"]}
    assert signed == {"王五": True, "李四": False, "张调解员": False}
    return listed


def restore(source: Path, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TIAOJIE, "restore", str(source), "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def return_from_backup(tmp_path: Path, room_id: str, links: dict, recording_id: str) -> None:
    """The backup says what it holds, refuses to restore when damaged, and restores into a
    fresh data directory where the room, its links and the archive are all there."""
    backup = tmp_path / "backup"
    index = json.loads((backup / "index.json").read_text())
    assert index["database"]["kind"] == "sqlite" and index["database"]["schema"]
    assert [(r["recording_id"], r["status"]) for r in index["archive"]["recordings"]] == [
        (recording_id, "sealed")
    ]
    assert {"secret_key", "keys/recorder_ed25519.pem"} <= {f["path"] for f in index["files"]}

    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged)
    (segment,) = (damaged / "data" / "recordings" / recording_id / "segments").glob("*.mp4")
    content = bytearray(segment.read_bytes())
    content[len(content) // 2] ^= 1
    segment.write_bytes(bytes(content))
    refused = restore(damaged, tmp_path / "nowhere")
    assert (
        refused.returncode == 1 and "damaged" in refused.stderr and segment.name in refused.stderr
    )
    assert not (tmp_path / "nowhere").exists()

    data, port = tmp_path / "restored", free_port()
    done = restore(backup, data)
    assert done.returncode == 0, done.stdout + done.stderr
    url = f"http://127.0.0.1:{port}"
    server = serve(data, port, tmp_path / "restored.log")
    try:
        wait_healthy(url, server, timeout=60)
        status, room = api(url, "GET", f"/api/rooms/{room_id}")
        assert status == 200 and room["title"] == "漏水纠纷"
        assert {i["name"] for i in room["invites"]} >= set(links)
        request = urllib.request.Request(
            f"{url}/api/me", headers={"Authorization": f"Bearer {links['李四']['token']}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["invite"]["name"] == "李四"
        # The archive index came back with the database: listed at once, as before.
        index_after_restart(url, data, recording_id, room_id)
    finally:
        stop(server)
    result = verify(data / "recordings" / recording_id, data)
    assert result.returncode == 0, result.stdout + result.stderr
