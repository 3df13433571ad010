"""The case's outbox as people read it: what should be sent to whom, with its links.

A row (server/cases/sessions.py `OutboxItem`) names the recipient and the invite; the
message is made when the outbox is read: the session's join link signed again from the
invite, and for a party their own progress link (server/cases/party.py). The sending
itself (SMS) is later work: `status` stays `pending`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tiaojie.server.cases.model import Case
from tiaojie.server.cases.numbering import CST
from tiaojie.server.cases.sessions import OutboxItem, Session, side_label


def when(ts: int) -> str:
    """A session's time as residents read it: Beijing time."""
    return f"{datetime.fromtimestamp(ts, UTC).astimezone(CST):%Y-%m-%d %H:%M}（北京时间）"


def message(
    item: OutboxItem,
    case: Case,
    session: Session | None,
    join: dict[str, Any] | None,
    progress_url: str,
) -> dict[str, Any]:
    """One message of the outbox: to whom, the text, the links in it."""
    recipient = item.recipient
    role = side_label(recipient.get("side")) or (
        "专家" if recipient.get("role") == "expert" else ""
    )
    at = when(session.scheduled_at) if session else ""
    join_url = join["url"] if join and not join.get("ended") else None
    lines = [
        f"【调解通知】{recipient.get('name', '')}您好：",
        f"{case.number}（{case.dispute_type_name}）定于{at}在线调解，"
        + (f"请您以{role}身份参加。" if role else "请您参加。"),
    ]
    if join_url:
        lines.append(f"届时请用手机或电脑打开链接进入调解室：{join_url}")
    if recipient.get("role") == "party":
        lines.append(f"案件进度：{progress_url}")
    lines.append("请勿转发本链接。")
    return {
        "id": item.id,
        "kind": item.kind,
        "session_id": item.session_id,
        "status": item.status,
        "created_at": item.created_at,
        "sent_at": item.sent_at,
        "to": {
            "name": recipient.get("name"),
            "phone": recipient.get("phone"),
            "role": recipient.get("role"),
            "side": recipient.get("side"),
        },
        "scheduled_at": session.scheduled_at if session else None,
        "links": {
            "join": join_url,
            "progress": progress_url if recipient.get("role") == "party" else None,
        },
        "text": "\n".join(lines),
    }
