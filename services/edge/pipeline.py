"""One request through the gateway, whatever the client's format: decode, resolve, add
history, call providers, render JSON or SSE, store. Route modules only wire a format in."""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType

import grpc
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from switchyard.common.canonical.aggregate import Turn, TurnBuilder
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, providers_pb2
from switchyard.edge import ids
from switchyard.edge.backends import Backends
from switchyard.edge.mux import MuxCall

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
SYSTEM_ROLES = (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER)

OnComplete = Callable[[Turn], Awaitable[None]]


def grpc_to_gateway_error(exc: grpc.aio.AioRpcError, service: str) -> GatewayError:
    """A failed call to a backend service, as the client should see it (no internals)."""
    code = exc.code()
    if code == grpc.StatusCode.NOT_FOUND:
        return GatewayError(404, exc.details() or "not found")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return GatewayError(503, f"the {service} service is unavailable; retry shortly",
                            type="unavailable", retry_after=1.0)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return GatewayError(504, f"the {service} service did not answer in time", type="timeout")
    return GatewayError(500, f"internal error in the {service} service", type="api_error")


@dataclass
class Exchange:
    """Per-request context: the client's format, ids, timings, response headers."""
    request: Request
    fmt: ModuleType
    response_id: str
    started: float = field(default_factory=time.perf_counter)
    request_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    upstream_ms: float = 0.0

    def __post_init__(self) -> None:
        # One id per request, however many Exchanges look at it (the error guard makes one).
        state = self.request.state
        self.request_id = (getattr(state, "request_id", None)
                           or self.request.headers.get("x-request-id") or ids.request_id())
        state.request_id = self.request_id
        self.headers["x-request-id"] = self.request_id
        self.headers["request-id"] = self.request_id

    def client_api_key(self) -> str:
        h = self.request.headers
        auth = h.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return h.get("x-api-key", "")

    def forward_headers(self) -> dict[str, str]:
        h = self.request.headers
        return {k: h[k] for k in FORWARDED_HEADERS if k in h}

    def error_response(self, err: GatewayError) -> Response:
        status, body = self.fmt.error_body(err)
        headers = dict(self.headers)
        if err.retry_after:
            headers["retry-after"] = str(max(1, round(err.retry_after)))
        return Response(orjson.dumps(body), status_code=status, headers=headers,
                        media_type="application/json")

    def json_response(self, body: dict) -> Response:
        self.headers["x-switchyard-overhead-ms"] = f"{self.overhead_ms():.2f}"
        return Response(orjson.dumps(body), headers=self.headers, media_type="application/json")

    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started) * 1000 - self.upstream_ms)

    def note_start(self, start: chat_pb2.StreamStart) -> None:
        self.upstream_ms = start.upstream_ms
        if start.provider:
            self.headers["x-switchyard-upstream"] = start.provider
        self.headers["x-switchyard-attempts"] = str(start.attempts or 1)
        if start.dropped_params:
            self.headers["x-switchyard-dropped-params"] = ",".join(start.dropped_params)


async def read_json(request: Request) -> dict:
    """The request body as a JSON object, or a 400/413 in the client's terms."""
    limit = request.app.state.config.security.max_body_bytes
    too_large = GatewayError(413, f"request body larger than {limit} bytes",
                             type="request_too_large")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():  # also bounds chunked bodies without a length
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise GatewayError(400, "the request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "the request body must be a JSON object")
    return body


def with_history(req: chat_pb2.ChatRequest, history: list[chat_pb2.Message]) -> None:
    """Prepend stored history, after the request's own leading system messages."""
    msgs = list(req.messages)
    lead = 0
    while lead < len(msgs) and msgs[lead].role in SYSTEM_ROLES:
        lead += 1
    del req.messages[:]
    req.messages.extend(msgs[:lead])
    req.messages.extend(history)
    req.messages.extend(msgs[lead:])


def generate_request(ex: Exchange, req: chat_pb2.ChatRequest,
                     plan) -> providers_pb2.GenerateRequest:
    return providers_pb2.GenerateRequest(request=req, plan=plan, request_id=ex.request_id,
                                         client_api_key=ex.client_api_key(),
                                         forward_headers=ex.forward_headers())


async def open_generation(backends: Backends, ex: Exchange, req: chat_pb2.ChatRequest,
                          plan) -> tuple[MuxCall, list[chat_pb2.StreamEvent]]:
    """Start a multiplexed generation and read until the first batch; an error is raised."""
    call = await backends.mux.generate(generate_request(ex, req, plan))
    try:
        batch = await call.read()
    except BaseException:
        call.cancel()
        raise
    if batch is grpc.aio.EOF or not batch.events:
        call.cancel()
        raise GatewayError(502, "the providers service ended the call without an answer")
    events = list(batch.events)
    if events[0].WhichOneof("event") == "error":
        call.cancel()
        raise GatewayError.from_proto(events[0].error)
    ex.note_start(events[0].start)
    return call, events


async def complete(backends: Backends, ex: Exchange, req: chat_pb2.ChatRequest,
                   plan) -> Turn:
    """The whole answer as one multiplexed reply (non-streaming clients); errors are raised."""
    reply = await backends.mux.complete(generate_request(ex, req, plan),
                                        timeout=(plan.timeout_s or 30.0) * 2 + 5.0)
    if not reply.events:
        raise GatewayError(502, "the providers service ended the call without an answer")
    turn = TurnBuilder().feed_all(reply.events)
    if turn.error is not None:
        raise GatewayError.from_proto(turn.error)
    ex.note_start(turn.start)
    return turn


def stream_response(ex: Exchange, call: MuxCall,
                    first: list[chat_pb2.StreamEvent], encoder,
                    on_complete: OnComplete | None = None,
                    finish: Callable[[], bytes] | None = None) -> StreamingResponse:
    """SSE in the client's grammar. `on_complete` runs (e.g. the state write) before the
    terminal bytes (`finish()`, default `encoder.done()`) reach the client."""
    ex.headers["x-switchyard-overhead-ms"] = f"{ex.overhead_ms():.2f}"
    body = _sse_body(call, first, encoder, on_complete, finish or encoder.done)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={**ex.headers, **SSE_HEADERS})


async def _sse_body(call, first, encoder, on_complete, finish) -> AsyncIterator[bytes]:
    builder = TurnBuilder() if on_complete else None
    try:
        out, err = _encode_batch(encoder, first, builder)
        if out:
            yield out
        if err is not None:
            yield encoder.error(err)
            return
        # read(), not `async for`: the first batch was already read with read().
        while (batch := await call.read()) is not grpc.aio.EOF:
            out, err = _encode_batch(encoder, batch.events, builder)
            if out:
                yield out
            if err is not None:
                yield encoder.error(err)
                return
        if on_complete is not None:
            try:
                await on_complete(builder.turn)
            except GatewayError as exc:
                yield encoder.error(exc.to_proto())
                return
        yield finish()
    except GatewayError as exc:   # the providers stream broke mid-answer
        yield encoder.error(exc.to_proto())
    finally:
        call.cancel()  # client gone: the providers service closes the upstream request


def _encode_batch(encoder, events, builder: TurnBuilder | None
                  ) -> tuple[bytes, chat_pb2.Error | None]:
    """Encode events up to an error event; return the bytes and the error, if any."""
    err = None
    for i, ev in enumerate(events):
        if ev.WhichOneof("event") == "error":
            err, events = ev.error, events[:i]
            break
    if builder is not None:
        builder.feed_all(events)
    return (encoder.encode(events) if events else b""), err
