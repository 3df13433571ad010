"""The wheel as a user gets it: built offline from the checkout, installed in a fresh
virtualenv, run from outside the repository (so the checkout cannot be imported instead).

The fresh virtualenv borrows the dependencies already installed in the test environment
through a .pth line (a plain path entry: the .pth files there, among them the editable
install's finder, are not run), so nothing is downloaded or copied.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.server_process import stop, wait_healthy
from tests.support.signal_client import SignalClient
from tiaojie import __version__

ROOT = Path(__file__).resolve().parent.parent
#: Build products, environments and data of the checkout: not sources.
NOT_SOURCES_AT_ROOT = {".git", ".venv", "build", "dist", "data", "test-artifacts"}

#: Run by the fresh virtualenv's Python: where its `tiaojie` comes from, and whether the
#: editable install's finder came along with the borrowed dependencies.
WHERE = """
import json, sys
import tiaojie, tiaojie.server.app, tiaojie.server.web
print(json.dumps({
    "package": tiaojie.__file__,
    "app": tiaojie.server.app.__file__,
    "web": str(tiaojie.server.web.WEB_DIR),
    "finders": [getattr(f, "__name__", type(f).__name__) for f in sys.meta_path],
    "modules": [m for m in sys.modules if "editable" in m],
}))
"""


def _not_sources(directory: str, names: list[str]) -> set[str]:
    ignored = {n for n in names if n == "__pycache__" or n.endswith("_cache")}
    if Path(directory) == ROOT:
        ignored |= {n for n in names if n in NOT_SOURCES_AT_ROOT or n.endswith(".egg-info")}
    return ignored


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


def _user_env(venv: Path) -> dict[str, str]:
    """This environment minus what would point Python or the server elsewhere."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTHON", "TIAOJIE_", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # From a copy of the checkout: setuptools builds in the source tree and packs whatever
    # its build/lib holds, stale files from an earlier build included.
    source = tmp_path_factory.mktemp("source") / "tiaojie"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_not_sources)
    wheelhouse = tmp_path_factory.mktemp("wheelhouse")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--no-cache-dir",
            "-w",
            wheelhouse,
            source,
        ],
        cwd=wheelhouse,
    )
    (built,) = wheelhouse.glob("tiaojie-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=elsewhere)
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--no-cache-dir",
            wheel,
        ],
        cwd=elsewhere,
        env=_user_env(venv),
    )
    # Only now (pip would take the editable install's metadata for tiaojie already there).
    site = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        cwd=elsewhere,
        env=_user_env(venv),
    ).strip()
    dependencies = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(site) / "tiaojie_test_dependencies.pth").write_text("\n".join(sorted(dependencies)))
    return venv


def test_the_wheel_holds_only_tiaojie_with_its_web_client(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    strays = [n for n in names if not re.match(r"tiaojie/|tiaojie-[^/]+\.dist-info/", n)]
    assert strays == []
    assert "tiaojie/web/join.html" in names
    assert "tiaojie/web/js/join.js" in names
    assert "tiaojie/web/vendor/socket.io/socket.io.esm.min.js" in names
    # The installed package migrates its own database: Alembic's environment and template.
    assert "tiaojie/server/db/migrations/env.py" in names
    assert "tiaojie/server/db/migrations/script.py.mako" in names
    # The packet plane's C extension, compiled by the build (rtc/_fastpath.c).
    assert [n for n in names if re.match(r"tiaojie/rtc/_fastpath\..*\.so$", n)]
    # Every module and every web file of the checkout (a folder without __init__.py, or a
    # web subfolder the package-data globs miss, would be left out silently).
    expected = set()
    for directory, folders, files in os.walk(ROOT / "tiaojie", followlinks=True):
        folders[:] = [f for f in folders if f != "__pycache__"]
        relative = Path(directory).relative_to(ROOT)
        in_web = relative.parts[1:2] == ("web",)
        expected |= {
            (relative / f).as_posix() for f in files if in_web or f.endswith((".py", ".typed"))
        }
    assert expected - set(names) == set()


def test_the_installed_package_is_what_runs(venv, tmp_path):
    python, env = venv / "bin" / "python", _user_env(venv)
    where = json.loads(_run([python, "-c", WHERE], cwd=tmp_path, env=env))
    inside = venv.resolve()
    for name in ("package", "app", "web"):
        assert Path(where[name]).resolve().is_relative_to(inside), where
    assert where["modules"] == [] and "_EditableFinder" not in where["finders"], where
    version = _run([python, "-m", "tiaojie", "--version"], cwd=tmp_path, env=env)
    assert version.strip() == f"tiaojie {__version__}"


def _http(url: str, token: str | None = None, body: dict | None = None) -> tuple[int, str, str]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def test_the_installed_command_serves_the_join_page_and_a_join(venv, tmp_path):
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    command = ["serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
    process = subprocess.Popen(
        [venv / "bin" / "tiaojie", *command],
        cwd=tmp_path,
        env=_user_env(venv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = wait_healthy(url, process)
        assert health["status"] == "ok" and health["version"] == __version__
        assert health["backend"] == "sqlite" and (data / "tiaojie.db").is_file()  # migrated

        status, kind, page = _http(f"{url}/join")
        assert status == 200 and kind.startswith("text/html")
        versioned = re.search(r'"/static/(v/[0-9a-f]+/)js/join\.js"', page)
        assert "<title>" in page and versioned, page  # the page names its assets by version
        for script in ("js/join.js", "vendor/socket.io/socket.io.esm.min.js"):
            for prefix in ("", versioned.group(1)):
                status, kind, _ = _http(f"{url}/static/{prefix}{script}")
                assert status == 200 and "javascript" in kind, (prefix, script)

        admin = (data / "admin_token").read_text().strip()
        status, _, text = _http(f"{url}/api/rooms", admin, {"title": "邻里纠纷", "lobby": False})
        assert status == 201
        room = json.loads(text)
        status, _, text = _http(
            f"{url}/api/rooms/{room['id']}/invites", admin, {"role": "party", "name": "张三"}
        )
        assert status == 201
        invite = json.loads(text)

        async def join() -> dict:
            client = SignalClient(url)
            try:
                await client.connect({"token": invite["token"]})
                return dict(await client.wait_for("welcome"))
            finally:
                await client.close()

        # the image's health check, as the installed command runs it
        probe = subprocess.run(
            [venv / "bin" / "tiaojie", "health"],
            env={**_user_env(venv), "TIAOJIE_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert probe.returncode == 0, probe.stderr

        welcome = asyncio.run(join())
        assert welcome["room"]["id"] == room["id"]
        assert welcome["participant"]["name"] == "张三"
        assert welcome["participant"]["status"] == "joined"
    finally:
        if process.poll() is None:
            output = stop(process)
        else:
            output = process.stdout.read() if process.stdout else ""
    assert process.returncode == 0, output
    assert f"Tiaojie {__version__} is running: open {url}/" in output
