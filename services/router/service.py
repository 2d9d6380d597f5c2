"""The router gRPC service: resolves model names and publishes the route table to edges."""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

import grpc

from switchyard.common.config.loader import ConfigError, load_config
from switchyard.common.config.model import Config
from switchyard.common.grpc_server import run_server
from switchyard.common.proto import router_pb2, router_pb2_grpc
from switchyard.router.resolution import build_route_table, resolve, suggestions

log = logging.getLogger(__name__)

CONFIG_POLL_SECONDS = 2.0


def not_found_message(config: Config, name: str) -> str:
    """The 404 text: what was asked for and a few names that exist, closest first."""
    names = ", ".join(suggestions(config, name))
    if not name:
        return f"No model was given and no default model is configured. Available models: {names}"
    return f"The model '{name}' does not exist. Available models: {names}"


class RouterServicer(router_pb2_grpc.RouterServicer):
    """Answers Resolve/ListModels from the current config; WatchRoutes streams every table."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._version = 1
        self._table = build_route_table(config, self._version)
        self._changed = asyncio.Condition()
        self._closing = False

    @property
    def version(self) -> int:
        return self._version

    @property
    def table(self) -> router_pb2.RouteTable:
        return self._table

    async def update(self, config: Config) -> None:
        """Swap in a new config and wake every WatchRoutes stream."""
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

    async def ListModels(self, request: router_pb2.ListModelsRequest,
                         context: grpc.aio.ServicerContext) -> router_pb2.ModelList:
        return self._table.models


def _file_stamp(path: str) -> tuple[float, int] | None:
    try:
        st = os.stat(path)
        return st.st_mtime, st.st_size
    except OSError:
        return None


def watch_config_file(servicer: RouterServicer, path: str,
                      interval: float = CONFIG_POLL_SECONDS) -> asyncio.Task[None]:
    """Reload the config when its file changes; a broken edit is logged and the old one kept.

    The file's state is taken now, so an edit made right after this call is not missed.
    """
    return asyncio.create_task(_watch_config(servicer, path, interval, _file_stamp(path)),
                               name="router-config-watch")


async def _watch_config(servicer: RouterServicer, path: str, interval: float,
                        last: tuple[float, int] | None) -> None:
    while True:
        await asyncio.sleep(interval)
        now = _file_stamp(path)
        if now is None or now == last:
            continue
        last = now
        try:
            config = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error("config reload failed, keeping the previous routes:\n%s", exc)
            continue
        await servicer.update(config)
        log.info("config reloaded from %s; route table version %d", path, servicer.version)


async def serve(config: Config, address: str, token: str | None = None) -> None:
    """Run the router until SIGINT/SIGTERM, reloading routes when the config file changes;
    with `token`, only callers holding the internal token get through."""
    servicer = RouterServicer(config)
    watcher: asyncio.Task[None] | None = None
    if os.path.isfile(config.path):
        watcher = watch_config_file(servicer, config.path)

    def register(server: grpc.aio.Server) -> None:
        router_pb2_grpc.add_RouterServicer_to_server(servicer, server)

    async def on_stop() -> None:
        if watcher is not None:
            watcher.cancel()

    try:
        await run_server("router", address, register, on_stop,
                         before_drain=servicer.close_watches, token=token,
                         tracing=config.tracing)
    finally:
        if watcher is not None:
            watcher.cancel()
