"""What the edge records of a request: usage and cost metrics at the end of every turn, and
— only when tracing or the request log is on — the server span and the request's log line.

Tracing off and request log off: no object is made per request, no tracer is called; the
pipeline's hooks find no `Observed` in scope state and return. Tracing on, the hooks only
note facts on the `Observed`; the span's attributes are built once, when it ends — after a
whole answer's last byte went out, so that work is off the answer's latency. The
OpenTelemetry API is imported where a span is made, so tracing off never loads it.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from switchyard.common import metrics
from switchyard.common.config.model import Config, ProviderEntry
from switchyard.common.proto import chat_pb2
from switchyard.common.telemetry import genai, propagation, request_log, tracer
from switchyard.common.telemetry.cost import Prices, cost_usd
from switchyard.edge.request_state import scope_state

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

T = TypeVar("T")
STATE_KEY = "observed"
USAGE_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning")


class Accounting:
    """The edge's price book and provider entries by name (one per process)."""

    def __init__(self, config: Config) -> None:
        self.entries: dict[str, ProviderEntry] = {}
        self._upstream: dict[tuple[str, str], dict[str, Any]] = {}
        self.use_entries(config)
        self.prices = Prices(config.cost_sources)

    def use_entries(self, config: Config) -> None:
        """The provider entries of `config` (a reload with the same price sources)."""
        self.entries = {e.name: e for e in config.providers}
        self._upstream = {}

    def upstream_attributes(self, provider: str, fmt: str) -> dict[str, Any]:
        """A fresh copy of the span attributes naming upstream entry `provider` reached from
        client format `fmt` (built once per pair: they are the same on every request)."""
        known = self._upstream.get((provider, fmt))
        if known is None:
            known = {genai.UPSTREAM_ENTRY: provider}
            entry = self.entries.get(provider)
            if entry is not None:
                known[genai.PROVIDER] = genai.provider_name(entry.provider)
                known[genai.ROUTE] = f"{fmt}→{entry.interface}"
            if len(self._upstream) < 4096:   # entries x formats; bounded all the same
                self._upstream[(provider, fmt)] = known
        return dict(known)

    async def start(self) -> None:
        self.prices.start()

    async def close(self) -> None:
        await self.prices.close()


class Observed:
    """One request's facts for its span and its log line (made only when either is on)."""

    __slots__ = ("span", "context", "method", "path", "copied", "route", "fmt", "arrived",
                 "model", "tenant", "provider", "upstream_model", "attempts", "usage", "cost",
                 "stops", "overhead_ms", "upstream_ms", "stream", "error", "request_id",
                 "asked", "start", "accounting")

    # No reference to the Request: scope state holds this object, and a cycle through it
    # would leave every request's objects to the garbage collector.
    def __init__(self, span: Span | None, route: str, fmt: str) -> None:
        # An unsampled span still carries the trace on (its context); nothing is set on it.
        self.span = span if span is not None and span.is_recording() else None
        self.context: Context | None = None
        if span is not None:
            from opentelemetry.trace import set_span_in_context
            self.context = set_span_in_context(span)
        self.method = self.path = ""
        self.copied: dict[str, str] = {}   # request headers named by header_prefixes
        self.route = route
        self.fmt = fmt
        self.arrived = time.perf_counter()
        self.model = self.tenant = self.provider = self.upstream_model = ""
        self.attempts = 0
        self.usage: chat_pb2.Usage | None = None
        self.cost: float | None = None
        self.stops: list[str] = []
        self.overhead_ms = self.upstream_ms = 0.0
        self.stream = False
        self.error = ""
        self.request_id = ""
        self.asked: chat_pb2.ChatRequest | None = None    # the decoded request (admitted)
        self.start: chat_pb2.StreamStart | None = None    # the upstream's answer (started)
        self.accounting: Accounting | None = None


def observed(request: Request) -> Observed | None:
    """This request's record, if tracing or the request log is on."""
    found: Observed | None = scope_state(request).get(STATE_KEY)
    return found


# ---- the server span and the log line (routes/common.py: guarded) ------------------------

def begin(request: Request, route: str, fmt: str) -> Observed | None:
    """Start recording a request: the server span (continuing a client's `traceparent`)."""
    if not (tracer.ENABLED or request_log.ENABLED):
        return None
    span = _server_span(request) if tracer.ENABLED else None
    if span is not None and not span.is_recording() and not request_log.ENABLED:
        # Not sampled: no record, no current span, so no traceparent is sent on and the
        # other services record nothing either (propagation.is_sampled).
        return None
    obs = Observed(span, route, fmt)
    if obs.span is not None:
        obs.method, obs.path = request.method, request.scope["path"]
        if tracer.SETTINGS.span_attributes.header_prefixes:
            obs.copied = _copied_headers(request)
    state = request.scope.setdefault("state", {})
    obs.request_id = state.get("request_id", "")
    state[STATE_KEY] = obs
    return obs


def _server_span(request: Request) -> Span:
    """The request's span, started with no attributes: `_span_attributes` gives them at its
    end."""
    from opentelemetry.trace import SpanKind
    parent = propagation.context_from(request.headers.get(propagation.HEADER))
    return tracer.TRACER.start_span("chat", context=parent, kind=SpanKind.SERVER)


def _copied_headers(request: Request) -> dict[str, str]:
    """Plano's `header_prefixes` rule: the prefix is cut, the rest of the name becomes the
    key (- → .)."""
    prefixes = tracer.SETTINGS.span_attributes.header_prefixes
    copied = {}
    for name, value in request.headers.items():
        for prefix in prefixes:
            if name.startswith(prefix) and len(name) > len(prefix):
                copied[name[len(prefix):].replace("-", ".")] = value
                break
    return copied


def _span_attributes(obs: Observed, status: int) -> dict[str, Any]:
    """The server span's attributes, from what the hooks noted. Order is precedence: the
    gateway's own keys win over a static or header-copied one of the same name."""
    # The scope's path escaped as `request.url.path` does, without building the whole URL.
    path = obs.path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    attributes: dict[str, Any] = {"http.request.method": obs.method, "url.path": path,
                                  genai.OPERATION: "chat"}
    attributes.update(tracer.SETTINGS.span_attributes.static)
    attributes.update(obs.copied)
    asked = obs.asked
    if asked is not None:
        attributes[genai.REQUEST_MODEL] = asked.model
        attributes[genai.REQUEST_STREAM] = asked.stream
        attributes[genai.TENANT] = obs.tenant
        attributes[genai.REQUEST_ID] = obs.request_id
        attributes[genai.CLIENT_FORMAT] = obs.fmt
        if asked.HasField("max_tokens"):
            attributes[genai.REQUEST_MAX_TOKENS] = asked.max_tokens
        if asked.HasField("temperature"):
            attributes[genai.REQUEST_TEMPERATURE] = asked.temperature
        if tracer.SETTINGS.record_content:
            attributes[genai.INPUT_MESSAGES] = _messages_json(asked.messages)
    start, accounting = obs.start, obs.accounting
    if start is not None and accounting is not None:
        attributes.update(accounting.upstream_attributes(start.provider, obs.fmt))
        attributes[genai.RESPONSE_MODEL] = start.model
        if start.id:
            attributes[genai.RESPONSE_ID] = start.id
        attributes[genai.ATTEMPTS] = obs.attempts
        if start.dropped_params:
            attributes[genai.DROPPED_PARAMS] = list(start.dropped_params)
    if obs.usage is not None:
        attributes.update(genai.usage_attributes(obs.usage))
        if obs.stops:
            attributes[genai.FINISH_REASONS] = obs.stops
        if obs.cost is not None:
            attributes[genai.COST_USD] = obs.cost
    attributes["http.response.status_code"] = status
    attributes[genai.OVERHEAD_MS] = round(obs.overhead_ms, 3)
    if obs.error:
        attributes["error.type"] = obs.error
    return attributes


class current:   # noqa: N801 - used as `with observe.current(obs):`
    """Make the request's span current while the handler runs (its children hang on it).
    A class, not @contextmanager: it runs on every traced request (no generator frame)."""

    __slots__ = ("_context", "_token")

    def __init__(self, obs: Observed | None) -> None:
        self._context = obs.context if obs is not None else None
        self._token: object = None

    def __enter__(self) -> None:
        if self._context is not None:
            from opentelemetry.context import attach
            self._token = attach(self._context)

    def __exit__(self, *exc: object) -> None:
        if self._context is not None:
            from opentelemetry.context import detach
            detach(self._token)  # type: ignore[arg-type]


def finish(obs: Observed, response: Response) -> Response:
    """End the span and write the log line once the answer is sent: a whole answer's after
    its body (uvicorn's send returns, not raises, for a client that left), a stream's after
    its last chunk."""
    if isinstance(response, StreamingResponse):
        response.body_iterator = _streamed(obs, response.body_iterator, response.status_code)
        return response
    response.background = BackgroundTask(_close_after_send, obs, response.status_code,
                                         response.background)
    return response


async def _close_after_send(obs: Observed, status: int, then: BackgroundTask | None) -> None:
    _close(obs, status)
    if then is not None:
        await then()


async def _streamed(obs: Observed, iterable: AsyncIterable[Any], status: int
                    ) -> AsyncIterator[Any]:
    """The SSE body with the request's context current around each step (so the state write
    at its end is a child of the request) and the span ended after the last byte."""
    from opentelemetry.context import attach, detach  # once per stream, not per chunk
    body = aiter(iterable)
    try:
        while True:
            token = attach(obs.context) if obs.context is not None else None
            try:
                chunk = await anext(body)
            except StopAsyncIteration:
                break
            finally:
                if token is not None:
                    detach(token)
            yield chunk
    finally:
        closer = getattr(body, "aclose", None)
        if closer is not None:
            await closer()
        _close(obs, status)


def _close(obs: Observed, status: int) -> None:
    latency_ms = (time.perf_counter() - obs.arrived) * 1000.0
    span = obs.span
    if span is not None:
        if obs.asked is not None:
            span.update_name(f"chat {obs.asked.model}")
        span.set_attributes(_span_attributes(obs, status))
        # A client's 4xx is not the server's failure (HTTP conventions); a 5xx or an error
        # event in a 200 stream is.
        if status >= 500 or (obs.error and status < 400):
            from opentelemetry.trace import Status, StatusCode
            span.set_status(Status(StatusCode.ERROR, obs.error or str(status)))
        span.end()
    if request_log.ENABLED:
        request_log.emit(_log_fields(obs, status, latency_ms))


def _log_fields(obs: Observed, status: int, latency_ms: float) -> dict[str, Any]:
    """The request's log line: ids, names, counts and times; never content or keys."""
    trace_id = ""
    if obs.context is not None:   # sampled or not: the trace the request belongs to
        from opentelemetry import trace
        ctx = trace.get_current_span(obs.context).get_span_context()
        trace_id = f"{ctx.trace_id:032x}" if ctx.is_valid else ""
    usage = obs.usage
    return {"ts": round(time.time(), 3), "request_id": obs.request_id, "trace_id": trace_id,
            "route": obs.route, "format": obs.fmt, "tenant": obs.tenant, "model": obs.model,
            "upstream": obs.provider, "upstream_model": obs.upstream_model,
            "attempts": obs.attempts, "stream": obs.stream, "status": status,
            "error": obs.error or None,
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "cache_read_tokens": usage.cache_read_tokens if usage else None,
            "cache_write_tokens": usage.cache_creation_tokens if usage else None,
            "reasoning_tokens": usage.reasoning_tokens if usage else None,
            "cost_usd": obs.cost, "latency_ms": round(latency_ms, 3),
            "upstream_ms": round(obs.upstream_ms, 3), "overhead_ms": round(obs.overhead_ms, 3)}


# ---- hooks the pipeline calls -----------------------------------------------------------

def _provider_label(entry: ProviderEntry | None, name: str) -> str:
    """The `provider` label of the metrics: the entry's provider (openai, anthropic, ...),
    or the name providers answered with when no entry has it."""
    return entry.provider if entry is not None else name


def _accounting(request: Request) -> Accounting:
    accounting: Accounting = request.app.state.accounting
    return accounting


def admitted(request: Request, request_id: str, req: chat_pb2.ChatRequest, tenant: str) -> None:
    """The request is decoded: name the span after the model, record what was asked."""
    obs = observed(request)
    if obs is None:
        return
    obs.model, obs.tenant, obs.stream = req.model, tenant, req.stream
    obs.request_id = request_id
    if obs.span is not None:
        obs.asked = req


def started(request: Request, start: chat_pb2.StreamStart) -> None:
    """Providers answered: which upstream serves, after how many attempts."""
    obs = observed(request)
    if obs is None:
        return
    obs.provider, obs.upstream_model = start.provider, start.model
    obs.attempts, obs.upstream_ms = start.attempts or 1, start.upstream_ms
    if obs.span is not None:
        obs.start, obs.accounting = start, _accounting(request)


def turn_done(request: Request, tenant: str, start: chat_pb2.StreamStart,
              usage: chat_pb2.Usage, stops: Sequence[int]) -> None:
    """A turn finished: count its tokens and cost (always), and put them on the span."""
    accounting = _accounting(request)
    entry: ProviderEntry | None = accounting.entries.get(start.provider)
    provider = _provider_label(entry, start.provider)
    model = start.model or (entry.model if entry is not None else "")
    counts = (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
              usage.cache_creation_tokens, usage.reasoning_tokens)
    for kind, n in zip(USAGE_TYPES, counts):
        if n:
            metrics.child(metrics.TOKENS, provider, model, tenant, kind).inc(n)
    price = accounting.prices.price(entry, model)
    cost = None
    if price is None:
        metrics.child(metrics.COST_UNKNOWN, provider, model).inc()
    else:
        cost = cost_usd(price, usage)
        metrics.child(metrics.COST, provider, model, tenant).inc(cost)
    obs = observed(request)
    if obs is None:
        return
    obs.usage, obs.cost = usage, cost
    obs.stops = [genai.finish_reason(s) for s in stops if s]


def first_token(request: Request, fmt: str, upstream: str, seconds: float) -> None:
    """A stream's first content is going out (from the entry named `upstream`): the
    time-to-first-token histogram and span."""
    provider = _provider_label(_accounting(request).entries.get(upstream), upstream)
    metrics.child(metrics.TIME_TO_FIRST_TOKEN, fmt, provider).observe(seconds)
    obs = observed(request)
    if obs is not None and obs.span is not None:
        obs.span.set_attribute(genai.TIME_TO_FIRST_CHUNK, seconds)


def failed(request: Request, error_type: str) -> None:
    """The answer is an error (also one sent mid-stream)."""
    obs = observed(request)
    if obs is not None:
        obs.error = error_type


def _in_sampled_request() -> bool:
    """A sampled request's span is current (only those get child spans)."""
    from opentelemetry.trace import get_current_span
    return get_current_span().is_recording()


async def state_call(name: str, call: Awaitable[T]) -> T:
    """A state read or write as a child span of a sampled request, else just `call`."""
    if not tracer.ENABLED or not _in_sampled_request():
        return await call
    from opentelemetry.trace import SpanKind
    with tracer.TRACER.start_as_current_span(
            f"state {name}", kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": "switchyard.v1.State",
                        "rpc.method": name}):
        return await call


# ---- the listener's filters (services/edge/filters/) -------------------------------------

@contextlib.contextmanager
def filter_span(filter_id: str, filter_type: str, phase: str) -> Iterator[Span | None]:
    """A filter call as a CLIENT child span of a sampled request, else nothing. A refusal is
    the filter's verdict, not an exception to record: the outcome says it."""
    if not tracer.ENABLED or not _in_sampled_request():
        yield None
        return
    from opentelemetry.trace import SpanKind
    with tracer.TRACER.start_as_current_span(
            f"filter {filter_id}", kind=SpanKind.CLIENT, record_exception=False,
            set_status_on_exception=False,
            attributes={"switchyard.filter.id": filter_id, "switchyard.filter.type": filter_type,
                        "switchyard.filter.phase": phase}) as span:
        yield span


def filter_done(span: Span | None, filter_id: str, phase: str, outcome: str, seconds: float,
                status: int) -> None:
    """A filter call ended (`outcome` ok, rejected, failed, failed_open or cancelled): the
    histogram always, the span's outcome when there is one."""
    metrics.FILTER_SECONDS.labels(filter_id, phase, outcome).observe(seconds)
    if span is None:
        return
    span.set_attribute("switchyard.filter.outcome", outcome)
    if status:
        span.set_attribute("http.response.status_code", status)
    if outcome == "failed":
        from opentelemetry.trace import Status, StatusCode
        span.set_status(Status(StatusCode.ERROR, outcome))


def filter_stream_done(request: Request, ms: float, calls: int) -> None:
    """A streamed reply's chunks went through the output filters: their calls are not spans
    of their own (one per chunk would drown the trace) but totals on the request's span."""
    obs = observed(request)
    if obs is None or obs.span is None or not calls:
        return
    obs.span.set_attribute("switchyard.filter.stream_ms", round(ms, 3))
    obs.span.set_attribute("switchyard.filter.stream_calls", calls)


def _messages_json(messages: Sequence[chat_pb2.Message]) -> str:
    """Messages' text parts as JSON, for `record_content` only."""
    out = []
    for m in messages:
        texts = [p.text.text for p in m.parts if p.WhichOneof("kind") == "text"]
        out.append({"role": chat_pb2.Role.Name(m.role).removeprefix("ROLE_").lower(),
                    "content": "".join(texts)})
    return orjson.dumps(out).decode()
