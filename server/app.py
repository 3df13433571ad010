"""The aiohttp application: REST API, socket.io signalling and the web client.

`create_app` builds the parts in dependency order, each given what it needs: the store
and token signer, signalling (the gateway), the media plane, recordings, then the
features that install themselves on signalling (media, recordings, moderation, chat,
agreements), cases, and the routes. The archive index (server/archive_index/) and the
audit log are projections of the store: their rows are written with each room change. On
start the store is opened (the SQL store migrates its schema; DatabaseError if it
cannot), the index is rebuilt from the files if it is empty and they are not, and this
node's leftovers from before a restart are cleared: its connections, and the recordings
its recorders ran.
"""

from __future__ import annotations

import logging

from aiohttp import web

from tiaojie.archive.keys import keys_dir, load_or_create
from tiaojie.rtc.ports import parse_port_range
from tiaojie.server import __version__, api, openapi, separation
from tiaojie.server import web as web_client
from tiaojie.server.accounts.audit import AuditProjection
from tiaojie.server.accounts.http import AccountRoutes
from tiaojie.server.accounts.lockout import LoginPolicy
from tiaojie.server.accounts.middleware import staff_middleware
from tiaojie.server.accounts.service import Accounts
from tiaojie.server.agreements import Agreements
from tiaojie.server.archive_index.index import ArchiveIndex
from tiaojie.server.archive_index.rebuild import ensure
from tiaojie.server.bookings.http import BookingRoutes
from tiaojie.server.bookings.service import Bookings
from tiaojie.server.cases.court_http import CourtRoutes
from tiaojie.server.cases.http import CaseRoutes
from tiaojie.server.cases.intake import MAX_BODY as CASE_INTAKE_BYTES
from tiaojie.server.cases.projection import CaseProjection
from tiaojie.server.cases.service import CASES, Cases
from tiaojie.server.cases.staff import AccountActors
from tiaojie.server.cases.store import CaseStore
from tiaojie.server.caucus import Caucuses
from tiaojie.server.chat.log import ChatLog
from tiaojie.server.chat.service import Chat
from tiaojie.server.cluster import Cluster
from tiaojie.server.cluster.http import NodeRoutes
from tiaojie.server.cluster.load import NodeLoad
from tiaojie.server.cluster.registry import NodeInfo
from tiaojie.server.config import Settings
from tiaojie.server.credentials import load_credentials
from tiaojie.server.db import Database, parse_database_url
from tiaojie.server.forwarded import Forwarded, parse_trusted_proxies
from tiaojie.server.http_auth import HttpAuth
from tiaojie.server.input_log import InputErrorLog
from tiaojie.server.limits import body_limits
from tiaojie.server.listener import BEFORE_CLOSE, BEFORE_STOP, StopWork
from tiaojie.server.media.handlers import MediaHandlers
from tiaojie.server.media.ice import (
    IceSettings,
    check_announce_ip,
    deny_ranges,
    parse_ice_servers,
)
from tiaojie.server.media.ice import apply as apply_ice
from tiaojie.server.media.probe import Probes
from tiaojie.server.media.probe_http import ProbeRoutes
from tiaojie.server.media.sfu import MediaPlane
from tiaojie.server.media.turn import parse_turn
from tiaojie.server.metrics import Metrics
from tiaojie.server.moderation import Moderation
from tiaojie.server.node import node_id
from tiaojie.server.notices import Notices
from tiaojie.server.notifications.config import NotifySettings
from tiaojie.server.notifications.http import NotificationRoutes
from tiaojie.server.notifications.service import NOTIFICATIONS, Notifications, RoomNotices
from tiaojie.server.recordings import (
    START_CALL,
    ArchiveAuth,
    ArchivistRegister,
    RecordingRoutes,
    Recordings,
)
from tiaojie.server.signalling import MAX_MESSAGE_BYTES, Signalling
from tiaojie.server.state import STATE, AppState
from tiaojie.server.statistics.http import StatisticsRoutes
from tiaojie.server.store import open_store
from tiaojie.server.tokens import TokenSigner

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
#: python-socketio's default endpoint (Signalling.attach), which reads its own POST bodies.
SOCKETIO_PATH = "/socket.io/"
#: The case routes (server/cases/http.py), whose handlers read and cap their own bodies.
CASES_PATH = "/api/cases"


def create_app(settings: Settings) -> web.Application:
    settings.tz  # noqa: B018 - an unknown --timezone stops the start (ValueError)
    credentials = load_credentials(settings.data_dir, settings.secret_key, settings.admin_token)
    node = node_id(settings.data_dir, settings.port)
    database = parse_database_url(settings.database_url, settings.data_dir)
    if settings.redis_url and settings.database_url is None:
        log.warning(
            "--redis without --database: this node keeps its rooms in %s; nodes share "
            "rooms only through one database (PostgreSQL, --database)",
            database.shown(),
        )
    # One engine for rooms, accounts and the archive index (whose rows are written in the
    # rooms' transactions). memory: an in-memory SQLite for accounts and the index (the
    # rooms stay in MemoryRoomStore), migrated by `Accounts.open`, the index rebuilt on start.
    shared = Database(database)
    accounts = Accounts(
        shared,
        login_policy=LoginPolicy(
            failures=settings.login_failures,
            address_failures=settings.login_address_failures,
            lockout=settings.login_lockout,
        ),
    )
    index = ArchiveIndex(shared)
    # Cases see what happens in their sessions' rooms through the store too.
    case_store = CaseStore(shared, load_or_create(keys_dir(settings.data_dir)))
    case_rooms = CaseProjection(case_store)
    # The notifications' outbox is written in the rooms' transactions too (agreement ready).
    room_notices = RoomNotices()
    projections = (index, AuditProjection(shared), case_rooms, room_notices)
    store = open_store(shared if database.kind != "memory" else None, node, projections)
    signer = TokenSigner(credentials.token_secret)
    announce_ip = check_announce_ip(settings.announce_ip)
    ice = IceSettings(
        servers=parse_ice_servers(settings.ice_servers),
        announce_ip=announce_ip,
        deny=deny_ranges(settings.ice_deny, announce_ip),
        turn=parse_turn(settings.turn_secret, settings.turn_urls, settings.turn_ttl),
        ports=parse_port_range(settings.rtc_ports),
    )
    apply_ice(ice)
    archive_auth = ArchiveAuth(credentials.token_secret, ArchivistRegister.of(settings.data_dir))
    auth = HttpAuth(credentials.admin_token, signer, store, archive_auth)

    signalling = Signalling(
        store, signer, settings.redis_url, ice.servers_for, settings.reconnect_grace
    )
    media = MediaPlane(
        ice, signalling.send, signalling.broadcast, settings.transcode, settings.media_plane
    )
    recordings = Recordings(
        settings.data_dir,
        settings.local_url,
        store,
        signer,
        signalling,
        index,
        settings.tsa_url,
        node,
        # single-port mode is the server's own socket: its recorders take any port
        settings.rtc_ports if ice.ports is not None and not ice.ports.single else None,
    )
    recordings.on_sealed(case_rooms.recording_sealed)
    cluster = None
    if settings.redis_url:
        # A room's media on one node: connections and recordings go to it (server/cluster/).
        cluster = Cluster(
            settings.redis_url,
            node,
            settings.own_url,
            settings.node_ttl,
            NodeLoad(media, signalling),
            settings.draining,
        )
        signalling.place_with(cluster.elsewhere)
        signalling.on_room_ended(cluster.release)
        recordings.start_on_host(cluster.on_host, cluster.calls.call, cluster.recording_head)
        cluster.recording_heads = recordings.heads
        # A room taken over from a lost node: its recording ends, the lost node's
        # connections are away, and a recording that follows the lost one starts here.
        cluster.on_placed_here += [
            recordings.orphaned,
            signalling.release_lost,
            recordings.continue_orphaned,
        ]
        cluster.calls.handle(
            START_CALL,
            lambda call: recordings.start_here(
                call["room_id"], call["started_by"], call.get("follows"), call.get("consents")
            ),
        )

        async def moved(room_id: str, to: NodeInfo) -> None:
            """A room this draining node moved: its recording follows, then its people."""
            await recordings.hand_over(room_id, to.id)
            await signalling.move_out(room_id, to.url)

        cluster.on_moved.append(moved)
    cases = Cases(
        case_store,
        AccountActors(auth),
        settings.data_dir,
        settings.base_url,
        rooms=store,
        signer=signer,
        secret=credentials.token_secret,
        tz=settings.tz,
    )
    agreements = Agreements(settings, store, signalling, recordings, auth, index, cases)
    # The outbox: queued with the case changes, delivered by a worker (server/notifications/).
    notify_settings = NotifySettings.from_env()
    notifications = Notifications(shared, cases, notify_settings)
    # 回访 is due when its reminder is (TIAOJIE_NOTIFY_FOLLOW_UP_DAYS): one setting for both
    case_store.follow_up_days = notify_settings.timing.follow_up_after // 86400
    room_notices.target = notifications
    MediaHandlers(signalling, media).install()
    recordings.install()
    Moderation(signalling, media, recordings).install()
    caucuses = Caucuses(signalling, media, recordings)
    caucuses.install()
    Notices(signalling, recordings).install()
    # chat in the shared database; a caucus's chat goes to its members (server/chat/routing.py)
    Chat(signalling, ChatLog(shared), recordings, caucus_of=separation.place_of).install()

    forwarded = Forwarded(parse_trusted_proxies(settings.trusted_proxies))
    metrics = Metrics(media, signalling, recordings, agreements, settings.metrics_token)
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            forwarded.middleware,
            metrics.middleware,
            api.error_middleware,
            body_limits(
                MAX_BODY_BYTES,
                settings.request_timeout,
                # the case routes read their own bodies: intake takes photos (a form)
                streamed={SOCKETIO_PATH: MAX_MESSAGE_BYTES, CASES_PATH: CASE_INTAKE_BYTES},
            ),
            staff_middleware(accounts),
        ],
        # a malformed request, or a client gone mid-body: one log line, no traceback
        handler_args={"logger": InputErrorLog(logging.getLogger("aiohttp.server"))},
    )
    app[STATE] = AppState(
        settings=settings,
        credentials=credentials,
        signer=signer,
        store=store,
        signalling=signalling,
        media=media,
        recordings=recordings,
        auth=auth,
        version=__version__,
        accounts=accounts,
        cluster=cluster,
    )
    signalling.attach(app)
    api.add_routes(app)
    RecordingRoutes(recordings, auth, archive_auth, settings.timezone).install(app.router)
    AccountRoutes(accounts, auth, settings).install(app.router)
    openapi.add_routes(app)
    metrics.install(app)
    web_client.add_routes(app)
    agreements.install(app)
    # the device check page's network check (server/media/probe.py)
    ProbeRoutes(Probes(media), auth).install(app)
    NodeRoutes(cluster, auth, node, settings.own_url).install(app)
    app[CASES] = cases
    CaseRoutes(cases).install(app)
    CourtRoutes(cases).install(app)
    app[NOTIFICATIONS] = notifications
    NotificationRoutes(notifications, AccountActors(auth)).install(app)
    StatisticsRoutes(cases).install(app)
    # bookings (预约): availability, free slots, consultations in private rooms
    bookings = Bookings(cases, settings.tz, wake=notifications.worker.wake)
    BookingRoutes(bookings, AccountActors(auth)).install(app)

    async def on_startup(app: web.Application) -> None:
        await store.open()
        await accounts.open()
        await ensure(index, settings.data_dir)
        await signalling.recover()
        await recordings.recover()
        if cluster is not None:
            await cluster.start()
        notifications.worker.start()

    async def on_shutdown(app: web.Application) -> None:
        await recordings.shutdown()  # each recording gets its seal while still connected
        await signalling.disconnect_all()
        if cluster is not None:
            await cluster.stop()

    async def on_cleanup(app: web.Application) -> None:
        await notifications.worker.stop()
        await caucuses.timers.stop()
        await signalling.shutdown()
        await media.close()
        await store.close()
        await accounts.close()

    # On a stop, while connections still work: each recording gets its seal (its recorder
    # acknowledges the last room events), then every connection is closed (Engine.IO's
    # close handshake answered, not waited on for 5 s); on_shutdown repeats both (no-ops
    # then) for servers run without the Listener (tests).
    before_close: list[StopWork] = [recordings.shutdown, signalling.disconnect_all]
    app[BEFORE_CLOSE] = before_close
    if cluster is not None:
        # SIGTERM of a node of several: its rooms move first, as `tiaojie drain` moves them
        before_stop: list[StopWork] = [cluster.hand_off]
        app[BEFORE_STOP] = before_stop
    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
