"""The Dossier (卷宗): one case exported as a ZIP, its layout, and its offline verifier
(`tiaojie verify dossier.zip`).

Layout (FORMAT):

    manifest.json        what the dossier holds: the case, its log's length and head, and
                         the sha256 of every other file
    manifest.sig         {"key_id", "signature"}: Ed25519 over `manifest_statement`
    case.json            {"case": the case as staff see it, "report": what was reported}
    case-log.jsonl       the CaseLog (tiaojie.archive.caselog), as the Chain's lines
    summary.pdf          the printable summary (PDF/A, with the case QR code): a reading copy,
                         checked against the manifest like any file
    attachments/<sha256> each attachment the log names
    agreements/<code>.pdf, recordings/<id>/chain.jsonl (+ recording.json, segments/...)
                         the evidence of the case's sessions (tiaojie.archive.dossier_evidence)
    keys/<key_id>.pem    the public keys that signed (checked against --trust when given)

What is checked: the log (links, hashes, checkpoint signatures, a signed last entry);
that the manifest is signed and names this log's head and length (so a log cut short,
or a file swapped together with its manifest line, shows); that the report hashed into
the log's `reported` event is the one in case.json; every attachment the log names, by
its sha256; every file against the manifest. Each file ends up authentic, missing,
altered or unexpected, and the report says which.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tiaojie.archive.caselog import events, report_digest, verify_case_log
from tiaojie.archive.chain import canonical, key_id, parse_entries
from tiaojie.archive.dossier_evidence import check_evidence
from tiaojie.archive.report import (
    CannotVerify,
    Findings,
    Problem,
    VerificationReport,
    run_verification,
)
from tiaojie.archive.report_words import Words

FORMAT = "tiaojie-dossier/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CASE = "case.json"
LOG = "case-log.jsonl"
SUMMARY = "summary.pdf"
ATTACHMENTS = "attachments/"
KEYS = "keys/"
#: A member bigger than this is not read (a ZIP bomb is not a dossier).
MAX_MEMBER = 512 * 1024 * 1024


def manifest_statement(manifest: dict[str, Any]) -> bytes:
    """What manifest.sig signs (never mistaken for a Chain's signed statement)."""
    return canonical({"dossier": manifest})


def attachment_name(sha256: str) -> str:
    return f"{ATTACHMENTS}{sha256}"


def key_name(public_key: Ed25519PublicKey) -> str:
    return f"{KEYS}{key_id(public_key)}.pem"


#: What a file of the dossier is, as the text report words it (`file.<kind>` in
#: tiaojie.archive.report_words; the JSON `what` is the English wording).
FILE_KINDS = (
    "log",
    "log_entries",
    "case",
    "attachment",
    "summary",
    "agreement",
    "recording_chain",
    "recording_summary",
    "segment",
    "listed",
    "application",
    "recording_report",
    "unexpected",
    "other",
)


@dataclass
class FileStatus:
    file: str
    status: str  # authentic, missing, altered, unexpected
    kind: str = "other"  # one of FILE_KINDS
    facts: dict[str, Any] = field(default_factory=dict)  # the kind's details (size, ...)

    @property
    def what(self) -> str:
        """What the file is, in English (the JSON `what`)."""
        return Words("en")(f"file.{self.kind}", **self.facts)

    def describe(self, words: Words) -> str:
        return words(f"file.{self.kind}", **self.facts)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "status": self.status, "what": self.what}


@dataclass(kw_only=True)
class DossierReport(VerificationReport):
    subject: ClassVar[str] = "dossier"
    case_id: str | None = None
    case_number: str | None = None
    log_entries: int = 0
    log_head: str | None = None
    key_trusted: bool = False
    files: list[FileStatus] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "case_number": self.case_number,
            "log_entries": self.log_entries,
            "log_head": self.log_head,
            "key_trusted": self.key_trusted,
            "files": [f.to_dict() for f in self.files],
            "authentic_files": [f.file for f in self.files if f.status == "authentic"],
            "missing": [f.file for f in self.files if f.status == "missing"],
            "altered": [f.file for f in self.files if f.status == "altered"],
            "unexpected": [f.file for f in self.files if f.status == "unexpected"],
        }

    def to_text(self, words: Words | None = None) -> str:
        """The report for people, in the language of `words` (English by default)."""
        w = words or Words()
        lines = [
            w(
                "dossier",
                path=self.path,
                number=self.case_number or "?",
                case_id=self.case_id or "?",
            ),
            w("dossier_log", entries=self.log_entries, head=self.log_head or "-"),
        ]
        for status in ("authentic", "missing", "altered", "unexpected"):
            names = [f"{f.file} ({f.describe(w)})" for f in self.files if f.status == status]
            if names:
                lines.append(w(f"dossier_{status}"))
                lines += [f"    {name}" for name in names]
        for finding in self.problems:
            lines.append(w("dossier_problem", code=finding.code, text=w.finding(finding)))
        for finding in self.warnings:
            lines.append(w("dossier_warning", code=finding.code, text=w.finding(finding)))
        if self.problems:
            lines.append(w("dossier_bad", n=len(self.problems)))
        else:
            lines.append(w("dossier_ok"))
        return "\n".join(lines) + "\n"


def _read(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_MEMBER:
        raise CannotVerify(f"{name} is too large to be part of a dossier")
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, OSError, ValueError) as error:  # a damaged member
        raise CannotVerify(f"cannot read {name} from the dossier: {error}") from error


def _keys(archive: zipfile.ZipFile) -> list[Ed25519PublicKey]:
    keys = []
    for name in archive.namelist():
        if name.startswith(KEYS) and name.endswith(".pem"):
            try:
                key = load_pem_public_key(_read(archive, name) or b"")
            except ValueError:
                continue
            if isinstance(key, Ed25519PublicKey):
                keys.append(key)
    return keys


def verify_dossier(path: Path, trusted: Ed25519PublicKey | None = None) -> DossierReport:
    """Verify a dossier ZIP (module docstring); CannotVerify when it is not one."""
    if not path.is_file():
        raise CannotVerify(f"no such file: {path}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise CannotVerify(f"{path} is not a ZIP file: {error}") from error
    with archive:
        return verify_members(archive, path, trusted)


def verify_members(
    archive: zipfile.ZipFile,
    path: Path,
    trusted: Ed25519PublicKey | None,
    *,
    fmt: str = FORMAT,
    report: DossierReport | None = None,
    selective: bool = False,
) -> DossierReport:
    """The checks of a dossier (module docstring) on an open ZIP in the format `fmt`,
    into `report`. `selective` (a court bundle, tiaojie.archive.court_bundle): no case
    record; only the attachments, agreement and recordings the signed manifest's
    `application` names are expected."""
    found = Findings()
    raw_manifest = _read(archive, MANIFEST)
    if raw_manifest is None:
        raise CannotVerify(f"{path} is not a case dossier: it has no {MANIFEST}")
    try:
        manifest = json.loads(raw_manifest)
    except ValueError as error:
        raise CannotVerify(f"{MANIFEST} is not JSON: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        raise CannotVerify(f"{path} is not a case dossier in the format {fmt}")
    case_id = str(manifest.get("case_id", ""))
    report = report or DossierReport(path=str(path))
    report.case_id = case_id or None
    report.case_number = manifest.get("case_number")

    # -- the keys ---------------------------------------------------------------------------
    included = _keys(archive)
    if trusted is not None:
        keys, report.key_trusted = [trusted], True
    else:
        if not included:
            raise CannotVerify(
                f"no key to check signatures with: {path} holds none; pass --trust with "
                "the server's public key (DATA/keys/recorder_ed25519.pub.pem)"
            )
        keys = included
        found.warning(
            Problem.KEY_UNTRUSTED,
            "signatures were checked with the keys found in the dossier: they were not "
            "independently trusted; pass --trust with the server's public key",
        )
    by_id = {key_id(k): k for k in keys}

    # -- the manifest's signature ---------------------------------------------------------
    signed = False
    raw_signature = _read(archive, SIGNATURE)
    try:
        signature = json.loads(raw_signature) if raw_signature is not None else None
        if not isinstance(signature, dict):
            raise ValueError("not a signature")
        key = by_id.get(str(signature["key_id"]))
        if key is None:
            raise ValueError("signed by no trusted key")
        key.verify(base64.b64decode(signature["signature"]), manifest_statement(manifest))
        signed = True
    except (ValueError, KeyError, TypeError, InvalidSignature) as error:
        reason = "missing" if raw_signature is None else f"not valid ({error or 'forged'})"
        found.problem(
            Problem.DOSSIER_MANIFEST_SIGNATURE,
            f"the manifest's signature is {reason}: the list of files cannot be trusted",
            file=SIGNATURE,
        )

    listed: dict[str, str] = manifest.get("files") or {}
    if not isinstance(listed, dict):
        listed = {}
    statuses: dict[str, FileStatus] = {}

    def status(name: str, state: str, kind: str, **facts: Any) -> None:
        if name not in statuses or statuses[name].status == "authentic":
            statuses[name] = FileStatus(name, state, kind, facts)

    # -- the log --------------------------------------------------------------------------
    entries: list[dict[str, Any]] = []
    raw_log = _read(archive, LOG)
    if raw_log is None:
        found.problem(Problem.DOSSIER_FILE_MISSING, "the case log is missing", file=LOG)
        status(LOG, "missing", "log")
    else:
        entries, line_problems = parse_entries(raw_log)
        problems = line_problems + (
            verify_case_log(entries, case_id, keys) if not line_problems else []
        )
        for problem in problems:
            problem.file = LOG
            found.add(problem)
        log_info = manifest.get("log") or {}
        report.log_entries = len(entries)
        report.log_head = entries[-1].get("hash") if entries else None
        if signed and (
            log_info.get("entries") != len(entries) or log_info.get("head") != report.log_head
        ):
            found.problem(
                Problem.DOSSIER_LOG_MISMATCH,
                f"the signed manifest names a log of {log_info.get('entries')} entries "
                f"ending {log_info.get('head')}; this one has {len(entries)} ending "
                f"{report.log_head} (entries removed, added or edited)",
                file=LOG,
            )
            status(LOG, "altered", "log")
        elif problems:
            status(LOG, "altered", "log")
        else:
            status(LOG, "authentic", "log_entries", entries=len(entries))

    logged = events(entries)

    # -- the case record (a court bundle has none) -------------------------------------------
    raw_case = None if selective else _read(archive, CASE)
    if selective:
        pass  # the manifest says whether a case.json present was changed
    elif raw_case is None:
        found.problem(Problem.DOSSIER_FILE_MISSING, "the case record is missing", file=CASE)
        status(CASE, "missing", "case")
    else:
        try:
            record = json.loads(raw_case)
            reported = record["report"]
        except (ValueError, KeyError, TypeError):
            record, reported = None, None
        expected = next(
            (e.get("report_sha256") for e in logged if e.get("kind") == "reported"), None
        )
        if reported is None or expected is None or report_digest(reported) != expected:
            found.problem(
                Problem.CASE_RECORD_ALTERED,
                "the report in the case record is not the one the log's `reported` event "
                "names (edited)",
                file=CASE,
            )
            status(CASE, "altered", "case")
        else:
            status(CASE, "authentic", "case")

    # -- the attachments the log names (a court bundle's: by the manifest alone) ------------
    named: dict[str, dict[str, Any]] = {}
    application = manifest.get("application") if selective else None
    if not isinstance(application, dict):
        application = {}
    for event in [] if selective else logged:
        items = event.get("attachments") if event.get("kind") == "reported" else [event]
        if event.get("kind") not in ("reported", "attachment_added"):
            continue
        for item in items or []:
            if isinstance(item, dict) and isinstance(item.get("sha256"), str):
                named[item["sha256"]] = item
    for sha256, item in named.items():
        name = attachment_name(sha256)
        data = _read(archive, name)
        facts = {"media_type": item.get("media_type", "?"), "size": item.get("size", "?")}
        if data is None:
            found.problem(
                Problem.DOSSIER_FILE_MISSING, "an attachment the log names is missing", file=name
            )
            status(name, "missing", "attachment", **facts)
        elif hashlib.sha256(data).hexdigest() != sha256:
            found.problem(
                Problem.DOSSIER_FILE_ALTERED,
                "its sha256 is not the one the log names (changed)",
                file=name,
            )
            status(name, "altered", "attachment", **facts)
        else:
            status(name, "authentic", "attachment", **facts)

    # -- the evidence of the sessions: agreements' PDFs, recordings' Chains (by the log) ---
    wanted: dict[str, Any] = {}
    if selective:
        code = application.get("agreement_code")
        wanted = {
            "codes": {code} if isinstance(code, str) else set(),
            "recordings": {str(r) for r in application.get("recording_ids") or []},
        }
    read = lambda n: _read(archive, n)  # noqa: E731
    for item in check_evidence(read, archive.namelist(), logged, keys, **wanted):
        if item.problem is not None:
            found.problem(item.problem, item.reason, file=item.file)
        status(item.file, item.status, item.kind, **item.facts)

    # -- every file against the manifest ----------------------------------------------------
    present = set(archive.namelist()) - {MANIFEST, SIGNATURE}
    for name, sha256 in listed.items():
        data = _read(archive, name) if name in present else None
        if data is None:
            if name not in statuses:
                found.problem(
                    Problem.DOSSIER_FILE_MISSING, "a file the manifest lists is missing", file=name
                )
                status(name, "missing", "summary" if name == SUMMARY else "listed")
        elif hashlib.sha256(data).hexdigest() != sha256:
            if statuses.get(name, FileStatus(name, "authentic")).status == "authentic":
                found.problem(
                    Problem.DOSSIER_FILE_ALTERED,
                    "its sha256 is not the one the manifest lists (changed)",
                    file=name,
                )
            if name in statuses:
                status(name, "altered", statuses[name].kind, **statuses[name].facts)
            else:
                status(name, "altered", "summary" if name == SUMMARY else "other")
        elif name not in statuses:
            status(name, "authentic", "summary" if name == SUMMARY else "listed")
    for name in sorted(present - set(listed) - set(statuses)):
        if name.endswith("/"):
            continue
        if name.startswith(KEYS):
            continue  # the keys are what --trust is compared with, not evidence
        found.problem(
            Problem.DOSSIER_FILE_EXTRA, "a file neither the log nor the manifest names", file=name
        )
        status(name, "unexpected", "unexpected")

    report.files = sorted(statuses.values(), key=lambda f: f.file)
    report.findings = found.items
    return report


def verify_dossier_cli(
    path: Path, trust: Path | None, as_json: bool, words: Words | None = None
) -> int:
    """`tiaojie verify DOSSIER.zip`: the report (text in the language of `words`), and
    the exit code of its verdict."""
    from tiaojie.archive.verify.trust import load_public_key

    def verify() -> DossierReport:
        key = load_public_key(trust) if trust is not None else None
        return verify_dossier(path, key)

    return run_verification(DossierReport.subject, path, verify, as_json, words)
