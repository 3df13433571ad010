"""The agreement's public status page, `/a/{code}` (the QR code on the signed PDF).

Server-rendered HTML in Chinese (default) or English, no script: the status, the case
number, who has signed and when (names and roles only, times in the installation's zone),
and the sha256 of the signed PDF.
Never the text, ID numbers or the room.
"""

from __future__ import annotations

import html
import re
from datetime import tzinfo
from typing import Any

from aiohttp import web

from tiaojie.archive.layout import AGREEMENT_CODE_PATTERN
from tiaojie.archive.localtime import shown
from tiaojie.server.web import NO_SCRIPT_POLICY

CODE_PATTERN = AGREEMENT_CODE_PATTERN


# -- the public status page ------------------------------------------------------------------
PAGE_TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "调解协议状态",
        "case": "案号",
        "status": "状态",
        "drafting": "起草中",
        "signing": "签署中",
        "sealing": "正在生成签章文件",
        "signed": "已签署生效",
        "signers": "签署情况",
        "signed_at": "已签署，{}",
        "pending": "尚未签署",
        "fingerprint": "已签署文件的指纹（SHA-256）",
        "sealed_at": "签章时间",
        "none": "尚无",
        "applicant": "申请人",
        "respondent": "被申请人",
        "mediator": "调解员",
        "note": "本页只显示协议的状态，不显示协议内容和个人信息。"
        "如需核对文件，请计算您收到的 PDF 文件的 SHA-256 并与上面的指纹比对。",
        "other": "English",
        "other_lang": "en",
        "not_found": "找不到该协议。请检查二维码或链接是否完整。",
    },
    "en": {
        "title": "Mediation agreement status",
        "case": "Case number",
        "status": "Status",
        "drafting": "being drafted",
        "signing": "being signed",
        "sealing": "the signed document is being produced",
        "signed": "signed and in force",
        "signers": "Signatures",
        "signed_at": "signed {}",
        "pending": "not signed yet",
        "fingerprint": "Fingerprint of the signed document (SHA-256)",
        "sealed_at": "Sealed",
        "none": "none yet",
        "applicant": "Applicant",
        "respondent": "Respondent",
        "mediator": "Mediator",
        "note": "This page shows only the status of the agreement, not its content or "
        "personal details. To check a copy, compute the SHA-256 of your PDF file and compare "
        "it with the fingerprint above.",
        "other": "中文",
        "other_lang": "zh-CN",
        "not_found": "No such agreement. Check that the QR code or link is complete.",
    },
}


def page_lang(request: web.Request) -> str:
    asked = request.query.get("lang", "")
    if asked.lower().startswith("en"):
        return "en"
    if asked.lower().startswith("zh"):
        return "zh-CN"
    first = request.headers.get("Accept-Language", "").split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "zh-CN"


def _when(ts: float | None, lang: str, tz: tzinfo) -> str:
    """A time in the installation's zone (--timezone), named: 北京时间 or UTC+08:00."""
    return shown(ts, tz, lang)


def html_response(body: str, status: int = 200) -> web.Response:
    return web.Response(
        body=body.encode("utf-8", "replace"),  # a lone surrogate (legacy state) as "?"
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": NO_SCRIPT_POLICY,
        },
    )


def _page(lang: str, title: str, main: str, code: str) -> str:
    t = PAGE_TEXT[lang]
    e = html.escape
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{e(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/css/app.css">
</head>
<body class="status-page">
<header class="topbar"><div class="brand"><span class="brand-mark" aria-hidden="true">调</span>
<span class="brand-name">{e(t["title"])}</span></div>
<a class="lang-toggle" id="lang-toggle" href="/a/{e(code)}?lang={t["other_lang"]}"
 lang="{t["other_lang"]}">{t["other"]}</a></header>
<main id="main"><section class="screen"><div class="card status-card">{main}</div>
</section></main>
</body>
</html>
"""


def status_page(lang: str, public: dict[str, Any], tz: tzinfo) -> str:
    t = PAGE_TEXT[lang]
    e = html.escape
    status = public["status"]
    rows = []
    for signer in public["signers"]:
        role = t.get(signer["role"], signer["role"])
        done = signer["signed_at"] is not None
        when = t["signed_at"].format(_when(signer["signed_at"], lang, tz)) if done else t["pending"]
        rows.append(
            f'<li class="signer" data-role="{e(signer["role"])}" '
            f'data-signed="{str(done).lower()}"><span class="signer-role">{e(role)}</span> '
            f'<span class="signer-name">{e(signer["name"])}</span> '
            f'<span class="signer-when">{e(when)}</span></li>'
        )
    fingerprint = public.get("pdf_sha256")
    sealed_at = _when(public.get("sealed_at"), lang, tz) or t["none"]
    main = (
        f'<h1 class="page-title">{e(t["title"])}</h1>\n<dl class="facts status-facts">\n'
        f'<div><dt>{e(t["case"])}</dt><dd id="status-case">{e(public.get("case_number", ""))}'
        "</dd></div>\n"
        f'<div><dt>{e(t["status"])}</dt><dd><span id="agreement-status" '
        f'class="badge status-{e(status)}" data-status="{e(status)}">'
        f"{e(t.get(status, status))}</span></dd></div>\n"
        f'<div><dt>{e(t["sealed_at"])}</dt><dd id="status-sealed-at">{e(sealed_at)}</dd></div>\n'
        f'<div><dt>{e(t["fingerprint"])}</dt><dd><code id="pdf-fingerprint" class="fingerprint">'
        f"{e(fingerprint or t['none'])}</code></dd></div>\n</dl>\n"
        f"<h2>{e(t['signers'])}</h2>\n"
        f'<ul id="status-signers" class="signer-list">{"".join(rows)}</ul>\n'
        f'<p class="hint">{e(t["note"])}</p>'
    )
    return _page(lang, t["title"], main, public["code"])


def not_found_page(lang: str, code: str) -> str:
    t = PAGE_TEXT[lang]
    main = f'<h1 class="page-title">{html.escape(t["title"])}</h1>\n'
    main += f'<p id="status-not-found" class="reason">{html.escape(t["not_found"])}</p>'
    safe = code if re.fullmatch(CODE_PATTERN, code) else "x"
    return _page(lang, t["title"], main, safe)
