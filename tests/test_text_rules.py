"""The text rules at the edge and behind it, without a server.

The schema machinery (server/validation.py) checks every string of every payload once
with the text rules of signing/text.py, which the agreement model uses too; reserved
names (server/names.py); and whatever slips through cannot stop the evidence: the Chain
and the summary take any string (archive/jsontext.py), the recorder answers every room
event, and its supervisor never gives up on a recorder that keeps crashing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tiaojie.archive.chain import ChainWriter, canonical, read_entries, verify_entries
from tiaojie.archive.layout import load_summary, new_recording_id, save_summary
from tiaojie.recorder.session import Recorder
from tiaojie.server.errors import TiaojieError
from tiaojie.server.names import check_name
from tiaojie.server.recordings.notes import MAX_DELIVERIES, Delivery
from tiaojie.server.recordings.process import (
    MAX_RESTART_DELAY_S,
    MAX_RESTARTS_PER_MINUTE,
    RESTART_DELAY_S,
    RecorderProcess,
)
from tiaojie.server.roles import Role
from tiaojie.server.schemas import CONNECT_AUTH, CREATE_ROOM, EVENTS, NAME
from tiaojie.server.validation import validate
from tiaojie.signing.model import Agreement

#: Texts no field may hold, and the character the refusal names.
HOSTILE = [
    ("x\udc80", "U+DC80"),
    ("\ud800", "U+D800"),
    ("evil\u202etxt.exe", "U+202E"),
    ("\u2066ltr\u2069", "U+2066"),
    ("a\u200fb", "U+200F"),
    ("a\u061cb", "U+061C"),
    ("a\x00b", "U+0000"),
    ("bell\x07", "U+0007"),
    ("csi\x9b", "U+009B"),
    ("zero\u200bwidth", "U+200B"),
    ("zw\u200dj", "U+200D"),
    ("\ufeffbom", "U+FEFF"),
    ("word\u2060joiner", "U+2060"),
    ("line\u2028sep", "U+2028"),
]


# -- the edge: every string of every schema --------------------------------------------------
@pytest.mark.parametrize(("text", "code"), HOSTILE)
def test_a_name_with_hostile_characters_is_refused_naming_them(text: str, code: str) -> None:
    with pytest.raises(TiaojieError) as refused:
        validate(NAME, text, "name")
    assert refused.value.code == "bad_request"
    assert refused.value.status == 400
    assert code in refused.value.message and "name" in refused.value.message


@pytest.mark.parametrize(("text", "code"), HOSTILE)
def test_titles_ids_and_tokens_are_checked_too(text: str, code: str) -> None:
    for schema, value in (
        (CREATE_ROOM, {"title": text}),
        (CONNECT_AUTH, {"token": f"tj1.{text}"}),  # no format: checked as it is
        (EVENTS["admit"], {"participant_id": f"{text}abcdefgh"}),  # before its pattern
        (EVENTS["agreement_draft"], {"case_number": "x", "facts": f"ok\n{text}"}),
    ):
        with pytest.raises(TiaojieError) as refused:
            validate(schema, value)
        assert code in refused.value.message


@pytest.mark.parametrize("bad", ["x\udc80", "a\x00b", "\x1b[2J", "\x85"])
def test_sdp_keeps_its_line_breaks_but_nothing_that_is_not_text(bad: str) -> None:
    sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    schema = EVENTS["subscriber_answer"]
    assert validate(schema, {"sdp": sdp, "type": "answer"})["sdp"] == sdp
    with pytest.raises(TiaojieError):
        validate(schema, {"sdp": sdp + f"a={bad}\r\n", "type": "answer"})


def test_text_is_normalised_before_its_length_counts() -> None:
    assert validate(NAME, "  Zoe\u0308 ") == "Zo\u00eb"  # NFC, stripped
    assert validate(NAME, "x" * 63 + "e\u0301") == "x" * 63 + "\u00e9"  # 65 -> 64 characters
    with pytest.raises(TiaojieError):
        validate(NAME, "   ")  # nothing left
    with pytest.raises(TiaojieError):
        validate(NAME, "two\nlines")
    with pytest.raises(TiaojieError):
        validate(NAME, 42)
    draft = validate(
        EVENTS["agreement_draft"],
        {"case_number": " A1 ", "facts": "line one  \r\nline\ttwo\n\n", "terms": ["a\r\nb"]},
    )
    assert draft["case_number"] == "A1"
    assert draft["facts"] == "line one\nline    two"
    assert draft["terms"] == ["a\nb"]


@pytest.mark.parametrize(
    "fields",
    [
        {"case_number": "（2025）京0105民调123号", "facts": "甲\r\n乙  \n\n", "mediator": " 张 "},
        {"case_number": "e\u0301", "parties": [{"name": "A\u030a", "role": "applicant"}]},
        {"case_number": "x", "terms": ["one\ttab", "  two  "], "place": "\u3000北京\u3000"},
        {"case_number": "x", "facts": "bidi \u202e inside"},
        {"case_number": "x", "mediator": "zero\u200bwidth"},
        {"case_number": "x\udc80"},
        {"case_number": "x", "experts": ["ok", "bad\x00"]},
        {"case_number": "x", "date": "two\nlines"},
        {"case_number": "   "},
    ],
)
def test_the_edge_and_the_agreement_model_agree(fields: dict) -> None:
    """What the socket.io edge accepts, the model accepts, in the same normal form."""
    try:
        edge = validate(EVENTS["agreement_draft"], fields)
    except TiaojieError:
        edge = None
    try:
        model = Agreement.from_dict(fields).to_dict()
    except ValueError:
        model = None
    assert (edge is None) == (model is None), (edge, model)
    if edge is not None and model is not None:
        again = Agreement.from_dict(edge).to_dict()  # the model changes nothing more
        assert again == model


# -- reserved names ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ("录制 Recorder", Role.RECORDER),
        ("Recorder", Role.RECORDER),
        ("调解员", Role.MEDIATOR),
        ("Mediator", Role.MEDIATOR),
        ("ＭＥＤＩＡＴＯＲ", Role.MEDIATOR),
        ("  mediator: ", Role.MEDIATOR),
        ("张三（调解员）", Role.MEDIATOR),
        ("当事人", Role.PARTY),
        ("Expert Wang", Role.EXPERT),
        ("旁听", Role.OBSERVER),
        ("系统", None),
        ("SYSTEM", None),
        ("Admin", None),
    ],
)
def test_reserved_labels_are_refused_for_every_other_role(name: str, owner: Role | None) -> None:
    for role in Role:
        if role is owner:
            check_name(name, role)
            continue
        with pytest.raises(TiaojieError) as refused:
            check_name(name, role)
        assert refused.value.code == "name_reserved"


def test_ordinary_names_are_anyones() -> None:
    for name in ("张三", "李四（本人）", "Zoë", "旁听者", "Media Tor Li", "Partyka"):
        for role in Role:
            check_name(name, role)


# -- the archive takes any string -----------------------------------------------------------
def test_the_chain_takes_any_string_and_verifies(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    recording = new_recording_id()
    chain = ChainWriter(tmp_path, recording, key)
    names = ["x\udc80", "\ud800", "\ud83d\ude00", "\\udc80", "王五", "a\x00b\u202e"]
    for name in names:
        chain.append("event", event={"kind": "joined", "name": name})
    chain.append("seal", reason="stopped")
    chain.close()
    entries, problems = read_entries(tmp_path / "chain.jsonl")
    assert problems == []
    assert verify_entries(entries, recording, key.public_key()) == []
    read = [e["event"]["name"] for e in entries if e["type"] == "event"]
    assert read == ["x\udc80", "\ud800", "\U0001f600", "\\udc80", "王五", "a\x00b\u202e"]
    assert b"x\\udc80" in (tmp_path / "chain.jsonl").read_bytes()
    # valid text is hashed exactly as before: UTF-8, unescaped
    event = {"kind": "joined", "name": "王五 Zoë"}
    plain = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical(event) == plain.encode()


def test_the_summary_takes_any_string(tmp_path: Path) -> None:
    save_summary(tmp_path, {"participants": {"p": {"name": "x\udc80"}}})
    assert load_summary(tmp_path) == {"participants": {"p": {"name": "x\udc80"}}}


async def test_the_recorder_answers_every_room_event(tmp_path: Path) -> None:
    """A room event with a name UTF-8 cannot encode is chained, not fatal."""
    key = Ed25519PrivateKey.generate()
    recording = new_recording_id()
    recorder = Recorder("http://127.0.0.1:9/join#token=x", tmp_path, recording, key)
    try:
        answer = await recorder._on_record_event(
            {"kind": "joined", "participant_id": "p1", "name": "x\udc80", "role": "party"}
        )
        assert answer["ok"] is True
        await recorder._on_participant({"participant": {"id": "p2", "name": "\udfff"}})
        recorder._checkpoint()
    finally:
        recorder.chain.close()
    entries, problems = read_entries(tmp_path / "chain.jsonl")
    assert problems == [] and verify_entries(entries, recording, key.public_key()) == []
    assert entries[-2]["event"]["name"] == "x\udc80"
    summary = load_summary(tmp_path)
    assert summary is not None
    assert summary["participants"]["p2"]["name"] == "\udfff"


async def test_a_broken_summary_does_not_stop_the_recorder(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    recording = new_recording_id()
    ChainWriter(tmp_path, recording, key).close()
    (tmp_path / "chain.jsonl").write_text("")
    (tmp_path / "recording.json").write_text("[1, 2, 3]")  # JSON, but not a summary
    recorder = Recorder(
        "http://127.0.0.1:9/join#token=x", tmp_path, recording, key, previous_exit="why"
    )
    recorder.chain.close()
    summary = load_summary(tmp_path)
    assert summary is not None and summary["recording_id"] == recording


# -- the supervisor ----------------------------------------------------------------------------
def test_a_recorder_that_keeps_crashing_is_restarted_ever_more_slowly_never_given_up() -> None:
    proc = RecorderProcess("room", new_recording_id(), Path("/nonexistent"), "token")
    delays = [proc.crashed() for _ in range(MAX_RESTARTS_PER_MINUTE + 10)]
    assert delays[:MAX_RESTARTS_PER_MINUTE] == [RESTART_DELAY_S] * MAX_RESTARTS_PER_MINUTE
    slower = delays[MAX_RESTARTS_PER_MINUTE:]
    assert all(isinstance(d, float) and d > RESTART_DELAY_S for d in slower)
    assert slower == sorted(slower) and slower[-1] == MAX_RESTART_DELAY_S
    assert proc.backing_off


def test_an_event_the_recorder_keeps_failing_on_is_replaced_by_a_note() -> None:
    proc = RecorderProcess("room", new_recording_id(), Path("/nonexistent"), "token")
    proc.last_exit = "exit code 1: UnicodeEncodeError: ..."
    poison = {"kind": "joined", "at": 1.0, "participant_id": "p1", "name": "x"}
    proc.pending = [poison, {"kind": "left", "at": 2.0}]
    for _ in range(MAX_DELIVERIES - 1):
        Delivery.failed(proc)
    assert proc.pending[0] is poison  # a recorder that restarts once gets it again
    Delivery.failed(proc)
    note = proc.pending[0]
    assert note["kind"] == "event_not_recorded" and note["event_kind"] == "joined"
    assert note["participant_id"] == "p1" and note["at"] == 1.0
    assert "UnicodeEncodeError" in note["reason"] and "name" not in note
    assert proc.pending[1]["kind"] == "left"
