"""A lean HTTP/1.1 client for the upstream calls: kept-alive connections per origin, each an
asyncio protocol with httptools' response parser, and a body read as the network delivers it.

aiohttp did this before at ~3x the CPU per request and per streamed read (its request and
response objects, stream reader and timers); the providers' only verb is a POST of a ready
body, so the client is small. What it does not do, on purpose: redirects (an upstream's
redirect is an error, see failures.redirected), cookies, proxies, and compression (it asks
for `identity`; a gzip or deflate body sent anyway is still decoded).
"""
from __future__ import annotations

import asyncio
import functools
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httptools

from switchyard.common import timeouts

PAUSE_AT = 256 * 1024      # buffered body bytes at which the socket stops being read
LARGE_BODY = 64 * 1024     # a request body this big is written after its head, not joined
USER_AGENT = "switchyard"
FRAMING = frozenset({"content-length", "transfer-encoding"})


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


@dataclass(frozen=True)
class Origin:
    """Where one URL is sent: the connection's key and the request line's parts."""
    scheme: str
    host: str
    port: int
    host_header: str
    target: bytes          # path and query, as given (a signed URL must travel unchanged)


_SAFE_IN_TARGET = "/?#[]@!$&'()*+,;=:%-._~"


@functools.lru_cache(maxsize=1024)
def origin_of(url: str) -> Origin:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"not an http(s) URL (scheme {parts.scheme!r})")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # Only what may not travel raw is escaped (spaces, controls, non-ASCII): a signed URL
    # (Bedrock's, in yarl's form) is left exactly as it was signed.
    target = quote(target, safe=_SAFE_IN_TARGET)
    return Origin(parts.scheme, host, port, shown if port == default else f"{shown}:{port}",
                  target.encode())


def request_head(origin: Origin, headers: dict[str, str], length: int) -> bytes:
    """The request line and headers; Host, User-Agent and Accept-Encoding added where the
    caller did not set them (config may set Host: `http_host`), Content-Length always."""
    given = {k.lower() for k in headers}
    lines = [b"POST ", origin.target, b" HTTP/1.1\r\n"]
    if "host" not in given:
        lines.append(f"Host: {origin.host_header}\r\n".encode())
    for name, value in headers.items():
        if name.lower() in FRAMING:
            continue   # the body's framing is this client's to state, once
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise InvalidRequest(f"header {name.strip()[:40]!r} has a line break or colon")
        lines.append(f"{name}: {value}\r\n".encode())
    if "user-agent" not in given:
        lines.append(b"User-Agent: " + USER_AGENT.encode() + b"\r\n")
    if "accept-encoding" not in given:
        lines.append(b"Accept-Encoding: identity\r\n")
    lines.append(b"Content-Length: %d\r\n\r\n" % length)
    return b"".join(lines)


class Response:
    """One reply: status and headers at once, the body as it arrives. `release()` gives the
    connection back when the body was read to its end, `close()` drops it."""

    __slots__ = ("status", "headers", "_conn", "_chunks", "_size", "_waiter", "_complete",
                 "_error", "_inflate")

    def __init__(self, conn: Connection, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers          # names in lower case; repeated ones joined by ", "
        self._conn = conn
        self._chunks: list[bytes] = []
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._complete = False
        self._error: HttpError | None = None
        self._inflate: zlib._Decompress | None = None
        coding = headers.get("content-encoding", "identity").lower()
        if coding in ("gzip", "deflate", "x-gzip"):
            self._inflate = zlib.decompressobj(47)   # 32 + 15: a gzip or zlib header
        elif coding != "identity":
            self._error = MalformedReply(f"unsupported content-encoding {coding[:40]!r}")

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case ("" when absent)."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    async def read_chunk(self) -> bytes:
        """Everything received since the last call, waiting for some; b"" at the end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._complete:
                return b""
            self._waiter = self._conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunks, self._chunks = self._chunks, []
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self._size >= PAUSE_AT:
            self._conn.resume()
        self._size = 0
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(data)
            except zlib.error:
                raise MalformedReply("the compressed body does not decode") from None
        return data

    def interrupt(self, error: BaseException) -> None:
        """Fail the read waiting now with `error` (a caller's own timer ran out)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    async def read(self, limit: int | None = None) -> bytes:
        """The body to its end (or its first `limit` bytes)."""
        parts: list[bytes] = []
        size = 0
        while limit is None or size < limit:
            chunk = await self.read_chunk()
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        data = b"".join(parts)
        return data if limit is None else data[:limit]

    def release(self) -> None:
        """Done with the reply: its connection is reused if the body was read to the end."""
        self._conn.finished(self, reusable=self._complete and not self._chunks)

    def close(self) -> None:
        self._conn.finished(self, reusable=False)

    # Fed by the connection.
    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size >= PAUSE_AT:
            self._conn.pause()
        self._wake()

    def _end(self, error: HttpError | None = None) -> None:
        if error is None:
            self._complete = True
        elif not self._complete and self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


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
        if self._head is None:   # bytes on an idle connection: it cannot carry a next reply
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


class UpstreamClient:
    """The connections of one provider entry: idle ones kept per origin (most recent first
    used), at most `limit` open at once (a call beyond waits for one to free)."""

    def __init__(self, limit: int, keepalive_s: float, connect_s: float,
                 tls: ssl.SSLContext | Callable[[], ssl.SSLContext]) -> None:
        self.loop = asyncio.get_running_loop()
        self.limit = limit
        self.keepalive_s = keepalive_s
        self.connect_s = connect_s
        self.tls = tls
        self.closed = False
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._open: set[Connection] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._drained: asyncio.Future[None] | None = None   # set by close()
        self._sweep: asyncio.TimerHandle | None = None      # closes expired idle connections

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """Send the request; returns at the reply's headers (its body is read from it)."""
        origin = origin_of(url)
        head = request_head(origin, headers, len(body))
        conn = await self._acquire(origin)
        try:
            return await conn.send(head, body)
        except BaseException:
            conn.close()
            raise

    async def _acquire(self, origin: Origin) -> Connection:
        key = (origin.scheme, origin.host, origin.port)
        while True:
            if self.closed:
                raise HttpError("the client is closed")
            idle = self._idle.get(key)
            now = self.loop.time()
            while idle:
                conn = idle.pop()
                if conn.usable() and now - conn.idle_since < self.keepalive_s:
                    return conn
                conn.close()
            if len(self._open) < self.limit:
                return await self._connect(origin, key)
            spare = next((c for conns in self._idle.values() for c in conns), None)
            if spare is not None:   # another origin's idle connection frees a place
                self._idle[spare.key].remove(spare)
                spare.close()
                self._open.discard(spare)
                continue
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def _connect(self, origin: Origin, key: tuple[str, str, int]) -> Connection:
        https = origin.scheme == "https"
        try:
            with timeouts.within(self.connect_s):
                _, conn = await self.loop.create_connection(
                    lambda: Connection(self, key), origin.host, origin.port,
                    ssl=(self.tls if isinstance(self.tls, ssl.SSLContext) else self.tls())
                    if https else None,
                    server_hostname=origin.host if https else None)
        except TimeoutError:
            raise ConnectFailed(origin.host, origin.port,
                                TimeoutError(f"no connection within {self.connect_s:g} s")) \
                from None
        except OSError as exc:
            raise ConnectFailed(origin.host, origin.port, exc) from None
        self._open.add(conn)
        return conn

    def give_back(self, conn: Connection) -> None:
        conn.idle_since = self.loop.time()
        self._idle.setdefault(conn.key, []).append(conn)
        if self._sweep is None:
            self._sweep = self.loop.call_later(self.keepalive_s, self._close_expired)
        self._wake_one()

    def _close_expired(self) -> None:
        """Close the connections idle for `keepalive_s` (an upstream that never closes its
        end would otherwise keep a quiet gateway's peak of connections open for good)."""
        self._sweep = None
        limit = self.loop.time() - self.keepalive_s
        for idle in self._idle.values():
            while idle and idle[0].idle_since <= limit:   # oldest first: released in order
                idle.pop(0).close()
        if any(self._idle.values()) and not self.closed:
            self._sweep = self.loop.call_later(self.keepalive_s, self._close_expired)

    def forget(self, conn: Connection) -> None:
        """A connection closed (either side): no longer counted, nor offered."""
        self._open.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)
        if self._drained is not None and not self._open and not self._drained.done():
            self._drained.set_result(None)
        self._wake_one()

    def _wake_one(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """Close every connection and wait (briefly) until their transports are gone."""
        self.closed = True
        self._idle.clear()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        if not self._open:
            return
        self._drained = self.loop.create_future()
        for conn in list(self._open):
            conn.close()
        try:
            with timeouts.within(1.0):
                await self._drained
        except TimeoutError:
            pass   # a transport that does not report its end is not worth waiting for
