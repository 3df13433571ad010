"""The agreement over socket.io and REST: drafting, signing rules, sealing, downloads.

Everything is real: the server's own Notary signs at PAdES B-LTA with its built-in TSA,
the recorder is the real `tiaojie record` process the server launches, and what comes out
is checked with `tiaojie verify` (signing/validator.py, archive/verify/) and poppler
(`pdftotext` for the printed text, `pdfdetach` for the embedded `agreement.json` and
`chain.jsonl`). The local CA, seal, TSA and recorder keys are generated once per session
and copied into each test's data directory.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageDraw

from tests.conftest import LiveServer, restart_server, start_server
from tests.support.signal_client import SignalClient
from tiaojie.archive.chain import read_entries
from tiaojie.server.agreements import AGREEMENTS, CODE_PATTERN, MAX_MARK_BYTES
from tiaojie.server.agreements.state import ID_MASK

ID_NUMBER = "110101199003071234"
FACTS = "申请人王五与被申请人李四系邻居，因楼上漏水损坏楼下天花板发生纠纷。"
CASE_NUMBER = "（2025）京0105民调123号"
# Four PAdES signatures with timestamps and validation data take ~0.5 s, the first seal
# of a process ~2 s (font parse, keys); generous for a busy 2-core machine.
SEAL_TIMEOUT = 120


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
            "case_number": CASE_NUMBER,
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


async def wait_status(
    client: SignalClient, status: str, timeout: float = SEAL_TIMEOUT
) -> dict[str, Any]:
    return await client.wait_for(
        "agreement_state", lambda s: s["status"] == status, timeout=timeout
    )


@pytest.fixture
def live_server(room_server):
    """The agreement suite runs on each database (SQLite, PostgreSQL)."""
    return room_server


# -- keys: made once, copied into each test's data directory ---------------------------------
@pytest.fixture(scope="session")
def shared_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local CA, seal, TSA (signing/authority.py) and recorder keys (archive/keys.py),
    generated once: RSA-3072 key generation is the slow part of a first seal."""
    from tiaojie.archive.keys import load_or_create as recorder_key
    from tiaojie.signing.authority import Authority

    keys = tmp_path_factory.mktemp("keys")
    Authority.load_or_create(keys)
    recorder_key(keys)
    return keys


@pytest.fixture(autouse=True)
def keys(tmp_path: Path, shared_keys: Path) -> Path:
    """DATA/keys of the test's server (`tmp_path / "data"`, as conftest's servers use),
    in place before the server starts (autouse fixtures come first in their scope)."""
    target = tmp_path / "data" / "keys"
    shutil.copytree(shared_keys, target, ignore=shutil.ignore_patterns(".lock"))
    target.chmod(0o700)
    return target


# -- independent checkers ----------------------------------------------------------------------
def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install poppler-utils")
    return path


async def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [str(c) for c in command], capture_output=True, text=True, timeout=180
    )


async def tiaojie_verify(path: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    """`tiaojie verify PATH ...` as an archivist runs it (its own process)."""
    return await run(sys.executable, "-m", "tiaojie", "verify", path, *extra)


async def pdf_text(pdf: Path) -> str:
    """The printed text (poppler's pdftotext)."""
    return (await run(tool("pdftotext"), "-enc", "UTF-8", pdf, "-")).stdout


async def attachments(pdf: Path, out: Path) -> dict[str, bytes]:
    """The PDF's embedded files, extracted by poppler's pdfdetach into `out`."""

    def detach() -> dict[str, bytes]:
        out.mkdir()
        done = subprocess.run(
            [tool("pdfdetach"), "-saveall", "-o", str(out), str(pdf)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return {p.name: p.read_bytes() for p in out.iterdir()}

    return await asyncio.to_thread(detach)


async def verified(pdf: Path, ca: Path) -> Any:
    """signing.validator's report on `pdf`, asserted authentic."""
    from tiaojie.signing.validator import verify_agreement

    report = await asyncio.to_thread(verify_agreement, pdf, ca)
    assert report.authentic, report.to_text()
    return report


async def eventually(check: Callable[[], Any], timeout: float = 30, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return result


# -- recording ---------------------------------------------------------------------------------
async def start_recording(srv: LiveServer, room_id: str) -> str:
    """The admin starts the room's recording; returns its id once the real recorder
    process is in the room."""
    status, body = await srv.admin("POST", f"/api/rooms/{room_id}/recording")
    assert status == 201, body

    async def recorder_present() -> bool:
        people = (await srv.room(room_id))["participants"]
        return any(p["role"] == "recorder" for p in people)

    deadline = time.monotonic() + 60
    while not await recorder_present():
        assert time.monotonic() < deadline, "the recorder did not join the room"
        await asyncio.sleep(0.1)
    return str(body["id"])


async def stop_recording(srv: LiveServer, room_id: str) -> None:
    """Stop: returns once the recorder has sealed the chain and exited."""
    status, body = await srv.admin("DELETE", f"/api/rooms/{room_id}/recording")
    assert status == 200, body


def chain_entries(folder: Path) -> list[dict[str, Any]]:
    entries, problems = read_entries(folder / "chain.jsonl")
    assert not problems, problems
    return entries


def agreement_events(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e["event"]
        for e in entries
        if e["type"] == "event" and e["event"]["kind"].startswith("agreement")
    ]


def chain_head_in(text: str) -> str:
    match = re.search(r"录像哈希链头：([0-9a-f]{64})。", text)
    assert match, text
    return match.group(1)


def mark_sha256() -> str:
    return hashlib.sha256(base64.b64decode(mark().split(",", 1)[1])).hexdigest()


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
        # the fingerprint is the full text's (only the mediator and party A, whose line
        # it is, see A's ID number: test_id_numbers_reach_only_whom_they_concern)
        text = state["text"].replace(ID_MASK, ID_NUMBER)
        assert state["fingerprint"] == hashlib.sha256(text.encode()).hexdigest()
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


async def test_id_numbers_reach_only_whom_they_concern(room_server) -> None:
    """The mediator sees every party's ID number, a party their own, experts and
    observers none: not in the draft, not in the text (issue 10, finding 16)."""
    r = await Room(room_server).setup()
    other = "220102198512125678"
    draft = r.draft()
    draft["parties"][1]["id_number"] = other
    ack = await r.mediator.call("agreement_draft", draft)
    assert ack["ok"] is True, ack
    observer_invite = await room_server.create_invite(r.room["id"], "observer", "旁听者")
    observer = await room_server.join(observer_invite)  # gets the state on entering
    seen: dict[str, dict[str, Any]] = {}
    for who, client in (
        ("mediator", r.mediator),
        ("a", r.a),
        ("b", r.b),
        ("expert", r.expert),
        ("observer", observer),
    ):
        state = await client.wait_for(
            "agreement_state", lambda s: s["fingerprint"] == ack["fingerprint"]
        )
        seen[who] = state
        assert state["fingerprint"] == ack["fingerprint"]
    everything = {who: json.dumps(state, ensure_ascii=False) for who, state in seen.items()}
    assert ID_NUMBER in everything["mediator"] and other in everything["mediator"]
    assert ID_NUMBER in everything["a"] and other not in everything["a"]
    assert other in everything["b"] and ID_NUMBER not in everything["b"]
    for who in ("expert", "observer"):
        assert ID_NUMBER not in everything[who] and other not in everything[who]
        assert [p.get("id_number") for p in seen[who]["draft"]["parties"]] == [None, None]
        assert seen[who]["text"].count(ID_MASK) == 2
    # the full text, as the mediator sees it, is the one fingerprinted
    full = seen["mediator"]["text"]
    assert hashlib.sha256(full.encode()).hexdigest() == ack["fingerprint"]
    assert seen["expert"]["text"] == full.replace(ID_NUMBER, ID_MASK).replace(other, ID_MASK)
    assert seen["a"]["text"] == full.replace(other, ID_MASK)
    assert seen["a"]["draft"]["parties"][0]["id_number"] == ID_NUMBER


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
        ({"case_number": "A\u0000B"}, "bad_request"),  # the text rules, at the edge
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
async def test_signing_rules_and_sealing(live_server, keys, tmp_path) -> None:
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

    # The real sealed PDF: valid at B-LTA, trusted by the server's CA; signed by the
    # parties in order, then the mediator (event certificates naming each), then the seal.
    report = await verified(pdf_path, keys / "ca.cert.pem")
    assert [(s.field_name, s.kind, s.name, s.role) for s in report.signatures[:3]] == [
        ("sig1_applicant", "signer", "王五", "applicant"),
        ("sig2_respondent", "signer", "李四", "respondent"),
        ("sig3_mediator", "signer", "张调解员", "mediator"),
    ]
    assert [s.kind for s in report.signatures[3:]] == ["organisation seal", "document timestamp"]
    # ... bound to the final text, which nobody recorded.
    assert report.fingerprint == fp and report.case_number == CASE_NUMBER
    assert (report.recording_id, report.chain_head, report.manifest) == (None, None, None)
    # What each signer consented to, as embedded (poppler's pdfdetach, not our reader).
    files = await attachments(pdf_path, tmp_path / "attachments")
    assert set(files) == {"agreement.json"}  # no recording manifest: not recorded
    record = json.loads(files["agreement.json"])
    assert [(m["name"], m["role"]) for m in record["signers"]] == [
        ("王五", "applicant"),
        ("李四", "respondent"),
        ("张调解员", "mediator"),
    ]
    assert {m["fingerprint"] for m in record["signers"]} == {fp}
    assert {m["mark_sha256"] for m in record["signers"]} == {mark_sha256()}
    assert record["status_url"] == f"{live_server.url}/a/{code}"
    assert record["agreement"]["case_number"] == CASE_NUMBER
    assert record["manifest"] is None
    # The printed text (poppler's pdftotext).
    text = "".join((await pdf_text(pdf_path)).split())
    for words in ("调解协议书", CASE_NUMBER, "王五", "李四", "张调解员", "本协议的调解过程未录像"):
        assert words in text, words

    # Not recorded: no recording chain anywhere got these events.
    assert not (live_server.state.settings.data_dir / "recordings").exists()
    # ... and to the agreement's log, always.
    log = (pdf_path.parent / "log.jsonl").read_text().splitlines()
    assert sum('"kind": "signature"' in line for line in log) == 3
    assert '"kind": "sealed"' in log[-1]

    # A signed agreement is final.
    ack = await r.mediator.call("agreement_draft", r.draft(facts="改了"))
    assert ack["error"] == "agreement_signed"
    ack = await r.mediator.call("agreement_finalize", {})
    assert ack["error"] == "agreement_signed"


async def test_a_changed_text_needs_new_signatures(live_server) -> None:
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


async def test_failed_seal_can_be_retried(live_server, keys) -> None:
    """The organisation's seal key is unreadable (a damaged key file): the seal fails,
    signing stays open with the error shown; once the key is back the mediator retries."""
    seal_key = keys / "seal.key.pem"
    good = seal_key.read_bytes()
    seal_key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nZGFtYWdlZA==\n-----END PRIVATE KEY-----\n")
    r = await Room(live_server).setup()
    fp = (await r.ready())["fingerprint"]
    for client, name in ((r.a, "王五"), (r.b, "李四"), (r.mediator, "张调解员")):
        assert (await Room.sign(client, fp, name))["ok"]
    state = await r.a.wait_for(
        "agreement_state", lambda s: s["seal_error"] is not None, timeout=SEAL_TIMEOUT
    )
    assert state["status"] == "signing" and state["pdf_ready"] is False
    code = state["code"]
    folder = live_server.state.settings.data_dir / "agreements" / code
    assert not (folder / "agreement.pdf").exists()
    assert '"kind": "seal_failed"' in (folder / "log.jsonl").read_text()

    seal_key.write_bytes(good)
    ack = await r.mediator.call("agreement_finalize", {})
    assert ack["ok"] and ack["status"] == "sealing", ack
    done = await wait_status(r.a, "signed")
    assert done["seal_error"] is None
    pdf = folder / "agreement.pdf"
    assert hashlib.sha256(pdf.read_bytes()).hexdigest() == done["pdf_sha256"]
    report = await verified(pdf, keys / "ca.cert.pem")
    assert report.fingerprint == fp


# -- REST and the public page -----------------------------------------------------------------
async def test_status_page_download_and_forged_codes(live_server) -> None:
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
        assert ID_NUMBER not in page and FACTS[:8] not in page and "人民币3000元" not in page
        assert "王五与李四漏水纠纷" not in page  # not even the room title

    # Downloads: the parties' and the mediator's own links, the admin, an archivist.
    archivist = srv.archivist_token("档案员", 3600)
    for token in (
        r.a_invite["token"],
        r.b_invite["token"],
        r.mediator_invite["token"],
        srv.admin_token,
        archivist,
    ):
        status, pdf, content_type = await fetch_bytes(srv, f"/api/agreements/{code}/pdf", token)
        assert (status, content_type) == (200, "application/pdf"), (status, pdf)
        assert pdf.startswith(b"%PDF-") and b"/ByteRange" in pdf  # the real, signed one
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
    status, pdf, _ = await fetch_bytes(srv, f"/api/agreements/{code}/pdf", r.a_invite["token"])
    assert status == 200 and hashlib.sha256(pdf).hexdigest() == done["pdf_sha256"]


async def test_parties_download_their_pdf_after_a_restart(tmp_path) -> None:
    """A restart of the durable default (SQLite): the parties' and the mediator's links
    still download the signed PDF, a removed party's does not. A server that does not know
    the link's room (a `memory:` server forgets rooms when it stops) refuses it."""
    srv = await start_server(tmp_path / "data")
    try:
        r = await Room(srv).setup()
        ready = await r.ready()
        code, fp = ready["code"], ready["fingerprint"]
        for client, name in ((r.a, "王五"), (r.b, "李四"), (r.mediator, "张调解员")):
            assert (await Room.sign(client, fp, name))["ok"]
        done = await wait_status(r.a, "signed")
        assert (await r.mediator.call("remove", {"participant_id": r.b_invite["invite_id"]}))["ok"]
        other_room = await srv.create_room()
        stranger = await srv.create_invite(other_room["id"], "party", "路人")

        srv = await restart_server(srv)
        assert (await srv.admin("GET", f"/api/rooms/{r.room['id']}"))[0] == 200  # kept
        pdf_path = f"/api/agreements/{code}/pdf"
        for token in (r.a_invite["token"], r.mediator_invite["token"], srv.admin_token):
            status, pdf, content_type = await fetch_bytes(srv, pdf_path, token)
            assert (status, content_type) == (200, "application/pdf"), (status, pdf)
            assert hashlib.sha256(pdf).hexdigest() == done["pdf_sha256"]
        for token, expected in (
            (r.b_invite["token"], (403, "token_revoked")),
            (r.expert_invite["token"], (403, "forbidden")),
            (stranger["token"], (403, "token_wrong_room")),
        ):
            status, body = await srv.request("GET", pdf_path, token)
            assert (status, body["error"]) == expected, (token, body)

        # Nothing on the server knows the room: refused, never waved through.
        srv = await restart_server(srv, database_url="memory:")
        assert (await srv.admin("GET", f"/api/rooms/{r.room['id']}"))[0] == 404  # unknown
        status, body = await srv.request("GET", pdf_path, r.a_invite["token"])
        assert (status, body["error"]) == (403, "room_unknown")
        status, pdf, _ = await fetch_bytes(srv, pdf_path, srv.admin_token)
        assert status == 200 and hashlib.sha256(pdf).hexdigest() == done["pdf_sha256"]
    finally:
        await srv.close()
        await srv.server.close()


# -- the built-in TSA -------------------------------------------------------------------------
async def test_builtin_tsa_answers_rfc3161_requests(live_server) -> None:
    from tiaojie.archive.timestamp import verify_timestamp
    from tiaojie.signing.authority import load_certificate
    from tiaojie.signing.tsa import request_timestamp

    token = await request_timestamp(f"{live_server.url}/tsa", b"chain head")
    ca = load_certificate(live_server.state.settings.data_dir / "keys" / "ca.cert.pem")
    info = verify_timestamp(token, b"chain head", [ca])
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
async def test_recorded_room_binds_recording_and_chain_head(live_server, keys, tmp_path) -> None:
    """The draft names the running recording; the final text its chain head at the time
    signatures were asked for; the sealed PDF embeds the chain as written then, and the
    recording's chain names the PDF: both verify against each other, and not against
    another recording."""
    srv = live_server
    recordings = srv.state.settings.data_dir / "recordings"
    r = await Room(srv).setup()
    other_room = await srv.create_room(title="另一调解室", lobby=False)
    rid, other_rid = await asyncio.gather(
        start_recording(srv, r.room["id"]), start_recording(srv, other_room["id"])
    )
    folder = recordings / rid

    drafted = await r.drafted()
    state = await r.a.wait_for("agreement_state")
    assert state["draft"]["recording_id"] == rid
    assert f"本协议在调解录像 {rid} 中达成，录像哈希链头：-。" in state["text"]

    ack = await r.mediator.call(
        "agreement_request_signatures", {"fingerprint": drafted["fingerprint"]}
    )
    asked_at = time.time()
    assert ack["ok"] and ack["fingerprint"] != drafted["fingerprint"], ack
    state = await r.a.wait_for("agreement_state", lambda s: s["status"] == "signing")
    assert state["fingerprint"] == ack["fingerprint"]
    fp, code = ack["fingerprint"], ack["code"]
    head = chain_head_in(state["text"])
    # A refused signature leaves no trace in the chain; the accepted ones do.
    ack = await Room.sign(r.mediator, fp, "张调解员")
    assert ack["error"] == "parties_not_signed", ack
    for client, name in ((r.a, "王五"), (r.b, "李四"), (r.mediator, "张调解员")):
        assert (await Room.sign(client, fp, name))["ok"]
    done = await wait_status(r.a, "signed")
    status, pdf, _ = await fetch_bytes(srv, f"/api/agreements/{code}/pdf", r.a_invite["token"])
    assert status == 200
    digest = hashlib.sha256(pdf).hexdigest()
    assert digest == done["pdf_sha256"]
    pdf_path = tmp_path / "agreement.pdf"
    pdf_path.write_bytes(pdf)

    # (a) The recording's chain names the PDF (the running recorder wrote it).
    def named() -> list[dict[str, Any]]:
        return [e for e in agreement_events(chain_entries(folder)) if e["kind"] == "agreement"]

    (event,) = await eventually(named, what="the agreement event in the chain")
    assert {k: v for k, v in event.items() if k != "at"} == {
        "kind": "agreement",
        "code": code,
        "sha256": digest,
        "fingerprint": done["fingerprint"],
    }
    entries = chain_entries(folder)
    # Every signing event went to the chain, in order; the last one names the PDF.
    events = agreement_events(entries)
    assert [e["kind"] for e in events] == [
        "agreement_signatures_requested",
        "agreement_signature",
        "agreement_signature",
        "agreement_signature",
        "agreement",
    ]
    assert events[0]["code"] == code and events[0]["fingerprint"] == fp
    assert [(e["name"], e["role"]) for e in events[1:4]] == [
        ("王五", "applicant"),
        ("李四", "respondent"),
        ("张调解员", "mediator"),
    ]
    assert {(e["fingerprint"], e["mark_sha256"], e["code"]) for e in events[1:4]} == {
        (fp, mark_sha256(), code)
    }
    # The head in the text is an entry written before signatures were asked for.
    by_hash = {e["hash"]: e for e in entries}
    assert head in by_hash, "the text's chain head is not in the recording's chain"
    requested = next(
        e["seq"]
        for e in entries
        if e["type"] == "event" and e["event"]["kind"] == "agreement_signatures_requested"
    )
    assert by_hash[head]["seq"] < requested
    assert by_hash[head]["time"] <= asked_at + 0.001  # chain times are rounded to 1 ms

    # The PDF: the agreement names the recording and that head; it embeds the chain as it
    # stood at sealing, which is the beginning of the recording's chain and holds the head.
    files = await attachments(pdf_path, tmp_path / "attachments")
    record = json.loads(files["agreement.json"])
    assert (record["agreement"]["recording_id"], record["agreement"]["chain_head"]) == (
        rid,
        head,
    )
    manifest = files["chain.jsonl"]
    assert record["manifest"]["sha256"] == hashlib.sha256(manifest).hexdigest()
    assert (folder / "chain.jsonl").read_bytes().startswith(manifest)
    assert head in {json.loads(line)["hash"] for line in manifest.splitlines()}
    text = "".join((await pdf_text(pdf_path)).split())
    assert f"本协议在调解录像{rid}中达成" in text and head[:16] in text

    # (b) Stopped, the recording verifies on its own: sealed, nothing out of place.
    await asyncio.gather(stop_recording(srv, r.room["id"]), stop_recording(srv, other_room["id"]))
    entries = chain_entries(folder)
    assert entries[-1]["type"] == "seal" and entries[-1]["reason"] == "stopped"
    recorder_key = keys / "recorder_ed25519.pub.pem"
    ca = keys / "ca.cert.pem"
    other = recordings / other_rid
    own, bound, foreign = await asyncio.gather(
        tiaojie_verify(folder, "--trust", recorder_key),
        # (c) the PDF and its recording verify against each other
        tiaojie_verify(pdf_path, "--trust", ca, "--recording", folder, "--json"),
        # (d) ... but not against another (real, sealed) recording
        tiaojie_verify(pdf_path, "--trust", ca, "--recording", other, "--json"),
    )
    assert own.returncode == 0, own.stdout + own.stderr
    assert "AUTHENTIC" in own.stdout
    assert bound.returncode == 0, bound.stdout + bound.stderr
    report = json.loads(bound.stdout)
    assert report["authentic"] is True and report["recording_id"] == rid
    seqs = {e["hash"]: e["seq"] for e in entries}
    assert report["recording"]["chain_head_seq"] == seqs[head]
    named_seq = next(e["seq"] for e in entries if e.get("event", {}).get("sha256") == digest)
    assert report["recording"]["agreement_entry_seq"] == named_seq
    assert foreign.returncode == 1, foreign.stdout + foreign.stderr
    problems = json.loads(foreign.stdout)["problems"]
    assert any("not the beginning of" in p["message"] for p in problems), problems
    assert any(f"not in {other_rid}" in p["message"] for p in problems), problems


async def test_agreement_sealed_after_the_recording_stopped(live_server, keys, tmp_path) -> None:
    """Signatures asked for while recording; the recording stops; then everyone signs. The
    sealed PDF embeds the sealed chain, and the server appends the agreement event with a
    new seal (an addendum): both still verify, each on its own and against each other."""
    srv = live_server
    r = await Room(srv).setup()
    rid = await start_recording(srv, r.room["id"])
    folder = srv.state.settings.data_dir / "recordings" / rid
    ready = await r.ready()
    fp, code = ready["fingerprint"], ready["code"]
    state = await r.a.wait_for("agreement_state", lambda s: s["status"] == "signing")
    head = chain_head_in(state["text"])
    await stop_recording(srv, r.room["id"])
    sealed = (folder / "chain.jsonl").read_bytes()
    entries = chain_entries(folder)
    assert entries[-1]["type"] == "seal" and entries[-1]["reason"] == "stopped"

    for client, name in ((r.a, "王五"), (r.b, "李四"), (r.mediator, "张调解员")):
        assert (await Room.sign(client, fp, name))["ok"]
    done = await wait_status(r.a, "signed")
    pdf_path = srv.state.settings.data_dir / "agreements" / code / "agreement.pdf"
    digest = hashlib.sha256(pdf_path.read_bytes()).hexdigest()
    assert digest == done["pdf_sha256"]

    # The chain: everything sealed before is untouched; then the event and a new seal.
    chain = (folder / "chain.jsonl").read_bytes()
    assert chain.startswith(sealed) and chain != sealed
    entries = chain_entries(folder)
    assert [e["type"] for e in entries[-3:]] == ["seal", "event", "seal"]
    event = entries[-2]["event"]
    assert {k: v for k, v in event.items() if k != "at"} == {
        "kind": "agreement",
        "code": code,
        "sha256": digest,
        "fingerprint": done["fingerprint"],
    }
    assert entries[-1]["reason"] == "addendum"
    # Signatures given after the stop are not in the chain (only the addendum is).
    assert [e["kind"] for e in agreement_events(entries)] == [
        "agreement_signatures_requested",
        "agreement",
    ]
    summary = json.loads((folder / "recording.json").read_text())
    assert summary["seal"]["hash"] == entries[-1]["hash"]

    # The PDF embeds the chain as it stood when sealed: the recording's sealed chain.
    files = await attachments(pdf_path, tmp_path / "attachments")
    assert files["chain.jsonl"] == sealed
    record = json.loads(files["agreement.json"])
    assert (record["agreement"]["recording_id"], record["agreement"]["chain_head"]) == (
        rid,
        head,
    )

    own, bound = await asyncio.gather(
        tiaojie_verify(folder, "--trust", keys / "recorder_ed25519.pub.pem"),
        tiaojie_verify(pdf_path, "--trust", keys / "ca.cert.pem", "--recording", folder, "--json"),
    )
    assert own.returncode == 0, own.stdout + own.stderr
    assert bound.returncode == 0, bound.stdout + bound.stderr
    report = json.loads(bound.stdout)
    assert report["recording"]["agreement_entry_seq"] == entries[-2]["seq"]
