"""The edge's client of the router: a locally held route table kept fresh by WatchRoutes
(on one live router replica, moving when that one goes away), and Resolve for names the
table cannot answer (wildcards), on the replicas in turn."""
from __future__ import annotations

import asyncio
import logging

import grpc

from switchyard.common.proto import router_pb2, router_pb2_grpc
from switchyard.edge.clients.endpoints import Change, Endpoint, EndpointSet, Status, unary
from switchyard.edge.clients.errors import grpc_to_gateway_error, status_error

log = logging.getLogger(__name__)

MAX_RESOLVED = 4096   # bound on cached wildcard answers; a flood of odd names cannot grow it


class RouteCache:
    """Answers model names from the router's published table; asks the router only on a miss."""

    def __init__(self, address: str | EndpointSet, *, resolve_timeout: float = 0.5,
                 backoff_initial: float = 0.05, backoff_max: float = 2.0) -> None:
        self._own = isinstance(address, str)   # a set handed in belongs to the caller
        self.endpoints = EndpointSet(address) if isinstance(address, str) else address
        self.address = self.endpoints.address
        self._resolve_timeout = resolve_timeout
        self._backoff = (backoff_initial, backoff_max)
        self._table: router_pb2.RouteTable | None = None
        self._routes: dict[str, router_pb2.RoutePlan] = {}
        self._resolved: dict[str, router_pb2.RoutePlan] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._attempt: asyncio.Task[bool] | None = None   # the watch on one endpoint
        self._watching: Endpoint | None = None
        self.connected = False
        self.endpoints.listen(self._changed)
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
        self.endpoints.start()
        self._task = asyncio.create_task(self._watch(), name="route-cache-watch")

    async def close(self) -> None:
        """Stop watching (and close the channels when the endpoints are this cache's own)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._own:
            await self.endpoints.close()

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
    def loaded(self) -> bool:
        """A route table has arrived (and is kept while the router is away)."""
        return self._table is not None

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
        ask = router_pb2.ResolveRequest(model=name)
        try:
            plan = await unary(self.endpoints, lambda ep, left, _: ep.stub(
                router_pb2_grpc.RouterStub).Resolve(ask, timeout=left), self._resolve_timeout)
        except grpc.aio.AioRpcError as exc:
            raise grpc_to_gateway_error(exc, "router", name) from None
        if plan is None:
            raise status_error("router", grpc.StatusCode.UNAVAILABLE, subject=name)
        if len(self._resolved) >= MAX_RESOLVED:
            self._resolved.clear()
        self._resolved[name] = plan
        return plan

    async def route(self, request: router_pb2.RouteRequest,
                    timeout: float) -> router_pb2.RouteDecision:
        """A routing decision (edge/preferences.py); GatewayError 400 for routes the router
        refuses, 503 when no router answers."""
        self._start_now()
        endpoint = self.endpoints.pick() or await self.endpoints.choose(timeout=timeout)
        if endpoint is None:
            raise status_error("router", grpc.StatusCode.UNAVAILABLE, subject=request.model)
        try:
            with endpoint.held():
                decision: router_pb2.RouteDecision = await endpoint.stub(
                    router_pb2_grpc.RouterStub).Route(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise grpc_to_gateway_error(exc, "router", request.model) from None
        return decision

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
        """Consume WatchRoutes forever on a live endpoint, moving when it goes away,
        reconnecting with backoff, keeping the last table."""
        delay = self._backoff[0]
        while True:
            endpoint = await self.endpoints.choose(timeout=self._backoff[1])
            moved = False
            if endpoint is not None:
                attempt = self._attempt = asyncio.create_task(self._watch_on(endpoint))
                self._watching = endpoint
                try:
                    await asyncio.wait({attempt})
                finally:
                    attempt.cancel()
                    self._watching = self._attempt = None
                # Cancelled by _changed: the endpoint went away, go on at once elsewhere.
                moved = attempt.cancelled()
                if not moved and attempt.result():
                    delay = self._backoff[0]
            self.connected = False
            if not moved:
                await asyncio.sleep(delay)   # backoff before reconnecting, not synchronisation
                delay = min(delay * 2, self._backoff[1])

    async def _watch_on(self, endpoint: Endpoint) -> bool:
        """WatchRoutes on `endpoint` until it ends; True when a table arrived."""
        got = False
        try:
            with endpoint.held():
                call = endpoint.stub(router_pb2_grpc.RouterStub).WatchRoutes(
                    router_pb2.WatchRoutesRequest())
                async for table in call:
                    self.connected = got = True
                    self._apply(table)
        except grpc.aio.AioRpcError as exc:
            log.debug("route watch to %s ended: %s", endpoint.target, exc.code().name)
        except Exception:  # keep watching whatever happened; the table stays usable
            log.exception("route watch to %s failed", endpoint.target)
        return got

    def _changed(self, endpoint: Endpoint, change: Change) -> None:
        """Move the watch off an endpoint that lost its connection, drains or was removed
        (a watch never ends on its own, so it would hold the old connection forever)."""
        if endpoint is not self._watching or self._attempt is None:
            return
        if change is not Change.STATUS or endpoint.status >= Status.DRAINING:
            self._attempt.cancel()
