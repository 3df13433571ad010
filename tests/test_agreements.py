"""The agreement over socket.io and REST: drafting, signing rules, sealing, downloads.

Sealing uses a stand-in Notary here (the server flow, not the PDF: the real Notary is
exercised by tests/test_browser_agreement.py and the signing library's own tests).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageDraw

from server.agreements import AGREEMENTS, CODE_PATTERN, MAX_MARK_BYTES
from tests.conftest import LiveServer
from tests.signal_client import SignalClient

ID_NUMBER = "110101199003071234"
FACTS = "申请人王五与被申请人李四系邻居，因楼上漏水损坏楼下天花板发生纠纷。"


def mark(size: tuple[int, int] = (300, 120), ink: bool = True) -> str:
    """A handwritten-looking mark as a PNG data URL."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    if ink:
        draw = ImageDraw.Draw(image)
        draw.line([(10, 80), (60, 20), (120, 90), (200, 30), (280, 70)], fill="black", width=4)
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def noisy_png(nbytes: int) -> str:
    """A PNG of at least `nbytes` bytes (random pixels do not compress)."""
    import os

    side = int((nbytes / 3) ** 0.5) + 8
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=0)
    assert len(out.getvalue()) >= nbytes
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


class FakeNotary:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, list[Any], str, bytes | None]] = []

    def seal_agreement(
        self, agreement: Any, signatures: list[Any], status_url: str, manifest: bytes | None
    ) -> bytes:
        self.calls.append((agreement, signatures, status_url, manifest))
        names = ",".join(s.name for s in signatures)
        return b"%PDF-1.7\n% fake sealed agreement " + names.encode() + b"\n%%EOF\n"


class FakeRecordings:
    def __init__(self) -> None:
        self.notes: list[tuple[str, str, dict[str, Any]]] = []

    async def note(self, room_id: str, kind: str, **fields: Any) -> bool:
        self.notes.append((room_id, kind, fields))
        return True


class Room:
    """A room with a mediator, two parties and an expert, all inside."""

    def __init__(self, srv: LiveServer) -> None:
        self.srv = srv

    async def setup(self) -> Room:
        srv = self.srv
        self.room = await srv.create_room(title="王五与李四漏水纠纷", lobby=False)
        rid = self.room["id"]
        self.mediator_invite = await srv.create_invite(rid, "mediator", "张调解员")
        self.a_invite = await srv.create_invite(rid, "party", "王五")
        self.b_invite = await srv.create_invite(rid, "party", "李四")
        self.expert_invite = await srv.create_invite(rid, "expert", "赵律师")
        self.mediator = await srv.join(self.mediator_invite)
        self.a = await srv.join(self.a_invite)
        self.b = await srv.join(self.b_invite)
        self.expert = await srv.join(self.expert_invite)
        for client in (self.mediator, self.a, self.b, self.expert):
            await client.wait_for("room_state")
        return self

    def draft(self, **change: Any) -> dict[str, Any]:
        payload = {
            "case_number": "（2025）京0105民调123号",
            "language": "zh-CN",
            "parties": [
                {
                    "name": "王五",
                    "role": "applicant",
                    "id_number": ID_NUMBER,
                    "participant_id": self.a_invite["invite_id"],
                },
                {
                    "name": "李四",
                    "role": "respondent",
                    "participant_id": self.b_invite["invite_id"],
                },
            ],
            "mediator": "张调解员",
            "experts": ["赵律师"],
            "facts": FACTS,
            "terms": [
                "被申请人于2025年12月31日前赔偿申请人维修费人民币3000元。",
                "双方无其他争议。",
            ],
            "performance": "银行转账，一次付清。",
            "date": "2025年11月22日",
            "place": "北京市朝阳区人民调解委员会（线上）",
        }
        payload.update(change)
        return payload

    async def drafted(self, **change: Any) -> dict[str, Any]:
        ack = await self.mediator.call("agreement_draft", self.draft(**change))
        assert ack["ok"] is True, ack
        return ack

    async def ready(self) -> dict[str, Any]:
        """Drafted and open for signatures; returns the final state."""
        ack = await self.drafted()
        ack = await self.mediator.call(
            "agreement_request_signatures", {"fingerprint": ack["fingerprint"]}
        )
        assert ack["ok"] is True and ack["status"] == "signing", ack
        return ack

    @staticmethod
    async def sign(client: SignalClient, fingerprint: str, name: str, **extra: Any) -> Any:
        payload = {"fingerprint": fingerprint, "consent": True, "name": name, "mark": mark()}
        payload.update(extra)
        return await client.call("agreement_sign", payload)


async def fetch_bytes(srv: LiveServer, path: str, token: str) -> tuple[int, bytes, str]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(srv.url + path, headers=headers) as response,
    ):
        return response.status, await response.read(), response.content_type


def latest_state(client: SignalClient) -> dict[str, Any]:
    states = client.received("agreement_state")
    assert states, "no agreement_state received"
    return states[-1]


async def wait_status(client: SignalClient, status: str, timeout: float = 10) -> dict[str, Any]:
    return await client.wait_for(
        "agreement_state", lambda s: s["status"] == status, timeout=timeout
    )


@pytest.fixture(autouse=True)
def notary(request: pytest.FixtureRequest) -> FakeNotary:
    """A stand-in Notary on whichever server the test uses (no keys generated)."""
    name = "room_server" if "room_server" in request.fixturenames else "live_server"
    server: LiveServer = request.getfixturevalue(name)
    fake = FakeNotary()
    server.app[AGREEMENTS]._notary = fake
    return fake


# -- drafting ---------------------------------------------------------------------------------
async def test_mediator_drafts_and_everyone_sees_the_text_live(room_server) -> None:
    r = await Room(room_server).setup()
    ack = await r.drafted()
    assert re.fullmatch(CODE_PATTERN, ack["code"])
    for client in (r.a, r.b, r.expert, r.mediator):
        state = await client.wait_for("agreement_state")
        assert state["status"] == "drafting"
        assert state["text"].startswith("调解协议书\n")
        assert "1. 被申请人于2025年12月31日前赔偿申请人维修费人民币3000元。" in state["text"]
        assert state["fingerprint"] == hashlib.sha256(state["text"].encode()).hexdigest()
        assert state["fingerprint"] == ack["fingerprint"]
        assert state["draft"]["parties"][0]["participant_id"] == r.a_invite["invite_id"]
    # the English template
    ack = await r.drafted(language="en")
    state = await r.b.wait_for("agreement_state", lambda s: s["fingerprint"] == ack["fingerprint"])
    assert state["text"].startswith("Mediation Agreement\n")
    assert state["version"] == 2
    # The same draft again changes nothing (no new version, no broadcast).
    count = len(r.b.received("agreement_state"))
    again = await r.drafted(language="en")
    assert again["version"] == 2
    assert len(r.b.received("agreement_state")) == count

    # Someone entering later gets the current state right after room_state.
    late_invite = await room_server.create_invite(r.room["id"], "observer", "旁听者")
    late = await room_server.join(late_invite)
    state = await late.wait_for("agreement_state")
    assert state["fingerprint"] == ack["fingerprint"]


async def test_only_the_mediator_drafts(live_server) -> None:
    r = await Room(live_server).setup()
    for client in (r.a, r.expert):
        ack = await client.call("agreement_draft", r.draft())
        assert (ack["ok"], ack["error"]) == (False, "forbidden"), ack
    ack = await r.a.call("agreement_request_signatures", {"fingerprint": "0" * 64})
    assert ack["error"] == "forbidden"
    assert r.a.received("agreement_state") == []
    # The room document has no agreement.
    room = await live_server.state.store.get(r.room["id"])
    assert room.agreement is None


async def test_bad_drafts_are_refused(live_server) -> None:
    r = await Room(live_server).setup()
    cases = [
        ({"case_number": ""}, "bad_request"),
        ({"color": "red"}, "bad_request"),
        ({"language": "fr"}, "bad_request"),
        ({"parties": [{"name": "王五", "role": "judge"}]}, "bad_request"),
        ({"terms": [""]}, "bad_request"),
        ({"case_number": "A\u0000B"}, "invalid_agreement"),
        # assigned to someone who is not a party of this room
        (
            {"parties": [{"name": "王五", "role": "applicant", "participant_id": "x" * 22}]},
            "bad_assignment",
        ),
        (
            {
                "parties": [
                    {
                        "name": "王五",
                        "role": "applicant",
                        "participant_id": r.expert_invite["invite_id"],
                    }
                ]
            },
            "bad_assignment",
        ),
        (
            {
                "parties": [
                    {"name": n, "role": "applicant", "participant_id": r.a_invite["invite_id"]}
                    for n in ("王五", "王六")
                ]
            },
            "bad_assignment",
        ),
    ]
    for change, code in cases:
        ack = await r.mediator.call("agreement_draft", r.draft(**change))
        assert (ack["ok"], ack["error"]) == (False, code), (change, ack)


async def test_incomplete_or_unassigned_drafts_cannot_go_to_signing(live_server) -> None:
    r = await Room(live_server).setup()
    ack = await r.drafted(terms=[], place="")
    state = await r.a.wait_for("agreement_state")
    assert "no terms" in state["incomplete"] and "no place" in state["incomplete"]
    ack = await r.mediator.call("agreement_request_signatures", {"fingerprint": ack["fingerprint"]})
    assert ack["error"] == "agreement_incomplete"

    parties = r.draft()["parties"]
    del parties[1]["participant_id"]
    ack = await r.drafted(parties=parties)
    ack = await r.mediator.call("agreement_request_signatures", {"fingerprint": ack["fingerprint"]})
    assert ack["error"] == "parties_unassigned" and "李四" in ack["message"]
    # Nobody can sign before the mediator asks for signatures.
    ack = await Room.sign(r.a, latest_state(r.a)["fingerprint"], "王五")
    assert ack["error"] == "agreement_not_ready"


# -- signing ----------------------------------------------------------------------------------
async def test_signing_rules_and_sealing(live_server, notary) -> None:
    recordings = FakeRecordings()
    live_server.state.recordings = recordings
    r = await Room(live_server).setup()
    ready = await r.ready()
    fp = ready["fingerprint"]
    code = ready["code"]

    # The mediator cannot skip the parties.
    ack = await Room.sign(r.mediator, fp, "张调解员")
    assert ack["error"] == "parties_not_signed" and "王五" in ack["message"], ack
    ack = await r.mediator.call("agreement_finalize", {})
    assert ack["error"] == "not_all_signed"
    # An expert does not sign.
    ack = await Room.sign(r.expert, fp, "赵律师")
    assert ack["error"] == "forbidden"
    # An outdated version is refused.
    ack = await Room.sign(r.a, "ab" * 32, "王五")
    assert ack["error"] == "agreement_outdated", ack
    # Nobody signs for another: there is no field to say who, and the name is theirs.
    ack = await Room.sign(r.a, fp, "李四", participant_id=r.b_invite["invite_id"])
    assert ack["error"] == "bad_request"
    ack = await Room.sign(r.a, fp, "李四")
    assert ack["error"] == "name_mismatch", ack
    # Consent must be given, a mark drawn.
    ack = await Room.sign(r.a, fp, "王五", consent=False)
    assert ack["error"] == "consent_required"
    ack = await Room.sign(r.a, fp, "王五", mark=mark(ink=False))
    assert ack["error"] == "mark_empty"
    ack = await Room.sign(r.a, fp, "王五", mark="data:image/png;base64,AAAA")
    assert ack["error"] == "bad_request"
    assert all(s["signed_at"] is None for s in latest_state(r.b)["signers"])

    # Party A signs their own line, once.
    ack = await Room.sign(r.a, fp, " 王五 ")
    assert ack["ok"] is True and ack["status"] == "signing", ack
    state = await r.b.wait_for(
        "agreement_state", lambda s: any(x["signed_at"] for x in s["signers"])
    )
    signed = [s for s in state["signers"] if s["signed_at"]]
    assert [(s["name"], s["role"], s["signed_by"]) for s in signed] == [
        ("王五", "applicant", r.a_invite["invite_id"])
    ]
    ack = await Room.sign(r.a, fp, "王五")
    assert ack["error"] == "already_signed"
    ack = await Room.sign(r.mediator, fp, "张调解员")
    assert ack["error"] == "parties_not_signed" and "李四" in ack["message"]

    # Party B, then the mediator: sealing starts and ends with the PDF.
    assert (await Room.sign(r.b, fp, "李四"))["ok"]
    ack = await Room.sign(r.mediator, fp, "张调解员")
    assert ack["ok"] is True and ack["status"] == "sealing", ack
    await wait_status(r.a, "sealing")
    done = await wait_status(r.a, "signed")
    await live_server.app[AGREEMENTS].wait_sealed()
    assert done["pdf_ready"] is True
    pdf_path = live_server.state.settings.data_dir / "agreements" / code / "agreement.pdf"
    pdf = pdf_path.read_bytes()
    assert done["pdf_sha256"] == hashlib.sha256(pdf).hexdigest()
    # The Notary got the parties in order, then the mediator, bound to the final text.
    agreement, marks, status_url, manifest = notary.calls[0]
    assert [(m.name, m.role) for m in marks] == [
        ("王五", "applicant"),
        ("李四", "respondent"),
        ("张调解员", "mediator"),
    ]
    assert {m.fingerprint for m in marks} == {fp}
    assert all(m.mark_png.startswith(b"\x89PNG") for m in marks)
    assert status_url == f"{live_server.url}/a/{code}"
    assert agreement.case_number == "（2025）京0105民调123号"
    assert manifest is None  # not recorded

    # Every signing event went to the recording's chain; the last one names the PDF.
    kinds = [kind for _, kind, _ in recordings.notes]
    assert kinds == [
        "agreement_signatures_requested",
        "agreement_signature",
        "agreement_signature",
        "agreement_signature",
        "agreement",
    ]
    assert recordings.notes[-1][2] == {"code": code, "sha256": done["pdf_sha256"]}
    assert recordings.notes[1][2]["fingerprint"] == fp
    # ... and to the agreement's log, always.
    log = (pdf_path.parent / "log.jsonl").read_text().splitlines()
    assert sum('"kind": "signature"' in line for line in log) == 3
    assert '"kind": "sealed"' in log[-1]

    # A signed agreement is final.
    ack = await r.mediator.call("agreement_draft", r.draft(facts="改了"))
    assert ack["error"] == "agreement_signed"
    ack = await r.mediator.call("agreement_finalize", {})
    assert ack["error"] == "agreement_signed"


async def test_a_changed_text_needs_new_signatures(live_server, notary) -> None:
    r = await Room(live_server).setup()
    ready = await r.ready()
    first = ready["fingerprint"]
    assert (await Room.sign(r.a, first, "王五"))["ok"]

    # The mediator changes a term: the signature is gone, back to drafting.
    terms = ["被申请人于2025年12月31日前赔偿申请人维修费人民币3500元。"]
    ack = await r.drafted(terms=terms)
    second = ack["fingerprint"]
    assert second != first
    state = await r.b.wait_for("agreement_state", lambda s: s["fingerprint"] == second)
    assert state["status"] == "drafting"
    assert all(s["signed_at"] is None for s in state["signers"])
    # Signing what one read before is refused, now and after the new request.
    ack = await Room.sign(r.b, first, "李四")
    assert ack["error"] == "agreement_not_ready"
    ack = await r.mediator.call("agreement_request_signatures", {"fingerprint": first})
    assert ack["error"] == "agreement_outdated"
    ack = await r.mediator.call("agreement_request_signatures", {"fingerprint": second})
    assert ack["ok"]
    ack = await Room.sign(r.a, first, "王五")
    assert ack["error"] == "agreement_outdated"
    assert (await Room.sign(r.a, second, "王五"))["ok"]

    # Reassigning a signed line drops that signature only; the text (and status) stay.
    parties = r.draft()["parties"]
    parties[0]["participant_id"], parties[1]["participant_id"] = (
        parties[1]["participant_id"],
        parties[0]["participant_id"],
    )
    ack = await r.drafted(terms=terms, parties=parties)
    assert ack["fingerprint"] == second and ack["status"] == "signing"
    state = latest_state(r.mediator)
    assert all(s["signed_at"] is None for s in state["signers"])


async def test_oversize_mark_is_refused(live_server) -> None:
    r = await Room(live_server).setup()
    fp = (await r.ready())["fingerprint"]
    ack = await Room.sign(r.a, fp, "王五", mark=noisy_png(MAX_MARK_BYTES + 1000))
    assert ack["error"] == "mark_too_large" and "200 KiB" in ack["message"], ack
    ack = await Room.sign(r.a, fp, "王五", mark=noisy_png(400 * 1024))
    assert ack["error"] == "payload_too_large", ack
    # The connection is still up and a normal mark works.
    assert (await Room.sign(r.a, fp, "王五"))["ok"]


async def test_failed_seal_can_be_retried(live_server) -> None:
    class Broken:
        def seal_agreement(self, *args: Any) -> bytes:
            raise RuntimeError("no keys")

    service = live_server.app[AGREEMENTS]
    service._notary = Broken()
    r = await Room(live_server).setup()
    fp = (await r.ready())["fingerprint"]
    for client, name in ((r.a, "王五"), (r.b, "李四"), (r.mediator, "张调解员")):
        assert (await Room.sign(client, fp, name))["ok"]
    state = await r.a.wait_for("agreement_state", lambda s: s["seal_error"] is not None)
    assert state["status"] == "signing" and state["pdf_ready"] is False
    service._notary = FakeNotary()
    ack = await r.mediator.call("agreement_finalize", {})
    assert ack["ok"] and ack["status"] == "sealing", ack
    await wait_status(r.a, "signed")


# -- REST and the public page -----------------------------------------------------------------
async def test_status_page_download_and_forged_codes(live_server, notary) -> None:
    from server.archive_auth import ArchiveAuth

    srv = live_server
    r = await Room(srv).setup()
    ready = await r.ready()
    code, fp = ready["code"], ready["fingerprint"]

    # Public status while signing: names, no ID number, no text.
    status, body = await srv.request("GET", f"/api/agreements/{code}")
    assert status == 200 and body["status"] == "signing"
    assert [(s["name"], s["signed_at"]) for s in body["signers"]] == [
        ("王五", None),
        ("李四", None),
        ("张调解员", None),
    ]
    assert ID_NUMBER not in str(body) and FACTS[:8] not in str(body)

    # Nothing to download yet.
    status, body = await srv.request("GET", f"/api/agreements/{code}/pdf", r.a_invite["token"])
    assert (status, body["error"]) == (409, "agreement_not_signed")

    for client, name in ((r.a, "王五"), (r.b, "李四"), (r.mediator, "张调解员")):
        assert (await Room.sign(client, fp, name))["ok"]
    done = await wait_status(r.a, "signed")

    status, body = await srv.request("GET", f"/api/agreements/{code}")
    assert body["status"] == "signed" and body["pdf_sha256"] == done["pdf_sha256"]
    assert all(s["signed_at"] for s in body["signers"])

    # The page, in Chinese by default and in English.
    for lang, words in (("", ["已签署生效", "申请人"]), ("?lang=en", ["signed and in force"])):
        status, page = await srv.request("GET", f"/a/{code}{lang}")
        assert status == 200
        for word in [*words, "王五", "李四", "张调解员", done["pdf_sha256"]]:
            assert word in page
        assert ID_NUMBER not in page and FACTS[:8] not in page and "3000" not in page
        assert "王五与李四漏水纠纷" not in page  # not even the room title

    # Downloads: the parties' and the mediator's own links, the admin, an archivist.
    archivist = ArchiveAuth(srv.state.credentials.token_secret).archivist_token("档案员", 3600)
    for token in (
        r.a_invite["token"],
        r.b_invite["token"],
        r.mediator_invite["token"],
        srv.admin_token,
        archivist,
    ):
        status, pdf, content_type = await fetch_bytes(srv, f"/api/agreements/{code}/pdf", token)
        assert (status, content_type) == (200, "application/pdf"), (status, pdf)
        assert hashlib.sha256(pdf).hexdigest() == done["pdf_sha256"]

    other_room = await srv.create_room()
    stranger = await srv.create_invite(other_room["id"], "party", "路人")
    for token, expected in (
        (None, (401, "token_missing")),
        ("tj1.forged.token", (401, "token_invalid")),
        (r.expert_invite["token"], (403, "forbidden")),
        (stranger["token"], (403, "token_wrong_room")),
        ("tja1.forged.mac", (401, "token_invalid")),
    ):
        status, body = await srv.request("GET", f"/api/agreements/{code}/pdf", token)
        assert (status, body["error"]) == expected, (token, body)
    # A removed party's link no longer downloads.
    ack = await r.mediator.call("remove", {"participant_id": r.b_invite["invite_id"]})
    assert ack["ok"]
    status, body = await srv.request("GET", f"/api/agreements/{code}/pdf", r.b_invite["token"])
    assert (status, body["error"]) == (403, "token_revoked")

    # Forged codes: 404 everywhere, and the same answer as a code that never existed.
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    for path in (f"/api/agreements/{forged}", f"/api/agreements/{forged}/pdf"):
        status, body = await srv.request("GET", path, srv.admin_token)
        assert (status, body["error"]) == (404, "agreement_not_found"), path
    for path in ("/api/agreements/short", "/api/agreements/../../etc/passwd"):
        status, body = await srv.request("GET", path)
        assert status == 404
    for path in (f"/a/{forged}", "/a/short", "/a/" + "!" * 32):
        status, page = await srv.request("GET", path)
        assert status == 404 and "找不到该协议" in page, path

    # After the room ends the status page still answers, and a party's link still downloads.
    status, _ = await srv.admin("DELETE", f"/api/rooms/{r.room['id']}")
    assert status == 200
    status, body = await srv.request("GET", f"/api/agreements/{code}")
    assert body["status"] == "signed"
    status, _ = await srv.request("GET", f"/api/agreements/{code}/pdf", r.a_invite["token"])
    assert status == 200


# -- the built-in TSA -------------------------------------------------------------------------
async def test_builtin_tsa_answers_rfc3161_requests(live_server) -> None:
    from signing.authority import load_certificate
    from signing.tsa import request_timestamp, verify_timestamp

    token = await request_timestamp(f"{live_server.url}/tsa", b"chain head")
    ca = load_certificate(live_server.state.settings.data_dir / "keys" / "ca.cert.pem")
    info = verify_timestamp(token, b"chain head", ca)
    assert info.trusted and "built-in TSA" in info.tsa_subject
    # Not a timestamp query: refused, nothing else happens.
    status, _ = await live_server.request("POST", "/tsa", data=b"hello")
    assert status in (400, 415)


async def test_no_builtin_tsa_with_an_external_one(tmp_path) -> None:
    from tests.conftest import start_server

    srv = await start_server(tmp_path / "data", tsa_url="http://tsa.example.org/")
    try:
        status, _ = await srv.request("POST", "/tsa", data=b"x")
        assert status in (404, 405)
    finally:
        await srv.close()
        await srv.server.close()


# -- the recording it was reached in ----------------------------------------------------------
async def test_recorded_room_binds_recording_and_chain_head(live_server, notary) -> None:
    """The draft names the running recording; the final text its chain head at the time
    signatures were asked for; the sealed PDF gets the chain as written then."""
    import json

    srv = live_server
    r = await Room(srv).setup()
    recording_id = "rec_" + "a2b3c4d5e6f7g2h3i4j5k6l7m2"
    heads = [hashlib.sha256(bytes([i])).hexdigest() for i in range(3)]
    chain = "".join(json.dumps({"seq": i, "hash": h}) + "\n" for i, h in enumerate(heads))
    folder = srv.state.settings.data_dir / "recordings" / recording_id
    folder.mkdir(parents=True)
    (folder / "chain.jsonl").write_text(chain + '{"seq": 3, "ha')  # a line being written

    def recording(room: Any) -> None:
        room.recording = {"id": recording_id, "started_at": 0, "started_by": "x", "consents": {}}

    await srv.state.store.update(r.room["id"], recording)
    drafted = await r.drafted()
    state = await r.a.wait_for("agreement_state")
    assert f"本协议在调解录像 {recording_id} 中达成，录像哈希链头：-。" in state["text"]

    ack = await r.mediator.call(
        "agreement_request_signatures", {"fingerprint": drafted["fingerprint"]}
    )
    assert ack["ok"] and ack["fingerprint"] != drafted["fingerprint"], ack
    state = await r.a.wait_for("agreement_state", lambda s: s["status"] == "signing")
    assert f"录像哈希链头：{heads[-1]}。" in state["text"]
    assert state["fingerprint"] == ack["fingerprint"]
    for client, name in ((r.a, "王五"), (r.b, "李四"), (r.mediator, "张调解员")):
        assert (await Room.sign(client, ack["fingerprint"], name))["ok"]
    await wait_status(r.a, "signed")
    agreement, _, _, manifest = notary.calls[0]
    assert (agreement.recording_id, agreement.chain_head) == (recording_id, heads[-1])
    assert manifest == chain.encode()
