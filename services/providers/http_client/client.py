"""The connections of one provider entry: reuse, the open limit, connecting, keep-alive."""
from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable

import aiohappyeyeballs

from switchyard.common import timeouts
from switchyard.providers.http_client.connection import Connection
from switchyard.providers.http_client.errors import ConnectFailed, HttpError
from switchyard.providers.http_client.request import Origin, origin_of, request_head
from switchyard.providers.http_client.response import Response

HAPPY_EYEBALLS_S = 0.25   # RFC 8305's recommended wait before racing the next address


class UpstreamClient:
    """The connections of one provider entry: idle ones kept per origin (most recent first
    used), at most `limit` open at once (a call beyond waits for one to free)."""

    def __init__(self, limit: int, keepalive_s: float, connect_s: float,
                 tls: Callable[[], ssl.SSLContext]) -> None:
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
        """A new connection: every address of the host raced as RFC 8305 says (a host whose
        IPv6 route is broken still answers on IPv4 within the connect bound), then TLS."""
        https = origin.scheme == "https"
        try:
            with timeouts.within(self.connect_s):
                infos = await self.loop.getaddrinfo(origin.host, origin.port,
                                                    type=socket.SOCK_STREAM)
                sock = await aiohappyeyeballs.start_connection(
                    infos, happy_eyeballs_delay=HAPPY_EYEBALLS_S, loop=self.loop)
                try:
                    _, conn = await self.loop.create_connection(
                        lambda: Connection(self, key), sock=sock,
                        ssl=self.tls() if https else None,
                        server_hostname=origin.host if https else None)
                except BaseException:
                    sock.close()
                    raise
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
