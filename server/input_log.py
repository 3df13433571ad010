"""One short log line, without a traceback, for errors a client caused.

aiohttp logs every malformed HTTP request (and every client that hangs up mid-body) at
ERROR with a full traceback, and engine.io does the same for every malformed packet, so
anyone could fill the log. `InputErrorLog` is the logger both are given (aiohttp through
the application's `handler_args`, engine.io through `engineio_logger`): an error it knows
to be the client's is written as one WARNING line (INFO for a client that went away);
every other record passes unchanged, tracebacks of our own failures included.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError

#: Modules whose errors are always the sender's (the packet and payload decoders).
_DECODERS = ("engineio.packet", "engineio.payload", "socketio.packet")
#: What engine.io calls a client's packet (websocket) or POST body (long-polling) that
#: it could not decode or handle: its own handlers' errors are logged under other names.
_ENGINEIO_INPUT_ERRORS = frozenset({"Unknown receive error", "post request handler error"})


class InputErrorLog(logging.LoggerAdapter):
    """A logger adapter that shortens client errors to one line (module docstring).

    `floor`: records below it are dropped (engine.io's info lines carry whole packets;
    as with `engineio_logger=False`, only errors are kept).
    """

    def __init__(self, logger: logging.Logger, floor: int = logging.NOTSET) -> None:
        super().__init__(logger, {})
        self.floor = floor

    def isEnabledFor(self, level: int) -> bool:
        return level >= self.floor and self.logger.isEnabledFor(level)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        error = _exception(kwargs.get("exc_info"))
        if level >= logging.ERROR and error is not None:
            found = client_error(error, msg)
            if found is not None:
                short_level, what = found
                self.logger.log(short_level, "%s: %s (%s)", _format(msg, args), what, _short(error))
                return
        if self.isEnabledFor(level):
            msg, kwargs = self.process(msg, kwargs)
            self.logger.log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


def client_error(error: BaseException, msg: object = "") -> tuple[int, str] | None:
    """(level, what happened) if `error` was the client's doing, else None."""
    if isinstance(error, BadHttpMessage):
        return logging.WARNING, "malformed HTTP request"
    if isinstance(error, ConnectionError):
        return logging.INFO, "the client went away"
    if (isinstance(msg, str) and msg in _ENGINEIO_INPUT_ERRORS) or _raised_in(error, _DECODERS):
        return logging.WARNING, "malformed Engine.IO/Socket.IO packet"
    return None


def _format(msg: object, args: tuple[object, ...]) -> str:
    try:
        return str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        return str(msg)


def _exception(exc_info: object) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1] if isinstance(exc_info[1], BaseException) else None
    if exc_info:
        return sys.exc_info()[1]
    return None


def _raised_in(error: BaseException, modules: tuple[str, ...]) -> bool:
    """True if `error` was raised while a function of one of `modules` ran (a frame of its
    traceback is there: the decoders call json, which may raise from C)."""
    tb = error.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(modules):
            return True
        tb = tb.tb_next
    return False


def _short(error: BaseException) -> str:
    """The error's first line, at most 120 characters, non-ASCII escaped (no bytes a
    client sent after that first line, such as a header's value, reach the log)."""
    text = error.message if isinstance(error, HttpProcessingError) else str(error)
    first = (text.strip().splitlines() or [""])[0]
    first = first.encode("ascii", "backslashreplace").decode()[:120]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
