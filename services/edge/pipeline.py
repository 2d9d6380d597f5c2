"""One request through the gateway, whatever the client's format: read and decode the body,
authorize the model, resolve it, add history, call providers, render JSON or SSE, store.
Route modules only say which `ClientFormat` an endpoint speaks."""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from switchyard.common import timeouts
from switchyard.common.canonical.aggregate import Turn, TurnBuilder, turn_message
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, providers_pb2, router_pb2, state_pb2
from switchyard.common.telemetry import propagation, tracer
from switchyard.edge import ids, limits, observe, preferences
from switchyard.edge.clients.base import EdgeBackends, Generation
from switchyard.edge.clients.providers import EOF
from switchyard.edge.formats.base import (
    ClientFormat,
    ConversationLink,
    Decoded,
    Reply,
    StreamEncoder,
)
from switchyard.edge.guard import Slot, authorize_model
from switchyard.edge.request_state import scope_state
from switchyard.edge.sse_response import EventStreamResponse

if TYPE_CHECKING:   # the filter chains are loaded only when the config has filters
    from switchyard.edge.filters import FilterRun, Filters

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
SSE_MEDIA_TYPE = "text/event-stream"
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
SYSTEM_ROLES = (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER)
DEFAULT_TENANT = "default"
# Levels of nesting a body may have (its own object included): orjson writes 254, less the
# four of read_json's probe, kept for upstream encoders that nest a part deeper.
MAX_NESTING = 250

log = logging.getLogger("switchyard.edge")

OnComplete = Callable[[Turn], Awaitable[None]]
BodyHook = Callable[[dict[str, Any]], None]


def backends(request: Request) -> EdgeBackends:
    """The edge process's clients of router, providers and state."""
    be: EdgeBackends = request.app.state.backends
    return be


def filter_chains(request: Request) -> Filters | None:
    """The listener's filter chains (None without any: the flow then makes no filter call)."""
    found: Filters | None = getattr(request.app.state, "filters", None)
    return found


def tenant_of(request: Request) -> str:
    """The caller's tenant (gateway auth sets it; "default" without auth)."""
    tenant: str = scope_state(request).get("tenant", DEFAULT_TENANT)
    return tenant


@dataclass
class Exchange:
    """Per-request context: the client's format, ids, timings, response headers. The
    request id itself is put on every answer by the guard."""
    request: Request
    fmt: ClientFormat
    response_id: str
    started: float = field(default_factory=time.perf_counter)
    request_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    upstream_ms: float = 0.0
    filters: FilterRun | None = None   # this request's filter calls (None: the listener has none)
    dropped: list[str] = field(default_factory=list)  # what the client decoder dropped
    routing: preferences.Decision | None = None  # preference-aligned routing, when routed

    def __post_init__(self) -> None:
        state = scope_state(self.request)
        self.request_id = state.get("request_id") or ids.request_id()
        state["request_id"] = self.request_id

    def client_api_key(self) -> str:
        h = self.request.headers
        auth = h.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        # Google's SDK sends x-goog-api-key; `?key=` is its URL spelling.
        return h.get("x-api-key") or h.get("x-goog-api-key") or \
            self.request.query_params.get("key", "")

    def forward_headers(self) -> dict[str, str]:
        h = self.request.headers
        return {k: h[k] for k in FORWARDED_HEADERS if k in h}

    def error_response(self, err: GatewayError) -> Response:
        status, body = self.fmt.error_body(err)
        headers = dict(self.headers)
        if err.retry_after:
            headers["retry-after"] = str(max(1, math.ceil(err.retry_after)))   # never early
        return Response(orjson.dumps(body), status_code=status, headers=headers,
                        media_type="application/json")

    def json_response(self, body: dict[str, Any]) -> Response:
        self.headers["x-switchyard-overhead-ms"] = f"{self.overhead_ms():.2f}"
        return Response(orjson.dumps(body), headers=self.headers, media_type="application/json")

    def overhead_ms(self) -> float:
        """Time in the gateway less the upstream's and the filters' (which it also puts in
        `x-switchyard-filter-ms`)."""
        spent = (time.perf_counter() - self.started) * 1000 - self.upstream_ms
        if self.filters is not None:
            self.headers["x-switchyard-filter-ms"] = f"{self.filters.ms:.2f}"
            spent -= self.filters.ms
        return max(0.0, spent)

    def note_start(self, start: chat_pb2.StreamStart) -> None:
        self.upstream_ms = start.upstream_ms
        observe.started(self.request, start)
        preferences.observed_start(self.request, start)
        if start.provider:
            self.headers["x-switchyard-upstream"] = start.provider
        self.headers["x-switchyard-attempts"] = str(start.attempts or 1)
        dropped = list(dict.fromkeys([*self.dropped, *start.dropped_params]))
        if dropped:
            self.headers["x-switchyard-dropped-params"] = ",".join(dropped)


# ---- the flow -----------------------------------------------------------------------------

async def admit(ex: Exchange, prepare: BodyHook | None = None
                ) -> tuple[Decoded, router_pb2.RoutePlan]:
    """Read and decode the body, check the key may use the model, resolve it to a plan.
    Every endpoint that names a model goes through here (`prepare` adjusts the raw body)."""
    chains = filter_chains(ex.request)
    if chains is not None:   # the listener's filters: this request's calls to them
        ex.filters = chains.bind(ex.request, ex.request_id, tenant_of(ex.request))
    body = await read_json(ex.request, ex.filters)
    if prepare is not None:
        prepare(body)
    inline = preferences.take_preferences(body)   # the request's own routes, never upstream
    decoded = ex.fmt.decode(body)
    ex.dropped = decoded.dropped
    authorize_model(scope_state(ex.request), decoded.request.model)
    routed = await route_request(ex, decoded, inline)
    if routed is not None:
        return decoded, routed
    try:
        plan = await backends(ex.request).routes.resolve(decoded.request.model)
    except GatewayError as exc:
        if exc.http_status == 404 and not decoded.request.model:
            # No model and no `default: true` entry: the client's omission, not a lookup miss.
            raise GatewayError(400, "Missing required parameter: 'model' (this gateway has "
                               "no default model)", param="model") from None
        raise
    return decoded, plan


async def route_request(ex: Exchange, decoded: Decoded,
                        inline: list[router_pb2.RoutePreference] | None
                        ) -> router_pb2.RoutePlan | None:
    """Preference-aligned routing (edge/preferences.py): the plan of the route's candidate
    pool, the request now naming its first model; None to resolve the model as asked."""
    if inline is None and preferences.enabled(ex.request) is None:
        return None   # a config without routing: nothing more on the hot path
    decision = await preferences.decide(ex.request, decoded.request, tenant_of(ex.request),
                                        ex.request_id, inline)
    if decision is None:
        return None
    ex.routing = decision
    preferences.record(ex.request, ex.headers, decision)
    if decision.route is None or decision.plan is None:
        return None
    decoded.request.model = decision.models[0]
    return decision.plan


async def serve_turn(request: Request, fmt: ClientFormat,
                     prepare: BodyHook | None = None) -> Response:
    """A generation endpoint: admit → history → generate → render → store (`prepare` adds
    what a format's URL carries, e.g. Gemini's model and stream flag)."""
    be = backends(request)
    ex = Exchange(request, fmt, fmt.new_id())
    decoded, plan = await admit(ex, prepare)
    await limits.admit(request, decoded.request, plan)   # counts, reserves tokens: or 429
    req = decoded.request
    turn_input = list(req.messages[decoded.unstored_lead:])
    tenant = tenant_of(request)
    observe.admitted(request, ex.request_id, req, tenant)
    conversation = decoded.conversation
    if decoded.previous_id:
        with_history(req, await observe.state_call(
            "GetHistory", be.state.history(tenant, decoded.previous_id)))
    elif conversation is not None:   # the Conversations API: its items are the history
        with_history(req, await conversation_history(be, tenant, conversation, ex.dropped))
    reply = Reply(model=req.model, response_id=ex.response_id, created=int(time.time()),
                  decoded=decoded)
    storing = decoded.store and (fmt.always_stores or request.app.state.config_has_state)
    keeping = storing or conversation is not None

    async def store(turn: Turn, body: dict[str, Any]) -> None:
        writes = []
        if storing:
            writes.append(observe.state_call(
                "Put", be.state.put(stored_record(ex, reply, tenant, turn_input, turn, body))))
        if conversation is not None:   # the turn's input and output items, in that order
            writes.append(observe.state_call("AppendItems", be.state.append_items(
                tenant, conversation.id, [state_pb2.ConversationItem(id=i, item_json=j)
                                          for i, j in conversation.turn_items(body)])))
        # One write (the usual case) is awaited as it is: no task for a lone coroutine.
        await (writes[0] if len(writes) == 1 else asyncio.gather(*writes))

    if req.stream:
        call, first = await open_generation(be, ex, req, plan)
        reply.upstream_model = first[0].start.model
        encoder = fmt.stream_encoder(reply)

        async def store_streamed(turn: Turn) -> None:
            body = encoder.reply_body(turn)
            if ex.filters is not None and ex.filters.has_output:   # what a later GET returns
                body = await ex.filters.reply_body(body)
            await store(turn, body)

        return stream_response(ex, call, first, encoder, store_streamed if keeping else None)
    turn = await complete(be, ex, req, plan)
    reply.upstream_model = turn.start.model
    observe.turn_done(request, tenant, turn.start, turn.usage,
                      [c.stop_reason for c in turn.choices])
    limits.record_usage(request, turn.usage)
    body = fmt.encode_response(turn, reply)
    if ex.filters is not None and ex.filters.has_output:
        body = await ex.filters.reply_body(body)
    if keeping:
        await store(turn, body)
    return ex.json_response(body)


async def serve_count(request: Request, fmt: ClientFormat, prepare: BodyHook,
                      field: str) -> Response:
    """A token-count endpoint: admit (so the key's model allow-list applies) → the upstream's
    own count where it has one, else an estimate (`x-switchyard-estimated`) → `{field: n}`."""
    ex = Exchange(request, fmt, "")
    decoded, plan = await admit(ex, prepare)
    await limits.admit(request, decoded.request, plan, reserve=False)   # a request, no tokens
    reply = await backends(request).count_tokens(generate_request(ex, decoded.request, plan),
                                                 timeout=plan.timeout_s or 30.0)
    if reply.estimated:
        ex.headers["x-switchyard-estimated"] = "true"
    return Response(orjson.dumps({field: reply.input_tokens}), headers=ex.headers,
                    media_type="application/json")


async def conversation_history(be: EdgeBackends, tenant: str, conversation: ConversationLink,
                               dropped: list[str]) -> list[chat_pb2.Message]:
    """All of a conversation's items, oldest first, as history (404 when it is unknown)."""
    page = await observe.state_call("ListItems", be.state.list_items(tenant, conversation.id))
    return conversation.history([item.item_json for item in page.items], dropped)


def stored_record(ex: Exchange, reply: Reply, tenant: str, turn_input: list[chat_pb2.Message],
                  turn: Turn, body: dict[str, Any]) -> state_pb2.StoredResponse:
    """What state keeps of a finished turn: its own input and output, and the reply as sent."""
    return state_pb2.StoredResponse(
        id=reply.response_id, tenant=tenant, model=reply.model,
        provider=ex.headers.get("x-switchyard-upstream", ""),
        previous_response_id=reply.decoded.previous_id, input=turn_input,
        output=[turn_message(c) for c in turn.choices[:1]], usage=turn.usage,
        created_at=reply.created, body_json=orjson.dumps(body),
        input_items_json=reply.decoded.input_items_json, kind=ex.fmt.record_kind)


# ---- pieces of the flow -------------------------------------------------------------------

async def read_json(request: Request, run: FilterRun | None = None) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/408/413 in the client's terms; then the
    request takes its concurrency slot (a slow upload never holds one). With `run`, the
    body is the one the listener's input filters return."""
    security = request.app.state.config.security
    limit = security.max_body_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise body_too_large(limit)
    chunks, size = [], 0
    try:
        with timeouts.within(security.body_timeout_s):
            async for chunk in request.stream():  # also bounds chunked bodies without a length
                size += len(chunk)
                if size > limit:
                    raise body_too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise GatewayError(408, f"the request body did not arrive within "
                           f"{security.body_timeout_s:g} s", type="timeout") from None
    except ClientDisconnect:
        # Nobody is left to answer: one line, counted as 499 by the route's metrics.
        log.info("request %s %s: client closed the connection during the upload",
                 scope_state(request).get("request_id", "-"), request.url.path)
        raise GatewayError(499, "client closed the connection during the upload") from None
    raw = b"".join(chunks)
    if not raw:
        raise GatewayError(400, "the request body is empty; send a JSON object")
    if run is not None and run.filters.input:
        parse_json(request, raw)   # the client's own malformed body is its 400, unfiltered
        raw = await run.request_body(raw)   # the bytes as sent, through each filter in order
    return parse_json(request, raw)


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"request body larger than {limit} bytes", type="request_too_large")


def parse_json(request: Request, raw: bytes) -> dict[str, Any]:
    """`raw` as a JSON object (else a 400), then the request takes its concurrency slot."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):   # orjson reads at most 1024 levels
            raise too_deep() from None
        raise GatewayError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "the request body must be a JSON object")
    if len(raw) > 2 * MAX_NESTING:   # a shorter body cannot nest that deep
        try:
            # orjson writes at most 254 levels and parts of the body are written again (here
            # and by the upstream encoders, a level or two deeper): probe with headroom.
            orjson.dumps([[[[body]]]])
        except orjson.JSONEncodeError:
            raise too_deep() from None
    slot: Slot | None = scope_state(request).get("slot")
    if slot is not None:
        slot.take()
    return body


def too_deep() -> GatewayError:
    """The 400 of a body nested deeper than the gateway can write out again."""
    return GatewayError(400, f"the request body is nested more than {MAX_NESTING} levels "
                        "deep, the gateway's nesting limit", type="invalid_request")


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
                     plan: router_pb2.RoutePlan) -> providers_pb2.GenerateRequest:
    msg = providers_pb2.GenerateRequest(
        request=req, plan=plan, request_id=ex.request_id, client_api_key=ex.client_api_key(),
        # The request's span, carried in the message: the Multiplex stream is shared.
        traceparent=propagation.current_traceparent() if tracer.ENABLED else "")
    forwarded = ex.forward_headers()
    if forwarded:   # a map field filled from a dict runs Python's MutableMapping.update
        msg.forward_headers.update(forwarded)
    return msg


async def open_generation(be: EdgeBackends, ex: Exchange, req: chat_pb2.ChatRequest,
                          plan: router_pb2.RoutePlan
                          ) -> tuple[Generation, list[chat_pb2.StreamEvent]]:
    """Start a multiplexed generation and read until the first batch; an error is raised."""
    call = await be.mux.generate(generate_request(ex, req, plan))
    try:
        batch = await call.read()
    except BaseException:
        call.cancel()
        raise
    if not isinstance(batch, chat_pb2.EventBatch) or not batch.events:
        call.cancel()
        raise GatewayError(502, "the providers service ended the call without an answer")
    events = list(batch.events)
    if events[0].WhichOneof("event") == "error":
        call.cancel()
        raise GatewayError.from_proto(events[0].error)
    ex.note_start(events[0].start)
    return call, events


async def complete(be: EdgeBackends, ex: Exchange, req: chat_pb2.ChatRequest,
                   plan: router_pb2.RoutePlan) -> Turn:
    """The whole answer as one multiplexed reply (non-streaming clients); errors are raised."""
    reply = await be.mux.complete(generate_request(ex, req, plan),
                                  timeout=(plan.timeout_s or 30.0) * 2 + 5.0)
    if not reply.events:
        raise GatewayError(502, "the providers service ended the call without an answer")
    turn = TurnBuilder().feed_all(reply.events)
    if turn.error is not None:
        raise GatewayError.from_proto(turn.error)
    ex.note_start(turn.start)
    return turn


def stream_response(ex: Exchange, call: Generation, first: list[chat_pb2.StreamEvent],
                    encoder: StreamEncoder,
                    on_complete: OnComplete | None = None) -> EventStreamResponse:
    """SSE in the client's grammar. `on_complete` runs (e.g. the state write) before the
    terminal bytes (`encoder.done()`) reach the client."""
    ex.headers["x-switchyard-overhead-ms"] = f"{ex.overhead_ms():.2f}"
    # An encoder may name its own media type (Gemini's streamed JSON array); SSE otherwise.
    media_type = getattr(encoder, "media_type", SSE_MEDIA_TYPE)
    # The first batch holds the first content (the commit point): it is about to be sent.
    observe.first_token(ex.request, ex.fmt.name, ex.headers.get("x-switchyard-upstream", ""),
                        time.perf_counter() - ex.started)
    body = _sse_body(ex, call, first, encoder, on_complete)
    if ex.filters is not None and ex.filters.has_output:   # each chunk as it goes out
        body = ex.filters.stream(body, encoder, media_type)
    return EventStreamResponse(body, media_type=media_type,
                               headers={**ex.headers, **SSE_HEADERS})


async def _sse_body(ex: Exchange, call: Generation, first: list[chat_pb2.StreamEvent],
                    encoder: StreamEncoder, on_complete: OnComplete | None
                    ) -> AsyncIterator[bytes]:
    builder = TurnBuilder() if on_complete else None
    finish = first[-1].finish if first[-1].HasField("finish") else None
    try:
        out, err = _encode_batch(encoder, first, builder)
        if out:
            yield out
        if err is not None:
            observe.failed(ex.request, err.type)
            yield encoder.error(err)
            return
        # read(), not `async for`: the first batch was already read with read().
        while (batch := await call.read()) is not EOF:
            out, err = _encode_batch(encoder, batch.events, builder)
            if out:
                yield out
            if err is not None:
                observe.failed(ex.request, err.type)
                yield encoder.error(err)
                return
            if batch.events and batch.events[-1].HasField("finish"):
                finish = batch.events[-1].finish   # the turn's last: its usage is final
        if finish is not None:
            observe.turn_done(ex.request, tenant_of(ex.request), first[0].start, finish.usage,
                              [finish.stop_reason])
            limits.record_usage(ex.request, finish.usage)
        if on_complete is not None and builder is not None:
            try:
                await on_complete(builder.turn)
            except GatewayError as exc:
                yield encoder.error(exc.to_proto())
                return
        yield encoder.done()
    except GatewayError as exc:   # the providers stream broke mid-answer
        observe.failed(ex.request, exc.type)
        yield encoder.error(exc.to_proto())
    finally:
        call.cancel()  # client gone: the providers service closes the upstream request


def _encode_batch(encoder: StreamEncoder, events: Sequence[chat_pb2.StreamEvent],
                  builder: TurnBuilder | None) -> tuple[bytes, chat_pb2.Error | None]:
    """Encode events up to an error event; return the bytes and the error, if any."""
    err = None
    for i, ev in enumerate(events):
        if ev.WhichOneof("event") == "error":
            err, events = ev.error, events[:i]
            break
    if builder is not None:
        builder.feed_all(events)
    return (encoder.encode(events) if events else b""), err
