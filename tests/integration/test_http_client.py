"""The upstream HTTP client against a raw socket server that answers with scripted bytes:
framing (length, chunked, to the end of the connection), keep-alive and its limits, what
is sent, and every way a reply can break."""
from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable

import pytest

from switchyard.providers.http_client import (
    PAUSE_AT,
    ConnectFailed,
    Disconnected,
    HttpError,
    MalformedReply,
    UpstreamClient,
    origin_of,
    request_head,
)

Answer = Callable[[bytes], list[bytes]]   # one request's bytes -> the reply's writes


class RawServer:
    """Reads one request at a time (head and Content-Length body) and writes `answer`'s
    pieces, one drained write each; a piece b"" closes the connection."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.gate: asyncio.Event | None = None   # when set: pieces after the first wait for it
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                for i, piece in enumerate(self.answer(request)):
                    if i and self.gate is not None:
                        await self.gate.wait()
                    if not piece:
                        writer.close()
                        return
                    writer.write(piece)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@contextlib.asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[RawServer]:
    srv = RawServer(answer)
    srv.server = await asyncio.start_server(srv.serve, "127.0.0.1", 0)
    try:
        yield srv
    finally:
        srv.server.close()


@contextlib.asynccontextmanager
async def client(limit: int = 8, keepalive_s: float = 75.0) -> AsyncIterator[UpstreamClient]:
    c = UpstreamClient(limit, keepalive_s, 2.0, ssl.create_default_context)
    try:
        yield c
    finally:
        await c.close()


def pieces(*writes: bytes) -> Answer:
    """The same writes for every request (b"": close the connection)."""
    return lambda _: list(writes)


def fixed(body: bytes, *extra: bytes) -> Answer:
    return lambda _: [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%s"
                      b"Content-Length: %d\r\n\r\n%s" % (b"".join(extra), len(body), body)]


def chunked(*chunks: bytes) -> Answer:
    return lambda _: [b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n",
                      *(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks), b"0\r\n\r\n"]


async def fetch(c: UpstreamClient, url: str) -> bytes:
    """POST b"{}" and read the whole reply, giving its connection back."""
    reply = await c.post(url, b"{}", {})
    try:
        return await reply.read()
    finally:
        reply.release()


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


async def test_a_length_framed_reply_is_read_and_its_connection_reused():
    async with raw_server(fixed(b'{"ok":true}', b"Retry-After: 3\r\n")) as srv, \
            client() as c:
        for _ in range(3):
            reply = await c.post(srv.url, b"{}", {"Content-Type": "application/json"})
            assert (reply.status, reply.content_type) == (200, "application/json")
            assert reply.headers["retry-after"] == "3"
            assert await reply.read() == b'{"ok":true}'
            reply.release()
        assert srv.connections == 1 and len(srv.requests) == 3
        (conn,) = c._open
        assert conn.transport is not None   # and small writes are not held back (Nagle)
        sock = conn.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


async def test_a_chunked_stream_arrives_read_by_read_and_ends_with_empty_bytes():
    async with raw_server(chunked(b"data: a\n\n", b"data: b\n\n")) as srv, client() as c:
        srv.gate = asyncio.Event()
        reply = await c.post(srv.url, b"{}", {})
        assert reply.content_type == "text/event-stream"
        read = asyncio.ensure_future(reply.read_chunk())
        await asyncio.sleep(0)
        assert not read.done()          # nothing of the body yet: the read waits
        srv.gate.set()
        got = await read
        while (more := await reply.read_chunk()):
            got += more
        assert got == b"data: a\n\ndata: b\n\n"
        assert await reply.read_chunk() == b""
        reply.release()
        assert await fetch(c, srv.url) == b"data: a\n\ndata: b\n\n"
        assert srv.connections == 1


async def test_a_body_without_length_ends_with_the_connection_and_is_not_reused():
    answer = pieces(b"HTTP/1.1 200 OK\r\n\r\npart one ", b"part two", b"")
    async with raw_server(answer) as srv, client() as c:
        for _ in range(2):
            assert await fetch(c, srv.url) == b"part one part two"
        assert srv.connections == 2


async def test_an_informational_reply_before_the_reply_is_passed_over():
    answer = pieces(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n",
                    b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
    async with raw_server(answer) as srv, client() as c:
        reply = await c.post(srv.url, b"{}", {})
        assert reply.status == 201 and "link" not in reply.headers
        assert await reply.read() == b"{}"
        reply.release()
        assert c._idle


async def test_connection_close_is_honoured():
    async with raw_server(fixed(b"{}", b"Connection: close\r\n")) as srv, client() as c:
        for _ in range(2):
            assert await fetch(c, srv.url) == b"{}"
        assert srv.connections == 2


async def test_a_reply_cut_short_is_a_disconnect_not_a_short_body():
    answer = pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", b"")
    async with raw_server(answer) as srv, client() as c:
        reply = await c.post(srv.url, b"{}", {})
        with pytest.raises(Disconnected):
            await reply.read()
        reply.close()


async def test_a_connection_closed_before_any_reply_fails_the_post():
    async with raw_server(lambda _: [b""]) as srv, client() as c:
        with pytest.raises(Disconnected):
            await c.post(srv.url, b"{}", {})


async def test_bytes_that_are_not_http_are_a_malformed_reply():
    async with raw_server(lambda _: [b"SSH-2.0-OpenSSH\r\n\r\n"]) as srv, client() as c:
        with pytest.raises(MalformedReply):
            await c.post(srv.url, b"{}", {})


async def test_a_gzip_body_is_decoded_and_an_unknown_coding_refused():
    body = gzip.compress(b'{"text":"hello"}')
    async with raw_server(fixed(body, b"Content-Encoding: gzip\r\n")) as srv, client() as c:
        assert await fetch(c, srv.url) == b'{"text":"hello"}'
    async with raw_server(fixed(b"x", b"Content-Encoding: zstd\r\n")) as srv, client() as c:
        reply = await c.post(srv.url, b"{}", {})
        with pytest.raises(MalformedReply):
            await reply.read()
        reply.close()


async def test_what_is_sent():
    async with raw_server(fixed(b"{}")) as srv, client() as c:
        port = srv.url.split(":")[2].split("/")[0]
        reply = await c.post(srv.url + "?key=k%2Fv", b'{"a":1}', {"X-Api-Key": "sk"})
        reply.release()
        reply = await c.post(srv.url, b"{}", {"host": "api.example.com", "User-Agent": "me",
                                              "Content-Length": "99", "Transfer-Encoding": "x"})
        reply.release()
    first, second = srv.requests
    head, _, body = first.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat?key=k%2Fv HTTP/1.1"   # an escape stays as signed
    assert set(lines[1:]) == {f"Host: 127.0.0.1:{port}".encode(), b"X-Api-Key: sk",
                              b"User-Agent: switchyard", b"Accept-Encoding: identity",
                              b"Content-Length: 7"}
    assert body == b'{"a":1}'
    assert b"host: api.example.com" in second and b"Host: 127" not in second
    assert b"User-Agent: me" in second and b"switchyard" not in second
    assert b"Content-Length: 2\r\n" in second and b"99" not in second
    assert b"Transfer-Encoding" not in second


def test_the_request_target_escapes_only_what_cannot_travel_raw():
    assert origin_of("https://h/m/a b/é:x?q=1").target == b"/m/a%20b/%C3%A9:x?q=1"
    assert origin_of("https://h/model/arn%3Aaws%2Fx/converse").target == \
        b"/model/arn%3Aaws%2Fx/converse"
    assert origin_of("http://[::1]:8080").host_header == "[::1]:8080"
    assert origin_of("https://h:443/x").host_header == "h"
    with pytest.raises(HttpError):
        origin_of("ftp://h/x")


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent():
    origin = origin_of("http://h/x")
    for headers in ({"X-A": "v\r\nInjected: 1"}, {"X\nB": "v"}, {"A:B": "v"}):
        with pytest.raises(HttpError):
            request_head(origin, headers, 0)


async def test_an_unreachable_port_names_host_and_port():
    async with raw_server(fixed(b"{}")) as srv:
        url = srv.url
    async with client() as c:
        with pytest.raises(ConnectFailed) as failed:
            await c.post(url, b"{}", {})
    assert failed.value.host == "127.0.0.1" and isinstance(failed.value.os_error, OSError)
    assert failed.value.reason == "Connection refused"


async def test_at_the_limit_a_call_waits_for_a_connection_to_come_back():
    async with raw_server(fixed(b"{}")) as srv, client(limit=1) as c:
        first = await c.post(srv.url, b"{}", {})
        second = asyncio.ensure_future(c.post(srv.url, b"{}", {}))
        await until(lambda: bool(c._waiters))   # the second call waits for a place
        assert not second.done() and len(srv.requests) == 1
        assert await first.read() == b"{}"
        first.release()
        reply = await asyncio.wait_for(second, 5)
        assert await reply.read() == b"{}"
        reply.release()
        assert srv.connections == 1


async def test_an_idle_connection_the_upstream_closed_is_not_used_again():
    answer = pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", b"")
    async with raw_server(answer) as srv, client() as c:
        reply = await c.post(srv.url, b"{}", {})
        await reply.read()
        reply.release()              # kept: the reply said nothing of closing
        await until(lambda: not c._open)   # until the upstream's close arrives
        assert await fetch(c, srv.url) == b"{}"
        assert srv.connections == 2


async def test_a_reader_that_falls_behind_pauses_the_socket_and_resumes_it():
    big = b"x" * (PAUSE_AT * 4)
    async with raw_server(fixed(big)) as srv, client() as c:
        reply = await c.post(srv.url, b"{}", {})
        (conn,) = c._open
        await until(lambda: conn.paused)
        assert reply._size < PAUSE_AT * 2   # the rest waits in the socket, not in memory
        assert await reply.read() == big
        reply.release()
        assert not conn.paused and c._idle


async def test_an_interrupt_fails_only_a_waiting_read():
    async with raw_server(chunked(b"late")) as srv, client() as c:
        srv.gate = asyncio.Event()
        reply = await c.post(srv.url, b"{}", {})
        reply.interrupt(TimeoutError())          # nothing waits: no effect
        read = asyncio.ensure_future(reply.read_chunk())
        await asyncio.sleep(0)
        reply.interrupt(TimeoutError())
        with pytest.raises(TimeoutError):
            await read
        srv.gate.set()
        assert await reply.read() == b"late"     # the reply goes on for a later read
        reply.release()


async def test_a_large_body_arrives_whole():
    body = bytes(range(256)) * 1024   # 256 KB: written after its head, not joined to it
    async with raw_server(fixed(b"{}")) as srv, client() as c:
        reply = await c.post(srv.url, body, {})
        assert await reply.read() == b"{}"
        reply.release()
    assert srv.requests[0].endswith(b"\r\n\r\n" + body)
    assert b"Content-Length: %d\r\n" % len(body) in srv.requests[0]


async def test_connections_idle_past_the_keepalive_are_closed_by_the_client():
    async with raw_server(fixed(b"{}")) as srv, client(keepalive_s=0.05) as c:
        for _ in range(2):   # two at once: two connections, both kept
            replies = await asyncio.gather(c.post(srv.url, b"{}", {}), c.post(srv.url, b"{}", {}))
            for reply in replies:
                await reply.read()
                reply.release()
        assert len(c._open) == 2 and srv.connections == 2
        await until(lambda: not c._open)   # the upstream never closes them; the client does
        assert c._sweep is None            # and stops sweeping once none is left


async def test_bytes_after_the_reply_end_the_connection_but_not_the_reply():
    answer = pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nxx")
    async with raw_server(answer) as srv, client() as c:
        reply = await c.post(srv.url, b"{}", {})
        await until(lambda: not c._open)   # the stray second reply closed the connection
        assert await reply.read() == b"{}"
        reply.release()
        assert not c._idle and srv.connections == 1
