"""The edge's HTTP/1.1 connections: uvicorn's httptools protocol plus what it lacks — a
bound on open connections, a deadline for the request headers and a backstop for the body
(a trickling or silent socket is closed, not kept forever) — and a response's head sent with
its first body bytes."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from switchyard.common import metrics
from switchyard.common.config.model import Security

log = logging.getLogger("switchyard.edge")

# read_json answers 408 at the body timeout; the connection is closed this much later if the
# body is still incomplete (a route that never reads it, or the 408 already sent).
BODY_GRACE_S = 1.0
WARN_EVERY_S = 10.0

HEADERS, BODY = 1, 2   # what the connection is reading


class EdgeHttpProtocol(HttpToolsProtocol):
    """httptools with deadlines. One timer per connection, armed only while a request is
    partly read after a packet (a request that arrives whole arms none)."""

    max_connections = 1 << 20
    header_timeout_s = 10.0
    body_timeout_s = 30.0
    last_warned = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stage = 0            # HEADERS, BODY, or 0 between requests
        self.deadline = 0.0       # loop time the current stage must end by
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self.transport = transport
            metrics.HTTP_CONNECTIONS_CLOSED.labels("connection_limit").inc()
            self._warn_full()
            transport.close()
            return
        super().connection_made(transport)
        self.stage = HEADERS   # a socket that never sends is closed at the header deadline
        self.deadline = self.loop.time() + self.header_timeout_s
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.stage and self.timer is None and self.parser is not None:
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.stage != HEADERS:  # a keep-alive connection's next request
            self.stage = HEADERS
            self.deadline = self.loop.time() + self.header_timeout_s

    def on_headers_complete(self) -> None:
        self.stage = BODY
        self.deadline = self.loop.time() + self.body_timeout_s + BODY_GRACE_S
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:   # not an upgrade
            # Its task has not run yet: nothing was written through the real transport.
            cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self.stage = 0
        self._disarm()
        super().on_message_complete()

    def _arm(self) -> None:
        self.timer = self.loop.call_at(self.deadline, self._expired)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        if not self.stage or self.transport.is_closing():
            return
        if self.loop.time() < self.deadline:   # moved on to the body since it was armed
            self._arm()
            return
        metrics.HTTP_CONNECTIONS_CLOSED.labels(
            "header_timeout" if self.stage == HEADERS else "body_timeout").inc()
        self.stage = 0
        self.transport.close()

    def _warn_full(self) -> None:
        now = time.monotonic()
        if now - EdgeHttpProtocol.last_warned >= WARN_EVERY_S:
            EdgeHttpProtocol.last_warned = now
            log.warning("at the open connection limit (%d); new connections are closed "
                        "(limits.max_connections)", self.max_connections)


def protocol_class(security: Security) -> type[EdgeHttpProtocol]:
    """The protocol with this config's limits, for uvicorn's `http=`."""
    class Configured(EdgeHttpProtocol):
        max_connections = security.max_connections
        header_timeout_s = security.header_timeout_s
        body_timeout_s = security.body_timeout_s
    return Configured


class HeadWithBody:
    """The transport one response writes through. uvicorn writes the status line and headers
    at `http.response.start` and the body at `http.response.body`, each a system call and a
    TCP segment of its own; this holds the first write (the head) until the next one, so a
    whole answer, or a stream's head and first events, leave together. A head with no body
    write in the same loop pass is sent at the end of the pass."""

    __slots__ = ("transport", "held", "_loop")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.held: bytes | None = None   # None: nothing written yet; b"": the head went out
        self._loop = loop

    def write(self, data: bytes) -> None:
        held = self.held
        if held is None:
            self.held = data
            self._loop.call_soon(self.release)
            return
        if held:
            self.held = b""
            self.transport.writelines((held, data))
            return
        self.transport.write(data)

    def release(self) -> None:
        held, self.held = self.held, b""
        if held and not self.transport.is_closing():
            self.transport.write(held)

    def close(self) -> None:
        self.release()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)
