"""A browser behind a real NAT (tests/support/netlab.py).

Chromium runs in its own network namespace whose only way out is a router namespace that
masquerades (nftables) onto the link where the server listens with `--announce-ip`. The
root namespace has no route back to the browser's network: media flows only because the
browser's own packets opened the translation. Two pages of that browser join with their
links, publish, and decode each other through the SFU; the server's ICE sees them at the
router's address (peer-reflexive), while the pages believe they are at their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import ADMIN_TOKEN, LiveServer, free_port
from tests.support import netlab
from tests.support.chromium import chromium_over_cdp
from tiaojie.server.app import create_app
from tiaojie.server.config import Settings

pytestmark = pytest.mark.browser

#: Each connection's selected pair as the page sees it: its local and remote candidates.
SELECTED_PAIRS = """
async () => {
  const out = [];
  for (const [name, pc] of [["pub", window.tiaojie.pcPub], ["sub", window.tiaojie.pcSub]]) {
    if (!pc) continue;
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type !== "transport" || !s.selectedCandidatePairId) continue;
      const pair = stats.get(s.selectedCandidatePairId);
      const local = stats.get(pair.localCandidateId);
      const remote = stats.get(pair.remoteCandidateId);
      out.push({
        pc: name,
        local: [local.candidateType, local.address],
        remote: [remote.candidateType, remote.address],
      });
    }
  }
  return out;
}
"""


@pytest.fixture
def lab() -> Iterator[netlab.NatLab]:
    why = netlab.available()
    if why:
        pytest.fail(why)
    with netlab.nat_lab() as made:
        yield made


def server_side_remote(pc: Any) -> tuple[str, str]:
    """The (type, address) of the remote candidate the server's ICE nominated."""
    ice = pc.getTransceivers()[0].sender.transport.transport
    pairs = ice._connection._nominated
    assert pairs, "the server's ICE nominated no pair"
    remote = pairs[min(pairs)].remote_candidate
    return remote.type, remote.host


async def test_a_browser_behind_a_nat_joins_publishes_and_decodes(
    lab: netlab.NatLab, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    from tests.test_browser_media import growing, join

    # nft's masquerade really translates in this kernel (a UDP probe from the browser's
    # namespace arrived from the router's address); otherwise this test is not about NAT
    assert lab.translates, "nft masquerade did not translate the probe"

    port = free_port()
    settings = Settings(
        host=lab.server_ip,
        port=port,
        data_dir=tmp_path / "data",
        admin_token=ADMIN_TOKEN,
        announce_ip=lab.server_ip,
    )
    server = TestServer(create_app(settings), host=lab.server_ip, port=port)
    await server.start_server()
    srv = LiveServer(server, ADMIN_TOKEN, "sqlite")
    room = await srv.create_room(title="跨网调解", lobby=False)
    chromium = contextlib.contextmanager(chromium_over_cdp)
    try:
        # getUserMedia wants a secure origin: plain http on a LAN address is made one
        secure = f"--unsafely-treat-insecure-origin-as-secure=http://{lab.server_ip}:{port}"
        with chromium(tmp_path / "profile", wrapper=lab.command(), extra_args=[secure]) as endpoint:
            cdp_port = int(endpoint.rsplit(":", 1)[1])
            bridge, bridge_port = await netlab.tcp_bridge(lab.client, cdp_port)
            async with bridge, async_playwright() as p:
                browser = await p.chromium.connect_over_cdp(f"http://127.0.0.1:{bridge_port}")
                try:
                    people = [
                        await join(browser, srv, room, role, name, "room")
                        for role, name in (("mediator", "张调解员"), ("party", "李四"))
                    ]
                    for person in people:
                        assert person.invite["url"].startswith(f"http://{lab.server_ip}:")
                    mediator, party = people
                    await growing(mediator, party, "camera", "framesDecoded")
                    await growing(party, mediator, "camera", "framesDecoded")
                    await growing(mediator, party, "microphone", "totalSamplesReceived")

                    plane = srv.state.media
                    for person in people:
                        # the page: the server's STUN answers told it where it appears
                        # to be, the router's address (peer-reflexive), not its own
                        pairs = await person.page.evaluate(SELECTED_PAIRS)
                        assert {pair["pc"] for pair in pairs} == {"pub", "sub"}, pairs
                        for pair in pairs:
                            assert pair["local"] == ["prflx", lab.public_ip], pairs
                            assert pair["remote"] == ["host", lab.server_ip], pairs
                        # the server: the router's translated address, learnt from the
                        # browser's checks (peer-reflexive), never the browser's own
                        peer = plane.rooms[room["id"]].peers[person.id]
                        for pc in (peer.publisher, peer.subscriber):
                            assert server_side_remote(pc) == ("prflx", lab.public_ip)
                        assert person.errors == []
                finally:
                    for context in browser.contexts:
                        await context.close()
                    await browser.close()
            await srv.connections_closed()
    finally:
        await srv.close()
        await server.close()
