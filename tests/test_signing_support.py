"""Helpers for the signing tests (no tests here): sample agreements, marks, a recording,
an HTTP TSA, and the independent checkers the tests need."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image, ImageDraw

from tiaojie.archive.chain import ChainWriter
from tiaojie.archive.keys import public_pem
from tiaojie.archive.layout import PUBLIC_KEY_FILE
from tiaojie.signing.authority import Authority
from tiaojie.signing.model import Agreement, SignerMark, fingerprint
from tiaojie.signing.tsa import TimeStampAuthority, tsa_app

STATUS_URL = "https://mediation.example.org/a/K7Q2M9XW"
TOOLS = {
    "pdfsig": "poppler-utils",
    "pdftotext": "poppler-utils",
    "pdftoppm": "poppler-utils",
    "certutil": "libnss3-tools",
    "qpdf": "qpdf",
}


def require_tool(name: str) -> str:
    """The path of an independent checker; the test fails (never skips) without it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {TOOLS.get(name, name)}")
    return path


def mark_png(seed: int = 0) -> bytes:
    """A handwritten-looking mark with a transparent background, as a browser canvas gives."""
    image = Image.new("RGBA", (300, 120), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    points = [(10 + i * 28, 60 + ((i * 37 + seed * 11) % 50) - 25) for i in range(10)]
    draw.line(points, fill=(10, 20, 90, 255), width=5)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def sample_agreement(
    language: str = "zh-CN", recording_id: str | None = None, chain_head: str | None = None
) -> Agreement:
    return Agreement.from_dict(
        {
            "case_number": "（2025）社调字第0042号",
            "language": language,
            "parties": [
                {"name": "张三", "role": "applicant", "id_number": "110101199001011234"},
                {"name": "李四", "role": "respondent"},
            ],
            "mediator": "王调解",
            "experts": ["赵律师"],
            "facts": "张三与李四系上下楼邻居。李四家夜间噪音影响张三休息，双方多次发生争执。",
            "terms": [
                "李四自本协议签订之日起，每日22时至次日7时不在室内制造明显噪音。",
                "张三不再就此前的噪音问题向李四主张赔偿。",
                "双方今后发生纠纷，应当协商解决或者申请调解。",
            ],
            "performance": "第一项自签订之日起长期履行；社区调解委员会于一个月后回访。",
            "date": "2025年11月22日",
            "place": "幸福社区人民调解委员会（在线调解室）",
            "recording_id": recording_id,
            "chain_head": chain_head,
        }
    )


def sample_marks(agreement: Agreement, text_fingerprint: str | None = None) -> list[SignerMark]:
    fp = text_fingerprint or fingerprint(agreement)
    now = time.time()
    signers = [(p.name, p.role) for p in agreement.parties] + [(agreement.mediator, "mediator")]
    return [
        SignerMark(name, role, now - 60 + i, mark_png(i), fp)
        for i, (name, role) in enumerate(signers)
    ]


def make_recording(directory: Path, recording_id: str, fragments: int = 5) -> ChainWriter:
    """A recording folder with a chain (start event, init, fragments, a checkpoint) and the
    recorder's public key; no Segment files."""
    directory.mkdir(parents=True)
    key = Ed25519PrivateKey.generate()
    (directory / PUBLIC_KEY_FILE).write_bytes(public_pem(key.public_key()))
    writer = ChainWriter(directory, recording_id, key)
    writer.append("event", event={"kind": "recording_started"})
    offset = 0
    for i in range(fragments + 1):
        data = bytes([i % 256]) * (1000 + i)
        writer.add_bytes(
            "init" if i == 0 else "fragment", "segments/0001-p_a-camera.mp4", offset, data
        )
        offset += len(data)
    writer.append("checkpoint")
    return writer


@contextmanager
def http_tsa(authority: TimeStampAuthority) -> Iterator[str]:
    """An RFC 3161 TSA over HTTP on a free local port, in a thread; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(tsa_app(authority))
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "the test TSA did not start"
    try:
        yield f"http://127.0.0.1:{port}/tsa"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _serve_tsa(keys_dir: str, port: int) -> None:
    authority = Authority.load_or_create(Path(keys_dir))
    tsa = TimeStampAuthority(authority.tsa_key, authority.tsa_cert)
    web.run_app(tsa_app(tsa), host="127.0.0.1", port=port, print=None, handle_signals=False)


@contextmanager
def tsa_process(keys_dir: Path) -> Iterator[str]:
    """The TSA of the authority in `keys_dir`, over HTTP, in a separate process (as a
    real TSA would be: not competing with the signer for the interpreter); yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_tsa, args=(str(keys_dir), port), daemon=True
    )
    process.start()
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/tsa"
    finally:
        process.terminate()
        process.join(10)
