"""The server: rooms and their rules, socket.io signalling, the media plane (an SFU that
never decodes), recordings, agreements, the REST API and the static web client."""

from tiaojie import __version__

__all__ = ["__version__"]
