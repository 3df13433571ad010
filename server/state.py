"""What the aiohttp application holds: settings, secrets, the room store, signalling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from server.config import Settings
from server.credentials import Credentials
from server.store import RoomStore
from server.tokens import TokenSigner

if TYPE_CHECKING:
    from server.recording import Recordings
    from server.signalling import Signalling


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
