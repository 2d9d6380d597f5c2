"""Running a gRPC service: health checking, the internal token, signals, graceful drain."""
from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.common import service_metrics
from switchyard.common.config.model import Config, ServiceAddresses, Tracing, endpoints_of
from switchyard.common.health import Health
from switchyard.common.internal_auth import METADATA_KEY, TOKEN_ENV
from switchyard.common.ports import EXIT_ADDRESS_IN_USE, bind_error, in_use, split_host_port
from switchyard.common.telemetry import propagation, tracer

if TYPE_CHECKING:   # the API is imported where a span is made: tracing off never loads it
    from opentelemetry.trace import Span

log = logging.getLogger(__name__)

# Channel options shared by servers and clients: keepalive so a dead peer is noticed fast.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]
# Servers must accept the clients' 10 s keepalive pings; by default they answer pings more
# often than every 5 minutes with GOAWAY (too_many_pings), failing calls in flight.
SERVER_OPTIONS = [
    *CHANNEL_OPTIONS,
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
    # gRPC binds with SO_REUSEPORT by default: a second gateway on the same port would start
    # "fine" and take half of the first one's connections. A taken port must be an error.
    ("grpc.so_reuseport", 0),
]
DRAIN_SECONDS = 10.0   # without a config; `serve` drains for `limits.drain_seconds`
HEALTH_PREFIX = "/grpc.health.v1.Health/"
DENIED_LOG_INTERVAL_S = 60.0


class TokenCheck(grpc.aio.ServerInterceptor):
    """Lets a call through only with the internal token in its metadata (constant-time
    compare); the health service stays open so probes need no secret."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._denied: dict[str, grpc.RpcMethodHandler] = {}
        self._last_log = -DENIED_LOG_INTERVAL_S

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        if details.method.startswith(HEALTH_PREFIX) or self._carries_token(details):
            return await continuation(details)
        now = time.monotonic()
        if now - self._last_log >= DENIED_LOG_INTERVAL_S:  # a scanner must not flood the log
            self._last_log = now
            log.warning("rejected a call to %s without a valid internal token", details.method)
        denied = self._denied.get(details.method)
        if denied is None:
            handler = await continuation(details)
            if handler is None:
                return None
            denied = self._denied[details.method] = _denial(handler)
        return denied

    def _carries_token(self, details: grpc.HandlerCallDetails) -> bool:
        for key, value in details.invocation_metadata or ():
            if key == METADATA_KEY:
                got = value if isinstance(value, bytes) else value.encode()
                return hmac.compare_digest(got, self._token)
        return False


# Backend calls on a request's path, traced whenever tracing is on; every other method
# (router lookups, deletes, the providers' own calls) only with trace_arch_internal.
# Multiplex never: one stream carries many requests, each traced on its own.
REQUEST_PATH_METHODS = frozenset({"/switchyard.v1.State/Get", "/switchyard.v1.State/Put",
                                  "/switchyard.v1.State/GetHistory"})
UNTRACED_METHODS = frozenset({"/switchyard.v1.Providers/Multiplex"})


class Observe(grpc.aio.ServerInterceptor):
    """Counts and times every call by method and status code; with tracing on, a server span
    continuing the caller's `traceparent` metadata (current while the handler runs)."""

    def __init__(self) -> None:
        self._wrapped: dict[int, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(HEALTH_PREFIX):
            return handler
        known = self._wrapped.get(id(handler))
        if known is None or known[0] is not handler:   # the same handler object per method
            known = self._wrapped[id(handler)] = (handler, _observed(handler, details.method))
        return known[1]


def _traced(method: str) -> bool:
    return tracer.ENABLED and method not in UNTRACED_METHODS and (
        method in REQUEST_PATH_METHODS or tracer.INTERNAL)


def _server_span(method: str, context: grpc.aio.ServicerContext) -> Span | None:
    """The call's span, when the caller sent a sampled `traceparent` (else none: a trace
    starts only at the edge)."""
    parent = propagation.in_metadata(context.invocation_metadata())
    if not propagation.is_sampled(parent):
        return None
    from opentelemetry.trace import SpanKind
    service, _, name = method.lstrip("/").partition("/")
    return tracer.TRACER.start_span(
        f"{service}/{name}", context=propagation.context_from(parent),
        kind=SpanKind.SERVER, attributes={"rpc.system": "grpc", "rpc.service": service,
                                          "rpc.method": name})


def _code_name(context: grpc.aio.ServicerContext, failed: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if failed is None:
        return "OK"
    return "CANCELLED" if isinstance(failed, asyncio.CancelledError) else "UNKNOWN"


def _finish(method: str, started: float, context: grpc.aio.ServicerContext,
            failed: BaseException | None, span: Span | None) -> None:
    code = _code_name(context, failed)
    metrics = service_metrics.METRICS
    if metrics is not None:
        metrics.GRPC_HANDLED.labels(method, code).inc()
        metrics.GRPC_LATENCY.labels(method).observe(time.perf_counter() - started)
    if span is not None:
        span.set_attribute("rpc.grpc.status_code", grpc.StatusCode[code].value[0])
        if code != "OK":
            from opentelemetry.trace import Status, StatusCode
            span.set_status(Status(StatusCode.ERROR, code))
        span.end()


def _make_current(span: Span) -> object:
    """Make `span` current while the handler runs; the token undoes it (`_restore`)."""
    from opentelemetry.context import attach
    from opentelemetry.trace import set_span_in_context
    return attach(set_span_in_context(span))


def _restore(token: object) -> None:
    from opentelemetry.context import detach
    detach(token)  # type: ignore[arg-type]


def _observed(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    """`handler` with its behaviour counted, timed and (when tracing is on) traced."""
    kind = (bool(handler.request_streaming), bool(handler.response_streaming))
    attr = {(False, False): "unary_unary", (False, True): "unary_stream",
            (True, False): "stream_unary", (True, True): "stream_stream"}[kind]
    behaviour = getattr(handler, attr)

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started, failed = time.perf_counter(), None
        span = _server_span(method, context) if _traced(method) else None
        token = _make_current(span) if span is not None else None
        try:
            return await behaviour(request, context)
        except BaseException as exc:
            failed = exc
            raise
        finally:
            if token is not None:
                _restore(token)
            _finish(method, started, context, failed, span)

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        started, failed = time.perf_counter(), None
        span = _server_span(method, context) if _traced(method) else None
        try:
            async for item in behaviour(request, context):
                yield item
        except BaseException as exc:
            failed = exc
            raise
        finally:
            _finish(method, started, context, failed, span)

    wrapped = stream if inspect.isasyncgenfunction(behaviour) else call
    make = {(False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler}
    return make[kind](wrapped, request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)


def _denial(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that answers UNAUTHENTICATED."""
    async def deny(request: Any, context: grpc.aio.ServicerContext) -> None:  # noqa: ARG001
        await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                            f"missing or wrong internal token (see {TOKEN_ENV})")
    make = {(False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler}
    kind = (bool(handler.request_streaming), bool(handler.response_streaming))
    return make[kind](deny, request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)


def server_options(services: ServiceAddresses | None = None) -> list[tuple[str, int]]:
    """SERVER_OPTIONS and, from `services`, the connection age: GOAWAY after it (so clients
    reconnect and re-resolve, reaching new replicas), then the grace for open calls."""
    options = list(SERVER_OPTIONS)
    if services is not None and services.max_connection_age_s:
        options.append(("grpc.max_connection_age_ms",
                        max(1, round(services.max_connection_age_s * 1000))))
        if services.max_connection_age_grace_s is not None:
            options.append(("grpc.max_connection_age_grace_ms",
                            round(services.max_connection_age_grace_s * 1000)))
    return options


def new_server(token: str | None, services: ServiceAddresses | None = None
               ) -> tuple[grpc.aio.Server, Health]:
    """A server with the shared options (and `services`' connection age), the health
    service, and with `token` the check."""
    interceptors: list[grpc.aio.ServerInterceptor] = [Observe()]
    if token:
        interceptors.append(TokenCheck(token))
    server = grpc.aio.server(options=server_options(services), interceptors=interceptors)
    health_servicer = Health()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server, health_servicer


def _cannot_listen(name: str, address: str) -> SystemExit:
    """One line on stderr saying which address is taken (or why it cannot be bound)."""
    service = name.rsplit(".", 1)[-1].lower()
    if len(endpoints_of(address)) > 1 or address.startswith("dns:"):
        return SystemExit(f"switchyard {service}: services.{service} names its replicas "
                          f"({address}); set SWITCHYARD_{service.upper()}_LISTEN to the "
                          f"address this replica binds, e.g. 0.0.0.0:12002")
    host_port = split_host_port(address)
    err = bind_error(*host_port) if host_port else None
    if in_use(err):
        print(f"switchyard {service}: cannot listen on {address}: address already in use "
              f"(another switchyard?); stop it or set services.{service} / "
              f"SWITCHYARD_{service.upper()}_LISTEN to a free address",
              file=sys.stderr, flush=True)
        return SystemExit(EXIT_ADDRESS_IN_USE)
    reason = f": {err.strerror or err}" if err is not None else ""
    return SystemExit(f"switchyard {service}: cannot listen on {address}{reason}")


async def run_server(name: str, address: str,
                     register: Callable[[grpc.aio.Server], Awaitable[None] | None],
                     on_stop: Callable[[], Awaitable[None]] | None = None,
                     before_drain: Callable[[], Awaitable[None]] | None = None,
                     token: str | None = None, tracing: Tracing | None = None,
                     config: Config | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then stop accepting and drain in-flight calls (bounded).

    `register` adds the service's servicers; `before_drain` ends streams that never finish
    on their own (watches); `on_stop` releases resources afterwards. With `token`, every
    call but health checks must carry it. A taken address exits with one line. `tracing`
    (the config's `tracing:`) sets up the exporter, flushed after the drain. `config` gives
    the connection age (`services:`) and the drain time (`limits.drain_seconds`).
    """
    host_port = split_host_port(address)
    if host_port and in_use(bind_error(*host_port)):  # say so before gRPC logs its own lines
        raise _cannot_listen(name, address)
    if tracing is not None:
        tracer.setup(tracing, name.rsplit(".", 1)[-1].lower())
    drain_s = config.security.drain_s if config is not None else DRAIN_SECONDS
    server, health_servicer = new_server(token, config.services if config else None)
    maybe = register(server)
    if asyncio.iscoroutine(maybe):
        await maybe
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # grpc ≥ 1.50 raises instead of returning 0
        bound = 0
    if not bound:
        raise _cannot_listen(name, address)
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s listening on %s", name, address)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("%s draining (up to %gs)", name, drain_s)
    # NOT_SERVING first: the edges' health watches move new requests to other replicas
    # while the calls in flight here finish.
    await health_servicer.enter_graceful_shutdown()
    if before_drain is not None:
        await before_drain()
    await server.stop(drain_s)
    if on_stop is not None:
        await on_stop()
    await asyncio.to_thread(tracer.shutdown)   # send the last spans
    log.info("%s stopped", name)


def health_stub(channel: grpc.aio.Channel) -> health_pb2_grpc.HealthStub:
    return health_pb2_grpc.HealthStub(channel)


async def is_serving(address: str, timeout: float = 1.0) -> bool:
    """True when the gRPC service at `address` answers a health check SERVING."""
    try:
        async with grpc.aio.insecure_channel(address) as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except (TimeoutError, grpc.aio.AioRpcError, OSError):
        return False
