"""`Backends`: the edge's long-lived clients of router, providers and state, created once per
edge process from the loaded config's `services` addresses."""
from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.common.config.model import Config
from switchyard.common.proto import providers_pb2, providers_pb2_grpc
from switchyard.edge.clients.channel import open_channel
from switchyard.edge.clients.providers import ProvidersMux
from switchyard.edge.clients.router import RouteCache
from switchyard.edge.clients.state import StateClient


class Backends:
    """Router route cache, providers stub and mux, and state client."""

    def __init__(self, config: Config) -> None:
        # The loader has applied the SWITCHYARD_<SERVICE>_ADDR overrides already.
        services = config.services
        self.addresses = {"router": services.router, "providers": services.providers,
                          "state": services.state}
        self.routes = RouteCache(self.addresses["router"])
        self._providers_channel = open_channel(self.addresses["providers"])
        self.providers = providers_pb2_grpc.ProvidersStub(self._providers_channel)
        # Generations ride a few long-lived streams: far cheaper than a call per request.
        self.mux = ProvidersMux(self.providers)
        self.state = StateClient(self.addresses["state"])
        self._health_channels = {s: open_channel(a) for s, a in self.addresses.items()}

    async def start(self) -> None:
        await self.routes.start()

    async def close(self) -> None:
        await self.routes.close()
        await self.state.close()
        await self.mux.close()
        await self._providers_channel.close()
        for ch in self._health_channels.values():
            await ch.close()

    async def count_tokens(self, request: providers_pb2.GenerateRequest,
                           timeout: float) -> providers_pb2.CountTokensReply:
        """Input tokens of `request`; a failed call raises the mapped `GatewayError`."""
        return await self.mux.count_tokens(request, timeout)

    async def health(self, timeout: float = 1.0) -> dict[str, bool]:
        """Each backend's gRPC health status, checked concurrently."""
        async def check(ch: grpc.aio.Channel) -> bool:
            try:
                reply = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=timeout)
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
            except (TimeoutError, grpc.aio.AioRpcError):
                return False
        names = list(self._health_channels)
        results = await asyncio.gather(*(check(self._health_channels[n]) for n in names))
        return dict(zip(names, results))
