"""The agreement's text templates: 调解协议书 (zh-CN, the default) and the English version.

The text these produce is *the* agreement: it is what every participant sees live, what
each signer consents to (bound by its sha256, see `signing.model.fingerprint`) and what
is printed in the PDF. Changing a template changes every fingerprint: keep them stable,
and add a new language rather than editing one that has been used to sign.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    """The fixed words of one language's agreement; `{}` fields are filled in order."""

    title: str
    case_number: str
    parties_heading: str
    roles: dict[str, str]
    party: str  # role label, name
    id_number: str  # "{name}" + this with the number, e.g. "（身份证号：{}）"
    mediator: str
    experts: str
    none: str
    list_separator: str
    facts_heading: str
    terms_heading: str
    terms_intro: str
    performance_heading: str
    other_heading: str
    effect: str
    recording: str  # with the recording id and the chain head
    no_recording: str
    date: str
    place: str
    signatures_heading: str
    signed_by: str  # name, role, time (used in the PDF only, not in the canonical text)


TEMPLATES: dict[str, Template] = {
    "zh-CN": Template(
        title="调解协议书",
        case_number="案号：{}",
        parties_heading="当事人",
        roles={"applicant": "申请人", "respondent": "被申请人", "mediator": "调解员"},
        party="{}：{}",
        id_number="（身份证号：{}）",
        mediator="调解员：{}",
        experts="到场专家：{}",
        none="无",
        list_separator="、",
        facts_heading="一、纠纷事实",
        terms_heading="二、协议内容",
        terms_intro="经调解，各方当事人自愿达成如下协议：",
        performance_heading="三、履行方式和期限",
        other_heading="四、其他",
        effect=(
            "本协议经各方当事人和调解员签名、调解组织电子印章签章后生效。"
            "各方当事人应当按照约定履行。"
        ),
        recording="本协议在调解录像 {} 中达成，录像哈希链头：{}。",
        no_recording="本协议的调解过程未录像。",
        date="日期：{}",
        place="地点：{}",
        signatures_heading="签名",
        signed_by="{}（{}） 签名时间：{}",
    ),
    "en": Template(
        title="Mediation Agreement",
        case_number="Case number: {}",
        parties_heading="Parties",
        roles={"applicant": "Applicant", "respondent": "Respondent", "mediator": "Mediator"},
        party="{}: {}",
        id_number=" (ID number: {})",
        mediator="Mediator: {}",
        experts="Experts present: {}",
        none="none",
        list_separator=", ",
        facts_heading="I. Facts of the dispute",
        terms_heading="II. Agreed terms",
        terms_intro="Through mediation, the parties have voluntarily agreed as follows:",
        performance_heading="III. Performance: how and by when",
        other_heading="IV. Other provisions",
        effect=(
            "This agreement takes effect when every party and the mediator have signed it "
            "and the mediation organisation has sealed it electronically. The parties shall "
            "perform it as agreed."
        ),
        recording="This agreement was reached in recording {}, whose hash chain head is {}.",
        no_recording="The mediation session of this agreement was not recorded.",
        date="Date: {}",
        place="Place: {}",
        signatures_heading="Signatures",
        signed_by="{} ({}), signed at {}",
    ),
}

DEFAULT_LANGUAGE = "zh-CN"
