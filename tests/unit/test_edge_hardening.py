"""The edge's hardening, in-process with fake backends: JSON nesting depth, the concurrency
slot taken only once the body is read, the body-read timeout, a client gone mid-upload, and
the `limits:` fields that configure them."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
import yaml
from prometheus_client import REGISTRY

from switchyard.common.config import descriptors, parse_config
from switchyard.common.config.security import parse_security
from switchyard.edge.app import create_app
from tests.unit.test_edge_app import BASE, FakeBackends, make_client

DEPTHS = (100, 255, 256, 600, 1024, 1025)
ENDPOINTS = ("/v1/chat/completions", "/v1/messages", "/v1/responses")
FIELDS = ("top_level", "content", "tool_parameters")


def deep(levels: int) -> Any:
    """A JSON value `levels` containers deep (objects and arrays in turn)."""
    value: Any = "x"
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value


def deep_json(levels: int) -> bytes:
    """`deep(levels)` as bytes, built as text (orjson cannot write more than 255 levels)."""
    head = b"".join(b'{"k":' if i % 2 else b"[" for i in reversed(range(levels)))
    tail = b"".join(b"}" if i % 2 else b"]" for i in range(levels))
    return head + b'"x"' + tail


MARK = '"__DEEP__"'


def body_with(endpoint: str, where: str) -> bytes:
    """A valid request for `endpoint` with MARK where the deep value goes."""
    schema = {"type": "object", "properties": {"a": "__DEEP__"}}
    if endpoint == "/v1/chat/completions":
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "deep": "__DEEP__"}]
             if where == "content" else "hi"}]}
        tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    elif endpoint == "/v1/messages":
        body = {"model": "claude-3-5-haiku-20241022", "max_tokens": 10, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "deep": "__DEEP__"}]
             if where == "content" else "hi"}]}
        tool = {"name": "f", "input_schema": schema}
    else:
        body = {"model": "gpt-4o-mini", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi",
                                          "deep": "__DEEP__"}]
             if where == "content" else "hi"}]}
        tool = {"type": "function", "name": "f", "parameters": schema}
    if where == "top_level":
        body["deep_field"] = "__DEEP__"
    if where == "tool_parameters":
        body["tools"] = [tool]
    return orjson.dumps(body)


@pytest.fixture(scope="module")
def client():
    yield from make_client()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("where", FIELDS)
@pytest.mark.parametrize("levels", DEPTHS)
def test_deep_nesting_is_a_clean_400_never_a_5xx(client, endpoint, where, levels):
    c, _ = client
    raw = body_with(endpoint, where).replace(MARK.encode(), deep_json(levels))
    r = c.post(endpoint, content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (200, 400), (r.status_code, r.text[:300])
    body = r.json()
    if r.status_code == 400:
        err = body["error"]
        assert err["type"] == "invalid_request_error"
        if endpoint == "/v1/messages":
            assert body["type"] == "error"
    if levels >= 255:   # beyond the limit (250 levels), wherever it sits
        assert r.status_code == 400
        assert "nesting limit" in body["error"]["message"]
    elif where != "content":   # 100 levels of an unknown field or a schema are fine
        assert r.status_code == 200, r.text[:300]


def test_the_limit_is_exact(client):
    c, _ = client
    template = body_with("/v1/chat/completions", "top_level")
    for levels, status in ((249, 200), (250, 400)):  # plus the body's own object: 250, 251
        r = c.post("/v1/chat/completions", headers={"content-type": "application/json"},
                   content=template.replace(MARK.encode(), deep_json(levels)))
        assert r.status_code == status, (levels, r.text[:200])


# ---- the ASGI app driven directly: stalled and abandoned uploads ----------------------------

def edge_app(limits: str = "") -> tuple[Any, FakeBackends]:
    config = parse_config(yaml.safe_load(BASE + limits))
    be = FakeBackends()
    edge = create_app(config, backends=be)  # type: ignore[arg-type]
    edge.app.app.state.backends = be   # what the lifespan would set
    return edge, be


class Upload:
    """An ASGI receive/send pair: the body in the given parts, each after its gate opens."""

    def __init__(self, parts: list[bytes], end: str = "complete") -> None:
        self.parts = parts
        self.end = end          # "complete", "disconnect" or "stall"
        self.gates = [asyncio.Event() for _ in parts]
        self.sent: list[dict[str, Any]] = []
        self.i = 0

    async def receive(self) -> dict[str, Any]:
        if self.i < len(self.parts):
            await self.gates[self.i].wait()
            self.i += 1
            last = self.i == len(self.parts) and self.end == "complete"
            return {"type": "http.request", "body": self.parts[self.i - 1],
                    "more_body": not last}
        if self.end == "stall":
            await asyncio.Event().wait()
        if self.end == "disconnect":
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()   # after the body: the client stays
        raise AssertionError("unreachable")

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def status(self) -> int:
        return next(m["status"] for m in self.sent if m["type"] == "http.response.start")

    def json(self) -> Any:
        return orjson.loads(b"".join(m.get("body", b"") for m in self.sent
                                     if m["type"] == "http.response.body"))


def scope(path: str = "/v1/chat/completions") -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
            "query_string": b"", "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 12000),
            "scheme": "http", "http_version": "1.1", "root_path": "", "state": {}}


CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


def test_a_slow_upload_holds_no_slot():
    """With one slot, a request still sending its body does not block another; the slot
    is checked again once the body is in, so the limit still holds."""
    edge, be = edge_app("limits: {max_concurrent_requests: 1}\n")

    async def run() -> None:
        slow = Upload([CHAT[:10], CHAT[10:]])
        slow.gates[0].set()
        slow_task = asyncio.create_task(edge(scope(), slow.receive, slow.send))
        await asyncio.sleep(0)   # let it start its upload
        for _ in range(3):
            fast = Upload([CHAT])
            fast.gates[0].set()
            await asyncio.wait_for(edge(scope(), fast.receive, fast.send), 5)
            assert fast.status() == 200, fast.sent
            assert edge.inflight == 0
        # The slow one's body arrives while another request holds the slot: 503.
        gate = asyncio.Event()
        real_complete = be.mux.complete

        async def held_complete(req: Any, timeout: float) -> Any:
            await gate.wait()
            return await real_complete(req, timeout)
        be.mux.complete = held_complete  # type: ignore[method-assign]
        holder = Upload([CHAT])
        holder.gates[0].set()
        holder_task = asyncio.create_task(edge(scope(), holder.receive, holder.send))
        while edge.inflight == 0:
            await asyncio.sleep(0)
        slow.gates[1].set()
        await asyncio.wait_for(slow_task, 5)
        assert slow.status() == 503
        assert slow.json()["error"]["type"] == "service_unavailable"
        gate.set()
        await asyncio.wait_for(holder_task, 5)
        assert holder.status() == 200 and edge.inflight == 0

    asyncio.run(run())


def test_a_stalled_body_is_a_408_in_the_clients_format():
    edge, _ = edge_app("limits: {body_timeout_seconds: 0.2}\n")

    async def run(path: str) -> Upload:
        up = Upload([CHAT[:10]], end="stall")
        up.gates[0].set()
        await asyncio.wait_for(edge(scope(path), up.receive, up.send), 5)
        return up

    chat = asyncio.run(run("/v1/chat/completions"))
    assert chat.status() == 408
    assert chat.json()["error"]["type"] == "timeout"
    assert "did not arrive within 0.2 s" in chat.json()["error"]["message"]
    msgs = asyncio.run(run("/v1/messages"))
    assert msgs.status() == 408
    assert msgs.json()["type"] == "error" and msgs.json()["error"]["type"] == "timeout_error"
    assert edge.inflight == 0


def requests_counted(route: str, status: str) -> float:
    return REGISTRY.get_sample_value("switchyard_http_requests_total",
                                     {"route": route, "status": status}) or 0.0


def test_a_client_gone_mid_upload_is_one_log_line_and_a_499(caplog):
    edge, be = edge_app()
    before = requests_counted("create_chat_completion", "499")
    errors_before = requests_counted("create_chat_completion", "500")

    async def run() -> None:
        up = Upload([CHAT[:10]], end="disconnect")
        up.gates[0].set()
        await asyncio.wait_for(edge(scope(), up.receive, up.send), 5)

    with caplog.at_level(logging.INFO):
        asyncio.run(run())
    assert requests_counted("create_chat_completion", "499") == before + 1
    assert requests_counted("create_chat_completion", "500") == errors_before
    lines = [r for r in caplog.records if r.name.startswith(("switchyard", "uvicorn"))]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "closed the connection during the upload" in lines[0].getMessage()
    assert lines[0].exc_info is None and lines[0].levelno < logging.WARNING
    assert be.mux.sent == [] and edge.inflight == 0


# ---- limits: config ------------------------------------------------------------------------

def expand(where: str, field: str, value: Any) -> Any:
    return value


def test_limits_timeouts_and_bounds_parse():
    errors: list[str] = []
    sec = parse_security(None, {"header_timeout_seconds": 1.5, "body_timeout_seconds": 2,
                                "keep_alive_seconds": 3, "drain_seconds": 4,
                                "max_connections": 50}, errors, expand)
    assert errors == []
    assert (sec.header_timeout_s, sec.body_timeout_s, sec.keep_alive_s, sec.drain_s) == \
        (1.5, 2.0, 3.0, 4.0)
    # Without its own value, the request bound follows the connection bound.
    assert (sec.max_connections, sec.max_concurrent_requests) == (50, 50)
    errors = []
    parse_security(None, {"drain_seconds": 0, "header_timeout_seconds": "10s",
                          "max_connections": 1.5}, errors, expand)
    assert len(errors) == 3 and all("limits." in e for e in errors)


def test_defaults_follow_the_descriptor_limit():
    assert descriptors.connection_budget(1024) == 960
    assert descriptors.default_max_concurrent(1024) == 960
    assert descriptors.default_max_concurrent(65536) == 1024
    assert descriptors.connection_budget(100) == 50
    sec = parse_security(None, None, [], expand)
    assert sec.max_concurrent_requests == descriptors.default_max_concurrent()
    assert sec.max_connections == descriptors.connection_budget()
    assert (sec.header_timeout_s, sec.body_timeout_s, sec.keep_alive_s, sec.drain_s) == \
        (10.0, 30.0, 5.0, 30.0)
