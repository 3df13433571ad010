"""Recording control and the archive: who may start, stop, consent, list, play, download."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import aiohttp

from tests.conftest import restart_server, start_server
from tiaojie.archive.chain import read_entries
from tiaojie.server.recordings import ArchiveAuth


def archivist_token(data_dir) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tiaojie",
            "archivist-token",
            "--data",
            str(data_dir),
            "--days",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def setup(srv):
    room = await srv.create_room(lobby=False)
    mediator = await srv.create_invite(room["id"], "mediator", "王调解员")
    party = await srv.create_invite(room["id"], "party", "李四")
    return room, mediator, party


async def wait_recorder(srv, room_id: str, present: bool = True) -> None:
    for _ in range(150):
        people = (await srv.room(room_id))["participants"]
        if any(p["role"] == "recorder" for p in people) == present:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the recorder is {'not ' if present else ''}in the room")


def chain_events(srv, recording_id: str) -> list[dict]:
    path = srv.state.settings.data_dir / "recordings" / recording_id / "chain.jsonl"
    entries, problems = read_entries(path)
    assert not problems
    return [e["event"] for e in entries if e["type"] == "event"]


async def test_only_the_admin_or_the_rooms_mediator_starts_and_stops(live_server):
    srv = live_server
    room, mediator, party = await setup(srv)
    other_room, other_mediator, _ = await setup(srv)
    path = f"/api/rooms/{room['id']}/recording"
    assert (await srv.request("POST", path, party["token"]))[0] == 403
    assert (await srv.request("POST", path, other_mediator["token"]))[0] == 403
    assert (await srv.request("POST", path))[0] == 401
    assert (await srv.request("POST", path, "tj1.forged.token"))[0] == 401
    assert not list((srv.state.settings.data_dir).glob("recordings/rec_*"))

    status, started = await srv.request("POST", path, mediator["token"])
    assert status == 201, started
    assert "invite_id" not in started  # the recorder's link never leaves the server
    assert (await srv.request("POST", path, mediator["token"]))[0] == 409
    status, state = await srv.request("GET", path, party["token"])
    assert status == 200 and state["recording"]["id"] == started["id"]
    assert "consents" not in state["recording"]
    await wait_recorder(srv, room["id"])
    assert (await srv.request("DELETE", path, party["token"]))[0] == 403
    status, stopped = await srv.request("DELETE", path, mediator["token"])
    assert status == 200 and stopped["id"] == started["id"]
    assert (await srv.request("DELETE", path, mediator["token"]))[0] == 409
    await wait_recorder(srv, room["id"], present=False)
    kinds = [e["kind"] for e in chain_events(srv, started["id"])]
    assert kinds[0] == "recording_started" and kinds[-1] == "recording_stopped"
    # the recorder's invite is withdrawn: its link is dead
    full = await srv.room(room["id"])
    recorder_invites = [i for i in full["invites"] if i["role"] == "recorder"]
    assert recorder_invites and all(i["revoked"] for i in recorder_invites)
    # other_room untouched
    assert (await srv.room(other_room["id"]))["recording"] is None


async def test_recorder_links_cannot_be_made_through_the_api(live_server):
    room = await live_server.create_room()
    status, body = await live_server.admin(
        "POST", f"/api/rooms/{room['id']}/invites", json={"role": "recorder", "name": "x"}
    )
    assert status == 400, body


async def test_socket_control_consent_and_the_chain(live_server):
    srv = live_server
    room, mediator_invite, party_invite = await setup(srv)
    mediator = await srv.join(mediator_invite)
    party = await srv.join(party_invite)
    await party.wait_for("room_state")
    refused = await party.call("start_recording", {})
    assert refused["ok"] is False and refused["error"] == "forbidden"
    answer = await mediator.call("start_recording", {})
    assert answer["ok"], answer
    recording_id = answer["recording"]["id"]
    state = await party.wait_for("recording_state", lambda d: d["recording"] is not None)
    assert state["recording"]["id"] == recording_id and "consents" not in state["recording"]

    bad = await party.call(
        "recording_consent", {"recording_id": "rec_" + "a" * 26, "accepted": True}
    )
    assert bad["ok"] is False and bad["error"] == "not_recording"
    bad = await party.call("recording_consent", {"recording_id": recording_id, "accepted": "yes"})
    assert bad["ok"] is False
    answer = await party.call(
        "recording_consent", {"recording_id": recording_id, "accepted": False}
    )
    assert answer["ok"], answer
    seen = await mediator.wait_for(
        "recording_state",
        lambda d: (
            d["recording"] and d["recording"].get("consents", {}).get(party_invite["invite_id"])
        ),
    )
    consent = seen["recording"]["consents"][party_invite["invite_id"]]
    assert consent["accepted"] is False and consent["name"] == "李四"
    await wait_recorder(srv, room["id"])
    muted = await mediator.call(
        "mute", {"participant_id": party_invite["invite_id"], "track": "audio"}
    )
    assert muted["ok"], muted
    assert (await party.call("stop_recording", {}))["ok"] is False
    answer = await mediator.call("stop_recording", {})
    assert answer["ok"], answer
    await party.wait_for("recording_state", lambda d: d["recording"] is None)
    joined = await party.wait_for(
        "participant_joined", lambda d: d["participant"]["role"] == "recorder"
    )
    recorder_id = joined["participant"]["id"]
    # the recorder's departure is announced like anyone's once it has sealed
    await party.wait_for("participant_left", lambda d: d["participant_id"] == recorder_id, 15)
    events = chain_events(srv, recording_id)
    refusal = [e for e in events if e["kind"] == "refusal"]
    assert refusal and refusal[0]["participant_id"] == party_invite["invite_id"]
    mute = [e for e in events if e["kind"] == "mute"]
    assert mute and mute[0]["participant_id"] == party_invite["invite_id"]
    # events are in the order they happened: the refusal before the mute, all before the end
    kinds = [e["kind"] for e in events]
    assert kinds.index("refusal") < kinds.index("mute") < kinds.index("recording_stopped")


async def test_ending_the_room_seals_the_recording(live_server):
    srv = live_server
    room, mediator, _ = await setup(srv)
    status, started = await srv.request(
        "POST", f"/api/rooms/{room['id']}/recording", mediator["token"]
    )
    assert status == 201
    await wait_recorder(srv, room["id"])
    status, _ = await srv.request("DELETE", f"/api/rooms/{room['id']}", mediator["token"])
    assert status == 200
    path = srv.state.settings.data_dir / "recordings" / started["id"] / "chain.jsonl"
    entries, _ = read_entries(path)
    assert entries[-1]["type"] == "seal"
    assert "room_ended" in [e["event"]["kind"] for e in entries if e["type"] == "event"]


async def test_archive_access_needs_the_right_token(live_server):
    srv = live_server
    room, mediator, party = await setup(srv)
    _, other_mediator, _ = await setup(srv)
    status, started = await srv.request(
        "POST", f"/api/rooms/{room['id']}/recording", mediator["token"]
    )
    assert status == 201
    await wait_recorder(srv, room["id"])
    await srv.request("DELETE", f"/api/rooms/{room['id']}/recording", mediator["token"])
    rid = started["id"]
    data_dir = srv.state.settings.data_dir

    # an archivist token from the command line, signed with this server's secret
    out = archivist_token(data_dir)
    assert out.returncode == 0, out.stderr
    archivist = out.stdout.strip()
    for token in (srv.admin_token, archivist, mediator["token"]):
        status, listing = await srv.request("GET", "/api/recordings", token)
        assert status == 200 and [r["recording_id"] for r in listing["recordings"]] == [rid]
        status, one = await srv.request("GET", f"/api/recordings/{rid}", token)
        assert status == 200 and one["status"] == "sealed" and one["seal"]
    status, listing = await srv.request("GET", "/api/recordings", other_mediator["token"])
    assert status == 200 and listing["recordings"] == []
    assert (await srv.request("GET", f"/api/recordings/{rid}", other_mediator["token"]))[0] == 404
    assert (await srv.request("GET", "/api/recordings", party["token"]))[0] == 403
    assert (await srv.request("GET", "/api/recordings"))[0] == 401
    auth = ArchiveAuth(b"another secret of 32 bytes or more!!")
    forged = auth.archivist_token("mallory", 3600)
    assert (await srv.request("GET", "/api/recordings", forged))[0] == 401
    expired = ArchiveAuth(srv.state.credentials.token_secret).archivist_token("old", -10)
    status, body = await srv.request("GET", "/api/recordings", expired)
    assert status == 401 and body["error"] == "token_expired"
    # an unknown or guessed recording id: the same 404 as a forbidden one
    assert (await srv.request("GET", "/api/recordings/rec_" + "b" * 26, archivist))[0] == 404

    base = f"/api/recordings/{rid}/files/"
    status, chain = await srv.request("GET", base + "chain.jsonl", archivist)
    assert status == 200 and '"type":"seal"' in chain
    for trick in (
        "../../secret_key",
        "..%2F..%2Fsecret_key",
        "segments/../../../admin_token",
        "segments/..%2F..%2Fchain.jsonl",
        "index.jsonl",
        "recording.json.tmp",
        "segments/0001-x-camera.mp4",
    ):
        status, body = await srv.request("GET", base + trick, archivist)
        assert status == 404, (trick, status, body)

    # playback tickets: one recording, short-lived, for <video src>
    status, ticket = await srv.request("POST", f"/api/recordings/{rid}/ticket", mediator["token"])
    assert status == 201
    async with aiohttp.ClientSession() as session:
        url = f"{srv.url}{base}recording.json?ticket={ticket['ticket']}"
        async with session.get(url) as response:
            assert response.status == 200
        other = "rec_" + "c" * 26
        url = f"{srv.url}/api/recordings/{other}/files/recording.json?ticket={ticket['ticket']}"
        async with session.get(url) as response:
            assert response.status == 401
        tampered = ticket["ticket"][:-2] + ("AA" if not ticket["ticket"].endswith("AA") else "BB")
        async with session.get(f"{srv.url}{base}recording.json?ticket={tampered}") as response:
            assert response.status == 401
        stale, _ = ArchiveAuth(srv.state.credentials.token_secret).ticket(rid, lifetime=-1)
        async with session.get(f"{srv.url}{base}recording.json?ticket={stale}") as response:
            assert response.status == 401
    assert time.time() < ticket["expires_at"] <= time.time() + 600


async def test_archive_access_after_a_restart_keeps_revocations_and_fails_closed(tmp_path):
    """A restart of the durable default (SQLite): a mediator's link still reads its room's
    recordings, a withdrawn one does not. A server that does not know the link's room (a
    `memory:` server, which forgets rooms when it stops) refuses it, never waves it
    through, while its archive index is rebuilt from the files for the admin."""
    srv = await start_server(tmp_path / "data")
    try:
        room, mediator, _ = await setup(srv)
        withdrawn = await srv.create_invite(room["id"], "mediator", "前调解员")
        status, started = await srv.admin("POST", f"/api/rooms/{room['id']}/recording")
        assert status == 201, started
        await wait_recorder(srv, room["id"])
        assert (await srv.admin("DELETE", f"/api/rooms/{room['id']}/recording"))[0] == 200
        path = f"/api/rooms/{room['id']}/invites/{withdrawn['invite_id']}"
        assert (await srv.admin("DELETE", path))[0] == 200
        status, body = await srv.request("GET", "/api/recordings", withdrawn["token"])
        assert (status, body["error"]) == (403, "token_revoked")

        srv = await restart_server(srv)
        assert (await srv.admin("GET", f"/api/rooms/{room['id']}"))[0] == 200  # kept
        rid = started["id"]
        status, listing = await srv.request("GET", "/api/recordings", mediator["token"])
        assert status == 200 and [r["recording_id"] for r in listing["recordings"]] == [rid]
        status, _ = await srv.request("POST", f"/api/recordings/{rid}/ticket", mediator["token"])
        assert status == 201
        for what in ("/api/recordings", f"/api/recordings/{rid}", "/api/agreements"):
            status, body = await srv.request("GET", what, withdrawn["token"])
            assert (status, body.get("error")) == (403, "token_revoked"), (what, body)
        status, body = await srv.request(
            "GET", f"/api/recordings/{rid}/files/chain.jsonl", withdrawn["token"]
        )
        assert (status, body["error"]) == (403, "token_revoked")

        # Nothing on the server knows the room: refused, never waved through.
        srv = await restart_server(srv, database_url="memory:")
        assert (await srv.admin("GET", f"/api/rooms/{room['id']}"))[0] == 404  # unknown
        for token in (mediator["token"], withdrawn["token"]):
            status, body = await srv.request("GET", "/api/recordings", token)
            assert (status, body["error"]) == (403, "room_unknown")
            status, body = await srv.request("GET", f"/api/recordings/{rid}", token)
            assert (status, body["error"]) == (403, "room_unknown")
        status, listing = await srv.admin("GET", "/api/recordings")
        assert status == 200 and [r["recording_id"] for r in listing["recordings"]] == [rid]
    finally:
        await srv.close()
        await srv.server.close()


async def test_the_seal_gets_an_rfc3161_timestamp_from_the_configured_tsa(tmp_path):
    """--tsa-url: the recorder asks a real (local) TSA; the verifier checks the token."""
    import json

    from aiohttp import web

    from tests.conftest import free_port, start_server
    from tests.test_recording import verify
    from tiaojie.signing.authority import Authority
    from tiaojie.signing.tsa import TimeStampAuthority, tsa_app

    authority = Authority.load_or_create(tmp_path / "tsa-keys")
    runner = web.AppRunner(tsa_app(TimeStampAuthority(authority.tsa_key, authority.tsa_cert)))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    srv = await start_server(tmp_path / "data", tsa_url=f"http://127.0.0.1:{port}/tsa")
    try:
        room, mediator, _ = await setup(srv)
        status, started = await srv.request(
            "POST", f"/api/rooms/{room['id']}/recording", mediator["token"]
        )
        assert status == 201
        await wait_recorder(srv, room["id"])
        await srv.request("DELETE", f"/api/rooms/{room['id']}/recording", mediator["token"])
    finally:
        await srv.close()
        await srv.server.close()
        await runner.cleanup()
    directory = tmp_path / "data" / "recordings" / started["id"]
    assert (directory / "seal.tsr").stat().st_size > 500
    result = await asyncio.to_thread(
        verify, directory, tmp_path / "data", "--json", "--tsa-trust", str(authority.ca_cert_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["timestamp"], report
    # the token is over this seal: one changed byte in the seal line breaks it
    chain = (directory / "chain.jsonl").read_bytes()
    head, _, last = chain.rstrip(b"\n").rpartition(b"\n")
    assert b'"type":"seal"' in last
    (directory / "chain.jsonl").write_bytes(
        head + b"\n" + last.replace(b"stopped", b"stoppeD") + b"\n"
    )
    assert (await asyncio.to_thread(verify, directory, tmp_path / "data")).returncode == 1


async def test_an_agreement_signed_after_the_recording_stopped_is_an_addendum(live_server):
    """The chain stays append-only and sealed: event + a new seal; anything else breaks it."""
    from tests.test_recording import verify

    srv = live_server
    room, mediator, _ = await setup(srv)
    status, started = await srv.request(
        "POST", f"/api/rooms/{room['id']}/recording", mediator["token"]
    )
    assert status == 201
    await wait_recorder(srv, room["id"])
    await srv.request("DELETE", f"/api/rooms/{room['id']}/recording", mediator["token"])
    recordings = srv.state.recordings
    rid = started["id"]
    data_dir = srv.state.settings.data_dir
    directory = data_dir / "recordings" / rid
    # not an addendum kind, another room's recording, an unknown recording: nothing written
    assert not await recordings.note(room["id"], "joined", recording_id=rid)
    assert not await recordings.note("another-room-id", "agreement", recording_id=rid)
    before = (directory / "chain.jsonl").read_bytes()
    assert await recordings.note(room["id"], "agreement", recording_id=rid, sha256="ab" * 32)
    entries, _ = read_entries(directory / "chain.jsonl")
    assert (directory / "chain.jsonl").read_bytes().startswith(before)
    assert [e["type"] for e in entries[-3:]] == ["seal", "event", "seal"]
    assert entries[-2]["event"]["sha256"] == "ab" * 32 and entries[-1]["reason"] == "addendum"
    result = await asyncio.to_thread(verify, directory, data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    _, summary = await srv.request("GET", f"/api/recordings/{rid}", srv.admin_token)
    assert summary["seal"]["hash"] == entries[-1]["hash"]

    # a forger appending some other event after the seal (and re-sealing) is caught
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from tiaojie.archive.chain import ChainWriter

    key = load_pem_private_key((data_dir / "keys" / "recorder_ed25519.pem").read_bytes(), None)
    chain = ChainWriter(directory, rid, key)
    chain.append("event", event={"kind": "joined", "participant_id": "someone"})
    chain.append("seal", reason="addendum")
    chain.close()
    result = await asyncio.to_thread(verify, directory, data_dir)
    assert result.returncode == 1 and "follow the seal" in result.stdout, result.stdout


def write_agreement_status(data_dir, code: str, status: dict | str, pdf: bytes | None = None):
    """An agreement folder as the server leaves it (`status.json`, maybe `agreement.pdf`)."""
    import json

    folder = data_dir / "agreements" / code
    folder.mkdir(parents=True, exist_ok=True)
    text = status if isinstance(status, str) else json.dumps(status, ensure_ascii=False)
    (folder / "status.json").write_text(text)
    if pdf is not None:
        (folder / "agreement.pdf").write_bytes(pdf)
    return folder


async def test_agreements_in_the_archive_follow_the_recordings_rules(live_server):
    """GET /api/agreements: the admin and archivists see every agreement, a mediator those
    of their room only, a party nothing; only checked fields of status.json come back."""
    import hashlib
    import json

    from tests.test_agreements import ID_NUMBER, Room
    from tiaojie.server.archive_index.rebuild import rebuild

    srv = live_server
    data_dir = srv.state.settings.data_dir
    assert (await srv.request("GET", "/api/agreements", srv.admin_token)) == (
        200,
        {"agreements": [], "timezone": "Asia/Shanghai"},
    )

    # A real agreement, drafted over socket.io and open for signatures.
    r = await Room(srv).setup()
    real = await r.ready()
    # A signed one of another room, written as the server writes it (with a PDF).
    room, mediator, party = await setup(srv)
    _, other_mediator, _ = await setup(srv)
    pdf = b"%PDF-1.7 not really signed"
    signed_code = "S" * 32
    signed_public = {
        "code": signed_code,
        "status": "signed",
        "case_number": "（2025）京0105民调9号 <script>",
        "signers": [
            {"role": "applicant", "name": "甲", "signed_at": 1.5, "id_number": "1101"},
            {"role": "mediator", "name": "王调解员", "signed_at": 2.5},
        ],
        "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
        "sealed_at": 3.5,
        "updated_at": time.time() + 100,  # the newest: listed first
        "text": "the agreement's text is never public",
    }
    write_agreement_status(
        data_dir, signed_code, {"room_id": room["id"], "public": signed_public}, pdf
    )
    # What is not an agreement the server wrote is skipped, never echoed.
    junk = {
        "B" * 32: "{not json",
        "C" * 32: {"room_id": room["id"], "public": {**signed_public, "code": "D" * 32}},
        "E" * 32: {"room_id": "../../etc", "public": {**signed_public, "code": "E" * 32}},
        "F" * 32: {
            "room_id": room["id"],
            "public": {**signed_public, "code": "F" * 32, "status": "<b>forged</b>"},
        },
        "G" * 32: {
            "room_id": room["id"],
            "public": {**signed_public, "code": "G" * 32, "pdf_sha256": "../agreement.pdf"},
        },
        "H" * 32: {
            "room_id": room["id"],
            "public": {**signed_public, "code": "H" * 32, "signers": [{"role": "x", "name": 1}]},
        },
        "short": {"room_id": room["id"], "public": {**signed_public, "code": "short"}},
        "I" * 32: [1, 2, 3],
    }
    for code, status in junk.items():
        write_agreement_status(data_dir, code, status)
    (data_dir / "agreements" / ("J" * 32)).mkdir()  # no status.json (yet)
    outside = data_dir / "elsewhere.json"  # a link out of the archive is not followed
    outside.write_text(
        json.dumps({"room_id": room["id"], "public": {**signed_public, "code": "K" * 32}})
    )
    (data_dir / "agreements" / ("K" * 32)).mkdir()
    (data_dir / "agreements" / ("K" * 32) / "status.json").symlink_to(outside)

    # Files reach the archive index through `tiaojie reindex` (its rebuild).
    rebuilt = await rebuild(srv.state.recordings.index, data_dir)
    assert rebuilt.agreements == 2 and len(rebuilt.unreadable) == len(junk) + 2

    archivist = srv.archivist_token("档案员")
    for token in (srv.admin_token, archivist):
        status, body = await srv.request("GET", "/api/agreements", token)
        assert status == 200, body
        assert [a["code"] for a in body["agreements"]] == [signed_code, real["code"]]
        first, second = body["agreements"]
        assert first == {
            **{k: v for k, v in signed_public.items() if k != "text"},
            "signers": [
                {"role": "applicant", "name": "甲", "signed_at": 1.5},
                {"role": "mediator", "name": "王调解员", "signed_at": 2.5},
            ],
            "room_id": room["id"],
            "room_title": room["title"],
            "recording_id": None,
            "version": 1,
            "pdf_available": True,
        }
        assert second["room_id"] == r.room["id"] and second["status"] == "signing"
        assert second["pdf_available"] is False and second["pdf_sha256"] is None
        assert [(s["name"], s["signed_at"]) for s in second["signers"]] == [
            ("王五", None),
            ("李四", None),
            ("张调解员", None),
        ]
        text = json.dumps(body, ensure_ascii=False)
        assert ID_NUMBER not in text and "never public" not in text and "1101" not in text
        # the listed PDF is the one the download route serves
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{srv.url}/api/agreements/{signed_code}/pdf",
                headers={"Authorization": f"Bearer {token}"},
            ) as response,
        ):
            assert response.status == 200 and await response.read() == pdf

    # A mediator sees the agreements of their own room only; another room's: none.
    status, body = await srv.request("GET", "/api/agreements", r.mediator_invite["token"])
    assert status == 200 and [a["code"] for a in body["agreements"]] == [real["code"]]
    status, body = await srv.request("GET", "/api/agreements", mediator["token"])
    assert status == 200 and [a["code"] for a in body["agreements"]] == [signed_code]
    status, body = await srv.request("GET", "/api/agreements", other_mediator["token"])
    assert (status, body) == (200, {"agreements": [], "timezone": "Asia/Shanghai"})

    # Parties download with their own link, not from the archive; no token, no list.
    for token in (party["token"], r.a_invite["token"], r.expert_invite["token"]):
        status, body = await srv.request("GET", "/api/agreements", token)
        assert (status, body["error"]) == (403, "forbidden"), body
    for token, code in ((None, "token_missing"), ("tja1.forged.mac", "token_invalid")):
        status, body = await srv.request("GET", "/api/agreements", token)
        assert (status, body["error"]) == (401, code), body
