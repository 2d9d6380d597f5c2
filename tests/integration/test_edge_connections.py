"""The edge's HTTP protocol under a real uvicorn server (in a thread, fake backends): the open
connection bound, the header deadline, and answers whole and in order with each head held for
its body (pipelining, 100-continue, HEAD), over real sockets."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
import yaml
from prometheus_client import REGISTRY

from switchyard.common.config import parse_config
from switchyard.edge.app import create_app
from switchyard.edge.connections import protocol_class
from switchyard.edge.server import EdgeServer
from tests.e2e.harness import free_port, wait_for
from tests.unit.test_edge_app import BASE, FakeBackends

LIMITS = "limits: {max_connections: 3, header_timeout_seconds: 0.5}\n"


@pytest.fixture
def server() -> Iterator[tuple[EdgeServer, int]]:
    config = parse_config(yaml.safe_load(BASE + LIMITS))
    port = free_port()
    edge = create_app(config, backends=FakeBackends())  # type: ignore[arg-type]
    uv = uvicorn.Config(edge, host="127.0.0.1", port=port, loop="asyncio", lifespan="on",
                        http=protocol_class(config.security), log_level="warning")
    srv = EdgeServer(uv, edge, drain_s=1.0)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for(lambda: srv.started, 10, "the edge to listen")
    yield srv, port
    srv.should_exit = True
    thread.join(10)


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """True when the server closes `sock` within `within` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def closed_count(reason: str) -> float:
    return REGISTRY.get_sample_value("switchyard_http_connections_closed_total",
                                     {"reason": reason}) or 0.0


def read_all(sock: socket.socket) -> bytes:
    """Everything `sock` receives until the server closes it."""
    sock.settimeout(5)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def exchange(port: int, raw: bytes) -> bytes:
    """Send `raw` on a new connection; all the server sends back until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        return read_all(s)


def get_healthz(port: int) -> bytes:
    return exchange(port, b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")


def test_beyond_max_connections_a_new_connection_is_closed_at_once(server):
    srv, port = server
    refused = closed_count("connection_limit")
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        wait_for(lambda: len(srv.server_state.connections) == 3, 5, "three connections")
        extra = socket.create_connection(("127.0.0.1", port))
        started = time.monotonic()
        assert closed_by_peer(extra, within=2.0)
        assert time.monotonic() - started < 0.4   # at once, not at the header deadline
        extra.close()
        assert closed_count("connection_limit") == refused + 1
        held.pop().close()
        wait_for(lambda: len(srv.server_state.connections) < 3, 5, "a connection to go")
        assert get_healthz(port).startswith(b"HTTP/1.1 200")
    finally:
        for s in held:
            s.close()


def test_headers_must_be_complete_within_the_header_timeout(server):
    _, port = server
    timed_out = closed_count("header_timeout")
    silent = socket.create_connection(("127.0.0.1", port))
    trickle = socket.create_connection(("127.0.0.1", port))
    started = time.monotonic()
    trickle.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
    for _ in range(5):   # still sending, but never finishing the headers
        trickle.sendall(b"x")
        time.sleep(0.05)  # pacing the trickle, not synchronisation
    assert closed_by_peer(silent, within=3.0)
    assert closed_by_peer(trickle, within=3.0)
    assert 0.4 < time.monotonic() - started < 2.5
    silent.close()
    trickle.close()
    assert closed_count("header_timeout") == timed_out + 2


def test_pipelined_requests_get_whole_answers_in_order(server):
    # Each answer's head is held for its body (HeadWithBody): the two must still come out
    # whole, in order, on one connection.
    _, port = server
    data = exchange(port, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
                          b"GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200")
    length = int(next(line.split(b":")[1] for line in first.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    body, second = rest[:length], rest[length:]
    assert body.startswith(b"{")
    assert second.startswith(b"HTTP/1.1 200") and b'"gpt-4o-mini"' in second


def test_expect_100_continue_is_answered_before_the_body_is_sent(server):
    _, port = server
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
                  b"content-type: application/json\r\nexpect: 100-continue\r\n"
                  b"content-length: %d\r\n\r\n" % len(body))
        interim = s.recv(4096)   # waits: the body is not sent until this arrives
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        answer = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):] + read_all(s)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"chat.completion"' in answer


def test_a_head_request_gets_the_head_alone(server):
    _, port = server
    data = exchange(port, b"HEAD /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n")
