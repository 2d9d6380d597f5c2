"""Filter servers for the gateway's tests: Plano's two model-listener demos re-implemented
(a keyword guard; a PII redactor that anonymizes requests and restores replies), and an MCP
server with filter tools that is strict about the protocol (streamable HTTP, sessions).

Each is a real aiohttp server on a free 127.0.0.1 port, served from its own thread:

    with keyword_guard() as guard, pii_redactor() as pii, mcp_filters() as mcp:
        guard.url                # http://127.0.0.1:PORT (the filter's `url:`)
        guard.calls()            # every call: path, headers, body (bytes)
        guard.misbehave("error") # error | hang | drop | garbage | refuse; None: behave again

A filter is shown the client's body (input) or the reply — whole JSON, or one streamed chunk
of SSE / JSON-array bytes (output) — at `<url><client path>` (HTTP) or as the MCP tool's
`{"body", "path"}` arguments, the way Plano calls them.
"""
from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.emulator.app_thread import AppThread

Handler = Callable[[web.Request], Any]

BLOCKED_KEYWORDS = ("hack", "exploit", "malware", "phishing", "ransomware", "keylogger")
MCP_FORBIDDEN = "mcp-forbidden"        # the MCP policy tool refuses text holding this
SECRET = "SECRET_TOKEN"                # the MCP redactor replaces it in replies
REDACTED = "[REDACTED]"
PII_PATTERNS = (                       # SSN before phone: the longer match wins
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("CREDIT_CARD", re.compile(r"\b(?:\d{4}[ -]?){3}\d{4}\b")),
    ("EMAIL", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    ("PHONE", re.compile(r"\b\d{3}[-. ]\d{3}[-. ]\d{4}\b")),
)
MCP_VERSIONS = ("2025-06-18", "2025-03-26", "2024-11-05")


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class FilterServer:
    """One aiohttp app on a free port in a background thread, with its calls recorded."""
    routes: Callable[[FilterServer], web.Application]
    host: str = "127.0.0.1"
    port: int = 0
    mode: str | None = None
    mode_prefix: str = ""                  # misbehave only on paths starting with this
    state: Any = None                      # what the app keeps (the MCP server's sessions)
    _calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: AppThread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FilterServer:
        self._server = AppThread(self._app, host=self.host, port=self.port,
                                 name="filter-server", shutdown_timeout=0.5)
        self.port = self._server.start()
        return self

    def _app(self) -> web.Application:
        app = self.routes(self)
        app.middlewares.append(self._misbehaving)
        return app

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FilterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what the tests read and set ---------------------------------------------------
    def record(self, request: web.Request, body: bytes) -> None:
        with self._lock:
            self._calls.append(Call(request.path, dict(request.headers), body))

    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
        self.mode, self.mode_prefix = None, ""

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> list[Call]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            calls = self.calls()
            if len(calls) >= count:
                return calls
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {count} filter calls, got "
                             f"{len(self.calls())}")

    def misbehave(self, mode: str | None, prefix: str = "") -> None:
        """error: 500; hang: never answer; drop: close the connection; garbage: 200 with a
        body that is not JSON; refuse: 403 with a message; None: behave. Only on paths
        starting with `prefix`."""
        self.mode, self.mode_prefix = mode, prefix

    @web.middleware
    async def _misbehaving(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        mode = self.mode
        if mode is None or request.method != "POST" or \
                not request.path.startswith(self.mode_prefix):
            return await handler(request)
        self.record(request, await request.read())
        if mode == "error":
            return web.json_response({"detail": "internal filter error"}, status=500)
        if mode == "hang":
            await asyncio.sleep(3600)   # cancelled when the gateway gives up and hangs up
        if mode == "drop":
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError
        if mode == "garbage":
            return web.Response(body=b"<html>not json</html>", content_type="text/html")
        if mode == "refuse":
            return web.json_response({"error": {"message": "refused by the test filter",
                                                "code": "test_refusal"}}, status=403)
        raise AssertionError(f"unknown mode {mode!r}")


# ---- what a request says: the user's text in each client format ---------------------------

def user_texts(body: dict[str, Any], path: str) -> list[tuple[dict[str, Any], str]]:
    """(holder, key) of every user text string of a request body in any client format
    (chat, messages: `messages`; responses: `input`; Gemini: `contents`)."""
    found: list[tuple[dict[str, Any], str]] = []
    if "/v1/responses" in path:
        if isinstance(body.get("input"), str):
            found.append((body, "input"))
        for item in body.get("input") or []:
            if isinstance(item, dict) and item.get("role") == "user":
                _content_texts(item, found)
        return found
    if ":" in path.rsplit("/", 1)[-1]:   # Gemini: /v1beta/models/{model}:generateContent
        for content in body.get("contents") or []:
            if isinstance(content, dict) and content.get("role", "user") == "user":
                for part in content.get("parts") or []:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        found.append((part, "text"))
        return found
    for msg in body.get("messages") or []:
        if isinstance(msg, dict) and msg.get("role") == "user":
            _content_texts(msg, found)
    return found


def _content_texts(holder: dict[str, Any], found: list[tuple[dict[str, Any], str]]) -> None:
    content = holder.get("content")
    if isinstance(content, str):
        found.append((holder, "content"))
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                found.append((part, "text"))


def map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """`value` with `fn` applied to every string in it (keys left alone)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    return value


def map_sse(raw: str, fn: Callable[[str], str]) -> str:
    """Each `data:` line's JSON of an SSE (or a JSON-array stream's) chunk with `fn` applied
    to its strings; the framing kept byte for byte."""
    out = []
    for line in raw.split("\n"):
        head, sep, data = line.partition("data: ")
        if sep and not head and data.strip() not in ("", "[DONE]"):
            try:
                line = "data: " + orjson.dumps(map_strings(orjson.loads(data), fn)).decode()
            except orjson.JSONDecodeError:
                pass
        out.append(line)
    text = "\n".join(out)
    return text if "data: " in raw else fn(raw)   # Gemini's JSON array: plain text pieces


# ---- the keyword guard (Plano's content_guard demo) ----------------------------------------

def keyword_guard() -> FilterServer:
    """POST /{path}: 400 when the last user text holds a blocked keyword, else the body back."""
    def routes(server: FilterServer) -> web.Application:
        async def guard(request: web.Request) -> web.Response:
            raw = await request.read()
            server.record(request, raw)
            body = orjson.loads(raw)
            texts = user_texts(body, request.path)
            last = texts[-1][0][texts[-1][1]].lower() if texts else ""
            for word in BLOCKED_KEYWORDS:
                if word in last:
                    return web.json_response({"detail": {
                        "error": "content_blocked",
                        "message": f"Request blocked by content safety filter "
                                   f"(matched: '{word}')."}}, status=400)
            return web.Response(body=orjson.dumps(body), content_type="application/json")

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{path:.*}", guard)
        return app
    return FilterServer(routes)


# ---- the PII redactor (Plano's pii_anonymizer demo) ----------------------------------------

def anonymize(text: str, mapping: dict[str, str]) -> str:
    """`text` with each PII match replaced by a `[TYPE_N]` placeholder (added to `mapping`)."""
    taken: list[tuple[int, int, str]] = []
    counts: dict[str, int] = {}
    for kind, pattern in PII_PATTERNS:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e, _ in taken):
                continue
            known = next((k for k, v in mapping.items() if v == m.group()), None)
            if known is None:
                n = counts.get(kind, sum(1 for k in mapping if k.startswith(f"[{kind}_")))
                counts[kind] = n + 1
                known = f"[{kind}_{n}]"
                mapping[known] = m.group()
            taken.append((m.start(), m.end(), known))
    for start, end, placeholder in sorted(taken, reverse=True):
        text = text[:start] + placeholder + text[end:]
    return text


def pii_redactor() -> FilterServer:
    """POST /anonymize/{path}: user texts with PII replaced, the mapping kept under the
    request's x-request-id; POST /deanonymize/{path}: the placeholders of a reply (whole JSON
    or a streamed chunk) replaced back."""
    mappings: dict[str, dict[str, str]] = {}

    def routes(server: FilterServer) -> web.Application:
        async def anonymize_route(request: web.Request) -> web.Response:
            raw = await request.read()
            server.record(request, raw)
            body = orjson.loads(raw)
            mapping = mappings.setdefault(request.headers.get("x-request-id", "-"), {})
            for holder, key in user_texts(body, request.path):
                holder[key] = anonymize(holder[key], mapping)
            return web.Response(body=orjson.dumps(body), content_type="application/json")

        async def deanonymize_route(request: web.Request) -> web.Response:
            raw = await request.read()
            server.record(request, raw)
            mapping = mappings.get(request.headers.get("x-request-id", "-"), {})

            def restore(text: str) -> str:
                for placeholder, original in mapping.items():
                    text = text.replace(placeholder, original)
                return text

            if request.content_type == "application/json" and raw.lstrip()[:1] == b"{":
                out = orjson.dumps(map_strings(orjson.loads(raw), restore))
            else:
                out = map_sse(raw.decode(), restore).encode()
            return web.Response(body=out, content_type="text/plain")

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/anonymize/{path:.*}", anonymize_route)
        app.router.add_post("/deanonymize/{path:.*}", deanonymize_route)
        return app
    return FilterServer(routes)


# ---- an MCP server with filter tools --------------------------------------------------------

@dataclass
class McpState:
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    initializes: int = 0


def mcp_filters() -> FilterServer:
    """Streamable-HTTP MCP at POST /mcp, as strict as the MCP SDK's server: Accept must take
    JSON and SSE, a session id is issued at initialize and required (404 once forgotten:
    `server.state.sessions.clear()`), the agreed version in `mcp-protocol-version`, tools only
    after `notifications/initialized`. Tools (arguments `body`, `path`): `policy` refuses
    (isError) a request whose user text holds MCP_FORBIDDEN, else returns it unchanged;
    `redact_secrets` replaces SECRET in a reply (a JSON object or a chunk string)."""
    state = McpState()

    def routes(server: FilterServer) -> web.Application:
        server.state = state

        async def mcp(request: web.Request) -> web.Response:
            raw = await request.read()
            server.record(request, raw)
            accept = request.headers.get("accept", "")
            if "application/json" not in accept or "text/event-stream" not in accept:
                return _rpc_error(406, "Not Acceptable: accept application/json and "
                                       "text/event-stream")
            if request.content_type != "application/json":
                return _rpc_error(415, "Content-Type must be application/json")
            msg = orjson.loads(raw)
            if msg.get("method") == "initialize":
                state.initializes += 1
                asked = msg["params"]["protocolVersion"]
                version = asked if asked in MCP_VERSIONS else MCP_VERSIONS[0]
                sid = uuid.uuid4().hex
                state.sessions[sid] = {"version": version, "ready": False}
                return _sse(msg["id"], {"protocolVersion": version,
                                        "capabilities": {"tools": {}},
                                        "serverInfo": {"name": "test-filters", "version": "1"}},
                            {"mcp-session-id": sid})
            sid = request.headers.get("mcp-session-id")
            if not sid:
                return _rpc_error(400, "Bad Request: Missing session ID")
            session = state.sessions.get(sid)
            if session is None:
                return _rpc_error(404, "Not Found: Invalid or expired session ID")
            if request.headers.get("mcp-protocol-version") != session["version"]:
                return _rpc_error(400, "Bad Request: wrong mcp-protocol-version")
            if "id" not in msg:   # a notification
                if msg.get("method") == "notifications/initialized":
                    session["ready"] = True
                return web.Response(status=202)
            if not session["ready"] or msg.get("method") != "tools/call":
                return _sse_error(msg["id"], -32600, "not initialized or not a tool call")
            name, args = msg["params"]["name"], msg["params"]["arguments"]
            return _sse(msg["id"], _tool(name, args["body"], args["path"]))

        async def delete(request: web.Request) -> web.Response:
            state.sessions.pop(request.headers.get("mcp-session-id", ""), None)
            return web.Response(status=200)

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/mcp", mcp)
        app.router.add_delete("/mcp", delete)
        return app
    return FilterServer(routes)


def _tool(name: str, body: Any, path: str) -> dict[str, Any]:
    """A tools/call result the way FastMCP writes one: text content, and structuredContent
    (an object as is, anything else wrapped in `result`)."""
    if name == "policy":
        texts = user_texts(body, path) if isinstance(body, dict) else []
        if any(MCP_FORBIDDEN in holder[key] for holder, key in texts):
            return {"content": [{"type": "text", "text": "this topic is not allowed here"}],
                    "isError": True}
        out: Any = body
    elif name == "redact_secrets":
        def redact(text: str) -> str:
            return text.replace(SECRET, REDACTED)
        out = redact(body) if isinstance(body, str) else map_strings(body, redact)
    else:
        return {"content": [{"type": "text", "text": f"Unknown tool: {name}"}], "isError": True}
    text = out if isinstance(out, str) else orjson.dumps(out).decode()
    structured = out if isinstance(out, dict) else {"result": out}
    return {"content": [{"type": "text", "text": text}], "structuredContent": structured,
            "isError": False}


def _sse(msg_id: Any, result: dict[str, Any], headers: dict[str, str] | None = None
         ) -> web.Response:
    data = orjson.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}).decode()
    return web.Response(body=f"event: message\ndata: {data}\n\n".encode(), headers=headers,
                        content_type="text/event-stream")


def _sse_error(msg_id: Any, code: int, message: str) -> web.Response:
    data = orjson.dumps({"jsonrpc": "2.0", "id": msg_id,
                         "error": {"code": code, "message": message}}).decode()
    return web.Response(body=f"event: message\ndata: {data}\n\n".encode(),
                        content_type="text/event-stream")


def _rpc_error(status: int, message: str) -> web.Response:
    return web.json_response({"jsonrpc": "2.0", "id": "server-error",
                              "error": {"code": -32600, "message": message}}, status=status)
