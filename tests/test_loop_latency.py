"""No participant can stall the event loop: hostile signature marks, sealing's inputs.

The server runs on the test's event loop, so a LoopLag probe (tests/support/loop_lag.py)
sees every stall of the server's loop. The bounds are on that lag, not on how long the
test takes: a 4000x4000 mark decoded on the loop stalls it for a second or more.
"""

from __future__ import annotations

import asyncio
import base64
import io

from PIL import Image

from tests.support.loop_lag import LoopLag
from tests.test_agreements import Room, mark
from tiaojie.server.agreements.marks import MAX_MARK_PIXELS
from tiaojie.server.agreements.service import MARK_BURST

#: The longest stall allowed while hostile marks arrive: a busy shared 2-core machine
#: adds tens of milliseconds; one 16-megapixel mark decoded on the loop adds 0.6 s or more.
MAX_LAG = 0.4


def blank_png(width: int, height: int) -> str:
    """A fully transparent PNG: tens of kilobytes that decode to width*height*4 bytes."""
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 0, 0, 0)).save(out, "PNG", compress_level=9)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def sign_all(client, fingerprint: str, name: str, marks: list[str]) -> list[dict]:
    payloads = [
        {"fingerprint": fingerprint, "consent": True, "name": name, "mark": m} for m in marks
    ]
    return await asyncio.gather(*(client.call("agreement_sign", p) for p in payloads))


async def test_huge_marks_are_refused_by_their_header_without_stalling(live_server) -> None:
    r = await Room(live_server).setup()
    fp = (await r.ready())["fingerprint"]
    huge = blank_png(4000, 4000)  # 16 megapixels in about 60 KB
    assert len(huge) < 100 * 1024
    async with LoopLag() as lag:
        acks = await sign_all(r.a, fp, "王五", [huge] * 6)
    assert lag.samples > 0
    assert lag.worst < MAX_LAG, f"the event loop stalled for {lag.worst:.3f} s"
    assert {(a["error"], "megapixels" in a["message"]) for a in acks} == {("bad_request", True)}
    # Refused before the rate limit: the signer still signs at once.
    assert (await Room.sign(r.a, fp, "王五"))["ok"] is True


async def test_marks_are_decoded_off_the_loop_and_rate_limited(live_server) -> None:
    r = await Room(live_server).setup()
    fp = (await r.ready())["fingerprint"]
    at_cap = blank_png(2000, MAX_MARK_PIXELS // 2000)  # as large as accepted, nothing drawn
    async with LoopLag() as lag:
        acks = await sign_all(r.b, fp, "李四", [at_cap] * (MARK_BURST + 3))
    assert lag.worst < MAX_LAG, f"the event loop stalled for {lag.worst:.3f} s"
    errors = sorted(a["error"] for a in acks)
    assert errors == ["mark_empty"] * MARK_BURST + ["rate_limited"] * 3, errors
    limited = next(a for a in acks if a["error"] == "rate_limited")
    assert "try again in" in limited["message"]
    # Only this signer is limited: the other party signs.
    assert (await Room.sign(r.a, fp, "王五"))["ok"] is True


async def test_cheap_refusals_come_before_the_mark_is_decoded(live_server) -> None:
    """No agreement yet, or not open for signatures: refused without decoding anything
    (and without using up the signer's rate limit): the answer is about the agreement,
    not about the mark."""
    r = await Room(live_server).setup()
    huge = blank_png(4000, 4000)
    async with LoopLag() as lag:
        acks = await sign_all(r.a, "ab" * 32, "王五", [huge] * (MARK_BURST + 2))
        assert {a["error"] for a in acks} == {"no_agreement"}
        fp = (await r.drafted())["fingerprint"]
        acks = await sign_all(r.a, fp, "王五", [huge] * (MARK_BURST + 2))
        assert {a["error"] for a in acks} == {"agreement_not_ready"}
    assert lag.worst < MAX_LAG, f"the event loop stalled for {lag.worst:.3f} s"
    ack = await r.mediator.call("agreement_request_signatures", {"fingerprint": fp})
    assert ack["ok"] is True
    assert (await Room.sign(r.a, fp, "王五", mark=mark()))["ok"] is True
