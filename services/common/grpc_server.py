"""Running a gRPC service: health checking, signals, graceful drain."""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

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
]
DRAIN_SECONDS = 10.0


async def run_server(name: str, address: str,
                     register: Callable[[grpc.aio.Server], Awaitable[None] | None],
                     on_stop: Callable[[], Awaitable[None]] | None = None,
                     before_drain: Callable[[], Awaitable[None]] | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then stop accepting and drain in-flight calls (bounded).

    `register` adds the service's servicers; `before_drain` ends streams that never finish
    on their own (watches); `on_stop` releases resources afterwards.
    """
    server = grpc.aio.server(options=SERVER_OPTIONS)
    maybe = register(server)
    if asyncio.iscoroutine(maybe):
        await maybe
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(address)
    if not bound:
        raise SystemExit(f"{name}: cannot listen on {address}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s listening on %s", name, address)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("%s draining", name)
    await health_servicer.enter_graceful_shutdown()
    if before_drain is not None:
        await before_drain()
    await server.stop(DRAIN_SECONDS)
    if on_stop is not None:
        await on_stop()
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
