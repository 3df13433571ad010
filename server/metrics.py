"""`GET /metrics` in the Prometheus text format, and the request-latency middleware.

One registry per application (tests run several servers in one process). Live figures
(rooms, participants, publications, subscriptions) are read from the media plane when
scraped; counters come from what the media plane, the recorder supervisor and the sealer
counted since the process started (server/media/counters.py). Labels never carry an id,
a name or a token: a request is labelled by its route template (`/api/rooms/{room_id}`).

Who may read it: whoever presents `--metrics-token` as a bearer token. Without one set,
/metrics is off (404): "from this machine" is no rule behind a reverse proxy, where every
request comes from loopback, and the admin token is too strong to hand to a scraper.
"""

from __future__ import annotations

import gc
import hmac
import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from tiaojie.server.agreements.service import Agreements
from tiaojie.server.errors import TiaojieError
from tiaojie.server.media.counters import KINDS
from tiaojie.server.media.sfu import MediaPlane
from tiaojie.server.recordings.service import Recordings
from tiaojie.server.signalling import Signalling

METRICS_PATH = "/metrics"
#: Request latency buckets (seconds): from a cached page to a sealed agreement's upload.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Live(Collector):
    """Read the live state and the counters when scraped."""

    def __init__(
        self,
        media: MediaPlane,
        signalling: Signalling,
        recordings: Recordings,
        agreements: Agreements,
    ) -> None:
        self.media = media
        self.signalling = signalling
        self.recordings = recordings
        self.agreements = agreements

    def collect(self) -> Iterator[Metric]:
        rooms = list(self.media.rooms.values())
        peers = [peer for room in rooms for peer in room.peers.values()]
        yield GaugeMetricFamily("tiaojie_rooms", "Rooms with media on this node.", value=len(rooms))
        yield GaugeMetricFamily(
            "tiaojie_participants", "Participants with media on this node.", value=len(peers)
        )
        yield GaugeMetricFamily(
            "tiaojie_gc_frozen_objects",
            "Objects made at startup, kept out of the garbage collector's full collections "
            "(server/listener.py); 0 in a server not started by `tiaojie serve`.",
            value=gc.get_freeze_count(),
        )
        yield GaugeMetricFamily(
            "tiaojie_connections",
            "Socket.IO connections to this node (lobby and staff pages included).",
            value=len(self.signalling.sio.eio.sockets),
        )
        publications = GaugeMetricFamily(
            "tiaojie_publications", "Published tracks on this node.", labels=["kind"]
        )
        subscriptions = GaugeMetricFamily(
            "tiaojie_subscriptions",
            "Tracks forwarded to subscribers on this node (withheld ones not counted).",
            labels=["kind"],
        )
        for kind in KINDS:
            publications.add_metric(
                [kind],
                sum(p.kind == kind for peer in peers for p in peer.publications.values()),
            )
            subscriptions.add_metric(
                [kind],
                sum(
                    s.kind == kind and s.publication is not None and not s.withheld
                    for peer in peers
                    for s in peer.slots
                ),
            )
        yield publications
        yield subscriptions
        counters = self.media.counters
        by_kind = {
            "forwarded_frames": ("Frames forwarded to subscribers.", counters.forwarded_frames),
            "forwarded_bytes": ("Bytes of frames forwarded.", counters.forwarded_bytes),
            "queue_drops": (
                "Frames dropped for slow subscribers or keyframe waits.",
                counters.queue_drops,
            ),
        }
        if self.media.packets:  # the frames plane: aiortc packetizes, nothing counted
            by_kind["forwarded_packets"] = (
                "RTP packets forwarded to subscribers (packet media plane).",
                counters.forwarded_packets_now(),
            )
        for name, (help_text, values) in by_kind.items():
            family = CounterMetricFamily(f"tiaojie_{name}", help_text, labels=["kind"])
            for kind in KINDS:
                family.add_metric([kind], values[kind])
            yield family
        totals = {
            "nacked_packets": (
                "Packets subscribers asked for again (NACK).",
                counters.nacked_packets,
            ),
            "keyframe_requests_received": (
                "PLI/FIR received from subscribers.",
                counters.keyframe_requests_received,
            ),
            "keyframe_requests_sent": ("PLIs sent to publishers.", counters.keyframe_requests_sent),
            "video_pauses": (
                "Video subscriptions paused because the subscriber's link was congested.",
                counters.video_pauses,
            ),
            "video_resumes": (
                "Video subscriptions resumed after a congested link calmed down.",
                counters.video_resumes,
            ),
            "recorder_restarts": (
                "Recorder processes restarted after a crash.",
                self.recordings.restarts_total,
            ),
            "agreement_seals": ("Agreements sealed.", self.agreements.seals_total),
        }
        for name, (help_text, value) in totals.items():
            yield CounterMetricFamily(f"tiaojie_{name}", help_text, value=value)


class Metrics:
    def __init__(
        self,
        media: MediaPlane,
        signalling: Signalling,
        recordings: Recordings,
        agreements: Agreements,
        token: str | None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_Live(media, signalling, recordings, agreements))
        self.latency = Histogram(
            "tiaojie_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._tokens = (token.encode(),) if token else ()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        finally:
            if request.path != METRICS_PATH:
                self.latency.labels(request.method, _route(request), str(status)).observe(
                    time.perf_counter() - started
                )

    async def handle(self, request: web.Request) -> web.Response:
        if not self._tokens:
            raise TiaojieError(
                "metrics_off",
                "Set --metrics-token (TIAOJIE_METRICS_TOKEN) to turn on /metrics.",
                404,
            )
        if not self._allowed(request):
            raise TiaojieError(
                "token_invalid", "Send the metrics token as 'Authorization: Bearer <token>'.", 401
            )
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _allowed(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip().encode("utf-8", "surrogateescape")
        return scheme.lower() == "bearer" and any(
            hmac.compare_digest(given, t) for t in self._tokens
        )

    def install(self, app: web.Application) -> None:
        app.router.add_get(METRICS_PATH, self.handle)


def _route(request: web.Request) -> str:
    """The route template (no ids), or "unmatched"."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"
