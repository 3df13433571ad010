"""What the aiohttp application holds: settings, secrets, the room store, signalling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from tiaojie.server.config import Settings
from tiaojie.server.credentials import Credentials
from tiaojie.server.store import RoomStore
from tiaojie.server.tokens import TokenSigner

if TYPE_CHECKING:
    from tiaojie.server.recording import Recordings
    from tiaojie.server.signalling import Signalling


@dataclass
class AppState:
    settings: Settings
    credentials: Credentials
    signer: TokenSigner
    store: RoomStore
    signalling: Signalling
    version: str
    recordings: Recordings | None = None


STATE = web.AppKey("tiaojie_state", AppState)


def app_state(app: web.Application) -> AppState:
    return app[STATE]
