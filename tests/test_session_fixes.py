"""Fixes a real session showed (the room issue, "Fixes a real session showed"), the
server's and the command line's: one time zone for every time people read (7),
`tiaojie verify` in Chinese and the recording as one ZIP (8), `tiaojie new-room` on the
port `serve` uses and checked first (12), library tracebacks kept out of `verify` (13),
the real reason for an agreement signed under a foreign root (14), and the last signer's
event in the chain the PDF embeds (15)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import free_port, start_server
from tests.support.server_process import stop, wait_healthy
from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tests.test_agreements import (
    Room,
    attachments,
    fetch_bytes,
    keys,  # noqa: F401 - the autouse fixture: the keys in place before each server
    shared_keys,  # noqa: F401
    start_recording,
    stop_recording,
    wait_status,
)
from tests.test_recording import events_so_far
from tests.test_signing_support import (
    STATUS_URL,
    make_recording,
    require_tool,
    sample_agreement,
    sample_marks,
)
from tiaojie.archive.report import Problem
from tiaojie.archive.report_words import PROBLEM_ZH
from tiaojie.signing import authority as ca
from tiaojie.signing.pdf import build_agreement_pdf
from tiaojie.signing.signer import Notary

TIAOJIE = str(Path(sys.executable).with_name("tiaojie"))
BEIJING = ZoneInfo("Asia/Shanghai")
#: Long enough for a seal (the signer is warm: well under a second), shorter than the
#: server's 5 s wait for the recorder's acknowledgement (after which it sends again).
SEAL_WINDOW_S = 4.0


def tiaojie(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`tiaojie ARGS` as a user runs it, in a process of its own (TZ=UTC, as servers run)."""
    return subprocess.run(
        [TIAOJIE, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "TZ": "UTC", **(env or {})},
    )


async def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(tiaojie, *args, env=env)


def local(ts: float, zone: ZoneInfo) -> str:
    return f"{dt.datetime.fromtimestamp(ts, dt.UTC).astimezone(zone):%Y-%m-%d %H:%M:%S}"


# -- 7: one time zone --------------------------------------------------------------------------
def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "unsigned.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        [require_tool("pdftotext"), "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return "".join(done.stdout.split())


def test_the_pdf_prints_signature_times_in_the_configured_zone(tmp_path, monkeypatch):
    """Not the server process's zone (UTC on a server: "UTC+0000" before): 北京时间 by
    default, any other zone named by its offset."""
    monkeypatch.setenv("TZ", "UTC")
    agreement = sample_agreement()
    marks = sample_marks(agreement)
    text = pdf_text(build_agreement_pdf(agreement, marks, STATUS_URL), tmp_path)
    for mark in marks:
        assert f"签名时间：{local(mark.signed_at, BEIJING)}北京时间".replace(" ", "") in text
    assert "UTC+0000" not in text
    berlin = ZoneInfo("Europe/Berlin")
    english = sample_agreement(language="en")
    marks = sample_marks(english)
    text = pdf_text(build_agreement_pdf(english, marks, STATUS_URL, timezone=berlin), tmp_path)
    offset = dt.datetime.fromtimestamp(marks[0].signed_at, berlin).strftime("%z")
    shown = f"{local(marks[0].signed_at, berlin)} UTC{offset[:3]}:{offset[3:]}"
    assert f"signed at {shown}".replace(" ", "") in text


async def test_the_status_page_and_the_archive_use_the_configured_zone(tmp_path):
    new_york = ZoneInfo("America/New_York")
    srv = await start_server(tmp_path / "data", timezone="America/New_York")
    try:
        r = await Room(srv).setup()
        ready = await r.ready()
        assert (await Room.sign(r.a, ready["fingerprint"], "王五"))["ok"]
        state = await r.a.wait_for("agreement_state", lambda s: s["signers"][0]["signed_at"])
        signed_at = state["signers"][0]["signed_at"]
        offset = dt.datetime.fromtimestamp(signed_at, new_york).strftime("%z")
        status, page = await srv.request("GET", f"/a/{ready['code']}")
        assert status == 200
        assert f"{local(signed_at, new_york)} UTC{offset[:3]}:{offset[3:]}" in page
        assert "北京时间" not in page
        # the archive and the room tell their clients which zone to show times in
        for path in ("/api/recordings", "/api/agreements"):
            status, body = await srv.admin("GET", path)
            assert (status, body["timezone"]) == (200, "America/New_York")
        assert r.mediator.received("room_state")[-1]["timezone"] == "America/New_York"
    finally:
        await srv.close()
        await srv.server.close()
    # Chinese readers of the default zone read 北京时间.
    srv = await start_server(tmp_path / "data")
    try:
        status, page = await srv.request("GET", f"/a/{ready['code']}")
        assert f"{local(signed_at, BEIJING)} 北京时间" in page
    finally:
        await srv.close()
        await srv.server.close()
    bad = await cli("serve", "--data", tmp_path / "x", "--port", free_port(), "--timezone", "Mars")
    assert bad.returncode == 2 and "unknown time zone 'Mars'" in bad.stderr, bad.stderr


def sealed_recording(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A sealed recording folder (no segment files: not authentic) and its seal entry."""
    directory = tmp_path / "rec_aaaaaaaaaaaaaaaaaaaaaaaaaa"
    writer = make_recording(directory, directory.name)
    seal = writer.append("seal", reason="stopped")
    writer.close()
    return directory, seal


async def test_verify_shows_times_in_the_zone_and_speaks_chinese(tmp_path):
    directory, seal = sealed_recording(tmp_path)
    zh = await cli("verify", directory, "--lang", "zh")
    assert zh.returncode == 1, zh.stdout + zh.stderr
    assert "结论：不真实或不完整" in zh.stdout
    assert f"封存：第 {seal['seq']} 条，{local(seal['time'], BEIJING)}" in zh.stdout
    assert "北京时间" in zh.stdout and "缺少片段文件" in zh.stdout
    assert "Result" not in zh.stdout
    en = await cli("verify", directory, "--timezone", "Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    offset = dt.datetime.fromtimestamp(seal["time"], berlin).strftime("%z")
    assert f"at {local(seal['time'], berlin)}" in en.stdout
    assert f"UTC{offset[:3]}:{offset[3:]}" in en.stdout and "NOT AUTHENTIC" in en.stdout
    machine = json.loads((await cli("verify", directory, "--json", "--lang", "zh")).stdout)
    assert machine["seal_time"].endswith("Z") and machine["verdict"] == "not_authentic"
    bad = await cli("verify", directory, "--timezone", "Nowhere/Land")
    assert bad.returncode == 2 and "unknown time zone" in bad.stderr


def test_every_problem_has_a_chinese_name():
    assert set(PROBLEM_ZH) == set(Problem)


# -- 12: tiaojie new-room ----------------------------------------------------------------------
def test_new_room_talks_to_the_port_serve_uses_and_checks_before_it_creates(tmp_path):
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    admin = "admin-token-for-the-new-room-test"
    env = {"TIAOJIE_PORT": str(port), "TIAOJIE_DATA": str(data), "TIAOJIE_ADMIN_TOKEN": admin}
    server = subprocess.Popen(
        [TIAOJIE, "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    try:
        wait_healthy(url, server, timeout=60)

        def rooms() -> list[dict[str, Any]]:
            request = urllib.request.Request(
                f"{url}/api/rooms", headers={"Authorization": f"Bearer {admin}"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return list(json.loads(response.read())["rooms"])

        made = tiaojie("new-room", "邻里纠纷", env=env)  # no --server: serve's port
        assert made.returncode == 0, made.stderr
        links = [line for line in made.stdout.splitlines() if "/join#token=" in line]
        assert len(links) == 3 and all(f"{url}/join#token=" in line for line in links)
        assert [r["title"] for r in rooms()] == ["邻里纠纷"]
        # What the server would refuse is refused first: no room without its links.
        for extra, said in (
            (["--expires-in", "1"], "--expires-in must be at least 60"),
            (["--party", "x\u202ey"], "bidirectional control character"),
        ):
            refused = tiaojie("new-room", "不该创建", *extra, env=env)
            assert refused.returncode == 2, refused.stdout + refused.stderr
            assert "nothing was created" in refused.stderr and said in refused.stderr
        assert [r["title"] for r in rooms()] == ["邻里纠纷"]
    finally:
        stop(server)


# -- 13, 14: a PDF signed under a foreign root -------------------------------------------------
def foreign_ec_keys(keys_dir: Path) -> None:
    """An authority of someone else's, EC keys throughout, whose CA has the same name as
    ours ("Tiaojie Local CA"): what re-signing an agreement elsewhere gives."""
    keys_dir.mkdir(parents=True)
    now = ca._now()
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = ca._name("Tiaojie Local CA", "Tiaojie")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - ca.CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca._key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    ca._write(keys_dir / "ca.key.pem", ca.key_pem(root_key), 0o600)
    ca._write(keys_dir / "ca.cert.pem", ca.cert_pem(root), 0o644)
    for files, name, stamping in (
        (ca.ORGANISATION_SEAL_FILES, "Tiaojie seal", False),
        (ca.TSA_FILES, "Tiaojie built-in TSA", True),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(ca._name(name, "Tiaojie"))
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - ca.CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(ca._key_usage(signing=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(ca._aki(root), critical=False)
        )
        if stamping:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
        ca._write(keys_dir / files[0], ca.key_pem(key), 0o600)
        ca._write(keys_dir / files[1], ca.cert_pem(builder.sign(root_key, hashes.SHA256())), 0o644)


@pytest.fixture(scope="module")
def foreign_pdf(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("foreign")
    foreign_ec_keys(folder / "keys")
    agreement = sample_agreement()
    pdf = Notary(folder / "keys").sign_agreement(
        agreement, sample_marks(agreement), STATUS_URL, None
    )
    path = folder / "agreement.pdf"
    path.write_bytes(pdf)
    return path


def test_verify_keeps_library_logs_out_of_its_verdict(foreign_pdf, shared_keys):  # noqa: F811
    trust = shared_keys / "ca.cert.pem"
    quiet = tiaojie("verify", foreign_pdf, "--trust", trust)
    assert quiet.returncode == 1 and "NOT AUTHENTIC" in quiet.stdout
    assert quiet.stderr == "", quiet.stderr
    loud = tiaojie("verify", foreign_pdf, "--trust", trust, "-v")
    assert loud.returncode == 1 and "Traceback" in loud.stderr


def test_a_foreign_root_gets_the_real_reason(foreign_pdf, shared_keys):  # noqa: F811
    trust = shared_keys / "ca.cert.pem"
    done = tiaojie("verify", foreign_pdf, "--trust", trust, "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    signers = [s for s in report["signatures"] if s["kind"] == "signer"]
    assert [(s["name"], s["role"]) for s in signers] == [
        ("张三", "applicant"),
        ("李四", "respondent"),
        ("王调解", "mediator"),
    ]
    # the bytes are intact and the signatures verify with their own keys: not trusted
    assert all(s["intact"] and s["valid"] and not s["trusted"] for s in signers)
    codes = {p["code"] for p in report["problems"]}
    assert not codes & {"signer-mismatch", "signature-field-mismatch"}, report["problems"]
    unchecked = [p for p in report["problems"] if p["code"] == "signature-uncheckable"]
    assert unchecked, report["problems"]
    for problem in unchecked:
        assert not problem["reason"].rstrip().endswith(":"), problem
        assert "did not sign it" in problem["reason"] and "same name" in problem["reason"]
    text = tiaojie("verify", foreign_pdf, "--trust", trust).stdout
    assert "None (None)" not in text and "cannot be validated: \n" not in text
    assert "张三 (applicant)" in text


# -- 15: the last signer's event in the embedded chain ----------------------------------------
async def test_the_pdf_embeds_the_chain_with_the_last_signers_event(live_server, tmp_path):
    """The recorder is held (SIGSTOP) when the mediator, the last signer, signs: the seal
    waits until the recorder has written that signature into the chain, so the chain the
    PDF embeds holds every signature event."""
    srv = live_server
    r = await Room(srv).setup()
    rid = await start_recording(srv, r.room["id"])
    folder = srv.state.settings.data_dir / "recordings" / rid
    ready = await r.ready()
    fp, code = ready["fingerprint"], ready["code"]
    for client, name in ((r.a, "王五"), (r.b, "李四")):
        assert (await Room.sign(client, fp, name))["ok"]
    await eventually(
        lambda: len(events_so_far(folder, "agreement_signature")) == 2,
        timeout=20,
        what="the parties' signatures in the chain",
    )
    recorder = srv.state.recordings.processes[r.room["id"]].process
    log = srv.state.settings.data_dir / "agreements" / code / "log.jsonl"
    os.kill(recorder.pid, signal.SIGSTOP)
    try:
        ack = await Room.sign(r.mediator, fp, "张调解员")
        assert ack["ok"] and ack["status"] == "sealing", ack
        await eventually(lambda: '"kind": "sealing"' in log.read_text(), what="sealing to start")
        # While the recorder cannot write the mediator's signature, no PDF is made (one
        # made now would embed a chain without it): nothing is signed in this window.
        with pytest.raises(TimeoutError):
            await wait_status(r.a, "signed", timeout=SEAL_WINDOW_S)
    finally:
        os.kill(recorder.pid, signal.SIGCONT)
    done = await wait_status(r.a, "signed")
    status, pdf, _ = await fetch_bytes(srv, f"/api/agreements/{code}/pdf", r.a_invite["token"])
    assert status == 200 and hashlib.sha256(pdf).hexdigest() == done["pdf_sha256"]
    (tmp_path / "agreement.pdf").write_bytes(pdf)
    files = await attachments(tmp_path / "agreement.pdf", tmp_path / "attachments")
    embedded = [json.loads(line) for line in files["chain.jsonl"].splitlines()]
    signed = [
        e["event"]["name"]
        for e in embedded
        if e["type"] == "event" and e["event"]["kind"] == "agreement_signature"
    ]
    assert signed == ["王五", "李四", "张调解员"]
    await stop_recording(srv, r.room["id"])


# -- 8: the recording as one ZIP, verified offline ---------------------------------------------
@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    return make_test_mp4(
        tmp_path_factory.mktemp("media") / "av.mp4", seconds=3, keyframe_interval_s=0.5
    )


async def test_a_recording_downloads_as_one_zip_that_verify_accepts(
    live_server, test_mp4, tmp_path
):
    from tests.test_recording import fragments_chained, segments_started
    from tiaojie.client.media_file import FileSource
    from tiaojie.client.session import RoomClient

    srv = live_server
    data = srv.state.settings.data_dir
    r = await Room(srv).setup()
    publisher = RoomClient((await srv.create_invite(r.room["id"], "expert", "周专家"))["url"])
    source = FileSource(test_mp4)
    try:
        await publisher.join()
        await publisher.publish(source)
        rid = await start_recording(srv, r.room["id"])
        folder = data / "recordings" / rid
        await fragments_chained(folder, await segments_started(folder, 1), 2)
        status, body = await srv.admin("GET", f"/api/recordings/{rid}/archive.zip")
        assert (status, body["error"]) == (409, "recording_in_progress")
        ready = await r.ready()
        for client, name in ((r.a, "王五"), (r.b, "李四"), (r.mediator, "张调解员")):
            assert (await Room.sign(client, ready["fingerprint"], name))["ok"]
        done = await wait_status(r.a, "signed")
        await stop_recording(srv, r.room["id"])
    finally:
        await source.stop()
        await publisher.close()

    # One download, with the mediator's token or a playback ticket; not another room's.
    listed = (await srv.admin("GET", "/api/recordings"))[1]["recordings"][0]
    assert listed["archive"] == f"/api/recordings/{rid}/archive.zip"
    status, zipped, content_type = await fetch_bytes(
        srv, listed["archive"], r.mediator_invite["token"]
    )
    assert (status, content_type) == (200, "application/zip")
    status, ticket = await srv.request(
        "POST", f"/api/recordings/{rid}/ticket", r.mediator_invite["token"]
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{srv.url}{listed['archive']}?ticket={ticket['ticket']}") as response,
    ):
        assert response.status == 200
        assert f'filename="{rid}.zip"' in response.headers["Content-Disposition"]
        assert await response.read() == zipped
    other = await Room(srv).setup()
    status, _ = await srv.request("GET", listed["archive"], other.mediator_invite["token"])
    assert status == 404
    names = zipfile.ZipFile(io.BytesIO(zipped)).namelist()
    expected = {f"{rid}/{p.relative_to(folder)}" for p in folder.rglob("*") if p.is_file()}
    assert set(names) == expected | {f"agreements/{ready['code']}.pdf"}
    pdf = zipfile.ZipFile(io.BytesIO(zipped)).read(f"agreements/{ready['code']}.pdf")
    assert hashlib.sha256(pdf).hexdigest() == done["pdf_sha256"]

    # tiaojie verify takes the ZIP: the recording and the agreement in it, offline.
    bundle = tmp_path / f"{rid}.zip"
    bundle.write_bytes(zipped)
    trust = ("--trust", data / "keys" / "recorder_ed25519.pub.pem")
    ok = await cli("verify", bundle, *trust, "--ca", data / "keys" / "ca.cert.pem", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["subject"] == "bundle" and report["verdict"] == "authentic"
    assert [x["subject"] for x in report["reports"]] == ["recording", "agreement"]
    text = await cli(
        "verify", bundle, *trust, "--ca", data / "keys" / "ca.cert.pem", "--lang", "zh"
    )
    assert text.returncode == 0 and "结论：真实完整" in text.stdout and "真实完整：" in text.stdout

    # One changed byte of a segment in the ZIP: not authentic.
    segment = next(n for n in names if n.endswith(".mp4"))
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(io.BytesIO(zipped)) as source_zip, zipfile.ZipFile(changed, "w") as out:
        for name in names:
            content = bytearray(source_zip.read(name))
            if name == segment:
                content[len(content) // 2] ^= 1
            out.writestr(name, bytes(content))
    bad = await cli("verify", changed, *trust)
    assert bad.returncode == 1 and "NOT AUTHENTIC" in bad.stdout
    # A ZIP that would write outside its folder is not unpacked at all.
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as out:
        out.writestr(f"{rid}/chain.jsonl", b"")
        out.writestr("../../escaped.txt", b"x")
    refused = await cli("verify", evil, *trust)
    assert refused.returncode == 2 and "not part of a recording bundle" in refused.stderr
    assert not (tmp_path.parent / "escaped.txt").exists()
