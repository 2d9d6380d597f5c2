"""The router gRPC service: resolves model names and publishes the route table to edges."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc

from switchyard.common.config import reload
from switchyard.common.config.loader import ConfigError
from switchyard.common.config.model import Config
from switchyard.common.config.reload import POLL_S, ConfigWatcher
from switchyard.common.grpc_server import run_server
from switchyard.common.proto import router_pb2, router_pb2_grpc
from switchyard.router.resolution import build_route_table, resolve, suggestions
from switchyard.router.routing.base import ModelUnavailable
from switchyard.router.routing.engine import RouteError, RoutingEngine, build_engine

log = logging.getLogger(__name__)


def not_found_message(config: Config, name: str) -> str:
    """The 404 text: what was asked for and a few names that exist, closest first."""
    names = ", ".join(suggestions(config, name))
    if not name:
        return f"No model was given and no default model is configured. Available models: {names}"
    return f"The model '{name}' does not exist. Available models: {names}"


class RouterServicer(router_pb2_grpc.RouterServicer):
    """Answers Resolve/ListModels from the current config; WatchRoutes streams every table."""

    def __init__(self, config: Config, engine: RoutingEngine | None = None) -> None:
        self._config = config
        self._version = 1
        self._table = build_route_table(config, self._version)
        self._changed = asyncio.Condition()
        self._closing = False
        self.engine = engine   # preference-aligned routing; None: the config routes nothing

    @property
    def config(self) -> Config:
        return self._config

    @property
    def version(self) -> int:
        return self._version

    @property
    def table(self) -> router_pb2.RouteTable:
        return self._table

    async def update(self, config: Config) -> None:
        """Swap in a new config (and its routes) and wake every WatchRoutes stream."""
        engine, old = await build_engine(config), self.engine
        self.engine = engine
        if old is not None:
            await old.close()
        async with self._changed:
            self._config = config
            self._version += 1
            self._table = build_route_table(config, self._version)
            self._changed.notify_all()

    async def Resolve(self, request: router_pb2.ResolveRequest,
                      context: grpc.aio.ServicerContext) -> router_pb2.RoutePlan:
        name = request.model
        routes = self._table.routes
        plan = routes[name] if name in routes else resolve(self._config, name)
        if plan is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, not_found_message(self._config, name))
            raise AssertionError("unreachable: ServicerContext.abort() raises")
        return plan

    async def WatchRoutes(self, request: router_pb2.WatchRoutesRequest,
                          context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[router_pb2.RouteTable]:
        sent = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: self._version != sent or self._closing)  # noqa: B023 - read now
                if self._closing:
                    return  # the edge reconnects to another replica or to our successor
                table, sent = self._table, self._version
            yield table

    async def close_watches(self) -> None:
        """End every WatchRoutes stream so shutdown need not wait out the drain period."""
        async with self._changed:
            self._closing = True
            self._changed.notify_all()

    async def Route(self, request: router_pb2.RouteRequest,
                    context: grpc.aio.ServicerContext) -> router_pb2.RouteDecision:
        if self.engine is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                "routing is not configured: the config has no "
                                "routing_preferences and no overrides.llm_routing_model")
            raise AssertionError("unreachable: ServicerContext.abort() raises")
        try:
            return await self.engine.decide(request)
        except RouteError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise AssertionError("unreachable: ServicerContext.abort() raises") from None

    async def ListModels(self, request: router_pb2.ListModelsRequest,
                         context: grpc.aio.ServicerContext) -> router_pb2.ModelList:
        return self._table.models


async def apply_config(servicer: RouterServicer, config: Config) -> None:
    """A reloaded config: new routes, published to every edge. A routing model that cannot
    load refuses the reload (the running routes stay)."""
    try:
        await servicer.update(config)
    except ModelUnavailable as exc:
        raise ConfigError(config.path, [f"{config.path}: cannot route: {exc}"]) from None
    log.info("route table version %d published", servicer.version)


def watch_config_file(servicer: RouterServicer, path: str,
                      interval: float = POLL_S) -> asyncio.Task[None]:
    """Reload the config when its file changes; a broken edit is logged and the old one kept
    (the watch `serve` runs, without its SIGHUP handler and process record)."""
    watcher = ConfigWatcher(replace(servicer.config, path=path), "router",
                            lambda config: apply_config(servicer, config), interval=interval,
                            register=False, signals=False)
    return watcher.start()


async def serve(config: Config, address: str, token: str | None = None, *,
                allow_unsupported: bool = False) -> None:
    """Run the router until SIGINT/SIGTERM, reloading routes when the config file changes
    (or on SIGHUP); with `token`, only callers holding the internal token get through."""
    try:
        # The routing model loads before the router listens: it is healthy once it routes.
        engine = await build_engine(config)
    except ModelUnavailable as exc:
        raise SystemExit(f"switchyard router: cannot route: {exc}") from None
    servicer = RouterServicer(config, engine)
    watcher = reload.watch(config, "router", lambda new: apply_config(servicer, new),
                           allow_unsupported=allow_unsupported)

    def register(server: grpc.aio.Server) -> None:
        router_pb2_grpc.add_RouterServicer_to_server(servicer, server)

    async def on_stop() -> None:
        if watcher is not None:
            await watcher.close()
        if servicer.engine is not None:
            await servicer.engine.close()

    try:
        await run_server("router", address, register, on_stop,
                         before_drain=servicer.close_watches, token=token,
                         tracing=config.tracing, config=config)
    finally:
        if watcher is not None:
            await watcher.close()
