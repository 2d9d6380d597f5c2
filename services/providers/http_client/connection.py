"""One kept-alive upstream connection: an asyncio protocol around httptools' reply parser."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httptools

from switchyard.providers.http_client.errors import Disconnected, HttpError, MalformedReply
from switchyard.providers.http_client.response import Response

if TYPE_CHECKING:
    from switchyard.providers.http_client.client import UpstreamClient

LARGE_BODY = 64 * 1024     # a request body this big is written after its head, not joined


class Connection(asyncio.Protocol):
    """One kept-alive connection: a request at a time, its reply parsed as bytes arrive."""

    def __init__(self, client: UpstreamClient, origin_key: tuple[str, str, int]) -> None:
        self.client = client
        self.loop = client.loop
        self.key = origin_key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.paused = False
        self._head: asyncio.Future[Response] | None = None
        self._response: Response | None = None
        self._names: list[str] = []
        self._values: list[str] = []
        self._until_eof = False      # a body without length or chunking ends with the connection
        self._keep_alive = False
        self._informational = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport   # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self._response
        if self._head is None or (response is not None and response._complete):
            # Bytes on an idle connection, or after the reply ended: not a reply to anything,
            # and the connection cannot carry a next one (a reply already read stays readable).
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(MalformedReply("the upstream's reply is not valid HTTP/1.1"))

    def eof_received(self) -> bool | None:
        return None    # close the transport: a half-closed upstream sends nothing more

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self._response
        if response is not None and self._until_eof and exc is None:
            response._end()
        else:
            self._fail(Disconnected("the upstream closed the connection"))
        self.client.forget(self)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._names.append(name.decode("latin-1").lower())
        self._values.append(value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        headers: dict[str, str] = {}
        for name, value in zip(self._names, self._values, strict=True):
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self._names.clear()
        self._values.clear()
        if self._response is not None:
            # A second reply to one request; raised through the parser, which stops there.
            raise MalformedReply("the upstream sent a second reply to one request")
        status = self.parser.get_status_code()
        if status < 200:
            self._informational = True   # a 1xx before the reply: its headers say nothing
            return
        self._until_eof = ("content-length" not in headers
                           and "chunked" not in headers.get("transfer-encoding", "").lower()
                           and status not in (204, 304))
        response = self._response = Response(self, status, headers)
        head = self._head
        if head is not None and not head.done():
            head.set_result(response)

    def on_body(self, body: bytes) -> None:
        if self._response is not None:
            self._response._feed(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._keep_alive = self.parser.should_keep_alive()
        self._until_eof = False
        if self._response is not None:
            self._response._end()

    # the client's side
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def send(self, head: bytes, body: bytes) -> asyncio.Future[Response]:
        if not self.usable():
            raise Disconnected("the upstream closed the connection")
        assert self.transport is not None
        self._head = self.loop.create_future()
        self._keep_alive = False
        if len(body) < LARGE_BODY:
            self.transport.write(head + body)   # one system call and segment for the lot
        else:
            self.transport.writelines((head, body))   # no copy of a large body (images)
        return self._head

    def finished(self, response: Response, reusable: bool) -> None:
        if response is not self._response:
            return
        self._response = None
        self._head = None
        if reusable and self._keep_alive and self.usable() and not self.paused:
            self.client.give_back(self)
        else:
            self.close()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.close()
        self.closed = True

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def _fail(self, error: HttpError) -> None:
        head = self._head
        if head is not None and not head.done():
            head.set_exception(error)
            head.exception()   # retrieved: a caller that gave up must not log it
        if self._response is not None:
            self._response._end(error)
        self.close()
