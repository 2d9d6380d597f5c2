"""The edge's long-lived connections to the three backend services."""
from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.cli import service_address
from switchyard.common.config.model import Config
from switchyard.common.grpc_server import CHANNEL_OPTIONS
from switchyard.common.proto import providers_pb2_grpc
from switchyard.edge.mux import ProvidersMux

# Per-call round robin across replicas behind a headless DNS name (k8s); harmless locally.
CLIENT_OPTIONS = [*CHANNEL_OPTIONS, ("grpc.lb_policy_name", "round_robin"),
                  ("grpc.enable_retries", 0)]


def open_channel(address: str) -> grpc.aio.Channel:
    """One reused channel per backend; `dns:///` so every resolved replica is used."""
    target = address if "://" in address or address.startswith("unix:") else f"dns:///{address}"
    return grpc.aio.insecure_channel(target, options=CLIENT_OPTIONS)


class Backends:
    """Router route cache, providers stub and state client, created once per edge process."""

    def __init__(self, config: Config) -> None:
        from switchyard.router.client import RouteCache
        from switchyard.state.client import StateClient

        self.addresses = {s: service_address(config, s) for s in ("router", "providers", "state")}
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

    async def health(self, timeout: float = 1.0) -> dict[str, bool]:
        """Each backend's gRPC health status, checked concurrently."""
        async def check(service: str, ch: grpc.aio.Channel) -> bool:
            try:
                reply = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=timeout)
                return reply.status == health_pb2.HealthCheckResponse.SERVING
            except (TimeoutError, grpc.aio.AioRpcError):
                return False
        names = list(self._health_channels)
        results = await asyncio.gather(*(check(n, self._health_channels[n]) for n in names))
        return dict(zip(names, results))
