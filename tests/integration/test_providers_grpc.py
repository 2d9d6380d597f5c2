"""The providers gRPC service over a real grpc.aio channel, against a fake upstream."""
from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest

from switchyard.common.config.model import Config, Listener, ServiceAddresses, StateStorage
from switchyard.common.proto import providers_pb2_grpc
from switchyard.providers.service import ProvidersServicer, build_executor
from tests.integration.test_providers_support import (
    FakeAdapter,
    FakeSSEParser,
    FakeUpstream,
    entry,
    gen_request,
    kinds,
    ok_stream,
    plan,
    sse,
)


@pytest.fixture
async def upstream():
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
async def service(upstream):
    """A providers server on a free port; yields (stub, executor)."""
    entries = (entry("primary", upstream.url("primary")),
               dataclasses.replace(entry("claude", upstream.url("claude")), interface="anthropic"))
    config = Config(path="test.yaml", version="v0.3.0", listener=Listener(timeout_s=5.0),
                    providers=entries, aliases={}, state=StateStorage(),
                    services=ServiceAddresses())
    executor = build_executor(config)
    executor.adapters = lambda e: FakeAdapter
    executor.sse_parser = FakeSSEParser
    server = grpc.aio.server()
    providers_pb2_grpc.add_ProvidersServicer_to_server(ProvidersServicer(executor), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield providers_pb2_grpc.ProvidersStub(channel), executor
    finally:
        await channel.close()
        await server.stop(None)
        await executor.pool.close()


async def test_generate_streams_batches(service, upstream):
    stub, executor = service
    upstream.script("primary", ok_stream("a", "b", gap_s=0.05))
    batches = [b async for b in stub.Generate(gen_request(plan("primary")))]
    assert len(batches) >= 3
    assert kinds(batches) == ["start", "block_start", "delta", "delta", "block_stop", "finish"]
    assert batches[0].events[0].start.provider == "primary"
    assert executor.pool.timeouts(executor.lookup("primary")).first_byte_s == 5.0


async def test_generate_error_before_start(service):
    stub, _ = service
    batches = [b async for b in stub.Generate(gen_request(plan("nowhere")))]
    assert kinds(batches) == ["error"]
    assert batches[0].events[0].error.http_status == 500


async def test_cancelled_call_closes_the_upstream(service, upstream):
    stub, _ = service
    step = ok_stream("a")
    step.chunks = [sse({"id": "r1"}) + sse({"t": "a"})]
    step.hang = True
    upstream.script("primary", step)
    call = stub.Generate(gen_request(plan("primary")))
    first = await call.read()
    assert first.events[0].HasField("start")
    assert not upstream.disconnected.is_set()
    call.cancel()
    await asyncio.wait_for(upstream.disconnected.wait(), timeout=1.0)


async def test_count_tokens_estimates_for_openai_targets(service):
    stub, _ = service
    reply = await stub.CountTokens(gen_request(plan("primary")))
    assert reply.estimated and reply.input_tokens > 0


async def test_count_tokens_asks_anthropic(service, upstream):
    stub, _ = service
    reply = await stub.CountTokens(gen_request(plan("claude")))
    assert (reply.input_tokens, reply.estimated) == (42, False)
    assert upstream.count_bodies == [{"model": "claude-model"}]   # `stream` is not accepted there
