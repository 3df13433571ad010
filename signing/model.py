"""The agreement model, its canonical text and the text's fingerprint.

An `Agreement` is what the mediator drafts in the room. `canonical_text()` renders it
with the template of its language (`signing/templates.py`); that exact text is what every
participant sees, what each signer consents to and what the PDF prints. `fingerprint()`
is the sha256 (hex) of that text as UTF-8: a signature is bound to the fingerprint of
the text version its signer saw, and the UI shows the first 12 hex characters.

Text fields are normalised on construction by the text rules of signing/text.py (Unicode
NFC, line breaks to "\\n", trailing spaces of each line and surrounding blank lines
removed, no control, bidirectional or invisible characters), the same rules the server
applies to every text it receives, so the same visible text always has the same
fingerprint whatever browser typed it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from tiaojie.signing.templates import DEFAULT_LANGUAGE, TEMPLATES
from tiaojie.signing.text import clean_text

PARTY_ROLES = ("applicant", "respondent")
SIGNER_ROLES = ("applicant", "respondent", "mediator")
LANGUAGES = tuple(TEMPLATES)

MAX_NAME = 100
MAX_ID_NUMBER = 40
MAX_CASE_NUMBER = 100
MAX_PARTIES = 20
MAX_EXPERTS = 20
MAX_FACTS = 20_000
MAX_TERMS = 50
MAX_TERM = 2_000
MAX_PERFORMANCE = 5_000
MAX_DATE = 100
MAX_PLACE = 200
MAX_RECORDING_ID = 100
MAX_URL = 500
FINGERPRINT_SHOWN = 12  # hex characters of the fingerprint a participant is shown

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _text(value: Any, what: str, limit: int, *, multiline: bool = False, empty: bool = True) -> str:
    """`value` checked and normalised by the text rules (signing/text.py), within `limit`."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    value = clean_text(value, what, multiline=multiline)
    if len(value) > limit:
        raise ValueError(f"{what} is too long ({len(value)} characters, at most {limit})")
    if not empty and not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


def _list(value: Any, what: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list, not {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{what}: too many ({len(value)}, at most {limit})")
    return value


@dataclass
class Party:
    name: str
    role: str  # "applicant" | "respondent"
    id_number: str | None = None

    def __post_init__(self) -> None:
        self.name = _text(self.name, "party name", MAX_NAME, empty=False)
        if self.role not in PARTY_ROLES:
            raise ValueError(f"party role must be one of {', '.join(PARTY_ROLES)}: {self.role!r}")
        if self.id_number is not None:
            self.id_number = _text(self.id_number, "party ID number", MAX_ID_NUMBER) or None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Party:
        if not isinstance(d, dict):
            raise ValueError(f"a party must be an object, not {type(d).__name__}")
        unknown = set(d) - {"name", "role", "id_number"}
        if unknown:
            raise ValueError(f"unknown party field(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {k: d.get(k) for k in ("name", "role", "id_number")}
        return cls(**values)  # the constructor checks each value


@dataclass(kw_only=True)
class Agreement:
    """A mediation agreement. Construction validates (ValueError) and normalises the text.

    A draft may be incomplete (no terms yet, empty facts); `incomplete()` lists what is
    still missing before it can be signed.
    """

    case_number: str
    language: str = DEFAULT_LANGUAGE  # "zh-CN" | "en"
    parties: list[Party] = field(default_factory=list)
    mediator: str = ""
    experts: list[str] = field(default_factory=list)
    facts: str = ""
    terms: list[str] = field(default_factory=list)
    performance: str = ""
    date: str = ""
    place: str = ""
    recording_id: str | None = None
    chain_head: str | None = None
    #: The progress page of the case the agreement belongs to (一案一码), printed as a
    #: second QR code; not part of the text (the server adds it when it seals).
    case_url: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check and normalise every field (also after the fields were assigned)."""
        self.case_number = _text(self.case_number, "case number", MAX_CASE_NUMBER, empty=False)
        if self.language not in TEMPLATES:
            raise ValueError(
                f"language must be one of {', '.join(LANGUAGES)}, not {self.language!r}"
            )
        parties = _list(self.parties, "parties", MAX_PARTIES)
        for i, party in enumerate(parties):
            if not isinstance(party, Party):
                raise ValueError(f"parties[{i}] must be a Party")
            party.__post_init__()
        self.mediator = _text(self.mediator, "mediator name", MAX_NAME)
        experts = _list(self.experts, "experts", MAX_EXPERTS)
        self.experts = [
            _text(e, f"experts[{i}]", MAX_NAME, empty=False) for i, e in enumerate(experts)
        ]
        self.facts = _text(self.facts, "facts", MAX_FACTS, multiline=True)
        terms = _list(self.terms, "terms", MAX_TERMS)
        self.terms = [
            _text(t, f"term {i + 1}", MAX_TERM, multiline=True, empty=False)
            for i, t in enumerate(terms)
        ]
        self.performance = _text(self.performance, "performance", MAX_PERFORMANCE, multiline=True)
        self.date = _text(self.date, "date", MAX_DATE)
        self.place = _text(self.place, "place", MAX_PLACE)
        if self.recording_id is not None:
            self.recording_id = _text(self.recording_id, "recording id", MAX_RECORDING_ID) or None
        if self.chain_head is not None:
            if not isinstance(self.chain_head, str) or not _HEX64.fullmatch(self.chain_head):
                raise ValueError("chain head must be 64 lowercase hex characters (a sha256)")
            if self.recording_id is None:
                raise ValueError("a chain head needs the recording id it belongs to")
        if self.case_url is not None:
            self.case_url = _text(self.case_url, "case URL", MAX_URL) or None
            if self.case_url is not None and not self.case_url.startswith(("https://", "http://")):
                raise ValueError("the case URL must be an http(s) address")

    def incomplete(self) -> list[str]:
        """What is still missing before this agreement can be signed (empty: complete)."""
        missing = []
        roles = {p.role for p in self.parties}
        for role in PARTY_ROLES:
            if role not in roles:
                missing.append(f"no {role}")
        for name, value in (
            ("mediator", self.mediator),
            ("facts", self.facts),
            ("performance", self.performance),
            ("date", self.date),
            ("place", self.place),
        ):
            if not value:
                missing.append(f"no {name}")
        if not self.terms:
            missing.append("no terms")
        return missing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Agreement:
        """An agreement from its JSON form; ValueError names the first bad field."""
        if not isinstance(d, dict):
            raise ValueError(f"an agreement must be an object, not {type(d).__name__}")
        fields = {
            "case_number",
            "language",
            "parties",
            "mediator",
            "experts",
            "facts",
            "terms",
            "performance",
            "date",
            "place",
            "recording_id",
            "chain_head",
            "case_url",
        }
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown agreement field(s): {', '.join(sorted(unknown))}")
        if "case_number" not in d:
            raise ValueError("case number is missing")
        parties = _list(d.get("parties", []), "parties", MAX_PARTIES)
        values = {k: v for k, v in d.items() if k != "parties"}
        return cls(**values, parties=[Party.from_dict(p) for p in parties])


def role_label(language: str, role: str) -> str:
    """The word for a signer role ("applicant", "respondent", "mediator") in `language`."""
    return TEMPLATES[language].roles[role]


def canonical_text(agreement: Agreement) -> str:
    """The exact text of the agreement: shown live, signed (by fingerprint) and printed."""
    agreement.validate()
    t = TEMPLATES[agreement.language]
    lines = [t.title, "", t.case_number.format(agreement.case_number), "", t.parties_heading]
    for party in agreement.parties:
        line = t.party.format(t.roles[party.role], party.name)
        if party.id_number:
            line += t.id_number.format(party.id_number)
        lines.append(line)
    lines.append(t.mediator.format(agreement.mediator))
    experts = t.list_separator.join(agreement.experts) if agreement.experts else t.none
    lines.append(t.experts.format(experts))
    lines += ["", t.facts_heading, agreement.facts, "", t.terms_heading, t.terms_intro]
    for number, term in enumerate(agreement.terms, 1):
        first, *rest = term.split("\n")
        lines.append(f"{number}. {first}")
        lines += [f"   {line}" if line else "" for line in rest]
    lines += ["", t.performance_heading, agreement.performance, "", t.other_heading, t.effect]
    if agreement.recording_id:
        head = agreement.chain_head or "-"
        lines.append(t.recording.format(agreement.recording_id, head))
    else:
        lines.append(t.no_recording)
    lines += ["", t.date.format(agreement.date), t.place.format(agreement.place)]
    return "\n".join(lines) + "\n"


def fingerprint(agreement: Agreement) -> str:
    """sha256 (hex) of the canonical text, UTF-8. Show `[:FINGERPRINT_SHOWN]` to people."""
    return hashlib.sha256(canonical_text(agreement).encode()).hexdigest()


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_MARK_PNG = 1_000_000  # bytes of one handwritten mark


@dataclass
class SignerMark:
    """One signer's consent: who, as what, when, their handwritten mark, which text.

    `fingerprint` is the fingerprint of the text version the signer read and consented
    to; Notary.sign_agreement refuses a mark whose fingerprint is not the current one.
    """

    name: str
    role: str  # "applicant" | "respondent" | "mediator"
    signed_at: float  # Unix seconds
    mark_png: bytes
    fingerprint: str

    def __post_init__(self) -> None:
        self.name = _text(self.name, "signer name", MAX_NAME, empty=False)
        if self.role not in SIGNER_ROLES:
            raise ValueError(f"signer role must be one of {', '.join(SIGNER_ROLES)}: {self.role!r}")
        if isinstance(self.signed_at, bool) or not isinstance(self.signed_at, int | float):
            raise ValueError("signed_at must be a number (Unix seconds)")
        if not isinstance(self.mark_png, bytes) or not self.mark_png.startswith(PNG_MAGIC):
            raise ValueError("the handwritten mark must be PNG bytes")
        if len(self.mark_png) > MAX_MARK_PNG:
            raise ValueError(f"the handwritten mark is too large (at most {MAX_MARK_PNG} bytes)")
        if not isinstance(self.fingerprint, str) or not _HEX64.fullmatch(self.fingerprint):
            raise ValueError("fingerprint must be 64 lowercase hex characters (a sha256)")
