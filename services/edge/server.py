"""Run the edge under uvicorn (uvloop + httptools, with the edge's connection limits), and
drain it on SIGTERM: stop accepting, let requests finish for `limits.drain_seconds`, then
end every still-open stream with the client's error event."""
from __future__ import annotations

import asyncio
import logging
import math
import socket
from typing import Any

import uvicorn

from switchyard.common.config import descriptors, reload
from switchyard.common.config.model import Config
from switchyard.common.config.reload import ConfigWatcher
from switchyard.common.errors import GatewayError
from switchyard.edge.app import create_app, end_open_calls
from switchyard.edge.connections import protocol_class
from switchyard.edge.guard import Guard
from switchyard.edge.reload import EdgeReloader

log = logging.getLogger("switchyard.edge")

# After the drain ends the streams' error events need a moment to be written; then uvicorn
# cancels whatever is left.
END_GRACE_S = 2.0


def websocket_protocol(**kwargs: Any) -> asyncio.Protocol:
    """uvicorn's WebSocket protocol for one upgrade, its module imported at the first. The
    only upgrade the edge answers is the 426 on /v1/responses, so no edge carries websockets
    (~1.2 MB per process) until a client asks (a one-time import of ~10 ms)."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    return WebSocketsSansIOProtocol(**kwargs)


def shutting_down() -> GatewayError:
    """What a request still open when the drain ends gets."""
    return GatewayError(503, "the gateway is shutting down", type="unavailable")


class EdgeServer(uvicorn.Server):
    """uvicorn's server with the drain's end: `drain_s` after shutdown begins, every pending
    providers call fails with `shutting_down()`. With `app_config` (read from a file) it
    applies changes to that file while it runs (edge/reload.py)."""

    def __init__(self, config: uvicorn.Config, edge: Guard, drain_s: float,
                 app_config: Config | None = None, allow_unsupported: bool = False) -> None:
        super().__init__(config)
        self.edge = edge
        self.drain_s = drain_s
        self.app_config = app_config
        self.allow_unsupported = allow_unsupported
        self.reloader: EdgeReloader | None = None
        self.watcher: ConfigWatcher | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.app_config is not None and not self.should_exit:
            self.reloader = EdgeReloader(self.edge)
            self.watcher = reload.watch(self.app_config, "edge", self.reloader.apply,
                                        allow_unsupported=self.allow_unsupported)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.watcher is not None:
            await self.watcher.close()
        timer = asyncio.get_running_loop().call_later(self.drain_s, self._end_drain)
        try:
            await super().shutdown(sockets)
        finally:
            timer.cancel()
            if self.reloader is not None:
                await self.reloader.close()

    def _end_drain(self) -> None:
        ended = end_open_calls(self.edge, shutting_down())
        if ended:
            log.warning("drain of %gs over: %d requests still open ended with a 503",
                        self.drain_s, ended)


def run_edge(config: Config, config_path: str, allow_unsupported: bool = False) -> None:
    lst = config.listener
    sec = config.security
    budget = descriptors.connection_budget()
    if sec.max_connections > budget:
        log.warning("limits.max_connections %d is more than the file-descriptor limit "
                    "allows (%d); raise `ulimit -n`", sec.max_connections, budget)
    edge = create_app(config)
    uv = uvicorn.Config(
        edge, host=lst.address, port=lst.port, loop="uvloop", http=protocol_class(sec),
        ws=websocket_protocol,  # type: ignore[arg-type]  # a factory works like the class
        log_level="warning", access_log=False, lifespan="on",
        timeout_keep_alive=sec.keep_alive_s,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=math.ceil(sec.drain_s + END_GRACE_S))
    EdgeServer(uv, edge, sec.drain_s, app_config=config,
               allow_unsupported=allow_unsupported).run()
