"""How an upstream call fails in transport (the attempt turns these into canonical errors)."""
from __future__ import annotations


class HttpError(Exception):
    """A transport failure on an upstream call (never carries the URL, which may hold a key)."""


class ConnectFailed(HttpError):
    """No connection to the upstream's host and port: refused, unresolvable, TLS, timeout."""

    def __init__(self, host: str, port: int, os_error: OSError) -> None:
        super().__init__(f"cannot connect to {host}:{port}")
        self.host = host
        self.port = port
        self.os_error = os_error


class Disconnected(HttpError):
    """The upstream closed the connection before its reply was complete."""


class MalformedReply(HttpError):
    """The upstream's bytes are not an HTTP/1.1 reply this client can read."""


class InvalidRequest(HttpError):
    """The request cannot be written (a header with a line break: often a key read from a
    file with its newline); nothing was sent. The message names the header, not its value."""
