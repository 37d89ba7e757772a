"""Exceptions raised by the attnd client.

Every error the server reports arrives as ``{"error": "<message>"}`` with an
HTTP status; the client raises the subclass of :class:`AttndError` that
matches the status, carrying the server's message unchanged in ``.message``.
"""

from typing import Dict, Optional


class AttndError(Exception):
    """Base class of every error raised by the client.

    ``status`` is the HTTP status (``None`` when no response arrived),
    ``message`` the server's ``error`` text (or a description of what went
    wrong locally), ``body`` the raw response body and ``headers`` the
    response headers (lower-cased names).
    """

    def __init__(self, message: str, status: Optional[int] = None, body: bytes = b"",
                 headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return "%d: %s" % (self.status, self.message)


class ConnectError(AttndError):
    """The server could not be reached (refused, reset, DNS, TLS)."""


class RequestTimeoutError(AttndError, TimeoutError):
    """No answer within the client's timeout."""


class ProtocolError(AttndError):
    """The server's answer does not follow the protocol (bad JSON, sizes)."""


class HTTPError(AttndError):
    """The server answered with an error status."""


class BadRequestError(HTTPError):
    """400: the request is malformed or does not fit the model."""


class UnauthorizedError(HTTPError):
    """401: missing or wrong API key."""


class ForbiddenError(HTTPError):
    """403: the key is valid but not allowed to do this (e.g. not an admin key)."""


class ModelNotFoundError(HTTPError):
    """404: no such model (or no such endpoint)."""


class SequenceNotFoundError(ModelNotFoundError):
    """404 on a sequence request: the sequence is unknown here, or has ended; the
    message says which (end flag, idle timeout, evicted, deleted, failed, or never
    started on this server)."""


class ConflictError(HTTPError):
    """409: e.g. a sequence start (or restore) on an id that is live."""


class PayloadTooLargeError(HTTPError):
    """413: the request exceeds one of the server's limits."""


class ServerError(HTTPError):
    """5xx other than 503 and 504: a bug in the server."""


class ServiceUnavailableError(ServerError):
    """503: overloaded or draining; ``retry_after`` is the server's hint in seconds."""

    @property
    def retry_after(self) -> Optional[float]:
        return _retry_after_seconds(self.headers.get("retry-after"))


class GatewayTimeoutError(ServerError):
    """504: the request did not finish within the server's timeout."""


_BY_STATUS = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: ModelNotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def error_for_status(status: int, message: str, body: bytes = b"",
                     headers: Optional[Dict[str, str]] = None) -> HTTPError:
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else HTTPError
    return cls(message, status, body, headers)


def _retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import email.utils
        import time
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
