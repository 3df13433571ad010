"""What the aiohttp application holds, for the REST handlers of server/api.py and the
CLI: settings, secrets, the room store, signalling, the media plane, recordings, and the
REST token checks, staff accounts, and the cluster (with --redis). Built once by server/app.py."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from tiaojie.server.accounts.service import Accounts
from tiaojie.server.cluster import Cluster
from tiaojie.server.config import Settings
from tiaojie.server.credentials import Credentials
from tiaojie.server.http_auth import HttpAuth
from tiaojie.server.media.sfu import MediaPlane
from tiaojie.server.recordings import Recordings
from tiaojie.server.signalling import Signalling
from tiaojie.server.store import RoomStore
from tiaojie.server.tokens import TokenSigner


@dataclass(frozen=True)
class AppState:
    settings: Settings
    credentials: Credentials
    signer: TokenSigner
    store: RoomStore
    signalling: Signalling
    media: MediaPlane
    recordings: Recordings
    auth: HttpAuth
    version: str
    accounts: Accounts
    #: This node among several (server/cluster/); None: one node, no Redis.
    cluster: Cluster | None = None


STATE = web.AppKey("tiaojie_state", AppState)


def app_state(app: web.Application) -> AppState:
    return app[STATE]
