"""Run as a program by tests/test_ice.py: a server with --announce-ip 127.0.0.1 and two
clients in a fresh process (the ICE gathering switch is process-wide). Prints JSON."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import start_server
from tests.support.testmedia import make_test_mp4
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient


def hosts(sdp: str) -> list[str]:
    return sorted(set(re.findall(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ host", sdp, re.M)))


async def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    server = await start_server(tmp, announce_ip="127.0.0.1")
    room = await server.create_room(lobby=False)
    a = RoomClient((await server.create_invite(room["id"], "party", "A"))["url"])
    b = RoomClient((await server.create_invite(room["id"], "party", "B"))["url"])
    await a.join()
    await b.join()
    source = FileSource(make_test_mp4(tmp / "m.mp4", seconds=2))
    await a.publish(source)
    a_id = a.room_state["self"]["id"]
    for _ in range(100):
        camera = b.subscriptions_of(a_id).get("camera")
        if camera is not None and camera.keyframes >= 1 and camera.packets >= 10:
            break
        await asyncio.sleep(0.1)
    print(
        json.dumps(
            {
                "publisher_answer_hosts": hosts(a.publisher.remoteDescription.sdp),
                "subscriber_offer_hosts": hosts(b.subscriber.remoteDescription.sdp)
                if b.subscriber and b.subscriber.remoteDescription
                else [],
                "video_keyframes": camera.keyframes if camera else 0,
                "video_packets": camera.packets if camera else 0,
            }
        ),
        flush=True,
    )
    await source.stop()
    await a.close()
    await b.close()
    # The server itself is left to the end of the process (closing it while ICE checks are
    # pending can take long); its database connection is not: it would keep the process up.
    await server.state.store.close()


if __name__ == "__main__":
    asyncio.run(main())
