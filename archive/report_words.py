"""The words of `tiaojie verify`'s text reports, in English and Chinese (`--lang zh`), and
how a finding reads in each: what kind of problem it is (every `Problem` code has its
Chinese name here), where it is, and the verifier's own details. The JSON report is the
same in every language (codes, not words).
"""

from __future__ import annotations

from datetime import tzinfo

from tiaojie.archive.localtime import shown_iso
from tiaojie.archive.report import Finding, Problem

LANGS = ("en", "zh")

#: Chinese names of the problem codes (the English reason stays as the detail).
PROBLEM_ZH: dict[Problem, str] = {
    Problem.KEY_UNTRUSTED: "签名公钥未经独立确认",
    Problem.KEY_FILE_MISMATCH: "文件夹中的公钥与签名公钥不一致",
    Problem.FOLDER_RENAMED: "文件夹名与录像编号不一致",
    Problem.CHAIN_EMPTY: "哈希链为空",
    Problem.CHAIN_LINE_INCOMPLETE: "哈希链的行不完整（被截断）",
    Problem.CHAIN_LINE_NOT_JSON: "哈希链的行不是 JSON",
    Problem.ENTRY_MALFORMED: "哈希链条目格式错误",
    Problem.ENTRY_OUT_OF_SEQUENCE: "哈希链条目序号不连续",
    Problem.ENTRY_UNLINKED: "哈希链条目没有接上前一条",
    Problem.ENTRY_HASH_MISMATCH: "哈希链条目的哈希值不符",
    Problem.ENTRY_OUTSIDE_SEGMENTS: "哈希链条目指向片段文件之外",
    Problem.RANGES_NOT_CONTIGUOUS: "片段的字节范围不连续",
    Problem.ENTRY_AFTER_SEAL: "封存之后还有条目",
    Problem.NOT_SEALED: "录像没有封存",
    Problem.ENTRIES_UNSIGNED: "有条目未被签名覆盖",
    Problem.SIGNATURE_WRONG_KEY: "签名所用的密钥不对",
    Problem.SIGNATURE_WRONG_HEAD: "签名覆盖的链头不对",
    Problem.SIGNATURE_INVALID: "签名无效",
    Problem.SIGNATURE_UNCHECKABLE: "签名无法验证",
    Problem.SIGNED_BYTES_CHANGED: "已签名的内容被改动",
    Problem.CHANGED_AFTER_SIGNATURE: "签名之后文件被改动",
    Problem.LONG_TERM_VALIDATION_FAILED: "长期验证（PAdES）未通过",
    Problem.SIGNATURE_FIELD_MISMATCH: "签名栏与签署人顺序或身份不符",
    Problem.SIGNER_MISMATCH: "证书上的签署人与协议记录不符",
    Problem.REASON_WITHOUT_FINGERPRINT: "签名理由中没有文本指纹",
    Problem.INIT_SEGMENT_HASH_MISMATCH: "初始化段被改动",
    Problem.FRAGMENT_HASH_MISMATCH: "分片被改动",
    Problem.BOXES_MISMATCH: "MP4 结构与哈希链不符",
    Problem.FRAGMENT_REMOVED: "分片被删除",
    Problem.FRAGMENTS_REORDERED: "分片顺序被调换",
    Problem.FRAGMENT_REPEATED: "分片重复",
    Problem.SEGMENT_TRUNCATED: "片段文件被截短",
    Problem.BYTES_APPENDED: "片段文件末尾被追加了内容",
    Problem.SEGMENT_MISSING: "缺少片段文件",
    Problem.SEGMENT_UNREADABLE: "片段文件无法读取",
    Problem.SEGMENT_EXTRA: "多出哈希链未记录的片段文件",
    Problem.SEGMENT_EMPTY: "片段文件为空",
    Problem.OTHER_FILE: "文件夹中有不属于录像的文件",
    Problem.LOST_IN_GAP: "录制程序崩溃时丢失的数据",
    Problem.FOLLOWS_MISMATCH: "与前一段录像的衔接不符",
    Problem.TIMESTAMP_MISSING: "缺少封存时间戳",
    Problem.TIMESTAMP_WITHOUT_SEAL: "有时间戳却没有封存",
    Problem.TIMESTAMP_UNREADABLE: "时间戳无法读取",
    Problem.TIMESTAMP_OTHER_DATA: "时间戳不是针对此封存的",
    Problem.TIMESTAMP_SIGNATURE_INVALID: "时间戳的签名无效",
    Problem.TIMESTAMP_UNTRUSTED: "时间戳机构不受信任",
    Problem.TIMESTAMP_TRUST_UNCHECKED: "未核对时间戳机构是否可信",
    Problem.TIMESTAMP_BEFORE_SEAL: "时间戳早于封存",
    Problem.SUMMARY_UNREADABLE: "录像摘要无法读取",
    Problem.SUMMARY_COUNTS_DIFFER: "录像摘要的数量与哈希链不符",
    Problem.SUMMARY_SEGMENTS_DIFFER: "录像摘要的片段列表与哈希链不符",
    Problem.SUMMARY_SEAL_DIFFERS: "录像摘要的封存信息与哈希链不符",
    Problem.PDF_UNREADABLE: "PDF 无法读取",
    Problem.PDF_NOT_SIGNED: "PDF 没有签名",
    Problem.ORGANISATION_SEAL_MISSING: "缺少机构电子印章",
    Problem.DOCUMENT_TIMESTAMP_MISSING: "缺少文档时间戳（不是 PAdES B-LTA）",
    Problem.CHANGED_AFTER_LAST_SIGNATURE: "最后一个签名之后文件被改动",
    Problem.AGREEMENT_RECORD_MISSING: "缺少嵌入的协议记录（agreement.json）",
    Problem.AGREEMENT_RECORD_UNREADABLE: "嵌入的协议记录无法读取",
    Problem.AGREEMENT_TEXT_MISMATCH: "协议文本与其字段不符",
    Problem.FINGERPRINT_MISMATCH: "文本指纹不符",
    Problem.SIGNER_FINGERPRINT_MISMATCH: "有签署人签的是另一版本的文本",
    Problem.SIGNER_COUNT_MISMATCH: "签署人数与签名数不符",
    Problem.MANIFEST_MISSING: "缺少嵌入的录像清单",
    Problem.MANIFEST_NOT_SOURCE: "录像清单的关联方式不是 Source",
    Problem.MANIFEST_HASH_MISMATCH: "录像清单的哈希值不符",
    Problem.CHAIN_HEAD_NOT_IN_MANIFEST: "文本所写的链头不在录像清单中",
    Problem.MANIFEST_NOT_IN_CHAIN: "录像清单不是该录像哈希链的开头",
    Problem.RECORDING_ID_MISMATCH: "录像编号不符",
    Problem.AGREEMENT_EVENT_MISSING: "录像哈希链中没有指向此 PDF 的记录",
    Problem.AGREEMENT_EVENT_MISMATCH: "录像哈希链中的记录与此 PDF 的文本指纹不符",
    Problem.DOSSIER_FILE_MISSING: "卷宗缺少文件",
    Problem.DOSSIER_FILE_ALTERED: "卷宗中的文件被改动",
    Problem.DOSSIER_FILE_EXTRA: "卷宗中多出日志和清单都未列出的文件",
    Problem.DOSSIER_MANIFEST_SIGNATURE: "卷宗清单的签名无效或缺失",
    Problem.DOSSIER_LOG_MISMATCH: "案件日志与已签名的卷宗清单不符",
    Problem.CASE_RECORD_ALTERED: "案件记录被改动",
    Problem.RECORDING_REPORT_MISMATCH: "录像核验报告与材料包中的哈希链不符",
    Problem.RECORDING_REPORT_NOT_AUTHENTIC: "录像在服务器上未通过核验",
}

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "recording": "Recording",
        "segment": "Segment",
        "recording_id": "recording id",
        "result_ok": "Result: AUTHENTIC",
        "result_bad": "Result: NOT AUTHENTIC ({n} problem(s))",
        "first_problem": "  First problem: {p}",
        "checked": "Checked:",
        "chain": (
            "  Chain: {entries} entries ({types}); links, hashes and sequence verified "
            "for {verified}"
        ),
        "not_trusted": " -- NOT independently trusted",
        "signatures": (
            "  Signatures: {n} valid (Ed25519, key id {key}…, from {source}){trust}; "
            "{covered} entries covered"
        ),
        "seal": "  Seal: entry {seq} at {time} (head {head})",
        "no_seal": "  Seal: none (the recording is not sealed)",
        "follows": "  Follows recording {id} of node {node} ({reason}; {mark}): link {link}",
        "follows_seal": "its seal, entry {seq}, hash {hash}",
        "follows_seen": "its entry {seq}, hash {hash}, seen last before the node was lost",
        "follows_none": "no entry of it named",
        "link.verified": "verified against the folder given",
        "link.not_checked": "not checked (pass --previous with its folder)",
        "link.broken": "BROKEN",
        "ts_valid": "valid",
        "ts_invalid": "NOT valid",
        "tsa_unchecked": "TSA certificate not checked against a trusted root",
        "tsa_trusted": "TSA certificate trusted",
        "tsa_untrusted": "TSA certificate NOT trusted",
        "timestamp": "  Timestamp: {time} by {tsa!r}: {state}; {trust}",
        "no_timestamp": "  Timestamp: none (no seal.tsr)",
        "segments": (
            "  Segments: {files} file(s) checked, {fragments} fragments and {bytes} bytes "
            "re-hashed from their MP4 boxes and matched to the chain"
        ),
        "not_checked": "not checked",
        "missing": "MISSING",
        "segment_unchecked": "    {path}: {state} ({fragments} fragments, {bytes} bytes)",
        "segment_line": (
            "    {path}: {init}{verified}/{fragments} fragments verified, "
            "{bytes_verified}/{bytes} bytes"
        ),
        "init": "init + ",
        "lost_bytes": "; {n} bytes never chained (lost in a crash)",
        "gaps": "  Gaps (the recorder restarted after a crash):",
        "gap": "    entry {seq} at {time} ({reason}); last entry before it at {after}",
        "lost": "; lost: {lost}",
        "bytes": "bytes",
        "problems": "Problems ({n}):",
        "warnings": "Warnings ({n}):",
        # the agreement
        "agreement": "Agreement ",
        "trust": "  trust     ",
        "case": "  case      ",
        "text": "  text      sha256 {fp} (shown as {short})",
        "recording_line": "  recording {rid}, chain head {head}",
        "signatures_head": "Signatures",
        "sig_line": (
            "       time {time}; intact {intact}, valid {valid}, trusted {trusted}; "
            "long-term validation {ltv}; {coverage}"
        ),
        "yes": "yes",
        "no": "NO",
        "manifest": (
            "Manifest    {name} (AFRelationship {rel}): {entries} entries, sha256 {sha256}"
        ),
        "recording_dir": "Recording   ",
        "manifest_prefix": "  the manifest is the first {n} of {total} chain entries",
        "names_pdf": "  chain entry {seq} names this PDF",
        "not_authentic": "NOT AUTHENTIC ({n} problem(s))",
        "authentic": (
            "AUTHENTIC: every signature is valid at PAdES B-LTA and trusted; "
            "the text, manifest and recording agree"
        ),
        "kind.signer": "signer",
        "kind.organisation seal": "organisation seal",
        "kind.document timestamp": "document timestamp",
        "role.applicant": "applicant",
        "role.respondent": "respondent",
        "role.mediator": "mediator",
        "time_zone": "Time zone: {zone}",
        "archive": "Recording archive {path}: {n} agreement(s) in it",
        "archive_no_ca": (
            "  the agreements in it were not checked: give the CA certificate with --ca"
        ),
        # the dossier
        "dossier": "Dossier {path}: case {number} ({case_id})",
        "dossier_log": "  log: {entries} entries, head {head}",
        "dossier_authentic": "  authentic:",
        "dossier_missing": "  missing:",
        "dossier_altered": "  altered:",
        "dossier_unexpected": "  unexpected:",
        "dossier_problem": "  PROBLEM [{code}] {text}",
        "dossier_warning": "  warning [{code}] {text}",
        "dossier_ok": "Result: AUTHENTIC",
        "dossier_bad": "Result: NOT AUTHENTIC",
        "file.log": "the case log",
        "file.log_entries": "the case log, {entries} entries",
        "file.case": "the case record",
        "file.attachment": "attachment, {media_type}, {size} bytes",
        "file.summary": "the printable summary (PDF)",
        "file.agreement": "the signed agreement {code}… the case log names",
        "file.recording_chain": "the manifest (Chain) of recording {recording}",
        "file.recording_summary": "the summary of recording {recording}",
        "file.segment": "a segment of recording {recording}",
        "file.listed": "listed in the manifest",
        "file.unexpected": "not named by the log or the manifest",
        "file.other": "a file",
        "file.application": "the application for judicial confirmation (PDF)",
        "file.recording_report": "the verification report of recording {recording}",
        "court_bundle": "Court bundle {path}: case {number}",
        "court_court": "  court: {court}",
        "court_missing": "  still missing for the court: {items}",
        "court_ok": "Result: AUTHENTIC",
        "court_bad": "Result: NOT AUTHENTIC ({n} problem(s))",
    },
    "zh": {
        "recording": "录像",
        "segment": "录像片段",
        "recording_id": "录像编号",
        "result_ok": "结论：真实完整",
        "result_bad": "结论：不真实或不完整（{n} 个问题）",
        "first_problem": "  第一个问题：{p}",
        "checked": "核验内容：",
        "chain": "  哈希链：{entries} 条（{types}）；其中 {verified} 条的链接、哈希和序号核验无误",
        "not_trusted": "——未经独立确认",
        "signatures": (
            "  签名：{n} 个有效（Ed25519，密钥编号 {key}…，来自 {source}）{trust}；"
            "覆盖 {covered} 条"
        ),
        "seal": "  封存：第 {seq} 条，{time}（链头 {head}）",
        "no_seal": "  封存：无（录像没有封存）",
        "follows": "  接续录像 {id}（节点 {node}，{reason}；{mark}）：衔接{link}",
        "follows_seal": "其封存，第 {seq} 条，哈希 {hash}",
        "follows_seen": "节点失联前最后所见的第 {seq} 条，哈希 {hash}",
        "follows_none": "未指明其任何条目",
        "link.verified": "已与所给文件夹核对",
        "link.not_checked": "未核对（用 --previous 给出其文件夹）",
        "link.broken": "不符",
        "ts_valid": "有效",
        "ts_invalid": "无效",
        "tsa_unchecked": "未对照可信根证书核对时间戳机构",
        "tsa_trusted": "时间戳机构可信",
        "tsa_untrusted": "时间戳机构不可信",
        "timestamp": "  时间戳：{time}，由 {tsa!r} 签发：{state}；{trust}",
        "no_timestamp": "  时间戳：无（没有 seal.tsr）",
        "segments": (
            "  片段文件：核验 {files} 个，按 MP4 结构重新计算了 {fragments} 个分片、"
            "{bytes} 字节的哈希，均与哈希链一致"
        ),
        "not_checked": "未核验",
        "missing": "缺失",
        "segment_unchecked": "    {path}：{state}（{fragments} 个分片，{bytes} 字节）",
        "segment_line": (
            "    {path}：{init}{verified}/{fragments} 个分片核验无误，{bytes_verified}/{bytes} 字节"
        ),
        "init": "初始化段 + ",
        "lost_bytes": "；{n} 字节未进入哈希链（崩溃时丢失）",
        "gaps": "  中断（录制程序崩溃后重新启动）：",
        "gap": "    第 {seq} 条，{time}（{reason}）；之前最后一条在 {after}",
        "lost": "；丢失：{lost}",
        "bytes": "字节",
        "problems": "问题（{n} 个）：",
        "warnings": "提示（{n} 个）：",
        "agreement": "调解协议 ",
        "trust": "  信任根    ",
        "case": "  案号      ",
        "text": "  文本      sha256 {fp}（显示为 {short}）",
        "recording_line": "  录像      {rid}，链头 {head}",
        "signatures_head": "签名",
        "sig_line": (
            "       时间 {time}；内容完整 {intact}，签名有效 {valid}，可信 {trusted}；"
            "长期验证 {ltv}；{coverage}"
        ),
        "yes": "是",
        "no": "否",
        "manifest": "录像清单    {name}（AFRelationship {rel}）：{entries} 条，sha256 {sha256}",
        "recording_dir": "录像        ",
        "manifest_prefix": "  录像清单是哈希链 {total} 条中的前 {n} 条",
        "names_pdf": "  哈希链第 {seq} 条指向此 PDF",
        "not_authentic": "不真实或不完整（{n} 个问题）",
        "authentic": "真实完整：每个签名在 PAdES B-LTA 级别有效且可信；文本、录像清单与录像一致",
        "kind.signer": "签署人",
        "kind.organisation seal": "机构电子印章",
        "kind.document timestamp": "文档时间戳",
        "role.applicant": "申请人",
        "role.respondent": "被申请人",
        "role.mediator": "调解员",
        "time_zone": "时区：{zone}",
        "coverage.entire file": "整个文件",
        "coverage.entire revision": "整个修订版本",
        "ltv.passed": "通过",
        "ltv.failed": "未通过",
        "ltv.not validated": "未能验证",
        "archive": "录像压缩包 {path}：内含 {n} 份调解协议",
        "archive_no_ca": "  其中的调解协议未核验：请用 --ca 指定 CA 证书",
        "dossier": "卷宗 {path}：案号 {number}（{case_id}）",
        "dossier_log": "  案件日志：{entries} 条，链头 {head}",
        "dossier_authentic": "  真实完整：",
        "dossier_missing": "  缺失：",
        "dossier_altered": "  被改动：",
        "dossier_unexpected": "  多出的文件：",
        "dossier_problem": "  问题 [{code}] {text}",
        "dossier_warning": "  提示 [{code}] {text}",
        "dossier_ok": "结论：真实完整",
        "dossier_bad": "结论：不真实或不完整（{n} 个问题）",
        "file.log": "案件日志",
        "file.log_entries": "案件日志，{entries} 条",
        "file.case": "案件记录",
        "file.attachment": "附件，{media_type}，{size} 字节",
        "file.summary": "可打印的案件摘要（PDF）",
        "file.agreement": "案件日志所列的已签署调解协议 {code}…",
        "file.recording_chain": "录像 {recording} 的清单（哈希链）",
        "file.recording_summary": "录像 {recording} 的摘要",
        "file.segment": "录像 {recording} 的片段",
        "file.listed": "清单所列文件",
        "file.unexpected": "日志和清单都未列出",
        "file.other": "文件",
        "file.application": "司法确认申请书（PDF）",
        "file.recording_report": "录像 {recording} 的核验报告",
        "court_bundle": "司法确认申请材料包 {path}：案号 {number}",
        "court_court": "  受理法院：{court}",
        "court_missing": "  尚缺材料：{items}",
        "court_ok": "结论：真实完整",
        "court_bad": "结论：不真实或不完整（{n} 个问题）",
    },
}


class Words:
    """The words of one language, and times in one zone, for a text report."""

    def __init__(self, lang: str = "en", tz: tzinfo | None = None) -> None:
        if lang not in WORDS:
            raise ValueError(f"unknown language {lang!r} (use {' or '.join(LANGS)})")
        self.lang = lang
        self.tz = tz

    def __call__(self, name: str, /, **values: object) -> str:
        return WORDS[self.lang][name].format(**values)

    def time(self, iso: str | None) -> str:
        """An ISO 8601 UTC time of the report, in the reader's zone (as it is without one)."""
        if iso is None:
            return "-"
        if self.tz is None:
            return iso
        return shown_iso(iso, self.tz, self.lang) or "-"

    def finding(self, finding: Finding) -> str:
        """A finding as this language says it: in Chinese its kind first, then where it
        is, then the verifier's detail."""
        if self.lang == "en":
            return finding.describe()
        kind = PROBLEM_ZH.get(finding.code, finding.code.value)
        where = finding.where()
        return f"{kind}（{where + '：' if where else ''}{finding.reason}）"

    def role(self, role: str | None) -> str:
        return WORDS[self.lang].get(f"role.{role}", role or "?")

    def kind(self, kind: str) -> str:
        return WORDS[self.lang].get(f"kind.{kind}", kind)

    def term(self, group: str, value: str) -> str:
        """A word of the validator (coverage, ltv) in this language, else as it is."""
        return WORDS[self.lang].get(f"{group}.{value}", value)
