"""The messages' texts in zh-CN, the variables each kind may use, and their rendering.

Templates use `{name}` placeholders (Python's format syntax without conversions or
format specs). An admin may change a kind's text (`PUT /api/notification-templates`);
a text naming a variable its kind does not have is refused (400), so a message is never
sent with a hole in it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from tiaojie.server.errors import bad_request


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    variables: tuple[str, ...]
    text: str


_CASE = ("case_number", "dispute_type")
_PERSON = ("name", *_CASE)
_SESSION = (*_PERSON, "time", "role", "join_url", "progress_url")
_BOOKING = (*_PERSON, "time", "with_whom", "by")

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "case_received",
            "案件已受理登记",
            (*_PERSON, "code", "progress_url"),
            "{name}您好：您反映的{dispute_type}纠纷已登记，案件编号{case_number}，"
            "查询码{code}。案件进度：{progress_url}",
        ),
        Kind(
            "case_dispatched",
            "案件已分派",
            (*_CASE, "region", "deadline"),
            "【待办】{case_number}（{dispute_type}，{region}）已分派给您，请及时处理，"
            "办理期限{deadline}。",
        ),
        Kind(
            "session_scheduled",
            "调解已排期",
            _SESSION,
            "{name}您好：{case_number}（{dispute_type}）定于{time}在线调解，请您以{role}"
            "身份参加。届时请打开链接进入调解室：{join_url} 请勿转发本链接。",
        ),
        Kind(
            "session_reminder_day",
            "调解前一天提醒",
            _SESSION,
            "{name}您好：提醒您明天{time}参加{case_number}的在线调解。链接：{join_url}",
        ),
        Kind(
            "session_reminder_hour",
            "调解前一小时提醒",
            _SESSION,
            "{name}您好：{case_number}的在线调解将于{time}开始，请提前进入：{join_url}",
        ),
        Kind(
            "agreement_ready",
            "调解协议待签署",
            (*_PERSON, "progress_url"),
            "{name}您好：{case_number}的调解协议已定稿，请在调解室中阅读并签署。"
            "案件进度：{progress_url}",
        ),
        Kind(
            "agreement_sealed",
            "调解协议已签章生效",
            (*_PERSON, "progress_url"),
            "{name}您好：{case_number}的调解协议已由各方签署并加盖印章，可在此查看下载："
            "{progress_url}",
        ),
        Kind(
            "deadline_approaching",
            "办理期限将至",
            (*_CASE, "deadline"),
            "【提醒】{case_number}（{dispute_type}）的办理期限为{deadline}，即将到期，请及时办结。",
        ),
        Kind(
            "follow_up_due",
            "回访到期",
            (*_CASE, "closed"),
            "【回访】{case_number}（{dispute_type}）已于{closed}办结，请对当事人进行回访并记录。",
        ),
        Kind(
            "booking_confirmed",
            "预约咨询已确认",
            (*_BOOKING, "join_url"),
            "{name}您好：您与{with_whom}的预约咨询（{case_number}）定于{time}在线进行。"
            "届时请打开链接进入咨询室：{join_url} 请勿转发本链接。",
        ),
        Kind(
            "booking_reminder_day",
            "预约咨询明天开始",
            (*_BOOKING, "join_url"),
            "{name}您好：提醒您，您与{with_whom}的预约咨询（{case_number}）将于{time}在线进行。"
            "届时请打开链接进入咨询室：{join_url} 请勿转发本链接。",
        ),
        Kind(
            "booking_reminder_hour",
            "预约咨询一小时后开始",
            (*_BOOKING, "join_url"),
            "{name}您好：您与{with_whom}的预约咨询（{case_number}）一小时后（{time}）开始，"
            "请准备好手机或电脑，打开链接进入咨询室：{join_url}",
        ),
        Kind(
            "booking_cancelled",
            "预约咨询已取消",
            (*_BOOKING, "reason"),
            "{name}您好：原定{time}与{with_whom}的预约咨询（{case_number}）已由{by}取消，"
            "原因：{reason}。如仍需咨询，请重新预约。",
        ),
        Kind(
            "booking_rescheduled",
            "预约咨询已改期",
            (*_BOOKING, "old_time", "reason", "join_url"),
            "{name}您好：您与{with_whom}的预约咨询（{case_number}）已由{by}从{old_time}改到{time}，"
            "原因：{reason}。新的进入链接：{join_url} 原链接作废。",
        ),
        Kind(
            "court_deadline",
            "司法确认申请期限将至",
            (*_CASE, "deadline"),
            "【提醒】{case_number}（{dispute_type}）的调解协议申请司法确认的期限为{deadline}"
            "（协议生效之日起三十日内），请尽快协助双方当事人向人民法院提出申请。",
        ),
    )
}


def placeholders(text: str) -> list[str]:
    """The variables `text` names; a 400 for anything but plain `{name}` placeholders."""
    found = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as error:
        raise bad_request(f"The template is not well formed: {error}.") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise bad_request(f"Template placeholders are plain {{name}}: {{{field}}} is not.")
        found.append(field)
    return found


def check(kind: str, text: str) -> None:
    """A 400 unless `text` uses only `kind`'s variables."""
    known = KINDS.get(kind)
    if known is None:
        raise bad_request(f"There is no notification kind {kind!r}.")
    unknown = sorted(set(placeholders(text)) - set(known.variables))
    if unknown:
        raise bad_request(f"{kind} may use {', '.join(known.variables)}; not {', '.join(unknown)}.")


def render(text: str, variables: dict[str, str]) -> str:
    """The message: a variable without a value is left empty (a party with no link)."""
    return string.Formatter().vformat(text, (), _Blank(variables))


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""
