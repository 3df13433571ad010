"""Display names that would impersonate: the system's own labels are reserved.

Everyone sees a participant's role from their invite (the web client prints the role
label next to each name), but a name such as "调解员", "录制 Recorder" or "System" would
still read as the system speaking. So the labels the system shows for itself and for
each role, in both languages, are reserved: a name that is one of them, or holds one as
a word, is refused unless the participant has that role. Names are compared after NFKC
normalisation and case folding, word by word (runs of letters and digits), so
"ＭＥＤＩＡＴＯＲ", "Mediator:" or "张三（调解员）" are caught; look-alike letters of other
scripts are not, which is why the role label, not the name, is what tells people apart.
"""

from __future__ import annotations

import unicodedata

from tiaojie.server.errors import TiaojieError
from tiaojie.server.roles import Role

#: Reserved labels -> the roles that may carry them (none: the system's own).
_LABELS: dict[frozenset[Role], tuple[str, ...]] = {
    frozenset(): ("system", "系统", "admin", "administrator", "管理员"),
    frozenset({Role.MEDIATOR}): ("mediator", "调解员"),
    frozenset({Role.PARTY}): (
        "party",
        "当事人",
        "applicant",
        "申请人",
        "respondent",
        "被申请人",
    ),
    frozenset({Role.EXPERT}): ("expert", "专家"),
    frozenset({Role.OBSERVER}): ("observer", "旁听"),
    frozenset({Role.RECORDER}): ("recorder", "录制", "录制 Recorder"),
}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _words(text: str) -> list[str]:
    """Runs of letters and digits (marks join their letter), after folding."""
    words, current = [], []
    for char in _fold(text):
        kind = unicodedata.category(char)
        if kind[0] in "LN":
            current.append(char)
        elif kind[0] == "M" or kind == "Cf":
            continue  # a combining or format character does not split a word
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


RESERVED: dict[str, frozenset[Role]] = {
    "".join(_words(label)): roles for roles, labels in _LABELS.items() for label in labels
}


def reserved_for(name: str) -> frozenset[Role] | None:
    """The roles that may carry `name`, if it is or holds a reserved label; else None."""
    words = _words(name)
    allowed: frozenset[Role] | None = None
    for key in [*words, "".join(words)]:
        roles = RESERVED.get(key)
        if roles is not None:
            allowed = roles if allowed is None else allowed & roles
    return allowed


def check_name(name: str, role: Role) -> None:
    """Refuse a display name that would pass for another role or for the system."""
    allowed = reserved_for(name)
    if allowed is not None and role not in allowed:
        raise TiaojieError(
            "name_reserved",
            f"The name {name!r} is reserved for the system's own labels and roles; "
            "choose another name.",
        )
