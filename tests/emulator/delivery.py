"""Deliver one reply: delays, scripted errors, JSON bodies, SSE frames, aborts, disconnects."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.emulator.errors import ApiError
from tests.emulator.plan import Plan
from tests.emulator.state import EmulatorState


@dataclass
class Exchange:
    """One API request in flight: its record, and how far its reply got."""
    request: web.Request
    state: EmulatorState
    api: str
    model: str = ""
    stream: bool = False
    entry: dict | None = None
    frames_sent: int = 0
    aborted: bool = False
    done: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def set_status(self, status: int | None, **extra: Any) -> None:
        if self.entry is not None:
            self.entry["status"] = status
            self.entry.update(extra)

    def abort(self) -> None:
        """Drop the connection on purpose (a scripted abort, not a client disconnect)."""
        self.aborted = True
        self.set_status(200 if self.stream else None, aborted=True, frames_sent=self.frames_sent)
        transport = self.request.transport
        if transport is not None:
            transport.close()

    def client_gone(self) -> None:
        """Record that the client went away before the reply was complete."""
        if self.aborted or self.done:
            return
        self.done = True
        self.state.add_disconnect({
            "api": self.api, "path": self.request.path, "model": self.model, "stream": self.stream,
            "frames_sent": self.frames_sent, "time": time.time(),
            "request_index": self.entry["index"] if self.entry is not None else None,
        })
        self.set_status(self.entry.get("status") if self.entry else None, disconnected=True)


def open_exchange(request: web.Request, state: EmulatorState, body: Any, api: str, model: str,
                  id_header: str) -> Exchange:
    """Start an exchange: record the request (counted only, in fast mode) and name its id."""
    ex = Exchange(request, state, api, model=model,
                  stream=isinstance(body, dict) and body.get("stream") is True)
    ex.headers[id_header] = state.new_id("req_")
    if state.config.fast:
        state.count()
        return ex
    ex.entry = state.record({
        "method": request.method, "path": request.path, "query": dict(request.query),
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "json": body if isinstance(body, dict) else None, "model": model, "api": api,
        "stream": ex.stream, "status": None})
    return ex


def json_response(ex: Exchange, status: int, body: Any, headers: dict[str, str] | None = None
                  ) -> web.Response:
    """A JSON (or raw text, for scripted non-JSON bodies) response, recorded on the exchange."""
    ex.set_status(status)
    ex.done = True
    hdrs = {**ex.headers, **(headers or {})}
    if isinstance(body, str):
        return web.Response(status=status, text=body, headers=hdrs)
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json",
                        headers=hdrs)


@dataclass
class Renderer:
    """How one wire format turns a plan, or a scripted failure, into bytes."""
    body: Callable[[Plan], dict]
    frames: Callable[[Plan], list[bytes]]
    error_frame: Callable[[dict], bytes]       # step -> in-stream error frame
    scripted_error: Callable[[dict, int], ApiError]  # (step, default status) -> HTTP error
    stream_error_status: int                   # status for error_event_after_chunks off-stream
    media_type: str = "text/event-stream; charset=utf-8"   # of a stream (Bedrock's is binary)


async def deliver(ex: Exchange, step: dict, plan: Callable[[], Plan], r: Renderer) -> web.StreamResponse:
    """Answer per the step (or the default): delay, error, JSON body, or SSE stream."""
    delay = float(step.get("delay", 0)) + ex.state.config.latency_ms / 1000.0
    if delay:
        await asyncio.sleep(delay)
    ex.headers.update(step.get("headers") or {})
    if "status" in step:
        raise r.scripted_error(step, step["status"])
    if not ex.stream:
        if "abort_after_chunks" in step:
            ex.abort()
            return web.Response(status=200)
        if "error_event_after_chunks" in step:
            raise r.scripted_error(step, r.stream_error_status)
        return json_response(ex, 200, r.body(plan()))
    frames = r.frames(plan())
    resp = web.StreamResponse(status=200, headers={
        **ex.headers, "Content-Type": r.media_type, "Cache-Control": "no-cache"})
    ex.set_status(200)
    last = len(frames) - 1
    abort_at = min(step["abort_after_chunks"], last) if "abort_after_chunks" in step else -1
    error_at = min(step["error_event_after_chunks"], last) if "error_event_after_chunks" in step else -1
    gap = float(step.get("chunk_delay", ex.state.config.chunk_delay_ms / 1000.0))
    try:
        await resp.prepare(ex.request)
        if ex.state.config.fast and abort_at < 0 and error_at < 0 and not gap:
            frames = [b"".join(frames)]  # same events, one write: benchmarks measure the gateway
        for i, frame in enumerate(frames):
            if i == abort_at:
                ex.abort()
                return resp
            if i == error_at:
                await resp.write(r.error_frame(step))
                ex.frames_sent += 1
                break
            await resp.write(frame)
            ex.frames_sent += 1
            if gap:
                await asyncio.sleep(gap)
        await resp.write_eof()
    except ConnectionResetError:
        ex.client_gone()
        return resp
    ex.done = True
    ex.set_status(200, frames_sent=ex.frames_sent)
    return resp
