"""`Backends`: the edge's long-lived clients of router, providers and state, created once per
edge process from the loaded config's `services` addresses — each address a set of
endpoints (replicas) whose health is watched, which is also what the probes report."""
from __future__ import annotations

import asyncio

from switchyard.common.config.model import Config
from switchyard.common.proto import providers_pb2
from switchyard.edge.clients.endpoints import EndpointSet
from switchyard.edge.clients.pool import ProvidersPool
from switchyard.edge.clients.router import RouteCache
from switchyard.edge.clients.state import StateClient

# How long a probe waits for the first health answers right after start-up.
SETTLE_S = 1.0


class Backends:
    """Router route cache, providers pool (multiplexed streams), and state client."""

    def __init__(self, config: Config) -> None:
        # The loader has applied the SWITCHYARD_<SERVICE>_ADDR overrides already.
        services = config.services
        self.addresses = {"router": services.router, "providers": services.providers,
                          "state": services.state}
        self.endpoints = {name: EndpointSet(address) for name, address in self.addresses.items()}
        self.routes = RouteCache(self.endpoints["router"])
        # Generations ride a few long-lived streams per replica: far cheaper than a call each.
        self.mux = ProvidersPool(self.endpoints["providers"])
        self.state = StateClient(self.endpoints["state"])

    async def start(self) -> None:
        for endpoints in self.endpoints.values():
            endpoints.start()
        await self.routes.start()

    async def close(self) -> None:
        await self.routes.close()
        await self.state.close()
        await self.mux.close()
        for endpoints in self.endpoints.values():
            await endpoints.close()

    async def count_tokens(self, request: providers_pb2.GenerateRequest,
                           timeout: float) -> providers_pb2.CountTokensReply:
        """Input tokens of `request`; a failed call raises the mapped `GatewayError`."""
        return await self.mux.count_tokens(request, timeout)

    async def health(self, timeout: float = SETTLE_S) -> dict[str, bool]:
        """Each backend's health: some replica answers SERVING. Read from the endpoints'
        health watches, so it costs no call; only right after start-up does it wait (at
        most `timeout`) for their first answers."""
        await asyncio.gather(*(e.settled(timeout) for e in self.endpoints.values()))
        return {name: endpoints.up for name, endpoints in self.endpoints.items()}

    def replicas(self) -> dict[str, dict[str, str]]:
        """Each backend's endpoints and their status, for /readyz."""
        return {name: endpoints.statuses() for name, endpoints in self.endpoints.items()}
