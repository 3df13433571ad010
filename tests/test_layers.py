"""The one-way layers of docs/ARCHITECTURE.md, checked on every import of every product module.

Function-level imports count as much as top-level ones: a layer edge hidden inside a function
is still an edge. The checker is tried on made-up modules too, so it is known to be able to fail.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tiaojie"

#: What each layer may import besides itself (docs/ARCHITECTURE.md). `tiaojie` alone (the
#: root package, which holds only the version) may be imported by every layer.
ALLOWED: dict[str, frozenset[str]] = {
    "rtc": frozenset(),
    "archive": frozenset(),
    "signing": frozenset({"archive"}),
    "client": frozenset({"rtc"}),
    "recorder": frozenset({"client", "archive", "signing", "rtc"}),
    "server": frozenset({"rtc", "archive", "signing"}),
    "cli": frozenset({"rtc", "archive", "signing", "client", "recorder", "server"}),
}
#: Top-level folders that must only ever be imported under their `tiaojie.` name.
LAYER_FOLDERS = ("server", "client", "recorder", "signing", "rtc", "archive")
NOT_PRODUCT = ("tests", "bench")


def layer_of(module: str) -> str | None:
    """`tiaojie.server.app` -> `server`; the CLI modules -> `cli`; `tiaojie` -> None."""
    parts = module.split(".")
    if parts[0] != "tiaojie" or len(parts) == 1:
        return None
    if parts[1] in ("cli", "__main__"):
        return "cli"
    return parts[1]


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every module named by an import statement anywhere in `source`, made absolute."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from tiaojie import server` imports the module tiaojie.server.
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    here = layer_of(module) or "rtc"  # the root package may import nothing of its own
    problems = []
    for line, name in imported_modules(source, module, is_package):
        top = name.split(".")[0]
        if top in LAYER_FOLDERS or top in NOT_PRODUCT:
            problems.append(f"{module}:{line} imports {name} (use tiaojie.*; never tests/bench)")
            continue
        target = layer_of(name)
        if top != "tiaojie" or target is None or target == here:
            continue
        if target not in ALLOWED[here] and target in ALLOWED:
            problems.append(f"{module}:{line}: layer {here} may not import {name}")
    return problems


def product_modules() -> list[tuple[str, Path]]:
    modules = []
    paths = [
        Path(folder, name)
        for folder, _, names in os.walk(PACKAGE, followlinks=True)  # into the linked folders
        for name in names
        if name.endswith(".py")
    ]
    for path in sorted(paths):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules.append((".".join(parts), path))
    return modules


def test_every_layer_folder_is_linked_and_walked() -> None:
    modules = {name for name, _ in product_modules()}
    for folder in LAYER_FOLDERS:
        assert (PACKAGE / folder).resolve() == ROOT / folder
        assert f"tiaojie.{folder}" in modules
    assert "tiaojie.cli" in modules and "tiaojie.rtc.aiortc_internals" in modules
    assert len(modules) > 60


def test_product_imports_respect_the_layers() -> None:
    problems = []
    for module, path in product_modules():
        is_package = path.name == "__init__.py"
        problems += violations(path.read_text(encoding="utf-8"), module, is_package)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("tiaojie.rtc.codecs", "from tiaojie.server.app import create_app\n"),
        ("tiaojie.client.session", "def f():\n    from tiaojie.server import rooms\n"),
        ("tiaojie.client.session", "from tiaojie import server\n"),
        ("tiaojie.archive.chain", "import tiaojie.signing.tsa\n"),
        ("tiaojie.signing.validator", "from tiaojie.recorder.session import Recorder\n"),
        ("tiaojie.server.media.sfu", "from ...client.session import RoomClient\n"),
        ("tiaojie.server.app", "from tiaojie.cli import main\n"),
        ("tiaojie.server.app", "import server.rooms\n"),
        ("tiaojie.recorder.session", "from tests.support.testmedia import make_test_mp4\n"),
    ],
)
def test_the_checker_finds_a_forbidden_import(module: str, source: str) -> None:
    assert violations(source, module)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("tiaojie.server.app", "from tiaojie.archive.layout import CHAIN_FILE\n"),
        ("tiaojie.server.media.sfu", "from ..rooms import join\n"),
        ("tiaojie.recorder.session", "from tiaojie.client.session import RoomClient\n"),
        ("tiaojie.server", "from tiaojie import __version__\n"),
        ("tiaojie.cli", "from tiaojie.server.app import create_app\n"),
    ],
)
def test_the_checker_allows_what_the_layers_allow(module: str, source: str) -> None:
    assert not violations(source, module, is_package=module == "tiaojie.server")


INTERNALS = "tiaojie.rtc.aiortc_internals"


def private_aiortc_uses(source: str) -> list[int]:
    """Lines that import aioice, or a private name of aiortc/aioice, or read `._x` of anything."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
            if any(n.split(".")[0] == "aioice" for n in [module, *names]) or (
                module.split(".")[0] == "aiortc" and any(n.startswith("_") for n in names)
            ):
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.endswith("_")  # dunder and enum sunder names are public
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            lines.append(node.lineno)
    return lines


def test_aiortc_private_access_lives_in_one_module() -> None:
    """The SLF001 exceptions in pyproject.toml stay few; aioice and aiortc's private names
    are used by rtc/aiortc_internals.py alone (its own test fails when they move)."""
    found = {
        module: lines
        for module, path in product_modules()
        if module != INTERNALS
        and (lines := private_aiortc_uses(path.read_text(encoding="utf-8")))
        and module not in ("tiaojie.signing.pdf", "tiaojie.cli")  # fpdf2, argparse: no aiortc
    }
    assert not found, found
    internals = (PACKAGE / "rtc" / "aiortc_internals.py").read_text(encoding="utf-8")
    assert private_aiortc_uses(internals), "the internals module moved or was renamed"
    assert private_aiortc_uses("import aioice.ice\n") == [1]
    assert private_aiortc_uses("def f(t):\n    return t._receiver\n") == [2]
