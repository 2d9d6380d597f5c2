"""The edge's client of the router: a locally held route table kept fresh by WatchRoutes,
and Resolve for names the table cannot answer (wildcards)."""
from __future__ import annotations

import asyncio
import logging

import grpc

from switchyard.common.proto import router_pb2, router_pb2_grpc
from switchyard.edge.clients.channel import open_channel
from switchyard.edge.clients.errors import grpc_to_gateway_error

log = logging.getLogger(__name__)

MAX_RESOLVED = 4096   # bound on cached wildcard answers; a flood of odd names cannot grow it


class RouteCache:
    """Answers model names from the router's published table; asks the router only on a miss."""

    def __init__(self, address: str, *, resolve_timeout: float = 0.5,
                 backoff_initial: float = 0.05, backoff_max: float = 2.0) -> None:
        self.address = address
        self._resolve_timeout = resolve_timeout
        self._backoff = (backoff_initial, backoff_max)
        self._table: router_pb2.RouteTable | None = None
        self._routes: dict[str, router_pb2.RoutePlan] = {}
        self._resolved: dict[str, router_pb2.RoutePlan] = {}
        self._ready = asyncio.Event()
        self._channel: grpc.aio.Channel | None = None
        self._stub: router_pb2_grpc.RouterStub | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return      # no loop yet: start() will be called from inside one
        self._start_now()

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the channel and start watching (idempotent)."""
        self._start_now()

    def _start_now(self) -> None:
        if self._task is not None:
            return
        self._channel = open_channel(self.address)
        self._stub = router_pb2_grpc.RouterStub(self._channel)
        self._task = asyncio.create_task(self._watch(), name="route-cache-watch")

    async def close(self) -> None:
        """Stop watching and close the channel."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def __aenter__(self) -> RouteCache:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_ready(self, timeout: float) -> bool:
        """True once a route table has arrived; False if none did within `timeout` seconds."""
        self._start_now()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except TimeoutError:
            return False

    # ---- lookups -------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Version of the table held (0 before the first one arrives)."""
        return self._table.version if self._table is not None else 0

    def lookup(self, name: str) -> router_pb2.RoutePlan | None:
        """The plan for `name` from the table or earlier answers; never does I/O."""
        plan = self._routes.get(name)
        return plan if plan is not None else self._resolved.get(name)

    async def resolve(self, name: str) -> router_pb2.RoutePlan:
        """The plan for `name`: the table first, then the router (404 unknown, 503 unreachable)."""
        plan = self.lookup(name)
        if plan is not None:
            return plan
        self._start_now()
        assert self._stub is not None
        try:
            plan = await self._stub.Resolve(router_pb2.ResolveRequest(model=name),
                                            timeout=self._resolve_timeout)
        except grpc.aio.AioRpcError as exc:
            raise grpc_to_gateway_error(exc, "router", name) from None
        if len(self._resolved) >= MAX_RESOLVED:
            self._resolved.clear()
        self._resolved[name] = plan
        return plan

    def models(self) -> router_pb2.ModelList:
        """What GET /v1/models lists (empty until the first table arrives)."""
        return self._table.models if self._table is not None else router_pb2.ModelList()

    # ---- the watch -----------------------------------------------------------------------
    def _apply(self, table: router_pb2.RouteTable) -> None:
        self._table = table
        self._routes = dict(table.routes.items())
        self._resolved = {}   # answers may be stale under the new config
        self._ready.set()

    async def _watch(self) -> None:
        """Consume WatchRoutes forever, reconnecting with backoff and keeping the last table."""
        delay = self._backoff[0]
        while True:
            try:
                assert self._stub is not None
                call = self._stub.WatchRoutes(router_pb2.WatchRoutesRequest())
                async for table in call:
                    self.connected = True
                    self._apply(table)
                    delay = self._backoff[0]
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.debug("route watch to %s ended: %s", self.address, exc.code().name)
            except Exception:  # keep watching whatever happened; the table stays usable
                log.exception("route watch to %s failed", self.address)
            self.connected = False
            await asyncio.sleep(delay)   # backoff before reconnecting, not synchronisation
            delay = min(delay * 2, self._backoff[1])
