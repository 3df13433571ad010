"""The access log: one line per HTTP request, with credentials taken out of its URLs.

Tokens travel in headers or URL fragments, but a `<video>` can only put its playback
ticket in the query (`?ticket=tjt1....`), and engine.io puts its session id there
(`?sid=`, enough to post into someone's polling session). Any query parameter named like
a credential is written as `REDACTED`, in the request line and in the Referer.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit, urlunsplit

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

REDACTED = "REDACTED"
#: A parameter whose name contains one of these carries a credential.
CREDENTIAL_WORDS = ("ticket", "token", "secret", "password", "passwd", "key", "auth", "sig")
#: ... and these exact names: engine.io's session id.
CREDENTIAL_NAMES = frozenset({"sid"})


def is_credential(name: str) -> bool:
    name = unquote(name).lower()
    return name in CREDENTIAL_NAMES or any(word in name for word in CREDENTIAL_WORDS)


def redact_query(query: str) -> str:
    """`query` (raw, without `?`) with the value of every credential parameter replaced."""
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if equals and is_credential(name) else part)
    return "&".join(parts)


def redact_target(target: str) -> str:
    """A request target (`/path?query`) with its credentials redacted."""
    path, mark, query = target.partition("?")
    return f"{path}?{redact_query(query)}" if mark else path


def redact_url(url: str) -> str:
    """A full URL (a Referer) with its query's credentials redacted and no fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    return urlunsplit((parts.scheme, parts.netloc, parts.path, redact_query(parts.query), ""))


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's default line (`%a "%r" %s %b "%{Referer}i" "%{User-Agent}i"`, the time
    comes from the log format) with credentials redacted."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        referer = request.headers.get("Referer")
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d "%s" "%s"',
            request.remote or "-",
            request.method,
            redact_target(request.raw_path),
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            redact_url(referer) if referer else "-",
            request.headers.get("User-Agent", "-"),
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
