"""The aiohttp application: REST API, socket.io signalling and the web client."""

from __future__ import annotations

import logging

from aiohttp import web

from tiaojie.server import __version__, api, openapi, recording_api
from tiaojie.server import web as web_client
from tiaojie.server.agreements import Agreements
from tiaojie.server.config import Settings
from tiaojie.server.credentials import load_credentials
from tiaojie.server.media.ice import IceSettings, check_announce_ip, parse_ice_servers
from tiaojie.server.media.ice import apply as apply_ice
from tiaojie.server.recording import Recordings
from tiaojie.server.signalling import Signalling
from tiaojie.server.state import STATE, AppState
from tiaojie.server.store import open_store
from tiaojie.server.tokens import TokenSigner

MAX_BODY_BYTES = 64 * 1024

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    credentials = load_credentials(settings.data_dir, settings.secret_key, settings.admin_token)
    store = open_store(settings.redis_url)
    signer = TokenSigner(credentials.token_secret)
    ice = IceSettings(
        servers=parse_ice_servers(settings.ice_servers),
        announce_ip=check_announce_ip(settings.announce_ip),
    )
    apply_ice(ice)
    signalling = Signalling(store, signer, settings.redis_url, ice, settings.transcode)
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[web_client.security_headers, api.error_middleware],
    )
    recordings = Recordings(
        settings.data_dir,
        settings.local_url,
        store,
        signer,
        getattr(settings, "tsa_url", None),
    )
    recordings.broadcast = signalling.recording_changed
    recordings.call = signalling.call_recorder
    recordings.emit = signalling._send
    signalling.recordings = recordings
    app[STATE] = AppState(
        settings, credentials, signer, store, signalling, __version__, recordings=recordings
    )
    signalling.sio.attach(app)
    api.add_routes(app)
    recording_api.add_routes(app)
    openapi.add_routes(app)
    web_client.add_routes(app)
    Agreements(app, signalling).install()

    async def on_shutdown(app: web.Application) -> None:
        await recordings.shutdown()  # each recording gets its seal while still connected
        await signalling.disconnect_all()

    async def on_cleanup(app: web.Application) -> None:
        await signalling.shutdown()
        await store.close()

    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
