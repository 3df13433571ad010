"""A case's dossier (卷宗): exported as a ZIP from a real server, verified offline by
`tiaojie verify dossier.zip`, which says what is authentic, and what was removed, changed
or added after the export: an attachment, a log entry, the case record, the manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from tests.support.case_staff import seed_case_staff
from tests.test_cases import PDF, form, jpeg, move, report, report_body
from tiaojie.archive.dossier import verify_dossier
from tiaojie.archive.keys import public_pem

TIAOJIE = [sys.executable, "-m", "tiaojie"]


@pytest.fixture
async def exported(live_server, tmp_path) -> dict:
    """A resident's report with a photo and a PDF, taken through to mediation, exported
    (SQLite: what is tampered with below is the ZIP, whichever database made it)."""
    return await export(live_server, tmp_path)


@pytest.fixture
async def exported_from_each_database(room_server, tmp_path) -> dict:
    """The same, exported from SQLite and from PostgreSQL."""
    return await export(room_server, tmp_path)


async def export(srv, tmp_path) -> dict:
    await seed_case_staff(srv)
    photo = jpeg()
    status, receipt = await report(
        srv, data=form(report_body(), ("现场.jpg", photo), ("a.pdf", PDF))
    )
    assert status == 201, receipt
    cid = receipt["case_id"]
    await move(srv, cid, "accept")
    await move(srv, cid, "dispatch", mediator_id="mediator-zhao")
    await move(srv, cid, "return", reason="回避：与当事人相识")
    status, data = await srv.admin("GET", f"/api/cases/{cid}/dossier")
    assert status == 200 and isinstance(data, bytes)
    path = tmp_path / "dossier.zip"
    path.write_bytes(data)
    key = srv.state.settings.data_dir / "keys" / "recorder_ed25519.pub.pem"
    return {
        "path": path,
        "key": key,
        "photo": hashlib.sha256(photo).hexdigest(),
        "pdf": hashlib.sha256(PDF).hexdigest(),
        "case_id": cid,
    }


def verify(path: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TIAOJIE, "verify", str(path), *(str(e) for e in extra)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def rewrite(source: Path, target: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def codes(report) -> list[str]:
    return [f.code.value for f in report.problems]


def test_an_exported_dossier_verifies(exported_from_each_database):
    exported = exported_from_each_database
    done = verify(exported["path"], "--trust", exported["key"], "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert answer["subject"] == "dossier" and answer["verdict"] == "authentic"
    assert answer["case_id"] == exported["case_id"] and answer["key_trusted"] is True
    assert answer["log_entries"] == 8 and answer["missing"] == answer["altered"] == []
    assert set(answer["authentic_files"]) >= {
        "case.json",
        "case-log.jsonl",
        f"attachments/{exported['photo']}",
        f"attachments/{exported['pdf']}",
    }
    # Without --trust: the keys inside it are used, and the report says so.
    done = verify(exported["path"])
    assert done.returncode == 0 and "untrusted-key" in done.stdout
    # Another key: nothing it holds is signed by it.
    other = exported["path"].parent / "other.pem"
    other.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    done = verify(exported["path"], "--trust", other)
    assert done.returncode == 1 and "signature-wrong-key" in done.stdout


def test_a_changed_attachment_is_named(exported, tmp_path):
    name = f"attachments/{exported['photo']}"

    def change(members: dict[str, bytes]) -> None:
        members[name] = members[name][:-10] + b"0123456789"

    done = verify(rewrite(exported["path"], tmp_path / "x.zip", change), "--trust", exported["key"])
    assert done.returncode == 1
    assert f"altered:\n    {name}" in done.stdout
    assert "dossier-file-altered" in done.stdout and "the log names" in done.stdout


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is not installed")
def test_the_dossier_carries_a_printable_summary_with_the_case_qr(exported, tmp_path):
    """summary.pdf: listed in the signed manifest, a PDF that poppler reads (pdfinfo,
    pdftotext), with the case number, the parties, the history, and a QR code that an
    independent decoder (zxing-cpp, on poppler's rendering of the page) reads as the
    case's progress link; changed after the export, `tiaojie verify` says so."""
    with zipfile.ZipFile(exported["path"]) as archive:
        pdf = archive.read("summary.pdf")
        manifest = json.loads(archive.read("manifest.json"))
        record = json.loads(archive.read("case.json"))["case"]
    assert manifest["files"]["summary.pdf"] == hashlib.sha256(pdf).hexdigest()
    path = tmp_path / "summary.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", "-meta", path], capture_output=True, text=True, timeout=30)
    assert info.returncode == 0, info.stderr
    assert "<pdfaid:part>3</pdfaid:part>" in info.stdout  # PDF/A-3, as the agreement
    assert f"调解案件摘要 {record['case_number']}</rdf:li>" in info.stdout  # its title
    text = subprocess.run(
        ["pdftotext", "-layout", path, "-"], capture_output=True, text=True, timeout=30
    ).stdout
    for expected in (
        "调解案件摘要",
        record["case_number"],
        "张秀兰",  # the applicant, with her phone: a dossier is for staff
        "13912345678",
        "楼上住户装修漏水",
        "受理",
        "退回",
        "回避：与当事人相识",
        "现场.jpg",
        exported["photo"],
        record["log"]["head"],
    ):
        assert expected in text, (expected, text)
    # The QR code, read back from the page as a phone would.
    subprocess.run(
        ["pdftoppm", "-r", "150", "-f", "1", "-l", "1", "-png", path, tmp_path / "page"],
        check=True,
        timeout=60,
    )
    page = Image.open(next(tmp_path.glob("page*.png")))
    found = [code.text for code in zxingcpp.read_barcodes(page)]
    assert found == [record["progress_url"]] and record["progress_url"].endswith(
        "/c/" + record["code"]
    )
    # Changed after the export: the manifest says so.
    changed = rewrite(
        exported["path"],
        tmp_path / "x.zip",
        lambda m: m.update({"summary.pdf": m["summary.pdf"] + b"% an incremental update\n"}),
    )
    done = verify(changed, "--trust", exported["key"])
    assert done.returncode == 1
    assert "altered:\n    summary.pdf (the printable summary (PDF))" in done.stdout
    assert "dossier-file-altered" in done.stdout


def test_the_report_in_chinese(exported, tmp_path):
    """`--lang zh`: every line of the text report in Chinese, the file names and codes as
    they are; the JSON is the same in every language."""
    done = verify(exported["path"], "--trust", exported["key"], "--lang", "zh")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("卷宗 ") and "案号" in lines[0]
    assert lines[1] == f"  案件日志：8 条，链头 {json.loads(_manifest(exported))['log']['head']}"
    assert "  真实完整：" in lines and "    case-log.jsonl (案件日志，8 条)" in lines
    assert "    case.json (案件记录)" in lines
    assert f"    attachments/{exported['photo']} (附件，image/jpeg，" in done.stdout
    assert lines[-1] == "结论：真实完整"
    assert "authentic" not in done.stdout and "Result" not in done.stdout
    name = f"attachments/{exported['photo']}"

    def change(members: dict[str, bytes]) -> None:
        members[name] = members[name][:-10] + b"0123456789"

    changed = rewrite(exported["path"], tmp_path / "x.zip", change)
    done = verify(changed, "--trust", exported["key"], "--lang", "zh")
    assert done.returncode == 1
    assert f"  被改动：\n    {name} (附件，image/jpeg，" in done.stdout
    assert f"  问题 [dossier-file-altered] 卷宗中的文件被改动（{name}：" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("结论：不真实或不完整（")
    english = verify(changed, "--trust", exported["key"], "--lang", "en", "--json")
    chinese = verify(changed, "--trust", exported["key"], "--lang", "zh", "--json")
    assert json.loads(english.stdout) == json.loads(chinese.stdout)


def _manifest(exported) -> bytes:
    with zipfile.ZipFile(exported["path"]) as archive:
        return archive.read("manifest.json")


def test_a_removed_attachment_is_missing(exported, tmp_path):
    name = f"attachments/{exported['pdf']}"
    report = verify_dossier(
        rewrite(exported["path"], tmp_path / "x.zip", lambda m: m.pop(name)), _key(exported)
    )
    assert not report.authentic and "dossier-file-missing" in codes(report)
    assert report.details()["missing"] == [name]


def test_an_edited_log_entry_fails_clearly(exported, tmp_path):
    def change(members: dict[str, bytes]) -> None:
        members["case-log.jsonl"] = members["case-log.jsonl"].replace(
            "回避：与当事人相识".encode(), "调解员拒绝".encode()
        )

    done = verify(
        rewrite(exported["path"], tmp_path / "x.zip", change), "--trust", exported["key"], "--json"
    )
    assert done.returncode == 1
    answer = json.loads(done.stdout)
    problem = answer["problems"][0]
    assert (problem["code"], problem["seq"], problem["file"]) == (
        "entry-hash-mismatch",
        6,
        "case-log.jsonl",
    )
    assert "case-log.jsonl" in answer["altered"]


def test_a_log_cut_short_no_longer_matches_the_signed_manifest(exported, tmp_path):
    def change(members: dict[str, bytes]) -> None:
        lines = members["case-log.jsonl"].splitlines(keepends=True)
        members["case-log.jsonl"] = b"".join(lines[:-2])  # the last change and its checkpoint

    report = verify_dossier(rewrite(exported["path"], tmp_path / "x.zip", change), _key(exported))
    assert codes(report) == ["dossier-log-mismatch"]
    assert "entries removed, added or edited" in report.problems[0].reason


def test_an_edited_case_record_fails(exported, tmp_path):
    def change(members: dict[str, bytes]) -> None:
        record = json.loads(members["case.json"])
        record["report"]["parties"][0]["phone"] = "13000000000"
        members["case.json"] = json.dumps(record).encode()

    report = verify_dossier(rewrite(exported["path"], tmp_path / "x.zip", change), _key(exported))
    assert "case-record-altered" in codes(report) and report.details()["altered"] == ["case.json"]


def test_a_forged_manifest_and_an_extra_file_are_caught(exported, tmp_path):
    name = f"attachments/{exported['photo']}"

    def change(members: dict[str, bytes]) -> None:
        manifest = json.loads(members["manifest.json"])
        members[name] = b"another photo"
        manifest["files"][name] = hashlib.sha256(b"another photo").hexdigest()
        members["manifest.json"] = json.dumps(manifest).encode()
        members["notes.txt"] = b"added later"

    report = verify_dossier(rewrite(exported["path"], tmp_path / "x.zip", change), _key(exported))
    found = codes(report)
    assert "dossier-manifest-signature" in found and "dossier-file-altered" in found
    assert "dossier-file-extra" in found and report.details()["unexpected"] == ["notes.txt"]


def test_what_is_not_a_dossier_cannot_be_verified(tmp_path):
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"PK but not really")
    done = verify(not_zip, "--json")
    assert done.returncode == 2 and json.loads(done.stdout)["verdict"] == "cannot_verify"
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("hello.txt", "hi")
    done = verify(empty)
    # neither a dossier nor a recording bundle: the dossier verifier says so (is_bundle)
    assert done.returncode == 2 and "not a case dossier" in done.stderr


def _key(exported):
    from tiaojie.archive.verify.trust import load_public_key

    return load_public_key(exported["key"])
