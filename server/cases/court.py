"""The hand-off to the court (司法确认) as rules, paper and a ZIP: no database here.

- `terms`: which signed agreement is asked to be confirmed (the one named, else the last
  the case log seals), when it took effect (its sealing; with none, the case's closing as
  调解成功) and the deadline: 民事诉讼法 第二百零五条, the parties apply jointly within 30
  days of the agreement taking effect.
- `checklist`: the materials 法释〔2011〕5号 (人民调解协议司法确认程序的若干规定, 第四条)
  and the Civil Procedure Law ask for: the application, the agreement, each party's
  identity document, proof of the property rights the agreement concerns (where
  relevant), each party's address for service and telephone, and a power of attorney
  signed by a party who sends an agent; each present or still missing.
- `application_pdf`: the pre-filled application (申请书) with the checklist as its last
  page (PDF/A-3B, the agreement's font: tiaojie.signing.pdf).
- `bundle_zip`: the bundle in the layout of tiaojie.archive.court_bundle, its manifest
  signed as a dossier's is (the log's key, tiaojie.archive.dossier.manifest_statement).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import zipfile
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tiaojie.archive.caselog import events, log_bytes
from tiaojie.archive.chain import key_id
from tiaojie.archive.court_bundle import APPLICATION, FORMAT, report_name
from tiaojie.archive.dossier import (
    LOG,
    MANIFEST,
    SIGNATURE,
    attachment_name,
    key_name,
    manifest_statement,
)
from tiaojie.archive.dossier_evidence import agreement_name, recording_name
from tiaojie.archive.jsontext import utf8
from tiaojie.archive.keys import public_pem
from tiaojie.archive.localtime import shown
from tiaojie.server.cases.model import PARTY_LABELS, Case
from tiaojie.server.cases.states import DAY
from tiaojie.server.cases.summary import COURT_ANSWERS, LINE, _Writer
from tiaojie.server.errors import TiaojieError
from tiaojie.signing.pdf import FONT_FAMILY, cjk_document

#: 民事诉讼法: within 30 days of the agreement taking effect.
COURT_DAYS = 30
#: The court's answers, as the case page and the summary word them.
ANSWERS = COURT_ANSWERS
#: Dispute types whose agreements usually concern property rights (the proof is asked for
#: unless the mediator says otherwise).
PROPERTY_TYPES = frozenset({"housing_land", "land_requisition", "contract", "property_management"})


@dataclass(frozen=True)
class Terms:
    agreement_code: str | None
    agreement_sha256: str | None
    session_id: str | None
    effective_at: int
    deadline_at: int


def require_success(case: Case) -> None:
    """A 409 unless the case was closed as 调解成功."""
    if case.outcome != "success":
        raise TiaojieError(
            "case_not_succeeded",
            "Only a case closed as 调解成功 (outcome success) goes to a court for judicial "
            "confirmation. Nothing was changed.",
            409,
        )


def terms(case: Case, entries: list[dict[str, Any]], code: str | None = None) -> Terms:
    """The agreement asked to be confirmed and the 30-day deadline (module docstring);
    a 409 unless the case was closed as 调解成功, a 400 for an agreement it did not seal."""
    require_success(case)
    logged = events(entries)
    sealed = [e for e in logged if e.get("kind") == "agreement_sealed"]
    if code is not None:
        sealed = [e for e in sealed if e.get("agreement_code") == code]
        if not sealed:
            raise TiaojieError("bad_request", "This case sealed no agreement with that code.", 400)
    found: tuple[str | None, str | None, Any]
    if sealed:
        last = sealed[-1]
        effective = int(last["time"])
        found = (str(last["agreement_code"]), str(last.get("sha256")), last.get("session_id"))
    else:
        closed = [e for e in logged if e.get("kind") == "closed" and e.get("outcome") == "success"]
        effective = int(closed[-1]["time"]) if closed else case.updated_at
        found = (None, None, None)
    code_, sha256, session = found
    return Terms(code_, sha256, session, effective, effective + COURT_DAYS * DAY)


def recordings_of(entries: list[dict[str, Any]], session_id: str | None) -> list[str]:
    """The recordings sealed in the agreement's session (all of the case's without one)."""
    return [
        str(e["recording_id"])
        for e in events(entries)
        if e.get("kind") == "recording_sealed"
        and (session_id is None or e.get("session_id") == session_id)
    ]


def checklist(
    case: Case, application: dict[str, Any], agreement_present: bool
) -> list[dict[str, Any]]:
    """Each material the rules require: `{"item", "label", "present", "required"}`."""
    attached = {a.id for a in case.attachments}
    by_position = {p.get("position"): p for p in application.get("parties") or []}
    items: list[dict[str, Any]] = [
        {
            "item": "application",
            "label": "司法确认申请书（须由双方当事人签名或盖章）",
            "present": True,
        },
        {"item": "agreement", "label": "调解协议书（已签署）", "present": agreement_present},
    ]
    for position, party in enumerate(case.parties):
        given = by_position.get(position) or {}
        who = f"{PARTY_LABELS[party.role]} {party.name}"
        items.append(
            {
                "item": f"identity:{position}",
                "label": f"{who} 的身份证明",
                "present": given.get("id_document") in attached,
            }
        )
        items.append(
            {
                "item": f"address:{position}",
                "label": f"{who} 的送达地址和联系电话",
                "present": bool(given.get("address")) and bool(party.phone),
            }
        )
        agent = given.get("agent") or {}
        if agent.get("name"):
            items.append(
                {
                    "item": f"power_of_attorney:{position}",
                    "label": f"{who} 委托代理人 {agent['name']} 的授权委托书（委托人签名或盖章）",
                    "present": agent.get("power_of_attorney") in attached,
                }
            )
    relevant = application.get("property_relevant")
    if relevant is None:
        relevant = case.dispute_type in PROPERTY_TYPES
    if relevant:
        proofs = [a for a in application.get("property_proofs") or [] if a in attached]
        items.append(
            {
                "item": "property",
                "label": "与调解协议相关的财产权利证明",
                "present": bool(proofs),
            }
        )
    for item in items:
        item.setdefault("required", True)
    return items


def missing(items: list[dict[str, Any]]) -> list[str]:
    return [i["label"] for i in items if i["required"] and not i["present"]]


def default_request(case: Case, code: str | None, court: str) -> str:
    agreement = f"（协议编号 {code[:8]}）" if code else ""
    return (
        f"请求{court}依法确认申请人之间于{case.number}案中经人民调解达成的调解协议{agreement}有效。"
    )


def application_pdf(
    case: Case,
    application: dict[str, Any],
    found: Terms,
    items: list[dict[str, Any]],
    organisation_name: str,
    now: float,
    tz: tzinfo,
) -> bytes:
    """The application (申请书) pre-filled, then the checklist page."""

    def day(ts: float | None) -> str:
        return shown(ts, tz, "zh-CN")[:10] if ts is not None else "-"

    court = str(application.get("court") or "")
    pdf = cjk_document(
        title=f"司法确认申请书 {case.number}",
        lang="zh-CN",
        created=dt.datetime.fromtimestamp(now, dt.UTC),
        producer=f"Tiaojie ({organisation_name})",
        footer=f"{case.number} · 司法确认申请书 · 生成于 {day(now)}",
    )
    pdf.add_page()
    out = _Writer(pdf)
    pdf.set_font(FONT_FAMILY, size=20)
    pdf.cell(0, 12, "司法确认申请书", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=10)
    by_position = {p.get("position"): p for p in application.get("parties") or []}
    out.heading("申请人")
    for position, party in enumerate(case.parties):
        given = by_position.get(position) or {}
        facts = [f"{PARTY_LABELS[party.role]}：{party.name}"]
        if party.id_number:
            facts.append(f"身份证号码 {party.id_number}")
        facts.append(f"联系电话 {party.phone or '（待补）'}")
        facts.append(f"送达地址 {given.get('address') or '（待补）'}")
        agent = given.get("agent") or {}
        details = [f"委托代理人：{agent['name']}"] if agent.get("name") else []
        out.item("，".join(facts), details)
    out.heading("请求事项")
    out.paragraph(
        str(application.get("request") or default_request(case, found.agreement_code, court))
    )
    out.heading("事实和理由")
    out.paragraph(
        f"申请人之间的{case.dispute_type_name}纠纷，经{organisation_name}主持调解，"
        f"于{day(found.effective_at)}达成调解协议（案号 {case.number}"
        + (f"，协议编号 {found.agreement_code}" if found.agreement_code else "")
        + "）。该调解协议是双方当事人的真实意思表示，内容不违反法律、行政法规的强制性规定，"
        "不损害国家利益、社会公共利益和他人合法权益。申请人依照《中华人民共和国民事诉讼法》"
        "和《最高人民法院关于人民调解协议司法确认程序的若干规定》，在调解协议生效之日起三十日内"
        "共同申请司法确认。申请人保证提交的材料真实、合法，知悉虚假调解的法律后果。"
    )
    out.heading("纠纷简要情况")
    out.paragraph(case.description)
    out.row("调解协议生效", day(found.effective_at))
    out.row("申请期限", f"{day(found.deadline_at)} 前（生效之日起三十日内）")
    pdf.ln(4)
    out.paragraph(f"此致\n{court or '（受理法院）'}")
    pdf.ln(6)
    for party in case.parties:
        out.row(f"{PARTY_LABELS[party.role]}（签名或盖章）", "")
        pdf.ln(LINE)
    out.row("日期", "　　年　　月　　日")

    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=16)
    pdf.cell(0, 10, "申请材料清单", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=10)
    out.paragraph(
        "依照法释〔2011〕5号第四条：当事人申请司法确认，应当提交司法确认申请书、调解协议、"
        "身份证明、资格证明，以及与调解协议相关的财产权利证明等证明材料，并提供双方当事人的"
        "送达地址、电话号码等联系方式；委托他人代为申请的，应当提交由委托人签名或者盖章的"
        "授权委托书。"
    )
    out.heading("材料")
    for item in items:
        mark = "已备" if item["present"] else "尚缺"
        out.row(f"［{mark}］", item["label"])
    lacking = missing(items)
    out.heading("尚缺材料")
    out.paragraph("、".join(lacking) if lacking else "无")
    return bytes(pdf.output())


def _json(data: Any) -> bytes:
    return utf8(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)) + b"\n"


def _sha256(data: bytes | Path) -> str:
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with data.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_zip(
    case: Case,
    entries: list[dict[str, Any]],
    key: Ed25519PrivateKey,
    now: float,
    *,
    application_pdf_bytes: bytes,
    summary: dict[str, Any],
    files: dict[str, bytes | Path],
    out: BinaryIO,
) -> str:
    """Write the bundle into `out`; the sha256 of its manifest (the case log names it).
    `files`: the evidence (agreement, Chains, reports, attachments) by their names."""
    members: dict[str, bytes | Path] = {
        APPLICATION: application_pdf_bytes,
        LOG: log_bytes(entries),
        key_name(key.public_key()): public_pem(key.public_key()),
        **files,
    }
    manifest = {
        "format": FORMAT,
        "case_id": case.id,
        "case_number": case.number,
        "exported_at": round(now, 3),
        "log": {"entries": len(entries), "head": entries[-1]["hash"] if entries else None},
        "application": summary,
        "files": {name: _sha256(data) for name, data in members.items()},
    }
    raw = _json(manifest)
    signature = {
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest_statement(manifest))).decode(),
    }
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(MANIFEST, raw)
        archive.writestr(SIGNATURE, _json(signature))
        for name, data in members.items():
            stored = name.startswith("attachments/") or name.endswith(".pdf")
            compress = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            if isinstance(data, Path):
                archive.write(data, name, compress_type=compress)
            else:
                archive.writestr(name, data, compress_type=compress)
    return hashlib.sha256(raw).hexdigest()


__all__ = [
    "ANSWERS",
    "COURT_DAYS",
    "Terms",
    "agreement_name",
    "application_pdf",
    "attachment_name",
    "bundle_zip",
    "checklist",
    "missing",
    "recording_name",
    "recordings_of",
    "report_name",
    "terms",
]
