"""The case's printable summary (案件摘要): the PDF a dossier carries beside case.json.

One PDF/A-3B document, in Chinese (the working language of the centre's files), from
the same font and page as the agreement (tiaojie.signing.pdf): the case number and the
QR code of its public progress (一案一码) at the top, then the case's facts, the parties
(with phones and ID numbers: a dossier is for staff), what happened, the attachments by
name and sha256, the history as the case log records it (each event's time, what was
done, by whom, and its reason or note), and the log's length and head. It is a reading
copy: the evidence is case.json and case-log.jsonl, and the summary is listed in the
signed manifest so `tiaojie verify` shows any change to it.
"""

from __future__ import annotations

import datetime as dt
from datetime import tzinfo
from typing import Any

from fpdf import FPDF

from tiaojie.archive.caselog import events
from tiaojie.archive.localtime import shown
from tiaojie.server.cases.model import PARTY_LABELS, SOURCE_LABELS, Case
from tiaojie.server.cases.states import State, label
from tiaojie.signing.pdf import FONT_FAMILY, MARGIN, cjk_document, draw_qr, wrap_cjk

TITLE = "调解案件摘要"
QR_SIZE = 32.0  # mm
LABEL_W = 28.0  # mm: the label column of the facts
LINE = 5.6  # mm per line
BODY = 10.0  # pt

RISK_LABELS = {"unassessed": "未评估", "low": "低", "medium": "中", "high": "高"}
OUTCOME_LABELS = {"success": "调解成功", "failure": "调解不成功", "withdrawn": "已撤回"}
EVENT_LABELS = {
    "reported": "登记",
    "accepted": "受理",
    "dispatched": "分派",
    "taken": "接单",
    "returned": "退回",
    "transferred": "转办",
    "withdrawn": "撤回",
    "followed_up": "回访",
    "attachment_added": "补充附件",
    "court_bundle_prepared": "准备司法确认申请",
    "court_answered": "法院答复",
}
COURT_ANSWERS = {"accepted": "已受理", "confirmed": "裁定确认有效", "refused": "不予受理或驳回申请"}
ACTOR_LABELS = {"admin": "管理员", "account": "工作人员", "resident": "群众"}


def _event_label(event: dict[str, Any]) -> str:
    if event.get("kind") == "closed":
        return "结案" if event.get("to") == str(State.CLOSED) else "调解结束"
    return EVENT_LABELS.get(str(event.get("kind")), str(event.get("kind")))


def _actor(event: dict[str, Any]) -> str:
    actor = event.get("actor")
    if not isinstance(actor, dict):
        return "-"
    kind = str(actor.get("kind"))
    who = ACTOR_LABELS.get(kind, kind)
    return who if kind in ("admin", "resident") else f"{who} {actor.get('id')}"


def _details(event: dict[str, Any], tz: tzinfo) -> str:
    """What an event changed and why, in words (never more than the log holds)."""
    parts = []
    if event.get("from") and event.get("to"):
        parts.append(f"{label(event['from'])} → {label(event['to'])}")
    if event.get("kind") == "reported":
        parts.append(f"案号 {event.get('number')}")
        count = len(event.get("attachments") or [])
        if count:
            parts.append(f"附件 {count} 个")
    if event.get("kind") == "attachment_added":
        parts.append(f"{event.get('media_type')}，sha256 {str(event.get('sha256'))[:16]}…")
    if event.get("deadline_at"):
        parts.append(f"办理期限 {shown(event['deadline_at'], tz, 'zh-CN')[:10]}")
    if event.get("organisation_id") and event.get("kind") in ("dispatched", "transferred"):
        parts.append(f"交由 {event['organisation_id']}")
    if event.get("mediator_id"):
        parts.append(f"调解员 {event['mediator_id']}")
    if event.get("returned_to"):
        parts.append(f"退回 {event['returned_to']}")
    if event.get("outcome"):
        parts.append(f"结果：{OUTCOME_LABELS.get(event['outcome'], event['outcome'])}")
    if event.get("reason"):
        parts.append(f"理由：{event['reason']}")
    if event.get("method") and event.get("performance"):
        parts.append(f"{event.get('date')} {event['method']}回访，协议{event['performance']}")
    if event.get("note"):
        parts.append(f"回访记录：{event['note']}")
    if event.get("court"):
        parts.append(f"法院：{event['court']}")
    if event.get("kind") == "court_answered":
        status = COURT_ANSWERS.get(str(event.get("status")), str(event.get("status")))
        parts.append(f"{status}，{event.get('document_number')}（{event.get('date')}）")
    return "；".join(parts)


class _Writer:
    """Lines on a page: headings, label + value rows and paragraphs, wrapped the Chinese way."""

    def __init__(self, pdf: FPDF) -> None:
        self.pdf = pdf
        self.width = pdf.w - 2 * MARGIN

    def heading(self, text: str) -> None:
        pdf = self.pdf
        if pdf.get_y() + 20 > pdf.h - MARGIN:
            pdf.add_page()
        pdf.ln(3)
        pdf.set_font(FONT_FAMILY, size=13)
        pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(160, 160, 160)
        pdf.line(MARGIN, pdf.get_y(), pdf.w - MARGIN, pdf.get_y())
        pdf.ln(1.5)
        pdf.set_font(FONT_FAMILY, size=BODY)

    def row(self, name: str, value: str, width: float | None = None) -> None:
        pdf = self.pdf
        lines = wrap_cjk(pdf, value or "-", (width or self.width) - LABEL_W) or ["-"]
        if pdf.get_y() + LINE * len(lines) > pdf.h - MARGIN:
            pdf.add_page()
        pdf.set_text_color(90, 90, 90)
        pdf.cell(LABEL_W, LINE, name)
        pdf.set_text_color(0, 0, 0)
        for line in lines:
            pdf.set_x(MARGIN + LABEL_W)
            pdf.cell(0, LINE, line, new_x="LMARGIN", new_y="NEXT")

    def paragraph(self, text: str, indent: float = 0.0) -> None:
        pdf = self.pdf
        for raw in (text or "-").split("\n"):
            for line in wrap_cjk(pdf, raw, self.width - indent) or [""]:
                pdf.set_x(MARGIN + indent)
                pdf.cell(0, LINE, line, new_x="LMARGIN", new_y="NEXT")

    def item(self, headline: str, details: list[str]) -> None:
        """A headline and its indented, smaller details, on one page together."""
        pdf = self.pdf
        if pdf.get_y() + LINE * (1 + len(details)) > pdf.h - MARGIN:
            pdf.add_page()
        pdf.set_font(FONT_FAMILY, size=BODY)
        self.paragraph(headline)
        pdf.set_font(FONT_FAMILY, size=BODY - 1.5)
        for line in details:
            self.paragraph(line, indent=6)
        pdf.set_font(FONT_FAMILY, size=BODY)


def summary_pdf(
    case: Case,
    entries: list[dict[str, Any]],
    progress_url: str,
    organisation_name: str,
    now: float,
    tz: tzinfo,
) -> bytes:
    """The summary of `case` (module docstring) as PDF bytes; times in `tz`."""

    def when(ts: float | None) -> str:
        return shown(ts, tz, "zh-CN") if ts is not None else "-"

    created = dt.datetime.fromtimestamp(now, dt.UTC)
    pdf = cjk_document(
        title=f"{TITLE} {case.number}",
        lang="zh-CN",
        created=created,
        producer=f"Tiaojie ({organisation_name})",
        footer=f"{case.number} · 案件日志 {case.log_seq} 条 · 导出于 {when(now)}",
    )
    pdf.add_page()
    out = _Writer(pdf)

    # The title and the case number beside the QR code of the public progress.
    top = pdf.get_y()
    qr_x = pdf.w - MARGIN - QR_SIZE
    draw_qr(pdf, progress_url, qr_x, top, QR_SIZE)
    pdf.set_font(FONT_FAMILY, size=7)
    pdf.set_xy(qr_x - 4, top + QR_SIZE)
    pdf.cell(QR_SIZE + 8, 4, "扫码查看案件进度", align="C")
    pdf.set_xy(MARGIN, top + 2)
    pdf.set_font(FONT_FAMILY, size=20)
    pdf.cell(qr_x - MARGIN - 4, 12, TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=13)
    pdf.cell(qr_x - MARGIN - 4, 9, case.number, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=BODY)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(qr_x - MARGIN - 4, LINE, organisation_name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_y(max(pdf.get_y(), top + QR_SIZE + 5))

    out.heading("案件信息")
    late = "（已超期）" if case.overdue(int(now)) else ""
    outcome = OUTCOME_LABELS.get(case.outcome or "", "-")
    for name, value in [
        ("案号", case.number),
        ("纠纷类型", case.dispute_type_name),
        ("来源", SOURCE_LABELS.get(case.source, str(case.source))),
        ("所在区域", " / ".join(str(node.get("name")) for node in case.region)),
        ("当前状态", label(case.state)),
        ("调解结果", outcome),
        ("风险等级", RISK_LABELS.get(str(case.risk_level), str(case.risk_level))),
        ("登记单位", case.organisation_id),
        ("办理单位", f"{organisation_name}（{case.holder_organisation_id}）"),
        ("调解员", case.mediator_id or "未指派"),
        ("登记时间", when(case.created_at)),
        ("受理时间", when(case.accepted_at)),
        ("办理期限", (when(case.deadline_at)[:10] if case.deadline_at else "-") + late),
        ("结案时间", when(case.closed_at)),
        ("进度查询", progress_url),
    ]:
        out.row(name, value)

    out.heading("当事人")
    for party in case.parties:
        facts = [party.name]
        if party.phone:
            facts.append(f"电话 {party.phone}")
        if party.id_number:
            facts.append(f"身份证号 {party.id_number}")
        out.row(PARTY_LABELS[party.role], "，".join(facts))
    if not case.parties:
        out.paragraph("无")

    out.heading("纠纷简要情况")
    out.paragraph(case.description)

    out.heading("附件")
    for item in case.attachments:
        out.item(
            f"{item.filename}（{item.media_type}，{item.size} 字节）", [f"sha256 {item.sha256}"]
        )
    if not case.attachments:
        out.paragraph("无")

    out.heading("办理过程")
    for event in events(entries):
        details = _details(event, tz)
        out.item(
            f"{when(event.get('time'))}  {_event_label(event)}  {_actor(event)}",
            [details] if details else [],
        )

    out.heading("案件日志")
    out.row("条数", str(len(entries)))
    out.item("链头（最后一条的哈希）", [entries[-1]["hash"] if entries else "-"])
    out.paragraph(
        "本摘要供阅读和打印。以卷宗中的案件记录（case.json）和案件日志（case-log.jsonl）为准；"
        "卷宗清单已签名，可用 tiaojie verify 离线核验本摘要及其他文件是否被改动。"
    )
    return bytes(pdf.output())
