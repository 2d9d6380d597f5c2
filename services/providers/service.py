"""The providers gRPC service: Generate streams a route plan's answer, Complete returns it
whole, Multiplex carries many of both over one stream; CountTokens counts input."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc

from switchyard.common.config import reload
from switchyard.common.config.model import Config
from switchyard.common.errors import GatewayError
from switchyard.common.grpc_server import run_server
from switchyard.common.proto import chat_pb2, providers_pb2, providers_pb2_grpc
from switchyard.providers.execution import Executor, load_adapter
from switchyard.providers.http import ClientPool, default_timeouts
from switchyard.providers.mux import MuxSessions
from switchyard.providers.secrets import Secrets
from switchyard.providers.tokens import count_tokens

log = logging.getLogger(__name__)


class ProvidersServicer(providers_pb2_grpc.ProvidersServicer):
    """Thin gRPC face of the Executor."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.mux = MuxSessions()

    async def Generate(self, request: providers_pb2.GenerateRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[chat_pb2.EventBatch]:
        # aclosing: a cancelled call closes the generator now, which closes the upstream.
        async with contextlib.aclosing(self.executor.generate(request)) as batches:
            async for batch in batches:
                yield batch

    async def Complete(self, request: providers_pb2.GenerateRequest,
                       context: grpc.aio.ServicerContext) -> chat_pb2.EventBatch:
        reply = chat_pb2.EventBatch()
        async with contextlib.aclosing(self.executor.generate(request)) as batches:
            async for batch in batches:
                reply.events.extend(batch.events)
        return reply

    async def Multiplex(self, request_iterator: AsyncIterator[providers_pb2.MuxRequests],
                        context: grpc.aio.ServicerContext) -> None:
        await self.mux.serve(self.executor.generate, request_iterator, context)

    async def CountTokens(self, request: providers_pb2.GenerateRequest,
                          context: grpc.aio.ServicerContext) -> providers_pb2.CountTokensReply:
        entry, adapter = None, None
        if request.plan.targets:
            entry = self.executor.lookup(request.plan.targets[0].provider)
            if entry is not None:
                try:
                    adapter = self.executor.adapters(entry)
                except (GatewayError, ImportError):
                    adapter = None
        return await count_tokens(request, entry, adapter, self.executor.pool)


def build_executor(config: Config) -> Executor:
    """An Executor over the config's provider entries, with timeouts from the listener."""
    pool = ClientPool.for_config(config)
    return Executor(config.provider, pool, default_timeout_s=config.listener.timeout_s,
                    adapters=load_adapter, secrets=Secrets.from_config(config))


def reconfigure(executor: Executor, config: Config) -> None:
    """A reloaded config for the calls that start from now: entries (keys, base URLs,
    headers), their secrets and the listener timeout. Calls in flight hold their entry.
    Sessions keep their connect timeout and TLS settings until a restart."""
    executor.lookup = config.provider
    executor.secrets = Secrets.from_config(config)
    executor.default_timeout_s = config.listener.timeout_s
    fresh = default_timeouts(config.listener.timeout_s)
    executor.pool.defaults = replace(executor.pool.defaults, first_byte_s=fresh.first_byte_s,
                                     idle_s=fresh.idle_s)


async def serve(config: Config, address: str, token: str | None = None, *,
                allow_unsupported: bool = False) -> None:
    """Run the providers service on `address` until SIGINT/SIGTERM (`token`: see run_server),
    applying config changes as they come (config/reload.py)."""
    executor = build_executor(config)

    servicer = ProvidersServicer(executor)

    def register(server: grpc.aio.Server) -> None:
        providers_pb2_grpc.add_ProvidersServicer_to_server(servicer, server)

    async def apply(new: Config) -> None:
        reconfigure(executor, new)

    watcher = reload.watch(config, "providers", apply, allow_unsupported=allow_unsupported)

    async def on_stop() -> None:
        if watcher is not None:
            await watcher.close()
        await executor.pool.close()

    # Draining: multiplexed streams never end on their own, so ask the edges to move on.
    try:
        await run_server("switchyard.v1.Providers", address, register, on_stop=on_stop,
                         before_drain=servicer.mux.goaway, token=token,
                         tracing=config.tracing, config=config)
    finally:
        if watcher is not None:
            await watcher.close()
