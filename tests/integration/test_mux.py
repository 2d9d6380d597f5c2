"""Providers.Multiplex end to end: the edge's ProvidersMux against a real providers server."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from switchyard.common.config.model import Config, Listener, ServiceAddresses, StateStorage
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, providers_pb2_grpc
from switchyard.edge.clients.providers import EOF, ProvidersMux
from switchyard.providers.service import ProvidersServicer, build_executor
from tests.integration.test_providers_support import (
    FakeAdapter,
    FakeSSEParser,
    FakeUpstream,
    Step,
    entry,
    gen_request,
    kinds,
    ok_json,
    ok_stream,
    plan,
    sse,
)


async def until(cond, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `cond` until true or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Providers:
    """A providers server on a fixed port that can be stopped and started again."""

    def __init__(self, executor) -> None:
        self.executor = executor
        self.servicer = ProvidersServicer(executor)
        self.port = 0
        self.server: grpc.aio.Server | None = None

    async def start(self) -> None:
        self.server = grpc.aio.server()
        providers_pb2_grpc.add_ProvidersServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop(None)


@pytest.fixture
async def upstream():
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
async def providers(upstream):
    entries = (entry("a", upstream.url("a")), entry("b", upstream.url("b")))
    config = Config(path="test.yaml", version="v0.3.0", listener=Listener(timeout_s=5.0),
                    providers=entries, aliases={}, state=StateStorage(),
                    services=ServiceAddresses())
    executor = build_executor(config)
    executor.adapters = lambda e: FakeAdapter
    executor.sse_parser = FakeSSEParser
    p = Providers(executor)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()
        await executor.pool.close()


@pytest.fixture
async def mux(providers):
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{providers.port}")
    m = ProvidersMux(providers_pb2_grpc.ProvidersStub(channel), streams=2)
    try:
        yield m
    finally:
        await m.close()
        await channel.close()


def hanging() -> Step:
    """Starts the answer, then keeps the upstream request open without finishing."""
    return Step(chunks=[sse({"id": "r1"}) + sse({"t": "a"})], hang=True,
                headers={"content-type": "text/event-stream"})


async def read_all(call) -> list[chat_pb2.EventBatch]:
    out = []
    while (batch := await call.read()) is not EOF:
        out.append(batch)
    return out


def text_of(batches) -> str:
    return "".join(ev.delta.text for b in batches for ev in b.events
                   if ev.WhichOneof("event") == "delta")


async def test_concurrent_streams_each_get_their_own_answer(mux, upstream):
    upstream.script("a", ok_stream("a1", "a2", gap_s=0.02))
    upstream.script("b", ok_stream("b1", "b2", "b3", gap_s=0.01))
    calls = [await mux.generate(gen_request(plan(name))) for name in ("a", "b") * 4]
    results = await asyncio.gather(*(read_all(c) for c in calls))
    for name, batches in zip(("a", "b") * 4, results):
        expected = "a1a2" if name == "a" else "b1b2b3"
        assert text_of(batches) == expected
        assert kinds(batches)[0] == "start" and kinds(batches)[-1] == "finish"
    assert len(mux.streams) == 2   # eight requests, two long-lived streams
    assert all(not s.pending for s in mux.streams)


async def test_whole_answers_in_one_batch(mux, upstream):
    upstream.script("a", ok_json("whole text"))
    batches = await asyncio.gather(*(mux.complete(gen_request(plan("a"), stream=False),
                                                  timeout=5.0) for _ in range(5)))
    for batch in batches:
        assert kinds([batch])[0] == "start" and kinds([batch])[-1] == "finish"


async def test_error_before_start_is_the_first_event(mux):
    call = await mux.generate(gen_request(plan("nowhere")))
    assert kinds(await read_all(call)) == ["error"]
    batch = await mux.complete(gen_request(plan("nowhere"), stream=False), timeout=5.0)
    assert kinds([batch]) == ["error"] and batch.events[0].error.http_status == 500


async def test_cancel_closes_the_upstream_request(mux, upstream, providers):
    upstream.script("a", hanging())
    call = await mux.generate(gen_request(plan("a")))
    assert kinds([await call.read()])[0] == "start"
    call.cancel()
    await asyncio.wait_for(upstream.disconnected.wait(), 5)
    await until(lambda: all(not s.tasks for s in providers.servicer.mux.live), what="task gone")
    assert await call.read() is EOF
    # The stream itself lives on for the next request.
    upstream.script("a", ok_stream("again"))
    assert text_of(await read_all(await mux.generate(gen_request(plan("a"))))) == "again"


async def test_whole_timeout_is_a_504_and_cancels(mux, upstream):
    upstream.script("a", hanging())
    with pytest.raises(GatewayError) as err:
        await mux.complete(gen_request(plan("a")), timeout=0.3)
    assert err.value.http_status == 504
    await asyncio.wait_for(upstream.disconnected.wait(), 5)


async def test_broken_stream_fails_pending_with_503_then_reopens(mux, upstream, providers):
    upstream.script("a", hanging())
    calls = [await mux.generate(gen_request(plan("a"))) for _ in range(3)]
    for call in calls:
        await call.read()   # start
    await providers.stop()
    for call in calls:
        with pytest.raises(GatewayError) as err:
            await asyncio.wait_for(read_all(call), 5)
        assert err.value.http_status == 503 and err.value.type == "unavailable"
    with pytest.raises(GatewayError) as err:   # down: a clean 503, no hang
        await asyncio.wait_for(mux.complete(gen_request(plan("a"), stream=False), 5.0), 10)
    assert err.value.http_status == 503
    await providers.start()
    upstream.script("a", ok_stream("back"))

    async def recovered() -> str:
        while True:
            try:
                return text_of(await read_all(await mux.generate(gen_request(plan("a")))))
            except GatewayError:
                await asyncio.sleep(0.05)   # the channel reconnects with backoff
    assert await asyncio.wait_for(recovered(), 10) == "back"


async def test_goaway_lets_requests_finish_and_moves_new_ones(mux, upstream, providers):
    upstream.script("a", ok_stream("s", "l", "o", "w", gap_s=0.1))
    call = await mux.generate(gen_request(plan("a")))
    first = await call.read()
    old = {s for s in mux.streams}
    await providers.servicer.mux.goaway()
    await until(lambda: all(not s.open for s in old), what="the stream to retire")
    upstream.script("a", ok_stream("new"))
    assert text_of(await read_all(await mux.generate(gen_request(plan("a"))))) == "new"
    assert text_of([first] + await read_all(call)) == "slow"
    # The retired stream half-closes once idle and the server ends it cleanly.
    await until(lambda: not (old & mux.streams), what="the old stream to end")


async def test_a_generation_bug_answers_that_request_only(mux, upstream, providers):
    real = providers.executor.generate

    async def broken(request):
        if request.request_id == "boom":
            raise RuntimeError("bug")
        async for batch in real(request):
            yield batch
    providers.executor.generate = broken   # read by the servicer when a stream opens
    bad = gen_request(plan("a"))
    bad.request_id = "boom"
    call = await mux.generate(bad)
    batches = await read_all(call)
    assert kinds(batches) == ["error"] and batches[0].events[0].error.http_status == 500
    upstream.script("a", ok_stream("fine"))
    assert text_of(await read_all(await mux.generate(gen_request(plan("a"))))) == "fine"


async def test_a_burst_of_requests_goes_out_in_one_write(providers, upstream, monkeypatch):
    from switchyard.common.proto import providers_pb2
    from switchyard.edge.clients import providers as edge_mux
    sizes: list[int] = []
    real = providers_pb2.MuxRequests

    def counting(requests):
        sizes.append(len(requests))
        return real(requests=requests)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{providers.port}")
    m = ProvidersMux(providers_pb2_grpc.ProvidersStub(channel), streams=1)  # binds serializers
    monkeypatch.setattr(edge_mux.providers_pb2, "MuxRequests", counting)
    upstream.script("a", ok_json("burst"))
    try:
        replies = await asyncio.gather(*(m.complete(gen_request(plan("a"), stream=False), 5.0)
                                         for _ in range(20)))
    finally:
        await m.close()
        await channel.close()
    assert all(kinds([r])[-1] == "finish" for r in replies)
    assert sizes[0] == 20 and sum(sizes) == 20


async def test_backends_count_tokens_over_the_providers_channel(providers):
    from switchyard.edge.clients.backends import Backends
    config = Config(path="test.yaml", version="v0.3.0", listener=Listener(),
                    providers=(), aliases={}, state=StateStorage(),
                    services=ServiceAddresses(providers=f"127.0.0.1:{providers.port}"))
    be = Backends(config)
    try:
        reply = await be.count_tokens(gen_request(plan("a")), timeout=5.0)
        assert reply.estimated and reply.input_tokens > 0
        await providers.stop()
        with pytest.raises(GatewayError) as err:   # down: the mapped 503, not a gRPC error
            await be.count_tokens(gen_request(plan("a")), timeout=5.0)
        assert (err.value.http_status, err.value.type) == (503, "unavailable")
    finally:
        await be.close()


async def test_only_a_streams_request_and_first_batch_skip_the_linger(mux, upstream,
                                                                      monkeypatch):
    """Under load whole requests and answers wait for the hop's next write (≤ LINGER_S), so
    many share a gRPC message; a stream's request and first batch (its TTFT) never wait."""
    from switchyard.common.coalesce import CoalescingWriter
    posted: list[tuple[str, bool]] = []
    real = CoalescingWriter.post

    def recording(self, item, urgent=False):
        if hasattr(item, "generate"):
            posted.append(("request " + ("whole" if item.whole else "stream"), urgent))
        elif item.HasField("batch") and item.batch.events:
            posted.append((f"reply {item.batch.events[0].WhichOneof('event')}", urgent))
        real(self, item, urgent)
    monkeypatch.setattr(CoalescingWriter, "post", recording)
    upstream.script("a", ok_json("whole text"))
    await mux.complete(gen_request(plan("a"), stream=False), timeout=5.0)
    upstream.script("a", ok_stream("s1", "s2", gap_s=0.01))
    await read_all(await mux.generate(gen_request(plan("a"))))
    assert posted[:2] == [("request whole", False), ("reply start", False)]
    assert posted[2:4] == [("request stream", True), ("reply start", True)]
    assert all(not urgent for _, urgent in posted[4:])   # the stream's later tokens linger
