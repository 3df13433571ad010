"""The agreement PDF: PDF/A-3B with fpdf2, a system CJK font, marks, QR code, manifest.

`build_agreement_pdf()` lays out the canonical text (exactly what was signed), each
signer's handwritten mark with their name, role and time, the recording reference and
the text's fingerprint, and a QR code to the agreement's public status page. It embeds,
as PDF/A-3 associated files with AFRelationship Source:

* the recording manifest (`chain.jsonl` or whatever name is given): the recording's
  hash chain as it stood when the agreement was signed;
* `agreement.json`: the agreement's fields, its canonical text and fingerprint, and each
  signer's name, role, time, fingerprint and the sha256 of their mark (see
  `AGREEMENT_FILE`): what the verifier recomputes the text and fingerprint from.

The font (Noto Sans CJK SC from Debian's fonts-noto-cjk; WenQuanYi as a fallback; or
the file in $TIAOJIE_PDF_FONT) is parsed once per process: each document shares the
parsed metrics and gets its own cheap handle for subsetting (fpdf2's subsetter edits
the font it is given). The result has no signature fields: `signing.signer` adds them.

`cjk_document`, `wrap_cjk` and `draw_qr` are the parts other printable documents share
(a case dossier's summary, server/cases/summary.py): the same font, page and QR code.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import io
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import segno
from fontTools.ttLib import TTCollection, TTFont  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.enums import WrapMode
from fpdf.fonts import SubsetMap, TTFFont

from tiaojie.archive.layout import CHAIN_FILE
from tiaojie.archive.localtime import shown, zone
from tiaojie.signing.model import (
    FINGERPRINT_SHOWN,
    Agreement,
    SignerMark,
    canonical_text,
    fingerprint,
    role_label,
)
from tiaojie.signing.templates import TEMPLATES

AGREEMENT_FILE = "agreement.json"
FONT_FAMILY = "cjk"
FONT_CANDIDATES = (
    # (path, family name of the face to use in a collection)
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", "Noto Sans CJK SC"),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "WenQuanYi Micro Hei"),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "WenQuanYi Zen Hei"),
)
# Tables fpdf2 never embeds (layout, vertical metrics): dropped once, so that the
# per-document subsetting does not parse them again.
UNUSED_TABLES = ("GSUB", "GPOS", "GDEF", "BASE", "JSTF", "vhea", "vmtx", "VORG", "DSIG")
XMP_NAMESPACE = "urn:tiaojie:ns:agreement:1/"
# pyhanko rewrites the XMP at each signature (with lxml, else ElementTree): keep our
# prefix, the one the PDF/A extension schema declares.
ElementTree.register_namespace("tj", XMP_NAMESPACE)
try:
    from lxml import etree as _lxml_etree  # type: ignore[import-untyped]

    _lxml_etree.register_namespace("tj", XMP_NAMESPACE)
except ImportError:  # pragma: no cover - pyhanko then uses no lxml either
    pass

MARGIN = 20.0  # mm
BODY_SIZE = 11.0
TITLE_SIZE = 20.0
LINE = 6.0  # mm per body line
MARK_W, MARK_H = 50.0, 20.0
QR_SIZE = 28.0


class FontMissing(RuntimeError):
    """No usable CJK font on this machine."""


@dataclass
class _Font:
    path: Path
    face: bytes  # the chosen face as a stand-alone font, unused tables dropped
    master: TTFFont  # parsed once; documents get clones
    shared: dict[str, Any]  # decompiled tables the subsetter replaces rather than edits


_font: _Font | None = None
_font_lock = threading.Lock()


def find_font() -> tuple[Path, int]:
    """The CJK font file and face index to use, or FontMissing naming the package."""
    override = os.environ.get("TIAOJIE_PDF_FONT")
    if override:
        file, _, face = override.partition("#")
        if not Path(file).is_file():
            raise FontMissing(f"TIAOJIE_PDF_FONT={override}: no such font file")
        return Path(file), int(face or 0)
    for path, family in FONT_CANDIDATES:
        if not Path(path).is_file():
            continue
        if not path.endswith((".ttc", ".otc")):
            return Path(path), 0
        collection = TTCollection(path, lazy=True)
        try:
            for index, face in enumerate(collection.fonts):
                if face["name"].getBestFamilyName() == family:
                    return Path(path), index
        finally:
            collection.close()
    raise FontMissing(
        "no CJK font found for the agreement PDF: install the Debian package fonts-noto-cjk "
        "(Noto Sans CJK SC; fonts-wqy-microhei also works), or set TIAOJIE_PDF_FONT to a "
        ".ttf/.otf/.ttc file (path#face-index for a collection)"
    )


def load_font() -> _Font:
    """Parse the CJK font once per process (thread-safe); later calls return it."""
    global _font
    with _font_lock:
        if _font is None:
            path, index = find_font()
            font = TTFont(path, fontNumber=index, lazy=True, recalcTimestamp=False)
            for tag in UNUSED_TABLES:
                if tag in font:
                    del font[tag]
            buffer = io.BytesIO()
            font.save(buffer)
            font.close()
            face = buffer.getvalue()
            master = TTFFont(FPDF(), io.BytesIO(face), FONT_FAMILY, "", None, None, None, 0)  # type: ignore[arg-type]
            # One Unicode subtable is enough for each document (the PDF maps codes to
            # glyphs itself): the others are not even parsed.
            cmap = copy.copy(master.ttfont["cmap"])
            best = [t for t in cmap.tables if (t.platformID, t.platEncID) == (3, 10)]
            cmap.tables = best or [t for t in cmap.tables if t.isUnicode()][:1]
            shared = {"hmtx": master.ttfont["hmtx"], "cmap": cmap}
            _font = _Font(path, face, master, shared)
        return _font


def _font_for(pdf: FPDF) -> TTFFont:
    """A per-document handle on the cached font: shared metrics, own subset and tables."""
    cached = load_font()
    font = copy.copy(cached.master)  # __slots__: copies every attribute reference
    font.ttfont = TTFont(
        io.BytesIO(cached.face), lazy=True, recalcTimestamp=False, recalcBBoxes=False
    )
    # fontTools' subsetter replaces these tables' contents (new dicts and lists) rather
    # than editing them in place: shallow copies of the parsed tables save a re-parse.
    hmtx = copy.copy(cached.shared["hmtx"])
    cmap = copy.copy(cached.shared["cmap"])
    cmap.tables = [copy.copy(t) for t in cmap.tables]
    font.ttfont.tables.update({"hmtx": hmtx, "cmap": cmap})
    font.i = len(pdf.fonts) + 1
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font.subset = SubsetMap(font)
    font._hbfont = None
    font.color_font = None
    return font


# Punctuation a Chinese line must not start with (禁则): it hangs at the end of the
# previous line instead, a little into the margin.
NO_LINE_START = set("。，、；：？！）」』》〉】〕…·．.,;:?!)%")


def wrap_cjk(pdf: FPDF, text: str, width: float) -> list[str]:
    """`text` broken into lines of at most `width` (character by character, Chinese rules)."""
    lines, current, used = [], "", 0.0
    for char in text:
        advance = pdf.get_string_width(char)
        if current and used + advance > width and char not in NO_LINE_START:
            lines.append(current)
            current, used = char, advance
        else:
            current, used = current + char, used + advance
    return [*lines, current] if current else lines


class CjkDocument(FPDF):
    """A page footer: `footer_text`, then the page number of the number of pages."""

    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT_FAMILY, size=8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, f"{self.footer_text}  {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def cjk_document(
    *,
    title: str,
    lang: str,
    created: dt.datetime,
    producer: str,
    footer: str,
    xmp: str | None = None,
) -> CjkDocument:
    """A PDF/A-3B document whose font FONT_FAMILY is the shared CJK font, with the
    margins, page breaks, metadata (fpdf2's own XMP unless `xmp` is given) and footer the
    agreement has: what every printable document of the platform starts from (the case
    summary in a dossier too)."""
    pdf = CjkDocument(enforce_compliance="PDFA_3B")
    pdf.fonts[FONT_FAMILY] = _font_for(pdf)
    pdf._set_min_pdf_version("1.7")
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=MARGIN)
    pdf.set_creation_date(created)
    pdf.set_title(title)
    pdf.set_producer(producer)
    pdf.set_creator("Tiaojie")
    pdf.set_lang(lang)
    if xmp is not None:
        pdf.set_xmp_metadata(xmp)
    pdf.footer_text = footer
    return pdf


def _time(ts: float, tz: dt.tzinfo, lang: str) -> str:
    """A signature time as the signers read it: in the installation's time zone, named
    (tiaojie.archive.localtime), never the server process's own zone."""
    return shown(ts, tz, lang)


def agreement_record(
    agreement: Agreement,
    marks: list[SignerMark],
    status_url: str,
    manifest: bytes | None,
    manifest_name: str,
) -> dict[str, Any]:
    """What `agreement.json` holds (see the module docstring)."""
    record: dict[str, Any] = {
        "format": "tiaojie-agreement/1",
        "agreement": agreement.to_dict(),
        "canonical_text": canonical_text(agreement),
        "fingerprint": fingerprint(agreement),
        "status_url": status_url,
        "signers": [
            {
                "name": m.name,
                "role": m.role,
                "signed_at": m.signed_at,
                "fingerprint": m.fingerprint,
                "mark_sha256": hashlib.sha256(m.mark_png).hexdigest(),
            }
            for m in marks
        ],
        "manifest": None,
    }
    if manifest is not None:
        record["manifest"] = {
            "name": manifest_name,
            "sha256": hashlib.sha256(manifest).hexdigest(),
            "bytes": len(manifest),
        }
    return record


def _xmp(agreement: Agreement, title: str, created: dt.datetime, producer: str) -> str:
    """XMP with the PDF/A-3B identification and our properties, declared as PDF/A needs."""
    when = created.astimezone(dt.UTC).isoformat(timespec="seconds")
    fields = {
        "caseNumber": agreement.case_number,
        "recordingId": agreement.recording_id or "",
        "chainHead": agreement.chain_head or "",
        "textFingerprint": fingerprint(agreement),
    }
    schema = "".join(
        "<rdf:li rdf:parseType='Resource'>"
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{name}</pdfaProperty:description></rdf:li>"
        for name in fields
    )
    values = "".join(f"<tj:{k}>{escape(v)}</tj:{k}>" for k, v in fields.items())
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"'
        ' xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"'
        ' xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">'
        "<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType='Resource'>"
        "<pdfaSchema:schema>Tiaojie mediation agreement</pdfaSchema:schema>"
        f"<pdfaSchema:namespaceURI>{XMP_NAMESPACE}</pdfaSchema:namespaceURI>"
        "<pdfaSchema:prefix>tj</pdfaSchema:prefix>"
        f"<pdfaSchema:property><rdf:Seq>{schema}</rdf:Seq></pdfaSchema:property>"
        "</rdf:li></rdf:Bag></pdfaExtension:schemas></rdf:Description>"
        '<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">'
        "<pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>"
        "</rdf:Description>"
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<dc:format>application/pdf</dc:format>"
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li>'
        "</rdf:Alt></dc:title></rdf:Description>"
        '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        f"<xmp:CreateDate>{when}</xmp:CreateDate><xmp:ModifyDate>{when}</xmp:ModifyDate>"
        f"<xmp:MetadataDate>{when}</xmp:MetadataDate><xmp:CreatorTool>Tiaojie</xmp:CreatorTool>"
        "</rdf:Description>"
        '<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">'
        f"<pdf:Producer>{escape(producer)}</pdf:Producer></rdf:Description>"
        f'<rdf:Description rdf:about="" xmlns:tj="{XMP_NAMESPACE}">{values}</rdf:Description>'
        "</rdf:RDF></x:xmpmeta>"
    )


def draw_qr(pdf: FPDF, data: str, x: float, y: float, size: float) -> None:
    """`data` as a QR code of `size` mm at (x, y), drawn as vector rectangles."""
    code = segno.make(data, error="m", micro=False)
    matrix = code.matrix
    quiet = 2
    modules = len(matrix) + 2 * quiet
    cell = size / modules
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, size, size, style="F")
    pdf.set_fill_color(0, 0, 0)
    for row, line in enumerate(matrix):
        col = 0
        while col < len(line):
            if line[col]:
                start = col
                while col < len(line) and line[col]:
                    col += 1
                pdf.rect(
                    x + (start + quiet) * cell,
                    y + (row + quiet) * cell,
                    (col - start) * cell,
                    cell,
                    style="F",
                )
            else:
                col += 1


def build_agreement_pdf(
    agreement: Agreement,
    marks: list[SignerMark],
    status_url: str,
    manifest: bytes | None = None,
    manifest_name: str = CHAIN_FILE,
    *,
    created: dt.datetime | None = None,
    organisation: str = "Tiaojie",
    timezone: dt.tzinfo | None = None,
) -> bytes:
    """The agreement as an unsigned PDF/A-3B document (bytes); signature times in
    `timezone` (default: TIAOJIE_TIMEZONE, else Asia/Shanghai)."""
    created = created or dt.datetime.now(dt.UTC)
    tz = timezone or zone()
    template = TEMPLATES[agreement.language]
    text = canonical_text(agreement)
    digest = fingerprint(agreement)
    title = f"{template.title} {agreement.case_number}"
    producer = f"Tiaojie ({organisation})"
    zh = agreement.language == "zh-CN"
    wrap = WrapMode.CHAR if zh else WrapMode.WORD

    pdf = cjk_document(
        title=title,
        lang="zh-CN" if zh else "en",
        created=created,
        producer=producer,
        footer=f"{agreement.case_number} · sha256 {digest[:FINGERPRINT_SHOWN]}",
        xmp=_xmp(agreement, title, created, producer),
    )
    pdf.add_page()

    # The text, exactly as signed. Its first line is the title.
    first, _, body = text.partition("\n")
    pdf.set_font(FONT_FAMILY, size=TITLE_SIZE)
    pdf.cell(0, 14, first, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=BODY_SIZE)
    for line in body.rstrip("\n").split("\n"):
        if not line:
            pdf.ln(LINE / 2)
        elif zh:
            for part in wrap_cjk(pdf, line, pdf.w - 2 * MARGIN):
                pdf.cell(0, LINE, part, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.multi_cell(0, LINE, line, wrapmode=wrap, new_x="LMARGIN", new_y="NEXT")

    # Signatures: mark, name, role, time.
    pdf.ln(LINE)
    pdf.set_font(FONT_FAMILY, size=13)
    pdf.cell(0, 9, template.signatures_heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=BODY_SIZE - 1)
    for mark in marks:
        if pdf.get_y() + MARK_H + 8 > pdf.h - MARGIN:
            pdf.add_page()
        y = pdf.get_y()
        pdf.set_draw_color(180, 180, 180)
        pdf.rect(MARGIN, y, MARK_W, MARK_H)
        try:
            pdf.image(io.BytesIO(mark.mark_png), MARGIN, y, MARK_W, MARK_H, keep_aspect_ratio=True)
        except Exception as e:  # Pillow / fpdf2 raise many kinds on a bad image
            raise ValueError(f"the handwritten mark of {mark.name} is not a usable PNG: {e}") from e
        pdf.set_xy(MARGIN + MARK_W + 5, y + 3)
        label = role_label(agreement.language, mark.role)
        line = template.signed_by.format(
            mark.name, label, _time(mark.signed_at, tz, agreement.language)
        )
        pdf.multi_cell(0, LINE, line, wrapmode=wrap, new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(y + MARK_H + 4)

    # Recording, fingerprint, status QR code.
    if pdf.get_y() + QR_SIZE + 8 > pdf.h - MARGIN:
        pdf.add_page()
    pdf.ln(2)
    y = pdf.get_y()
    draw_qr(pdf, status_url, MARGIN, y, QR_SIZE)
    pdf.set_xy(MARGIN + QR_SIZE + 5, y)
    pdf.set_font(FONT_FAMILY, size=8)
    info = [
        ("文本指纹 (sha256)" if zh else "Text fingerprint (sha256)", digest),
        ("录像" if zh else "Recording", agreement.recording_id or "-"),
        ("录像哈希链头" if zh else "Recording chain head", agreement.chain_head or "-"),
        ("扫码查看协议状态" if zh else "Status (scan the code)", status_url),
    ]
    if manifest is not None:
        what = "附件：录像清单" if zh else "Attached: recording manifest"
        info.append((what, f"{manifest_name} sha256 {hashlib.sha256(manifest).hexdigest()}"))
    for key, value in info:
        pdf.set_x(MARGIN + QR_SIZE + 5)
        pdf.multi_cell(
            0, 4, f"{key}: {value}", wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT"
        )
    # The case's QR code (一案一码), when the agreement belongs to a case.
    if agreement.case_url:
        pdf.set_y(max(pdf.get_y(), y + QR_SIZE) + 3)
        if pdf.get_y() + QR_SIZE + 8 > pdf.h - MARGIN:
            pdf.add_page()
        y = pdf.get_y()
        draw_qr(pdf, agreement.case_url, MARGIN, y, QR_SIZE)
        pdf.set_xy(MARGIN + QR_SIZE + 5, y)
        what = "一案一码：扫码查看案件进度" if zh else "This case (scan the code): its progress"
        pdf.multi_cell(
            0,
            4,
            f"{what}: {agreement.case_url}",
            wrapmode=WrapMode.CHAR,
            new_x="LMARGIN",
            new_y="NEXT",
        )

    # Associated files (PDF/A-3): the recording manifest and the structured agreement.
    if manifest is not None:
        pdf.embed_file(
            bytes=manifest,
            basename=manifest_name,
            modification_date=created,
            mime_type="application/x-ndjson" if manifest_name.endswith(".jsonl") else None,
            associated_file_relationship="Source",
            compress=True,
            desc="Recording manifest: the hash chain of the recording this agreement was "
            "reached in, as it stood when the agreement was signed",
        )
    record = agreement_record(agreement, marks, status_url, manifest, manifest_name)
    pdf.embed_file(
        bytes=json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True).encode(),
        basename=AGREEMENT_FILE,
        modification_date=created,
        mime_type="application/json",
        associated_file_relationship="Source",
        compress=True,
        desc="The agreement's fields, canonical text, fingerprint and signers",
    )
    return bytes(pdf.output())
