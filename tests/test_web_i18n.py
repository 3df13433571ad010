"""The browser client's texts: both languages have the same keys (and placeholders), and
every key the pages use is in them.

The language files (web/js/i18n/<lang>.js) hold one object after `export default` that
is strict JSON, so it is read here without a JavaScript engine. Keys in use are found in
the HTML's `data-i18n` / `data-i18n-<attr>` attributes and in the JavaScript: the first
argument of `t(...)` / `has(...)` (a string, or both strings of a `cond ? "a" : "b"`),
`"data-i18n...": "key"` properties, and any other double-quoted string that looks like a
key of a known group (`"room.status.muted"` in a `key = ...` line). Keys built at run
time (`t(\\`reason.${code}\\`)`) cannot be checked here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tiaojie.server.cases.progress import TEXT as PROGRESS_TEXT

WEB = Path(__file__).resolve().parents[1] / "web"
LANGS = ["zh-CN", "en"]

# Double-quoted strings that look like keys of a known group but are not keys.
NOT_KEYS = {
    "recording.json",  # an evidence file of a recording
    "recordings.error",  # a key prefix: recordings.error.<code>
    "login.error",  # the login page's: login.error.<code>
    "staff.error",  # the staff page's: staff.error.<code>
    "report.error",  # a key prefix: report.error.<code>
    "chat.error",  # the chat panel's: chat.error.<code>
    "booking.error",  # the booking page's: booking.error.<code>
}

KEY = r"[A-Za-z0-9_.-]+"
HTML_KEY = re.compile(rf'\bdata-i18n(?:-[a-z-]+)?="({KEY})"')
# t(...) and has(...) as functions (i18n.js), not methods such as `parts.has("self")`
JS_CALL = re.compile(rf'(?<![\w.$])(?:t|has)\(\s*"({KEY})"')
JS_TERNARY = re.compile(rf'(?<![\w.$])t\([^()"`]*\?\s*"({KEY})"\s*:\s*"({KEY})"')
JS_ATTR = re.compile(rf'"data-i18n(?:-[a-z-]+)?":\s*"({KEY})"')
JS_KEYLIKE = re.compile(r'"([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)"')
COMMENT = re.compile(r"/\*.*?\*/|(?<![:\"'])//[^\n]*", re.S)


def load_texts(lang: str) -> dict[str, str]:
    """The object after `export default` in web/js/i18n/<lang>.js (duplicate keys refused)."""
    source = (WEB / "js" / "i18n" / f"{lang}.js").read_text(encoding="utf-8")
    _, sep, body = source.partition("export default ")
    assert sep, f"{lang}.js has no `export default`"
    body = body.strip()
    assert body.endswith(";"), f"{lang}.js must end with the object and a `;`"

    def no_duplicates(pairs: list[tuple[str, str]]) -> dict[str, str]:
        keys = [k for k, _ in pairs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        assert not dupes, f"{lang}.js has duplicate keys: {dupes}"
        return dict(pairs)

    texts = json.loads(body[:-1], object_pairs_hook=no_duplicates)
    assert isinstance(texts, dict) and all(isinstance(v, str) for v in texts.values())
    return texts


def keys_in_html(text: str) -> set[str]:
    return set(HTML_KEY.findall(text))


def keys_in_js(text: str, groups: set[str]) -> set[str]:
    """Keys a script uses literally; `groups` are the first parts of the known keys."""
    code = COMMENT.sub("", text)
    found = set(JS_CALL.findall(code)) | set(JS_ATTR.findall(code))
    for a, b in JS_TERNARY.findall(code):
        found |= {a, b}
    for s in JS_KEYLIKE.findall(code):
        if s.split(".")[0] in groups and s not in NOT_KEYS:
            found.add(s)
    return found


@pytest.fixture(scope="module")
def texts() -> dict[str, dict[str, str]]:
    return {lang: load_texts(lang) for lang in LANGS}


def test_languages_have_the_same_keys(texts):
    zh, en = texts["zh-CN"], texts["en"]
    assert len(zh) > 300  # the whole dictionary was read
    assert sorted(zh.keys() - en.keys()) == [], "keys missing in en.js"
    assert sorted(en.keys() - zh.keys()) == [], "keys missing in zh-CN.js"


def test_languages_have_the_same_placeholders(texts):
    def names(s: str) -> set[str]:
        return set(re.findall(r"\{(\w+)\}", s))

    zh, en = texts["zh-CN"], texts["en"]
    differ = {k: (names(zh[k]), names(en[k])) for k in zh.keys() & en.keys()}
    assert {k: v for k, v in differ.items() if v[0] != v[1]} == {}


def test_every_key_the_pages_use_exists(texts):
    known = texts["zh-CN"].keys() & texts["en"].keys()
    groups = {k.split(".")[0] for k in known}
    used: dict[str, set[str]] = {}
    for page in sorted(WEB.glob("*.html")):
        used[page.name] = keys_in_html(page.read_text(encoding="utf-8"))
    for script in sorted((WEB / "js").glob("*.js")):
        used[f"js/{script.name}"] = keys_in_js(script.read_text(encoding="utf-8"), groups)
    # the extraction works: every page and the room's scripts use keys
    assert all(used[f] for f in ["index.html", "join.html", "recordings.html", "js/room-view.js"])
    assert sum(len(keys) for keys in used.values()) > 250
    missing = {f: sorted(keys - known) for f, keys in used.items() if keys - known}
    assert missing == {}


def test_the_extraction_finds_each_form():
    html = '<h1 data-i18n="a.title">x</h1><input data-i18n-placeholder="a.hint">'
    assert keys_in_html(html) == {"a.title", "a.hint"}
    js = """
      // t("a.in_comment") is ignored
      el.textContent = t("a.one", { n: 1 });
      if (has("a.two")) label = t(on ? "a.three" : "a.four");
      h("p", { "data-i18n": "a.five", text: "" });
      const KEYS = { x: "a.six" }; const url = "https://example.org/a.b";
      h("span.badge"); const file = "recording.json"; preview.has("audio.x");
    """
    assert keys_in_js(js, {"a", "recording"}) == {
        "a.one",
        "a.two",
        "a.three",
        "a.four",
        "a.five",
        "a.six",
    }


def test_the_progress_page_has_both_languages_alike() -> None:
    """The public case page (/c/{code}) is rendered on the server from its own texts
    (server/cases/progress.py TEXT): the same keys and placeholders in both languages."""
    zh, en = PROGRESS_TEXT["zh-CN"], PROGRESS_TEXT["en"]
    assert zh.keys() == en.keys()
    assert {k: re.findall(r"\{(\w+)\}", zh[k]) for k in zh} == {
        k: re.findall(r"\{(\w+)\}", en[k]) for k in en
    }
    assert zh["agreement.signing"].format(signed=1, total=3) == "签署中：已签 1/3"
