"""Operations: /metrics in the Prometheus text format (read back with prometheus_client's
own parser) and `--log-format json` from a real `tiaojie serve` process."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, start_server
from tests.support.server_process import wait_healthy
from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tests.test_cli import TIAOJIE, _post
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import RoomClient

METRICS_TOKEN = "metrics-token-for-the-scraper-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_are_off_without_a_token(tmp_path: Path) -> None:
    srv = await start_server(tmp_path / "data")
    try:
        status, body = await srv.request("GET", "/metrics")
        assert status == 404 and body["error"] == "metrics_off"
        status, body = await srv.admin("GET", "/metrics")  # the admin token is not a key to it
        assert status == 404
    finally:
        await srv.close()
        await srv.server.close()


async def test_metrics_count_the_room_its_media_and_the_requests(tmp_path: Path) -> None:
    srv = await start_server(tmp_path / "data", metrics_token=METRICS_TOKEN)
    room = await srv.create_room(title="指标", lobby=False)
    invites = [await srv.create_invite(room["id"], "party", name) for name in ("甲", "乙")]
    a, b = (RoomClient(i["url"]) for i in invites)
    source = FileSource(make_test_mp4(tmp_path / "m.mp4", seconds=3))
    try:
        for token in (None, "wrong", srv.admin_token):
            status, body = await srv.request("GET", "/metrics", token)
            assert status == 401 and body["error"] == "token_invalid", (token, body)

        await a.join()
        await b.join()
        await a.publish(source)
        a_id = a.room_state["self"]["id"] if a.room_state else ""
        await eventually(
            lambda: (c := b.subscriptions_of(a_id).get("camera")) is not None and c.packets > 10,
            timeout=20,
            what="b receiving a's camera",
        )

        async def scrape() -> tuple[str, dict]:
            status, text = await srv.request("GET", "/metrics", METRICS_TOKEN)
            assert status == 200, text
            return text, samples(text)

        text, first = await scrape()
        assert first[("tiaojie_rooms", ())] == 1
        assert first[("tiaojie_participants", ())] == 2
        assert first[("tiaojie_publications", (("kind", "video"),))] == 1
        assert first[("tiaojie_publications", (("kind", "audio"),))] == 1
        assert first[("tiaojie_subscriptions", (("kind", "video"),))] == 1
        frames = first[("tiaojie_forwarded_frames_total", (("kind", "video"),))]
        assert frames > 0 and first[("tiaojie_forwarded_bytes_total", (("kind", "video"),))] > 0

        async def more_frames() -> None:
            _, now = await scrape()
            return now[("tiaojie_forwarded_frames_total", (("kind", "video"),))] > frames

        for _ in range(100):
            if await more_frames():
                break
        else:
            raise AssertionError("the forwarded frame counter does not grow")

        # Forwarded packets (the packet plane: read from the subscriptions' Routes when
        # scraped): at least a packet a frame, growing while media flows, and kept when
        # the subscription ends (a Prometheus counter never goes down).
        video_packets = ("tiaojie_forwarded_packets_total", (("kind", "video"),))
        _, counted = await scrape()
        packets = counted[video_packets]
        assert packets >= counted[("tiaojie_forwarded_frames_total", (("kind", "video"),))] > 0
        assert counted[("tiaojie_forwarded_packets_total", (("kind", "audio"),))] > 0

        async def more_packets() -> bool:
            return (await scrape())[1][video_packets] > packets

        for _ in range(100):
            if await more_packets():
                break
        else:
            raise AssertionError("the forwarded packet counter does not grow")
        _, counted = await scrape()
        received = b.subscriptions_of(a_id)["camera"].packets
        packets = counted[video_packets]
        await b.leave()

        counters = srv.state.media.counters
        await eventually(lambda: not counters.sending, timeout=20, what="b's subscriptions to end")
        _, counted = await scrape()
        assert counted[video_packets] >= max(packets, received)

        # request latency by route template: no room id, no invite id, no token
        invite_route = (
            "tiaojie_http_request_duration_seconds_count",
            (
                ("method", "POST"),
                ("route", "/api/rooms/{room_id}/invites"),
                ("status", "201"),
            ),
        )
        assert first[invite_route] == 2
        for secret in (room["id"], invites[0]["invite_id"], METRICS_TOKEN, srv.admin_token):
            assert secret not in text
    finally:
        await source.stop()
        await a.leave()
        await b.leave()
        await srv.close()
        await srv.server.close()


def test_json_logs_are_one_object_per_line_without_tokens(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    admin = "admin-token-for-the-json-log-test-123"
    process = subprocess.Popen(
        [TIAOJIE, "serve", "--data", str(tmp_path / "data"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TIAOJIE_ADMIN_TOKEN": admin, "TIAOJIE_LOG_FORMAT": "json"},
    )
    try:
        wait_healthy(url, process)
        room = _post(f"{url}/api/rooms", admin, '{"title": "日志"}'.encode())
        invite = _post(
            f"{url}/api/rooms/{room['id']}/invites",
            admin,
            '{"role": "party", "name": "王小明"}'.encode(),
        )
        token = invite["url"].split("token=")[1]
        # a link opened with its token in the query (as a careless client might)
        with urllib.request.urlopen(f"{url}/join?token={token}", timeout=5) as response:
            assert response.status == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) >= 3, err
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["logger"] == "aiohttp.access" for e in entries)
    for secret in (token, admin, "王小明"):
        assert secret not in err
