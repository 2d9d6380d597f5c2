"""The edge's client of one providers endpoint: generations as tagged messages on a few
long-lived Providers.Multiplex streams (a new gRPC call costs far more CPU than a message).
`pool.ProvidersPool` keeps one of these per providers replica and spreads requests.

K streams per endpoint, requests assigned round-robin. Per stream, a writer task sends what
was queued during the previous write as one message, and a reader task routes replies to
per-request sinks. A broken stream fails its pending requests with a 503 and is reopened on
the next request — unless the server never accepted the stream: then they never reached it
and the pool sends them to another replica. A draining server's GOAWAY, or the connection's
GOAWAY (max connection age), retires streams, letting their requests finish.
"""
from __future__ import annotations

import asyncio
import collections
import enum
import itertools
import logging
from typing import TYPE_CHECKING, Final, Protocol

import grpc

from switchyard.common import timeouts
from switchyard.common.coalesce import CoalescingWriter
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, providers_pb2, providers_pb2_grpc
from switchyard.edge.clients.endpoints import Endpoint
from switchyard.edge.clients.errors import grpc_to_gateway_error, status_error

log = logging.getLogger(__name__)

# Mirror services/providers/mux.py: reply id 0 is the server's GOAWAY (it drains), and this
# initial-metadata key says the server took the stream (requests on it reach the server).
GOAWAY_ID = 0
ACCEPTED_KEY = "x-switchyard-mux"
# Per endpoint. One: every reply of the endpoint then rides the same stream, so the
# providers side's lingering writer puts the tokens of all streams in one message (with 4,
# each stream's writer flushed its own quarter: ~4x the gRPC messages, measured in bench/).
STREAMS = 1
# A busy stream writes requests at most once per LINGER_S (common/coalesce.py), so many
# non-streaming requests share a gRPC message; a stream's request (its TTFT) never waits.
LINGER_S = 0.001

if TYPE_CHECKING:
    class EOFType(enum.Enum):
        """grpc.aio.EOF as mypy sees it (grpc ships no stubs): a one-member enum, so that
        `batch is EOF` narrows `EventBatch | EOFType` to `EventBatch`."""
        EOF = enum.auto()

    EOF: Final = EOFType.EOF
else:
    # The very object grpc.aio reads return at the end, so `is grpc.aio.EOF` works too.
    EOF = grpc.aio.EOF
    EOFType = type(EOF)


def unavailable() -> GatewayError:
    """What a request on a broken stream gets: the 503 of an UNAVAILABLE providers call."""
    return status_error("providers", grpc.StatusCode.UNAVAILABLE)


class Resender(Protocol):
    """Where a request goes whose stream the server never accepted (the pool)."""

    def resend(self, call: MuxCall, origin: ProvidersMux) -> None: ...

    def forget(self, mux: ProvidersMux) -> None: ...


class MuxCall:
    """One request's replies; `read()`/`cancel()` like a grpc.aio server-streaming call."""

    __slots__ = ("rid", "stream", "items", "waiter", "done", "request", "whole", "tried")

    def __init__(self, rid: int, stream: MuxStream, request: providers_pb2.GenerateRequest,
                 whole: bool) -> None:
        self.rid = rid
        self.stream = stream
        self.items: collections.deque[providers_pb2.MuxReply | GatewayError] = \
            collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.done = False   # nothing more will arrive (last seen, failed, or cancelled)
        self.request = request   # kept to send it elsewhere if its stream is refused
        self.whole = whole
        self.tried: tuple[Endpoint, ...] = ()

    def push(self, item: providers_pb2.MuxReply | GatewayError) -> None:
        self.items.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def read(self) -> chat_pb2.EventBatch | EOFType:
        """The next batch, or EOF after the last; a broken stream raises GatewayError(503)."""
        while not self.items:
            if self.done:
                return EOF
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        item = self.items.popleft()
        if isinstance(item, GatewayError):
            self.done = True
            raise item
        if item.last:
            self.done = True
            if not item.batch.events:
                return EOF
        return item.batch

    def cancel(self) -> None:
        """Stop early (client gone): the providers service closes the upstream request."""
        if not self.done:
            self.done = True
            self.stream.cancel(self.rid)


class MuxStream:
    """One Multiplex call: pending requests by id, a reader task and a writer task."""

    def __init__(self, stub: providers_pb2_grpc.ProvidersStub, owner: ProvidersMux) -> None:
        self.owner = owner
        self.call: grpc.aio.StreamStreamCall = stub.Multiplex()
        self.pending: dict[int, MuxCall] = {}
        self.ids = itertools.count(1)
        self.outbox: CoalescingWriter[providers_pb2.MuxRequest] = CoalescingWriter(
            self._write, linger_s=LINGER_S)
        self.open = True        # takes new requests
        self.broken = False
        self.closing = False    # half-close queued
        self.accepted = False   # the server's handler took the stream
        if owner.endpoint is not None:
            owner.endpoint.hold()   # released when the reader ends
        self.reader: asyncio.Task[None] = asyncio.create_task(self._read())
        self.writer: asyncio.Task[None] = asyncio.create_task(self._write_loop())

    def send(self, request: providers_pb2.GenerateRequest, whole: bool) -> MuxCall:
        """Register a request and queue it; if the stream breaks, its read() raises a 503."""
        mc = MuxCall(0, self, request, whole)
        self.adopt(mc)
        return mc

    def adopt(self, mc: MuxCall) -> None:
        """Send `mc`'s request on this stream (a new one, or one moved from a refused stream)."""
        if self.broken:
            raise unavailable()
        mc.rid, mc.stream = next(self.ids), self
        self.pending[mc.rid] = mc
        self._post(providers_pb2.MuxRequest(id=mc.rid, generate=mc.request, whole=mc.whole),
                   urgent=not mc.whole)

    def cancel(self, rid: int) -> None:
        if self.pending.pop(rid, None) is not None and not self.broken:
            self._post(providers_pb2.MuxRequest(id=rid, cancel=True))
            self._maybe_finish()

    def _post(self, msg: providers_pb2.MuxRequest | None, urgent: bool = False) -> None:
        """Queue a message for the writer (None: half-close after the queue)."""
        if msg is None:
            self.outbox.finish()
        else:
            self.outbox.post(msg, urgent)

    async def _write(self, batch: list[providers_pb2.MuxRequest]) -> None:
        await self.call.write(providers_pb2.MuxRequests(requests=batch))

    async def _write_loop(self) -> None:
        """Serialized, coalesced writes; then half-close."""
        try:
            await self.outbox.run()
            await self.call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError) as exc:
            self._break(exc)

    async def _read(self) -> None:
        exc: BaseException | None = None
        try:
            metadata = await self.call.initial_metadata()
            # Empty when the call failed before the server's handler ran.
            self.accepted = metadata is not None and ACCEPTED_KEY in metadata
            while (envelope := await self.call.read()) is not EOF:
                self.accepted = True
                for reply in envelope.replies:
                    self._dispatch(reply)
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as err:
            exc = err
        finally:
            self._break(exc)
            self.owner.ended(self)

    def _dispatch(self, reply: providers_pb2.MuxReply) -> None:
        if reply.id == GOAWAY_ID:
            self.owner.draining()
            self.retire()   # new requests go to a new stream (on another replica)
            return
        mc = self.pending.get(reply.id)
        if mc is None:
            return   # cancelled meanwhile
        if reply.last:
            del self.pending[reply.id]
            if not self.open:
                self._maybe_finish()
        mc.push(reply)

    def retire(self) -> None:
        """Take no new requests; half-close once the pending ones are done."""
        self.open = False
        self.owner.retire(self)
        self._maybe_finish()

    def _break(self, exc: BaseException | None) -> None:
        """Fail every pending request cleanly; the owner opens a new stream next time. If the
        server never accepted the stream its requests never reached it: they move on."""
        if self.broken:
            return
        self.broken = True
        self.open = False
        self.owner.retire(self)
        pending, self.pending = self.pending, {}
        refused = exc is not None and not self.accepted
        if refused:
            log.info("providers stream refused (%s); %d requests sent elsewhere",
                     exc.code() if isinstance(exc, grpc.aio.AioRpcError) else exc,
                     len(pending))
        elif exc is not None:
            log.warning("providers stream broke (%s); %d requests failed",
                        exc.code() if isinstance(exc, grpc.aio.AioRpcError) else exc,
                        len(pending))
        for mc in pending.values():
            if refused:
                self.owner.resend(mc)
            else:
                mc.push(unavailable())
        self.writer.cancel()
        self.call.cancel()

    def fail_pending(self, err: GatewayError) -> int:
        """Fail every pending request with `err` and cancel it on providers (which closes
        its upstream request); the stream stays usable. Returns how many there were."""
        pending, self.pending = self.pending, {}
        for rid, mc in pending.items():
            mc.push(err)
            mc.done = True   # its cancel() has nothing left to do
            if not self.broken:
                self._post(providers_pb2.MuxRequest(id=rid, cancel=True))
        self._maybe_finish()
        return len(pending)

    def _maybe_finish(self) -> None:
        """A retired stream half-closes once its last request is done."""
        if not self.open and not self.pending and not self.broken and not self.closing:
            self.closing = True
            self._post(None)


async def whole_answer(mc: MuxCall, timeout: float) -> chat_pb2.EventBatch:
    """The one batch of a `whole` request; 504 after `timeout` (and the request cancelled)."""
    try:
        with timeouts.within(timeout):
            batch = await mc.read()
    except TimeoutError:
        raise status_error("providers", grpc.StatusCode.DEADLINE_EXCEEDED) from None
    finally:
        mc.cancel()   # no-op once the answer arrived
    return chat_pb2.EventBatch() if batch is EOF else batch


class ProvidersMux:
    """K long-lived Multiplex streams over one endpoint's channel, opened lazily, used
    round-robin; plus the unary CountTokens, which is rare enough not to need a stream."""

    def __init__(self, stub: providers_pb2_grpc.ProvidersStub, streams: int = STREAMS,
                 endpoint: Endpoint | None = None, pool: Resender | None = None) -> None:
        self.stub = stub
        self.endpoint = endpoint
        self.pool = pool
        self.slots: list[MuxStream | None] = [None] * streams
        self.turn = itertools.cycle(range(streams))
        self.streams: set[MuxStream] = set()   # every stream whose reader still runs

    def _stream(self) -> MuxStream:
        i = next(self.turn)
        stream = self.slots[i]
        if stream is None or not stream.open:
            stream = self.slots[i] = MuxStream(self.stub, self)
            self.streams.add(stream)
        return stream

    @property
    def inflight(self) -> int:
        """Requests waiting for their answer on this endpoint."""
        return sum(len(s.pending) for s in self.streams)

    def send(self, request: providers_pb2.GenerateRequest, whole: bool) -> MuxCall:
        return self._stream().send(request, whole)

    def adopt(self, mc: MuxCall) -> None:
        self._stream().adopt(mc)

    async def generate(self, request: providers_pb2.GenerateRequest) -> MuxCall:
        """Start a streaming request; read its batches with `read()`."""
        return self.send(request, whole=False)

    async def complete(self, request: providers_pb2.GenerateRequest,
                       timeout: float) -> chat_pb2.EventBatch:
        """The whole answer as one batch; 503 if the stream breaks, 504 after `timeout`."""
        return await whole_answer(self.send(request, whole=True), timeout)

    async def count_tokens(self, request: providers_pb2.GenerateRequest,
                           timeout: float) -> providers_pb2.CountTokensReply:
        """Input tokens of `request` (counted upstream or estimated, see `reply.estimated`)."""
        try:
            reply: providers_pb2.CountTokensReply = await self.stub.CountTokens(
                request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise grpc_to_gateway_error(exc, "providers") from None
        return reply

    def retire(self, stream: MuxStream) -> None:
        for i, s in enumerate(self.slots):
            if s is stream:
                self.slots[i] = None

    def retire_streams(self) -> None:
        """Every open stream finishes its requests and half-closes; new requests open new
        streams (on the endpoint's next connection, after a GOAWAY)."""
        for stream in [s for s in self.slots if s is not None]:
            stream.retire()

    def draining(self) -> None:
        """The server sent GOAWAY: it drains."""
        if self.endpoint is not None:
            self.endpoint.mark_draining()
        self.retire_streams()

    def resend(self, mc: MuxCall) -> None:
        """`mc`'s stream was refused before the server saw it: the pool tries elsewhere."""
        if mc.done:
            return
        if self.pool is None:
            mc.push(unavailable())
        else:
            self.pool.resend(mc, self)

    def ended(self, stream: MuxStream) -> None:
        """A stream's reader is done."""
        self.streams.discard(stream)
        if self.endpoint is not None:
            self.endpoint.release()
            if self.pool is not None and self.endpoint.removed and not self.streams:
                self.pool.forget(self)

    def fail_pending(self, err: GatewayError) -> int:
        """Fail every pending call on every stream with `err` (the edge's drain ended):
        streams end with the client's error event, whole answers with `err`'s status."""
        return sum(stream.fail_pending(err) for stream in list(self.streams))

    async def close(self) -> None:
        """Cancel every stream: pending requests get a 503."""
        self.slots = [None] * len(self.slots)
        tasks = [t for s in self.streams for t in (s.reader, s.writer)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
