"""How an upstream call fails in transport (the attempt turns these into canonical errors)."""
from __future__ import annotations

import os


class HttpError(Exception):
    """A transport failure on an upstream call (never carries the URL, which may hold a key)."""


class ConnectFailed(HttpError):
    """No connection to the upstream's host and port: refused, unresolvable, TLS, timeout."""

    def __init__(self, host: str, port: int, os_error: OSError) -> None:
        super().__init__(f"cannot connect to {host}:{port}")
        self.host = host
        self.port = port
        self.os_error = os_error

    @property
    def reason(self) -> str:
        """Why, in the system's words ("Connection refused", "Name or service not known")."""
        err = self.os_error
        if isinstance(err.errno, int) and err.errno > 0:
            return os.strerror(err.errno)   # not the text with the address asyncio adds
        return err.strerror or str(err) or type(err).__name__


class Disconnected(HttpError):
    """The upstream closed the connection before its reply was complete."""


class MalformedReply(HttpError):
    """The upstream's bytes are not an HTTP/1.1 reply this client can read."""


class InvalidRequest(HttpError):
    """The request cannot be written (a header with a line break: often a key read from a
    file with its newline); nothing was sent. The message names the header, not its value."""
