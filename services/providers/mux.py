"""Server side of Providers.Multiplex: many tagged requests over one long-lived stream.

One reader loop per stream starts a task per request (the Executor's generate); replies go
out through one writer task (grpc.aio allows one write at a time), which sends everything
queued meanwhile as one message. `cancel` cancels that request's task, which closes its
upstream request; the stream ending cancels them all.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import grpc

from switchyard.common.coalesce import CoalescingWriter
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, providers_pb2

log = logging.getLogger(__name__)

GOAWAY_ID = 0   # a reply with this id: the server is draining, open new streams elsewhere
# Sent as initial metadata before any request is read: the client then knows that requests
# on a stream that fails without it never reached this server, so it may send them elsewhere.
ACCEPTED = (("x-switchyard-mux", "1"),)
TERMINAL = ("finish", "error")
# A busy session writes at most once per LINGER_S, so the tokens of many streams and many
# whole answers share a message (see common/coalesce.py); first batches never wait.
LINGER_S = 0.001

Generate = Callable[[providers_pb2.GenerateRequest], AsyncGenerator[chat_pb2.EventBatch, None]]


class MuxSession:
    """One Multiplex stream: its request tasks and its serialized writer."""

    def __init__(self, generate: Generate, context: grpc.aio.ServicerContext) -> None:
        self.generate = generate
        self.context = context
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.outbox: CoalescingWriter[providers_pb2.MuxReply] = CoalescingWriter(
            lambda batch: context.write(providers_pb2.MuxReplies(replies=batch)),
            linger_s=LINGER_S)
        self.writer: asyncio.Task[None] | None = None

    async def run(self, requests: AsyncIterator[providers_pb2.MuxRequests]) -> None:
        """Read requests until the client half-closes, then let the running ones finish."""
        await self.context.send_initial_metadata(ACCEPTED)
        writer = self.writer = asyncio.create_task(self._write_loop())
        try:
            async for envelope in requests:
                for msg in envelope.requests:
                    if msg.WhichOneof("kind") == "generate":
                        task = asyncio.create_task(self._serve(msg.id, msg.generate, msg.whole))
                        self.tasks[msg.id] = task
                        task.add_done_callback(functools.partial(self._forget, msg.id))
                    elif (running := self.tasks.get(msg.id)) is not None:
                        running.cancel()
            while self.tasks:
                await asyncio.wait(list(self.tasks.values()))
            self._post(None)   # flush what is queued, then stop
            await writer
        finally:
            for task in list(self.tasks.values()):   # stream broken or call cancelled
                task.cancel()
            writer.cancel()

    def _forget(self, rid: int, _task: asyncio.Task[None]) -> None:
        """Done-callback of request `rid`'s task: drop it from the table."""
        self.tasks.pop(rid, None)

    async def goaway(self) -> None:
        """Tell the client to send new requests on a new stream (this server is draining)."""
        self._post(providers_pb2.MuxReply(id=GOAWAY_ID, last=True), urgent=True)

    def _post(self, reply: providers_pb2.MuxReply | None, urgent: bool = False) -> None:
        """Queue a reply for the writer (None: stop after the queue); an `urgent` one goes
        out without lingering."""
        if reply is None:
            self.outbox.finish()
        else:
            self.outbox.post(reply, urgent)

    async def _write_loop(self) -> None:
        await self.outbox.run()

    async def _serve(self, rid: int, request: providers_pb2.GenerateRequest, whole: bool) -> None:
        try:
            if whole:
                self._post(await self._whole(request, rid))
            else:
                await self._stream(request, rid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:   # a bug must still answer this request, not the stream
            log.exception("request %s: multiplexed generation failed", request.request_id)
            err = GatewayError(500, f"internal error in the providers service "
                                    f"({type(exc).__name__})", type="api_error")
            batch = chat_pb2.EventBatch(events=[chat_pb2.StreamEvent(error=err.to_proto())])
            self._post(providers_pb2.MuxReply(id=rid, batch=batch, last=True), urgent=True)

    async def _whole(self, request: providers_pb2.GenerateRequest,
                     rid: int) -> providers_pb2.MuxReply:
        reply = providers_pb2.MuxReply(id=rid, last=True)
        async with contextlib.aclosing(self.generate(request)) as batches:
            async for batch in batches:
                reply.batch.events.extend(batch.events)
        return reply

    async def _stream(self, request: providers_pb2.GenerateRequest, rid: int) -> None:
        sent_last = False
        first = True   # the first batch (start + first content, or the error): the TTFT
        async with contextlib.aclosing(self.generate(request)) as batches:
            async for batch in batches:
                if sent_last:
                    log.warning("request %s: events after the end of the turn dropped",
                                request.request_id)
                    continue
                # A batch ending the turn is marked last: no extra message per stream. The
                # generator still runs to its end so its own clean-up (pool, breaker) runs.
                sent_last = bool(batch.events) and \
                    batch.events[-1].WhichOneof("event") in TERMINAL
                self._post(providers_pb2.MuxReply(id=rid, batch=batch, last=sent_last), first)
                first = False
        if not sent_last:
            self._post(providers_pb2.MuxReply(id=rid, last=True))


class MuxSessions:
    """The live sessions of one servicer, so a draining server can send them GOAWAY."""

    def __init__(self) -> None:
        self.live: set[MuxSession] = set()

    async def serve(self, generate: Generate,
                    requests: AsyncIterator[providers_pb2.MuxRequests],
                    context: grpc.aio.ServicerContext) -> None:
        session = MuxSession(generate, context)
        self.live.add(session)
        try:
            await session.run(requests)
        finally:
            self.live.discard(session)

    async def goaway(self) -> None:
        await asyncio.gather(*(s.goaway() for s in list(self.live)))
