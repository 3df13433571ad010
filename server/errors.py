"""One error type for every refusal, carrying a stable code for clients."""

from __future__ import annotations


class TiaojieError(Exception):
    """A refusal with a machine code, a human message and the HTTP status it maps to."""

    def __init__(
        self, code: str, message: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        #: Headers the answer carries (Retry-After of a 429).
        self.headers = headers

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


def bad_request(message: str) -> TiaojieError:
    return TiaojieError("bad_request", message, 400)


def forbidden(message: str) -> TiaojieError:
    return TiaojieError("forbidden", message, 403)


def not_found(code: str, message: str) -> TiaojieError:
    return TiaojieError(code, message, 404)
