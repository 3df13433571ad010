"""一案一码: the public progress of a case, for whoever holds its code.

`progress` is `GET /api/progress/{code}`: the case number, the stage on a timeline, the
next step in plain words, the next session (none until sessions exist), the deadline, the
contact of the organisation holding the case, and the state of each agreement drafted in
its sessions (`agreement_progress`: drafted, being signed with how many of how many
signatures, being sealed, signed and sealed; never a signer's name, never the
agreement's code, whose /a/ page names the signers). It is built from an allow-list of
fields, so it never holds a name, a phone number, an ID number, the description, a
reason or a note. `page` is `/c/{code}`: the same, server-rendered in Chinese (or
English with `?lang=en`) without script, phone-first, with the QR code (`qr_svg`).
"""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime
from typing import Any

import segno

from tiaojie.archive.caselog import events
from tiaojie.server.agreements.state import AgreementState, AgreementStatus
from tiaojie.server.cases.model import Case
from tiaojie.server.cases.numbering import CST
from tiaojie.server.cases.sessions import Session
from tiaojie.server.cases.settings import OrganisationSettings
from tiaojie.server.cases.states import State, label

CODE_PATTERN = r"[A-Za-z0-9_-]{22}"

#: The public timeline, in order.
STAGES = ["reported", "accepted", "dispatched", "mediating", "concluded", "following_up", "closed"]
OUTCOME_STATES = {"success": State.SUCCEEDED, "failure": State.FAILED, "withdrawn": State.WITHDRAWN}
STAGE_OF: dict[State, int] = {
    State.REPORTED: 0,
    State.ACCEPTED: 1,
    State.DISPATCHED: 2,
    State.MEDIATING: 3,
    State.SUCCEEDED: 4,
    State.FAILED: 4,
    State.WITHDRAWN: 4,
    State.FOLLOWING_UP: 5,
    State.CLOSED: 6,
}

TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "案件进度",
        "case": "案号",
        "type": "纠纷类型",
        "state": "当前状态",
        "timeline": "办理进度",
        "next": "下一步",
        "session": "下次调解时间",
        "no_session": "尚未安排",
        "deadline": "办理期限",
        "no_deadline": "受理后确定",
        "overdue": "已超期",
        "organisation": "办理单位",
        "contact": "联系方式",
        "reported_at": "提交时间",
        "qr": "本案二维码：扫码查看进度",
        "privacy": "本页只显示案件进度，不显示当事人姓名、电话和身份证号。请妥善保管本页链接。",
        "not_found": "找不到该案件。请检查二维码或链接是否完整。",
        "other": "English",
        "other_lang": "en",
        "tz": "北京时间",
        "stage.reported": "已提交",
        "stage.accepted": "已受理",
        "stage.dispatched": "已分派",
        "stage.mediating": "调解中",
        "stage.concluded": "调解结束",
        "stage.following_up": "回访",
        "stage.closed": "已结案",
        "next.reported": "调解中心正在审核您反映的纠纷，受理后会安排调解组织。请保持电话畅通。",
        "next.accepted": "您的纠纷已受理，正在安排调解组织或调解员。",
        "next.dispatched": "已交给调解组织办理，调解员接手后会与您联系。",
        "next.mediating": "调解员正在办理，会与各方约定调解时间；时间确定后会在本页显示。",
        "next.succeeded": "调解成功。工作人员会回访，了解协议的履行情况。",
        "next.failed": "调解未能达成协议。您可以通过诉讼等其他途径解决；工作人员会回访。",
        "next.withdrawn": "申请已撤回。工作人员可能会回访。",
        "next.following_up": "工作人员正在回访，了解协议的履行情况。",
        "next.closed": "案件已办结，感谢您的配合。",
        "agreement": "调解协议",
        "agreement.drafted": "协议已起草，待各方确认",
        "agreement.signing": "签署中：已签 {signed}/{total}",
        "agreement.sealing": "各方已签署，正在加盖电子印章",
        "agreement.sealed": "已签署并盖章",
        "party.title": "您在本案中的身份：{role}",
        "party.sessions": "您的调解",
        "party.no_sessions": "尚未安排调解。",
        "party.scheduled": "已安排",
        "party.held": "进行中",
        "party.ended": "已结束",
        "party.join": "进入调解室",
        "party.agreements": "您的调解协议",
        "party.no_agreements": "还没有签署的调解协议。",
        "party.agreement": "下载已签署的调解协议（PDF）",
        "party.keep": "这是您本人的链接，可以进入调解室和下载协议：请勿转发。",
        "party.booking": "预约专家咨询（律师、法官、心理咨询师等）",
        "party.booking.hint": "可在线预约与专家单独视频交谈，调解员和对方当事人不参加。",
    },
    "en": {
        "title": "Case progress",
        "case": "Case number",
        "type": "Type of dispute",
        "state": "Status",
        "timeline": "Progress",
        "next": "Next step",
        "session": "Next mediation session",
        "no_session": "not scheduled yet",
        "deadline": "Deadline",
        "no_deadline": "set when the case is accepted",
        "overdue": "overdue",
        "organisation": "Handled by",
        "contact": "Contact",
        "reported_at": "Reported",
        "qr": "This case's QR code: scan it to see the progress",
        "privacy": "This page shows the progress only: no names, phone numbers or ID numbers. "
        "Keep its link safe.",
        "not_found": "No such case. Check that the QR code or link is complete.",
        "other": "中文",
        "other_lang": "zh-CN",
        "tz": "UTC+8",
        "stage.reported": "Reported",
        "stage.accepted": "Accepted",
        "stage.dispatched": "Dispatched",
        "stage.mediating": "In mediation",
        "stage.concluded": "Mediation ended",
        "stage.following_up": "Follow-up",
        "stage.closed": "Closed",
        "next.reported": "The mediation centre is reviewing your report and will assign it "
        "once accepted. Please keep your phone reachable.",
        "next.accepted": "Your dispute has been accepted; a mediation organisation or "
        "mediator is being assigned.",
        "next.dispatched": "A mediation organisation has the case; the mediator will contact "
        "you once they take it.",
        "next.mediating": "The mediator is working on it and will agree a session time with "
        "everyone; it will show here once set.",
        "next.succeeded": "The mediation succeeded. Staff will follow up on how the agreement "
        "is kept.",
        "next.failed": "No agreement was reached. You may take other routes such as a "
        "lawsuit; staff will follow up.",
        "next.withdrawn": "The application was withdrawn. Staff may follow up.",
        "next.following_up": "Staff are following up on how the agreement is kept.",
        "next.closed": "The case is closed. Thank you.",
        "agreement": "Mediation agreement",
        "agreement.drafted": "Drafted, to be confirmed by everyone",
        "agreement.signing": "Being signed: {signed} of {total} signatures",
        "agreement.sealing": "Signed by everyone, being sealed",
        "agreement.sealed": "Signed and sealed",
        "party.title": "You are the {role} in this case",
        "party.sessions": "Your mediation sessions",
        "party.no_sessions": "No session scheduled yet.",
        "party.scheduled": "scheduled",
        "party.held": "in progress",
        "party.ended": "ended",
        "party.join": "Enter the mediation room",
        "party.booking": "Book a private talk with an expert (lawyer, judge, counsellor …)",
        "party.booking.hint": "A private video talk with an expert; neither the mediator nor "
        "the other party takes part.",
        "party.agreements": "Your mediation agreement",
        "party.no_agreements": "No signed agreement yet.",
        "party.agreement": "Download the signed agreement (PDF)",
        "party.keep": "This is your own link: it opens the mediation room and the agreement. "
        "Do not forward it.",
    },
}


def lang_of(asked: str | None) -> str:
    """Chinese unless `?lang=en` asks for English (as the web client: zh-CN first)."""
    return "en" if asked and asked.lower().startswith("en") else "zh-CN"


#: The public name of each agreement status (server/agreements/state.py).
AGREEMENT_STATUS = {
    AgreementStatus.DRAFTING: "drafted",
    AgreementStatus.SIGNING: "signing",
    AgreementStatus.SEALING: "sealing",
    AgreementStatus.SIGNED: "sealed",
}


def agreement_progress(state: AgreementState, lang: str) -> dict[str, Any]:
    """What anyone with the code may know of one agreement: its status, how many of its
    signer lines are signed, and since when. No name and no agreement code (its /a/ page
    names the signers); the time is that of the status (sealed: the seal's)."""
    status = AGREEMENT_STATUS[state.status]
    signers = state.signers()
    signed = sum(1 for line in signers if line["signed_at"] is not None)
    at = {
        "sealed": state.sealed_at,
        "sealing": state.sealing_started_at,
    }.get(status) or state.updated_at
    return {
        "status": status,
        "label": TEXT[lang][f"agreement.{status}"].format(signed=signed, total=len(signers)),
        "signatures": {"signed": signed, "total": len(signers)},
        "at": int(at) if at else None,
    }


def progress(
    case: Case,
    entries: list[dict[str, Any]],
    organisation: OrganisationSettings,
    now: int,
    lang: str = "zh-CN",
    session: Session | None = None,
    agreements: list[AgreementState] | None = None,
) -> dict[str, Any]:
    """The public progress (module docstring): an allow-list, never personal data;
    `session` is the next session (server/cases/sessions.py `next_session`),
    `agreements` those of the case's sessions, in the sessions' order."""
    t = TEXT[lang]
    reached: dict[str, float] = {}
    for event in events(entries):
        stage = _stage_of(event)
        if stage is not None and isinstance(event.get("time"), int | float):
            reached[stage] = event["time"]
    current = STAGE_OF[case.state]
    outcome = OUTCOME_STATES.get(case.outcome or "")
    timeline = []
    for index, stage in enumerate(STAGES):
        text = t[f"stage.{stage}"]
        if stage == "concluded" and outcome is not None and current >= index:
            text = label(outcome, lang)
        timeline.append(
            {
                "stage": stage,
                "label": text,
                "done": index < current or case.state is State.CLOSED,
                "current": index == current,
                "at": int(reached[stage]) if stage in reached and index <= current else None,
            }
        )
    return {
        "code": case.code,
        "case_number": case.number,
        "state": str(case.state),
        "state_label": label(case.state, lang),
        "dispute_type": case.dispute_type_name,
        "timeline": timeline,
        "next_step": {"code": str(case.state), "text": t[f"next.{case.state}"]},
        "next_session": None if session is None else {"scheduled_at": session.scheduled_at},
        "deadline_at": case.deadline_at,
        "overdue": case.overdue(now),
        "organisation": {"name": organisation.name, "contact": organisation.contact},
        "agreements": [agreement_progress(a, lang) for a in agreements or []],
        "reported_at": case.created_at,
        "updated_at": case.updated_at,
        "lang": lang,
    }


def _stage_of(event: dict[str, Any]) -> str | None:
    """The stage of the timeline a logged event reaches."""
    kind, to = event.get("kind"), event.get("to")
    if kind == "closed":
        return "closed" if to == "closed" else "concluded"
    return {
        "reported": "reported",
        "accepted": "accepted",
        "returned": "accepted",
        "dispatched": "dispatched",
        "transferred": "dispatched",
        "taken": "mediating",
        "withdrawn": "concluded",
        "followed_up": "following_up",
    }.get(str(kind))


def qr_svg(url: str) -> bytes:
    """The case's QR code (its progress link) as SVG."""
    out = io.BytesIO()
    segno.make(url, error="m").save(
        out, kind="svg", scale=6, border=2, xmldecl=False, title="一案一码"
    )
    return out.getvalue()


def _when(ts: float | None, lang: str, with_time: bool = True) -> str:
    if ts is None:
        return ""
    moment = datetime.fromtimestamp(ts, UTC).astimezone(CST)
    if not with_time:
        return f"{moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d %H:%M} ({TEXT[lang]['tz']})"


def _page(lang: str, main: str, code: str, key: str | None = None) -> str:
    t = TEXT[lang]
    e = html.escape
    own = f"&key={e(key)}" if key else ""
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="referrer" content="no-referrer">
<meta name="theme-color" content="#1f4e79">
<title>{e(t["title"])}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/css/app.css">
</head>
<body class="status-page progress-page">
<header class="topbar"><div class="brand"><span class="brand-mark" aria-hidden="true">调</span>
<span class="brand-name">{e(t["title"])}</span></div>
<a class="lang-toggle" id="lang-toggle" href="/c/{e(code)}?lang={t["other_lang"]}{own}"
 lang="{t["other_lang"]}">{t["other"]}</a></header>
<main id="main"><section class="screen"><div class="card status-card">{main}</div>
</section></main>
</body>
</html>
"""


def page(public: dict[str, Any], key: str | None = None) -> str:
    """The page; `key`, a party's own key the page was opened with (kept by the language
    switch when it is one)."""
    lang = public["lang"]
    t = TEXT[lang]
    e = html.escape
    steps = []
    for step in public["timeline"]:
        status = "current" if step["current"] else "done" if step["done"] else "todo"
        when = f'<span class="step-when">{e(_when(step["at"], lang))}</span>' if step["at"] else ""
        steps.append(
            f'<li class="step step-{status}" data-stage="{e(step["stage"])}" '
            f'data-status="{status}"><span class="step-label">{e(step["label"])}</span>{when}</li>'
        )
    deadline = _when(public["deadline_at"], lang, with_time=False) or t["no_deadline"]
    late = f' <span class="badge overdue">{e(t["overdue"])}</span>' if public["overdue"] else ""
    organisation = public["organisation"]
    contact = organisation["contact"]
    coming = public["next_session"]
    session = _when(coming["scheduled_at"], lang) if coming else t["no_session"]
    main = (
        f'<h1 class="page-title">{e(t["title"])}</h1>\n<dl class="facts status-facts">\n'
        f'<div><dt>{e(t["case"])}</dt><dd id="progress-case-number">'
        f"{e(public['case_number'])}</dd></div>\n"
        f'<div><dt>{e(t["type"])}</dt><dd id="progress-type">{e(public["dispute_type"])}'
        "</dd></div>\n"
        f'<div><dt>{e(t["state"])}</dt><dd><span id="progress-state" class="badge state-'
        f'{e(public["state"])}" data-state="{e(public["state"])}">{e(public["state_label"])}'
        "</span></dd></div>\n</dl>\n"
        f'<h2>{e(t["next"])}</h2>\n<p id="progress-next" class="lead">'
        f"{e(public['next_step']['text'])}</p>\n"
        f'<h2>{e(t["timeline"])}</h2>\n<ol id="progress-timeline" class="timeline">'
        f"{''.join(steps)}</ol>\n"
        f'<dl class="facts status-facts">\n'
        f'<div><dt>{e(t["session"])}</dt><dd id="progress-session">{e(session)}</dd></div>\n'
        f'<div><dt>{e(t["deadline"])}</dt><dd id="progress-deadline">{e(deadline)}{late}'
        "</dd></div>\n"
        f'<div><dt>{e(t["organisation"])}</dt><dd id="progress-organisation">'
        f"{e(organisation['name'])}</dd></div>\n"
        + (
            f'<div><dt>{e(t["contact"])}</dt><dd id="progress-contact">{e(contact)}</dd></div>\n'
            if contact
            else ""
        )
        + _agreements(public.get("agreements") or [], lang)
        + f"<div><dt>{e(t['reported_at'])}</dt><dd>{e(_when(public['reported_at'], lang))}"
        "</dd></div>\n</dl>\n"
        f'<figure class="case-qr"><img id="progress-qr" src="/api/progress/{e(public["code"])}'
        f'/qr.svg" width="180" height="180" alt="{e(t["qr"])}"><figcaption>{e(t["qr"])}'
        "</figcaption></figure>\n"
        f'<p class="hint">{e(t["privacy"])}</p>'
    )
    if public.get("party"):
        booking = f"code={public['code']}&key={key or ''}&lang={lang}"
        main = (
            _party(public["party"], lang) + f'<section id="party-booking" class="party-view"><p>'
            f'<a class="btn primary big" id="party-booking-link" data-action="book" '
            f'href="/booking#{e(booking)}">{e(t["party.booking"])}</a></p>'
            f'<p class="hint">{e(t["party.booking.hint"])}</p></section>\n' + main
        )
        return _page(lang, main, public["code"], key)
    return _page(lang, main, public["code"])


def _agreements(agreements: list[dict[str, Any]], lang: str) -> str:
    """The agreements' states, one line each (nothing when none was drafted)."""
    e = html.escape
    rows = []
    for a in agreements:
        when = f' <span class="step-when">{e(_when(a["at"], lang))}</span>' if a["at"] else ""
        done = a["signatures"]
        rows.append(
            f'<div class="progress-agreement" data-status="{e(a["status"])}" '
            f'data-signed="{done["signed"]}" data-total="{done["total"]}">'
            f'<dt>{e(TEXT[lang]["agreement"])}</dt><dd><span class="badge agreement-'
            f'{e(a["status"])}">{e(a["label"])}</span>{when}</dd></div>\n'
        )
    return "".join(rows)


def _party(party: dict[str, Any], lang: str) -> str:
    """What a party's own link shows above the progress: their sessions' links and their
    signed agreements (never their name: the link may be seen over their shoulder)."""
    t = TEXT[lang]
    e = html.escape
    role = party["role_label"] if lang == "zh-CN" else party["role"]
    items = []
    for session in party["sessions"]:
        if session["ended_at"]:
            state, action = t["party.ended"], ""
        elif session["join_url"]:
            state = t["party.held"] if session["held_at"] else t["party.scheduled"]
            action = (
                f'<a class="btn primary" data-action="join" href="{e(session["join_url"])}">'
                f"{e(t['party.join'])}</a>"
            )
        else:
            state, action = t["party.ended"], ""
        items.append(
            f'<li class="party-session" data-session-id="{e(session["session_id"])}">'
            f'<span class="party-session-when">{e(_when(session["scheduled_at"], lang))}</span> '
            f'<span class="badge">{e(state)}</span> {action}</li>'
        )
    agreements = [
        f'<li class="party-agreement" data-code="{e(a["code"])}"><a class="btn" '
        f'data-action="download" href="{e(a["url"])}" download>{e(t["party.agreement"])}</a> '
        f'<span class="hint">sha256 {e(a["sha256"][:12])}…</span></li>'
        for a in party["agreements"]
    ]
    return (
        f'<section id="party-view" class="party-view" data-role="{e(party["role"])}">'
        f"<h2>{e(t['party.title'].format(role=role))}</h2>\n"
        f"<h3>{e(t['party.sessions'])}</h3>\n"
        + (
            f'<ul id="party-sessions" class="party-list">{"".join(items)}</ul>\n'
            if items
            else f'<p id="party-sessions" class="hint">{e(t["party.no_sessions"])}</p>\n'
        )
        + f"<h3>{e(t['party.agreements'])}</h3>\n"
        + (
            f'<ul id="party-agreements" class="party-list">{"".join(agreements)}</ul>\n'
            if agreements
            else f'<p id="party-agreements" class="hint">{e(t["party.no_agreements"])}</p>\n'
        )
        + f'<p class="hint">{e(t["party.keep"])}</p></section>\n'
    )


def not_found_page(lang: str, code: str) -> str:
    t = TEXT[lang]
    main = f'<h1 class="page-title">{html.escape(t["title"])}</h1>\n'
    main += f'<p id="progress-not-found" class="reason">{html.escape(t["not_found"])}</p>'
    return _page(lang, main, code if re.fullmatch(CODE_PATTERN, code) else "x")
