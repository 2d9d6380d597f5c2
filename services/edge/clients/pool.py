"""`ProvidersPool`: the edge's generations spread over every providers replica — a
`ProvidersMux` (a few Multiplex streams) per endpoint, each request to the live endpoint
with the fewest requests in flight. Streams follow their endpoint: a GOAWAY (max connection
age) or a draining replica retires them, their requests finish, new ones go elsewhere."""
from __future__ import annotations

import grpc

from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, providers_pb2, providers_pb2_grpc
from switchyard.edge.clients.endpoints import Change, Endpoint, EndpointSet, Status, unary
from switchyard.edge.clients.errors import grpc_to_gateway_error, status_error
from switchyard.edge.clients.providers import (
    STREAMS,
    MuxCall,
    ProvidersMux,
    unavailable,
    whole_answer,
)

MAX_TRIES = 3   # endpoints one request may be offered to when streams are refused


class ProvidersPool:
    """Generations (see `base.Generations`) over the endpoints of the providers address."""

    def __init__(self, endpoints: EndpointSet, streams: int = STREAMS) -> None:
        self.endpoints = endpoints
        self.streams = streams
        self.muxes: dict[Endpoint, ProvidersMux] = {}
        endpoints.listen(self._changed)
        endpoints.start()

    def _mux(self, endpoint: Endpoint) -> ProvidersMux:
        mux = self.muxes.get(endpoint)
        if mux is None:
            stub = endpoint.stub(providers_pb2_grpc.ProvidersStub)
            mux = self.muxes[endpoint] = ProvidersMux(stub, self.streams, endpoint, self)
        return mux

    def _load(self, endpoint: Endpoint) -> int:
        mux = self.muxes.get(endpoint)
        return mux.inflight if mux is not None else 0

    async def _pick(self) -> ProvidersMux:
        endpoint = self.endpoints.pick(self._load) or await self.endpoints.choose(self._load)
        if endpoint is None:
            raise unavailable()   # nothing resolved (yet)
        return self._mux(endpoint)

    def inflight(self, endpoint: Endpoint) -> int:
        return self._load(endpoint)

    # ---- Generations ------------------------------------------------------------------------
    async def generate(self, request: providers_pb2.GenerateRequest) -> MuxCall:
        """Start a streaming request on the least-loaded live endpoint."""
        return (await self._pick()).send(request, whole=False)

    async def complete(self, request: providers_pb2.GenerateRequest,
                       timeout: float) -> chat_pb2.EventBatch:
        """The whole answer as one batch; 503 if its stream breaks, 504 after `timeout`."""
        return await whole_answer((await self._pick()).send(request, whole=True), timeout)

    async def count_tokens(self, request: providers_pb2.GenerateRequest,
                           timeout: float) -> providers_pb2.CountTokensReply:
        """Input tokens of `request`; a failed call raises the mapped `GatewayError`."""
        try:
            reply: providers_pb2.CountTokensReply | None = await unary(
                self.endpoints, lambda ep, left, _: ep.stub(providers_pb2_grpc.ProvidersStub)
                .CountTokens(request, timeout=left), timeout)
        except grpc.aio.AioRpcError as exc:
            raise grpc_to_gateway_error(exc, "providers") from None
        if reply is None:
            raise status_error("providers", grpc.StatusCode.UNAVAILABLE)
        return reply

    def fail_pending(self, err: GatewayError) -> int:
        return sum(mux.fail_pending(err) for mux in list(self.muxes.values()))

    async def close(self) -> None:
        muxes, self.muxes = list(self.muxes.values()), {}
        for mux in muxes:
            await mux.close()

    # ---- what the muxes and endpoints report ------------------------------------------------
    def resend(self, mc: MuxCall, origin: ProvidersMux) -> None:
        """`mc` never reached `origin`'s server (its stream was refused): another endpoint."""
        assert origin.endpoint is not None
        origin.endpoint.check()
        mc.tried = (*mc.tried, origin.endpoint)
        endpoint = None
        if len(mc.tried) < MAX_TRIES:
            # Another replica; else the same one again (a stream that raced its connection's
            # GOAWAY is refused too, and the next one goes out on a new connection).
            endpoint = self.endpoints.pick(self._load, exclude=mc.tried)
            if endpoint is None or endpoint.status is Status.DOWN:
                endpoint = origin.endpoint
        if endpoint is None or endpoint.status is Status.DOWN or endpoint.removed:
            mc.push(unavailable())
            return
        try:
            self._mux(endpoint).adopt(mc)
        except GatewayError as err:
            mc.push(err)

    def forget(self, mux: ProvidersMux) -> None:
        """A removed endpoint's last stream ended."""
        if mux.endpoint is not None and self.muxes.get(mux.endpoint) is mux:
            del self.muxes[mux.endpoint]

    def _changed(self, endpoint: Endpoint, change: Change) -> None:
        mux = self.muxes.get(endpoint)
        if mux is None:
            return
        if change is Change.RECONNECT or change is Change.REMOVED or (
                change is Change.STATUS and endpoint.status >= Status.DRAINING):
            mux.retire_streams()   # in-flight requests finish; new ones pick again
            if change is Change.REMOVED and not mux.streams:
                self.forget(mux)
