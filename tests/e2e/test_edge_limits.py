"""The edge's connection hardening through a real `switchyard up`: trickling and silent
sockets are closed on deadlines while real clients keep being served, a stalled body is a
408 in the client's format, an abandoned upload is a 499, and a SIGTERM drain ends open
streams with the client's error event."""
from __future__ import annotations

import asyncio
import os
import pathlib
import re
import signal
import socket
import time

import httpx
import openai
import orjson
import pytest

from tests.e2e.harness import Gateway, free_port, gateway_config, wait_for

HEADER_TIMEOUT, BODY_TIMEOUT, BODY_GRACE = 1.5, 3.0, 1.0
MARGIN = 1.5   # scheduling slack on a busy 2-core machine
LIMITS = f"""
limits:
  header_timeout_seconds: {HEADER_TIMEOUT}
  body_timeout_seconds: {BODY_TIMEOUT}
  keep_alive_seconds: 2
  max_concurrent_requests: 20
"""
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def lgw(emulator, tmp_path_factory):
    port = free_port()
    gw = Gateway(gateway_config(emulator.url, port, extra=LIMITS),
                 tmp_path_factory.mktemp("edge-limits"), port).start()
    yield gw
    gw.stop()


def parse_http(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response with a content-length."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


class Trickler:
    """A raw socket that sends `first`, then one byte every `pace` seconds until the
    gateway closes it or `bound` seconds pass; records what came back and when it closed."""

    def __init__(self, port: int, first: bytes, byte: bytes, pace: float = 0.2,
                 bound: float = 10.0) -> None:
        self.port, self.first, self.byte, self.pace, self.bound = port, first, byte, pace, bound
        self.received = b""
        self.closed_after: float | None = None

    async def run(self, started: asyncio.Queue[None]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        loop = asyncio.get_running_loop()
        writer.write(self.first)
        await writer.drain()
        t0 = loop.time()
        await started.put(None)

        async def read_all() -> None:
            try:
                while chunk := await reader.read(65536):
                    self.received += chunk
            except ConnectionError:
                pass
        reading = asyncio.create_task(read_all())
        try:
            async with asyncio.timeout(self.bound):
                while not reading.done():
                    try:
                        writer.write(self.byte)
                        await writer.drain()
                    except ConnectionError:
                        break
                    # pacing the trickle; wakes early when the gateway closes the socket
                    await asyncio.wait([reading], timeout=self.pace)
                await reading
            self.closed_after = loop.time() - t0
        except TimeoutError:
            reading.cancel()
        finally:
            writer.close()


HEADER_TRICKLE = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow"
BODY_TRICKLE = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n{")


def test_trickling_sockets_are_closed_while_real_requests_are_served(lgw, emu):
    """100 slow sockets (half never finish their headers, half trickle a body; more than
    the 20 concurrent-request slots) do not stop the openai SDK from getting 200s."""
    headers = [Trickler(lgw.port, HEADER_TRICKLE, b"x") for _ in range(50)]  # a header name
    bodies = [Trickler(lgw.port, BODY_TRICKLE, b" ") for _ in range(50)]    # JSON whitespace
    client = openai.OpenAI(api_key="k", base_url=f"{lgw.url}/v1", max_retries=0, timeout=5)

    def real_requests() -> list[float]:
        took = []
        for i in range(10):
            t = time.monotonic()
            reply = client.chat.completions.create(model="gpt-4o-mini",
                                                   messages=[{"role": "user",
                                                              "content": f"ping {i}"}])
            took.append(time.monotonic() - t)
            assert reply.choices[0].message.content == f"Echo: ping {i}"
        return took

    async def scenario() -> tuple[list[float], float, float]:
        started: asyncio.Queue[None] = asyncio.Queue()
        t0 = time.monotonic()
        tasks = [asyncio.create_task(t.run(started)) for t in headers + bodies]
        for _ in tasks:   # every slow socket is connected and has sent its first bytes
            await asyncio.wait_for(started.get(), 10)
        took = await asyncio.to_thread(real_requests)
        served = time.monotonic() - t0
        await asyncio.gather(*tasks)
        return took, served, time.monotonic() - t0

    took, served, _ = asyncio.run(scenario())
    assert max(took) < 3.0, took
    # The real requests were answered while the body tricklers were still connected.
    assert served < min(b.closed_after or 99 for b in bodies), served
    for t in headers:
        assert t.received == b""
        assert t.closed_after is not None and t.closed_after < HEADER_TIMEOUT + MARGIN
    for t in bodies:
        assert t.closed_after is not None
        assert t.closed_after < BODY_TIMEOUT + BODY_GRACE + MARGIN
        status, _, body = parse_http(t.received)
        assert status == 408
        assert orjson.loads(body)["error"]["type"] == "timeout"


def test_a_socket_that_sends_nothing_is_closed_at_the_header_timeout(lgw):
    with socket.create_connection(("127.0.0.1", lgw.port)) as s:
        started = time.monotonic()
        s.settimeout(HEADER_TIMEOUT + MARGIN + 2)
        assert s.recv(100) == b""
        assert HEADER_TIMEOUT - 0.5 < time.monotonic() - started < HEADER_TIMEOUT + MARGIN


def test_a_body_that_stops_midway_is_a_408_in_the_clients_format(lgw):
    with socket.create_connection(("127.0.0.1", lgw.port)) as s:
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\n"
                  b"content-type: application/json\r\ncontent-length: 200\r\n\r\n"
                  b'{"model": "claude-3-5-haiku-20241022", ')
        started = time.monotonic()
        s.settimeout(BODY_TIMEOUT + BODY_GRACE + MARGIN + 2)
        data = b""
        while chunk := s.recv(4096):   # the 408, then the gateway closes the connection
            data += chunk
        elapsed = time.monotonic() - started
    status, headers, body = parse_http(data)
    assert status == 408
    assert headers["request-id"]
    assert orjson.loads(body) == {"type": "error", "error": {
        "type": "timeout_error",
        "message": f"the request body did not arrive within {BODY_TIMEOUT:g} s"}}
    assert BODY_TIMEOUT - 0.5 < elapsed < BODY_TIMEOUT + BODY_GRACE + MARGIN


def metric(gw: Gateway, name: str, labels: str) -> float:
    text = httpx.get(f"{gw.url}/metrics", timeout=5).text
    m = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_a_client_gone_mid_upload_is_one_log_line_and_a_499(lgw):
    name = "switchyard_http_requests_total"
    labels = 'route="create_chat_completion",status="499"'
    before = metric(lgw, name, labels)
    lines_before = lgw.log().count("closed the connection during the upload")
    with socket.create_connection(("127.0.0.1", lgw.port)) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                  b"content-type: application/json\r\ncontent-length: 500\r\n\r\n"
                  b'{"model": "gpt-4o-mini", ')
    wait_for(lambda: metric(lgw, name, labels) == before + 1, 5, "the 499 to be counted")
    log = lgw.log()
    assert log.count("closed the connection during the upload") == lines_before + 1
    assert "Traceback" not in log and "unhandled error" not in log


# ---- SIGTERM drain ------------------------------------------------------------------------

DRAIN = 2.0


@pytest.fixture
def dgw(emulator, tmp_path):
    port = free_port()
    gw = Gateway(gateway_config(emulator.url, port,
                                extra=f"limits: {{drain_seconds: {DRAIN}}}\n"),
                 tmp_path, port).start()
    yield gw
    gw.stop()


def edge_pid(gw: Gateway) -> int:
    for pid in gw.children():
        cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"serve edge" in cmd:
            return pid
    raise AssertionError("no edge process")


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_drain_ends_an_open_stream_with_the_clients_error_event(dgw, emu):
    emu.script("gpt-4o-mini", {"chunk_delay": 0.5, "chunks": 60,   # a 30 s stream
                               "reply": {"text": " ".join(["word"] * 60)}})
    body = {"model": "gpt-4o-mini", "messages": USER, "stream": True}
    events: list[bytes] = []
    with httpx.Client(timeout=30) as http, \
            http.stream("POST", f"{dgw.url}/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        for line in lines:
            if line.startswith("data: ") and '"content"' in line:
                break   # the stream is flowing
        signalled = time.monotonic()
        os.kill(edge_pid(dgw), signal.SIGTERM)
        wait_for(lambda: refused(dgw.port), DRAIN - 0.5, "the edge to stop accepting")
        events = [line.encode() for line in lines if line.startswith("data: ")]
        ended = time.monotonic() - signalled
    assert DRAIN - 0.5 < ended < DRAIN + MARGIN + 2, (ended, events[-2:])
    assert events and events[-1] != b"data: [DONE]"
    assert b"data: [DONE]" not in events
    last = orjson.loads(events[-1][len(b"data: "):])
    assert last["error"]["type"] == "service_unavailable"
    assert last["error"]["message"] == "the gateway is shutting down"
    emu.wait_for_disconnects(1, timeout=5)   # and the upstream request was closed
