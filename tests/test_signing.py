"""Signed agreements end to end: independent checkers (pdfsig + NSS, qpdf, poppler) and
`tiaojie verify` agree that a signed agreement (each Signer, the OrganisationSeal, a
document timestamp) is authentic, and both fail a tampered one.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.test_signing_support import (
    STATUS_URL,
    http_tsa,
    make_recording,
    require_tool,
    sample_agreement,
    sample_marks,
)
from tiaojie.archive.layout import CHAIN_FILE
from tiaojie.archive.report import Problem
from tiaojie.signing.model import fingerprint
from tiaojie.signing.signer import Notary
from tiaojie.signing.tsa import TimeStampAuthority
from tiaojie.signing.validator import verify_agreement, verify_agreement_cli

RECORDING_ID = "rec_testsigning0000000000000000"


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    """A recording, an agreement reached in it, sealed at B-LTA with an HTTP TSA, filed."""
    root = tmp_path_factory.mktemp("signing")
    keys = root / "data" / "keys"
    recording = root / "recordings" / RECORDING_ID
    writer = make_recording(recording, RECORDING_ID)
    agreement = sample_agreement(recording_id=RECORDING_ID, chain_head=writer.head)
    marks = sample_marks(agreement)
    for mark in marks:  # what the server records as each signer consents
        writer.append(
            "event",
            event={
                "kind": "agreement_signature",
                "name": mark.name,
                "role": mark.role,
                "fingerprint": mark.fingerprint,
                "mark_sha256": hashlib.sha256(mark.mark_png).hexdigest(),
            },
        )
    manifest = (recording / CHAIN_FILE).read_bytes()
    notary = Notary(keys)
    tsa = TimeStampAuthority(notary.authority.tsa_key, notary.authority.tsa_cert)
    with http_tsa(tsa) as url:
        notary.tsa_url = url
        pdf = notary.sign_agreement(agreement, marks, STATUS_URL, manifest)
    notary.tsa_url = None  # that TSA is gone: later tests use the built-in one
    path = root / "agreement.pdf"
    path.write_bytes(pdf)
    writer.append(
        "event",
        event={
            "kind": "agreement",
            "sha256": hashlib.sha256(pdf).hexdigest(),
            "fingerprint": fingerprint(agreement),
            "case_number": agreement.case_number,
            "bytes": len(pdf),
        },
    )
    writer.close()
    return {
        "root": root,
        "keys": keys,
        "ca": keys / "ca.cert.pem",
        "pdf": path,
        "recording": recording,
        "agreement": agreement,
        "notary": notary,
        "manifest": manifest,
    }


@pytest.fixture(scope="module")
def nss_db(sealed):
    """An NSS database trusting the local CA, as an archivist would set one up."""
    require_tool("certutil")
    db = sealed["root"] / "nss"
    db.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    subprocess.run(
        [
            "certutil",
            "-A",
            "-d",
            f"sql:{db}",
            "-n",
            "tiaojie-local-ca",
            "-t",
            "CT,C,C",
            "-i",
            str(sealed["ca"]),
        ],
        check=True,
    )
    return db


def pdfsig(path: Path, db: Path) -> tuple[int, list[dict[str, str]]]:
    """pdfsig's verdict on every signature: field name, type, validation, certificate."""
    require_tool("pdfsig")
    run = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{db}", str(path)], capture_output=True, text=True, timeout=60
    )
    signatures = []
    for block in re.split(r"^Signature #\d+:", run.stdout, flags=re.M)[1:]:
        info = {"_raw": block}
        for line in block.splitlines():
            key, sep, value = line.strip().lstrip("- ").partition(": ")
            if sep:
                info[key] = value
        signatures.append(info)
    return run.returncode, signatures


def test_pdfsig_reports_every_signature_valid_and_trusted(sealed, nss_db):
    _, signatures = pdfsig(sealed["pdf"], nss_db)
    names = [s.get("Signature Field Name") for s in signatures]
    assert names == [
        "sig1_applicant",
        "sig2_respondent",
        "sig3_mediator",
        "seal",
        "archive_timestamp",
    ]
    for sig in signatures[:4]:
        assert sig["Signature Validation"] == "Signature is Valid.", sig
        assert sig["Certificate Validation"] == "Certificate is Trusted.", sig
        assert sig["Signature Type"] == "ETSI.CAdES.detached", sig
    assert signatures[0]["Signer Certificate Common Name"] == "张三"
    assert "title=applicant" in signatures[0]["Signer full Distinguished Name"]
    # The last is the PAdES document timestamp (ETSI.RFC3161): poppler does not verify
    # document timestamps itself; pyhanko does (next test). It must cover the whole file.
    assert "Total document signed" in signatures[4]["_raw"]


def test_pyhanko_validation_agrees(sealed):
    report = verify_agreement(sealed["pdf"], sealed["ca"], sealed["recording"])
    assert report.authentic, report.to_text()
    kinds = [(s.field_name, s.kind, s.ltv) for s in report.signatures]
    assert kinds == [
        ("sig1_applicant", "signer", "passed"),
        ("sig2_respondent", "signer", "passed"),
        ("sig3_mediator", "signer", "passed"),
        ("seal", "organisation seal", "passed"),
        ("archive_timestamp", "document timestamp", "passed"),
    ]
    assert all(s.intact and s.valid and s.trusted for s in report.signatures)
    assert report.signatures[-1].coverage == "entire file"
    assert report.fingerprint == fingerprint(sealed["agreement"])
    assert report.manifest["af_relationship"] == "Source"
    assert report.recording["agreement_entry_seq"] is not None


def test_qpdf_check_passes(sealed):
    require_tool("qpdf")
    run = subprocess.run(["qpdf", "--check", str(sealed["pdf"])], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No syntax or stream encoding errors" in run.stdout


def test_first_page_renders_the_chinese_title(sealed, tmp_path):
    require_tool("pdftoppm")
    require_tool("pdftotext")
    text = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", "-enc", "UTF-8", str(sealed["pdf"]), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "调解协议书" in text
    assert "（2025）社调字第0042号" in text
    subprocess.run(
        [
            "pdftoppm",
            "-f",
            "1",
            "-l",
            "1",
            "-r",
            "60",
            "-png",
            str(sealed["pdf"]),
            str(tmp_path / "p"),
        ],
        check=True,
    )
    (page,) = tmp_path.glob("p*.png")
    image = Image.open(page).convert("L")
    width, height = image.size
    title = image.crop((0, 0, width, height // 8))  # the title is drawn in the top band
    dark = sum(1 for v in title.tobytes() if v < 128)
    assert dark > 50, "the title renders blank (font not embedded?)"


def test_embedded_files_are_pdfa3_associated_files(sealed):
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(sealed["pdf"].read_bytes()), strict=False)
    files = {}
    for ref in reader.root["/AF"]:
        spec = ref.get_object()
        files[str(spec["/UF"])] = (
            spec["/EF"]["/F"].get_object().data,
            str(spec["/AFRelationship"]),
        )
    assert files[CHAIN_FILE] == (sealed["manifest"], "/Source")
    record = json.loads(files["agreement.json"][0])
    assert record["fingerprint"] == fingerprint(sealed["agreement"])
    assert [s["role"] for s in record["signers"]] == ["applicant", "respondent", "mediator"]
    metadata = reader.root["/Metadata"].get_object().data.decode()
    assert re.search(r'pdfaid:part(="|>)3', metadata), metadata
    assert re.search(r'pdfaid:conformance(="|>)B', metadata), metadata
    assert "tj:chainHead" in metadata  # the prefix the PDF/A extension schema declares
    assert RECORDING_ID in metadata and sealed["agreement"].chain_head in metadata


def test_one_changed_byte_fails_pdfsig_and_verify(sealed, nss_db, tmp_path):
    data = bytearray(sealed["pdf"].read_bytes())
    offset = data.index(b"/Type /Page") + 2  # inside the first (fpdf2) revision: every
    data[offset] ^= 0x01  # signature's signed byte range covers it
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(data))

    _, signatures = pdfsig(tampered, nss_db)
    verdicts = [s.get("Signature Validation") for s in signatures[:4]]
    assert verdicts and all(v != "Signature is Valid." for v in verdicts), verdicts

    report = verify_agreement(tampered, sealed["ca"])
    assert not report.authentic
    assert any("changed" in p.describe() for p in report.problems), report.to_text()
    assert any(p.code is Problem.SIGNED_BYTES_CHANGED for p in report.problems)
    assert verify_agreement_cli(tampered, sealed["ca"], None, as_json=True) == 1


def test_bytes_appended_after_the_seal_fail(sealed, tmp_path):
    tampered = tmp_path / "appended.pdf"
    tampered.write_bytes(sealed["pdf"].read_bytes() + b"\n% appended\n")
    report = verify_agreement(tampered, sealed["ca"])
    assert not report.authentic


def test_manifest_of_another_recording_fails(sealed, tmp_path):
    other = tmp_path / RECORDING_ID  # same id, different chain: a substituted recording
    make_recording(other, RECORDING_ID, fragments=7).close()
    report = verify_agreement(sealed["pdf"], sealed["ca"], other)
    assert not report.authentic
    assert any(p.code is Problem.MANIFEST_NOT_IN_CHAIN for p in report.problems)
    assert any("not the beginning of" in p.describe() for p in report.problems)
    assert verify_agreement_cli(sealed["pdf"], sealed["ca"], other, as_json=False) == 1


def test_recording_that_does_not_name_the_pdf_fails(sealed, tmp_path):
    copy = tmp_path / RECORDING_ID
    copy.mkdir()
    (copy / CHAIN_FILE).write_bytes(sealed["manifest"])  # the chain before the PDF was filed
    report = verify_agreement(sealed["pdf"], sealed["ca"], copy)
    assert not report.authentic
    assert any(p.code is Problem.AGREEMENT_EVENT_MISSING for p in report.problems)
    assert any("no `agreement` event naming this PDF" in p.describe() for p in report.problems)


def test_other_trust_root_fails(sealed, tmp_path):
    other = Notary(tmp_path / "other-keys")
    report = verify_agreement(sealed["pdf"], other.authority.ca_cert_path)
    assert not report.authentic
    assert not any(s.trusted for s in report.signatures)


def test_cli_exit_codes_and_json(sealed, tmp_path, capsys, monkeypatch):
    assert verify_agreement_cli(sealed["pdf"], sealed["ca"], sealed["recording"], True) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["authentic"] is True and out["problems"] == []
    assert len(out["signatures"]) == 5
    # default trust root: $TIAOJIE_DATA/keys/ca.cert.pem
    monkeypatch.setenv("TIAOJIE_DATA", str(sealed["keys"].parent))
    assert verify_agreement_cli(sealed["pdf"], None, None, False) == 0
    assert "AUTHENTIC" in capsys.readouterr().out
    monkeypatch.setenv("TIAOJIE_DATA", str(tmp_path / "nowhere"))
    assert verify_agreement_cli(sealed["pdf"], None, None, False) == 2
    assert verify_agreement_cli(tmp_path / "missing.pdf", sealed["ca"], None, False) == 2


def test_outdated_fingerprint_is_refused(sealed):
    agreement = sealed["agreement"]
    old = fingerprint(agreement)
    agreement_v2 = type(agreement).from_dict({**agreement.to_dict(), "terms": ["只有一条。"]})
    marks = sample_marks(agreement_v2)
    marks[1] = sample_marks(agreement_v2, old)[1]  # the respondent saw the earlier text
    with pytest.raises(ValueError, match="another version of the text"):
        sealed["notary"].sign_agreement(agreement_v2, marks, STATUS_URL, None)


def test_missing_signer_is_refused(sealed):
    agreement = sealed["agreement"]
    marks = sample_marks(agreement)[:-1]  # no mediator
    with pytest.raises(ValueError, match="has not signed"):
        sealed["notary"].sign_agreement(agreement, marks, STATUS_URL, None)


async def test_signing_in_a_thread_with_the_built_in_tsa(sealed, tmp_path):
    """As the server signs (in a worker thread), built-in TSA, English text, no recording."""
    notary = Notary(sealed["keys"])  # no tsa_url: the in-process TSA
    agreement = sample_agreement("en")
    marks = sample_marks(agreement)
    pdf = await asyncio.to_thread(notary.sign_agreement, agreement, marks, STATUS_URL, None)
    path = tmp_path / "en.pdf"
    path.write_bytes(pdf)
    report = await asyncio.to_thread(verify_agreement, path, sealed["ca"])
    assert report.authentic, report.to_text()
    pdftotext = require_tool("pdftotext")
    text = await asyncio.to_thread(subprocess.check_output, [pdftotext, str(path), "-"], text=True)
    assert "Mediation Agreement" in text


def test_b_t_only_is_not_b_lta(sealed, tmp_path):
    agreement = sample_agreement()
    pdf = sealed["notary"].sign_agreement(
        agreement, sample_marks(agreement), STATUS_URL, None, level="B-T"
    )
    path = tmp_path / "bt.pdf"
    path.write_bytes(pdf)
    report = verify_agreement(path, sealed["ca"])
    assert not report.authentic
    assert "there is no document timestamp (not PAdES B-LTA)" in [
        p.describe() for p in report.problems
    ]
    assert Problem.DOCUMENT_TIMESTAMP_MISSING in [p.code for p in report.problems]


def test_both_verifiers_write_one_json_shape(sealed, tmp_path, capsys):
    """`tiaojie verify --json` on a Recording and on an agreement PDF: the same envelope
    (subject, path, verdict, authentic, result, error, problems, warnings), findings with the
    same fields, and the same answer when the verifier cannot run."""
    from tiaojie.archive.verify.cli import verify_recording_cli

    def run(verify, *args):
        code = verify(*args, True)
        return code, json.loads(capsys.readouterr().out)

    appended = tmp_path / "appended.pdf"
    appended.write_bytes(sealed["pdf"].read_bytes() + b"\n% appended\n")
    # the recording has no Segment files and is not sealed: not authentic, with findings
    recording = run(verify_recording_cli, sealed["recording"], None, None)
    agreement = run(verify_agreement_cli, sealed["pdf"], sealed["ca"], sealed["recording"])
    tampered = run(verify_agreement_cli, appended, sealed["ca"], None)
    no_recording = run(verify_recording_cli, tmp_path / "nowhere", None, None)
    no_agreement = run(verify_agreement_cli, tmp_path / "nowhere.pdf", sealed["ca"], None)
    runs = (recording, agreement, tampered, no_recording, no_agreement)
    assert [code for code, _ in runs] == [1, 0, 1, 2, 2]

    shared = ["subject", "path", "verdict", "authentic", "result", "error", "problems", "warnings"]
    verdicts = {0: ("authentic", True), 1: ("not_authentic", False), 2: ("cannot_verify", None)}
    for code, data in runs:
        assert list(data)[: len(shared)] == shared
        assert (data["verdict"], data["authentic"]) == verdicts[code]
        assert (data["error"] is None) == (code != 2)
    assert recording[1]["subject"] == no_recording[1]["subject"] == "recording"
    assert agreement[1]["subject"] == no_agreement[1]["subject"] == "agreement"
    assert set(no_recording[1]) == set(no_agreement[1]) == set(shared)

    findings = [f for _, data in (recording, tampered) for f in data["problems"] + data["warnings"]]
    assert recording[1]["problems"] and recording[1]["warnings"] and tampered[1]["problems"]
    assert len({tuple(f) for f in findings}) == 1, findings
    assert {f["severity"] for f in recording[1]["warnings"]} == {"warning"}
    assert {f["severity"] for f in tampered[1]["problems"]} == {"problem"}
