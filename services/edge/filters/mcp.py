"""`type: mcp` filters, as Plano calls them: the MCP tool `tool` (default: the filter's id)
over streamable HTTP, `tools/call` with arguments `{"body": <payload>, "path": <client
path>}`; the tool returns the payload to go on with, or `isError` to refuse (a 400 with the
tool's text).

Unlike Plano, which opens a session per request, one session per filter is kept for the
process and opened again when the server says it has forgotten it (HTTP 404). The endpoint is
the filter's URL, or `<url>/mcp` when it has no path (Plano posts to `/mcp`; so do MCP SDK
servers by default). A streamed reply's chunk goes as a string and must come back as one.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from switchyard.common.config.model import Filter
from switchyard.common.sse_parser import SSEParser
from switchyard.edge.filters.base import (
    CHUNK,
    Answer,
    FilterFailure,
    Sessions,
    read_capped,
    unreachable,
)

log = logging.getLogger("switchyard.edge")

OFFERED_VERSION = "2025-06-18"
# Versions of the initialize handshake the calls below are valid in (the server may answer
# with an older one than offered).
KNOWN_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
CLIENT_INFO = {"name": "switchyard", "version": "0.1.0"}
ACCEPT = "application/json, text/event-stream"
SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"
CLOSE_TIMEOUT_S = 2.0


@dataclass(slots=True)
class McpSession:
    endpoint: str
    session_id: str          # "" when the server keeps no sessions
    version: str

    def headers(self) -> dict[str, str]:
        out = {"accept": ACCEPT, "content-type": "application/json",
               VERSION_HEADER: self.version}
        if self.session_id:
            out[SESSION_HEADER] = self.session_id
        return out


class McpTransport:
    """MCP tool calls, one kept session per filter."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self._open: dict[str, McpSession] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._ids = itertools.count(1)

    async def call(self, f: Filter, path: str, payload: bytes, kind: str,
                   headers: dict[str, str], content_type: str) -> Answer:
        body: Any = payload.decode("utf-8", "replace") if kind == CHUNK else orjson.loads(payload)
        call_id = next(self._ids)
        message = {"jsonrpc": "2.0", "id": call_id, "method": "tools/call",
                   "params": {"name": f.tool or f.id,
                              "arguments": {"body": body, "path": path}}}
        session = await self._session(f)
        status, resp_type, raw = await self._post(session, message, headers)
        if status == 404 and session.session_id:
            # The server forgot the session (restarted, expired): open a new one, once.
            self._forget(f, session)
            session = await self._session(f)
            status, resp_type, raw = await self._post(session, message, headers)
        if not 200 <= status < 300:
            return Answer(status, raw)
        reply = _reply_to(call_id, resp_type, raw)
        return _verdict(reply, kind)

    async def _session(self, f: Filter) -> McpSession:
        found = self._open.get(f.id)
        if found is not None:
            return found
        lock = self._locks.setdefault(f.id, asyncio.Lock())
        async with lock:   # concurrent first calls open one session
            found = self._open.get(f.id)
            if found is None:
                found = self._open[f.id] = await self._initialize(f)
            return found

    def _forget(self, f: Filter, session: McpSession) -> None:
        if self._open.get(f.id) is session:
            del self._open[f.id]

    async def _initialize(self, f: Filter) -> McpSession:
        endpoint = mcp_endpoint(f.url)
        call_id = next(self._ids)
        hello = {"jsonrpc": "2.0", "id": call_id, "method": "initialize",
                 "params": {"protocolVersion": OFFERED_VERSION, "capabilities": {},
                            "clientInfo": CLIENT_INFO}}
        plain = McpSession(endpoint, "", OFFERED_VERSION)
        headers = plain.headers()
        del headers[VERSION_HEADER]   # not sent before a version is agreed
        status, resp_type, raw, session_id = await self._send(endpoint, hello, headers)
        if not 200 <= status < 300:
            raise FilterFailure(f"answered the MCP initialize with HTTP {status}")
        reply = _reply_to(call_id, resp_type, raw)
        result = reply.get("result")
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        if version not in KNOWN_VERSIONS:
            raise FilterFailure(f"speaks MCP version {str(version)[:32]!r}; the gateway "
                                f"speaks {', '.join(KNOWN_VERSIONS)}")
        session = McpSession(endpoint, session_id, str(version))
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        status, _, _, _ = await self._send(endpoint, note, session.headers())
        if not 200 <= status < 300:
            raise FilterFailure(f"answered the MCP initialized notice with HTTP {status}")
        return session

    async def _post(self, session: McpSession, message: dict[str, Any],
                    headers: dict[str, str]) -> tuple[int, str, bytes]:
        status, resp_type, raw, _ = await self._send(
            session.endpoint, message, {**headers, **session.headers()})
        return status, resp_type, raw

    async def _send(self, endpoint: str, message: dict[str, Any], headers: dict[str, str]
                    ) -> tuple[int, str, bytes, str]:
        try:
            async with self.sessions.get().post(endpoint, data=orjson.dumps(message),
                                                headers=headers, allow_redirects=False) as resp:
                raw = await read_capped(resp)
                return (resp.status, resp.headers.get("content-type", ""), raw,
                        resp.headers.get(SESSION_HEADER, ""))
        except (aiohttp.ClientError, OSError) as exc:
            raise unreachable(exc) from None

    async def close(self) -> None:
        """End the kept sessions (MCP asks clients to DELETE them), briefly; then forget them."""
        opened, self._open = list(self._open.values()), {}
        for s in opened:
            if not s.session_id:
                continue
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    async with self.sessions.get().delete(s.endpoint, headers=s.headers()):
                        pass
            except (aiohttp.ClientError, OSError, TimeoutError):
                log.debug("an MCP filter session could not be closed; the server will expire it")


def mcp_endpoint(url: str) -> str:
    """The filter's URL, or `<url>/mcp` when it names no path."""
    return url.rstrip("/") + "/mcp" if urlsplit(url).path in ("", "/") else url


def _reply_to(call_id: int, content_type: str, raw: bytes) -> dict[str, Any]:
    """The JSON-RPC response to `call_id` in an answer that is JSON or an SSE stream (other
    messages the server sends first, such as notifications, are passed over)."""
    if content_type.split(";")[0].strip() == "text/event-stream":
        parser = SSEParser()
        events = parser.feed(raw) + parser.close()
        messages: list[Any] = []
        for _, data in events:
            if data.strip():
                messages.append(_json(data))
    else:
        parsed = _json(raw)
        messages = parsed if isinstance(parsed, list) else [parsed]
    for m in messages:
        if isinstance(m, dict) and m.get("id") == call_id and ("result" in m or "error" in m):
            return m
    raise FilterFailure("sent no JSON-RPC reply to the gateway's call")


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FilterFailure("answered with a body that is not JSON-RPC") from None


def _verdict(reply: dict[str, Any], kind: str) -> Answer:
    """A tools/call result as a filter's answer (Plano's reading: `structuredContent.result`,
    else the first text content)."""
    if "error" in reply:
        err = reply["error"]
        code = err.get("code") if isinstance(err, dict) else None
        raise FilterFailure(f"answered the tool call with JSON-RPC error {code}")
    result = reply.get("result")
    if not isinstance(result, dict):
        raise FilterFailure("answered the tool call without a result")
    text = _first_text(result)
    if result.get("isError") is True:
        return Answer(400, message=text or "")
    structured = result.get("structuredContent")
    value: Any
    if isinstance(structured, dict) and "result" in structured:
        value = structured["result"]      # a tool returning a non-object is wrapped so
    elif text is not None:
        value = text
    elif isinstance(structured, dict):
        value = structured
    else:
        raise FilterFailure("answered the tool call with no content")
    if kind == CHUNK:
        if not isinstance(value, str):
            raise FilterFailure("answered a stream chunk with something other than a string")
        return Answer(200, value.encode())
    if isinstance(value, str):
        return Answer(200, value.encode())   # JSON text: the runner checks it is an object
    return Answer(200, orjson.dumps(value))


def _first_text(result: dict[str, Any]) -> str | None:
    content = result.get("content")
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" \
                    and isinstance(part.get("text"), str):
                return str(part["text"])
    return None
