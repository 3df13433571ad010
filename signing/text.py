"""The text rules: what a text field may hold and how it is normalised.

One rule set for every text a person types: the agreement model (signing/model.py) and
the server's edge validation (server/validation.py, for every string of every REST body
and socket.io payload) both use it, so a text the server accepts is a text the model
accepts, with the same normal form and so the same fingerprint.

A text is valid Unicode (no lone surrogates), in NFC, and holds no character that is
invisible or reorders what is shown around it: control characters (Unicode Cc; a
multi-line text keeps its line breaks), the line and paragraph separators, bidirectional
controls, zero-width and other invisible format characters, noncharacters. A single-line
text loses its surrounding white space; a multi-line one has "\\n" line breaks, no
trailing spaces on a line, no blank lines at either end, and tabs as four spaces.
Visually identical texts are then identical strings: what a signer reads is what is
hashed, and a name cannot hide or reorder characters.
"""

from __future__ import annotations

import re
import unicodedata

#: Lone UTF-16 surrogates: not Unicode text (they cannot be encoded as UTF-8).
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Control characters (Unicode Cc) other than the line break a multi-line text keeps.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_SEPARATOR = re.compile("[\u2028\u2029]")
#: Bidirectional controls: embeddings and overrides, isolates, the implicit marks.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Zero-width and other invisible characters: joiners, word joiner, BOM, invisible
#: operators, deprecated format characters, the soft hyphen, the Hangul fillers,
#: interlinear annotation marks; and noncharacters.
_INVISIBLE = re.compile(
    "[\u00ad\u115f\u1160\u180e\u200b-\u200d\u2060-\u2064\u206a-\u206f\u3164"
    "\ufeff\uffa0\ufff9-\ufffb\ufdd0-\ufdef\ufffe\uffff]"
)
_CHECKS = (
    (_CONTROL, "a control character"),
    (_SEPARATOR, "a line or paragraph separator"),
    (_BIDI, "a bidirectional control character"),
    (_INVISIBLE, "an invisible (zero-width or format) character"),
)

#: The formats of server/schemas.py: single-line text, multi-line text, SDP (see
#: `check_format`); a string without one is checked as it is (`check_chars`).
TEXT = "text"
MULTILINE = "multiline-text"
SDP = "sdp"
FORMATS = (TEXT, MULTILINE, SDP)


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"


def check_unicode(value: str, what: str) -> None:
    """ValueError unless `value` is valid Unicode text (no lone surrogates)."""
    bad = _SURROGATE.search(value)
    if bad:
        raise ValueError(
            f"{what} is not valid Unicode text (a lone surrogate, {_code(bad.group())})"
        )


def check_chars(value: str, what: str, *, multiline: bool = False, allow: str = "") -> None:
    """ValueError if `value` holds a character no text may hold (module docstring);
    a multi-line text may hold "\\n", and any text the control characters in `allow`."""
    check_unicode(value, what)
    if not multiline and "\n" in value and "\n" not in allow:
        raise ValueError(f"{what} must be a single line")
    for pattern, kind in _CHECKS:
        for bad in pattern.finditer(value):
            if bad.group() not in allow:
                raise ValueError(f"{what} contains {kind} ({_code(bad.group())})")


def clean_text(value: str, what: str, *, multiline: bool = False) -> str:
    """`value` in its normal form (module docstring); ValueError names what is wrong."""
    check_unicode(value, what)
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    if multiline:
        value = "\n".join(line.rstrip() for line in value.split("\n")).strip("\n")
        value = value.replace("\t", "    ")
    else:
        if "\n" in value or "\t" in value:
            raise ValueError(f"{what} must be a single line")
        value = value.strip()
    check_chars(value, what, multiline=multiline)
    return value


def check_format(value: str, what: str, format_: str | None) -> str:
    """A string of a payload checked by its schema `format`: `text` and `multiline-text`
    are normalised (`clean_text`); `sdp` may hold tabs and CR LF line breaks; it and any
    other string are checked as they are (`check_chars`), not changed."""
    if format_ == TEXT:
        return clean_text(value, what)
    if format_ == MULTILINE:
        return clean_text(value, what, multiline=True)
    if format_ == SDP:
        check_chars(value, what, allow="\t\r\n")
        return value
    check_chars(value, what)
    return value
