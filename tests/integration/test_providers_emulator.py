"""The providers service, real codecs and the shared upstream emulator (tests/emulator/)."""
from __future__ import annotations

import asyncio

import grpc
import pytest

from switchyard.common.config.model import (
    Config,
    Listener,
    ProviderEntry,
    ServiceAddresses,
    StateStorage,
)
from switchyard.common.proto import chat_pb2, providers_pb2, providers_pb2_grpc, router_pb2
from switchyard.providers.service import ProvidersServicer, build_executor
from tests.emulator.runner import Emulator

OPENAI_KEY, ANTHROPIC_KEY = "sk-openai-emulated-0001", "sk-ant-emulated-0002"


@pytest.fixture
def emulator():
    with Emulator(openai_keys=[OPENAI_KEY], anthropic_keys=[ANTHROPIC_KEY]) as emu:
        yield emu


@pytest.fixture
async def stub(emulator):
    entries = (
        ProviderEntry(name="openai/gpt-4o-mini", provider="openai", model="gpt-4o-mini",
                      interface="openai", endpoint=f"{emulator.openai_base_url}/chat/completions",
                      auth="bearer", access_key=OPENAI_KEY),
        ProviderEntry(name="anthropic/*", provider="anthropic", model="*", interface="anthropic",
                      endpoint=f"{emulator.url}/v1/messages", auth="x-api-key",
                      access_key=ANTHROPIC_KEY),
    )
    config = Config(path="emulated.yaml", version="v0.3.0", listener=Listener(timeout_s=10.0),
                    providers=entries, aliases={}, state=StateStorage(), services=ServiceAddresses())
    executor = build_executor(config)
    server = grpc.aio.server()
    providers_pb2_grpc.add_ProvidersServicer_to_server(ProvidersServicer(executor), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield providers_pb2_grpc.ProvidersStub(channel)
    finally:
        await channel.close()
        await server.stop(None)
        await executor.pool.close()


def request(stream: bool = True) -> providers_pb2.GenerateRequest:
    plan = router_pb2.RoutePlan(name="smart-model", max_retries=1, timeout_s=10.0, targets=[
        router_pb2.Target(provider="anthropic/*", model="claude-sonnet-4-20250514",
                          wire=chat_pb2.WIRE_FORMAT_ANTHROPIC),
        router_pb2.Target(provider="openai/gpt-4o-mini", model="gpt-4o-mini",
                          wire=chat_pb2.WIRE_FORMAT_OPENAI_CHAT)])
    req = chat_pb2.ChatRequest(model="smart-model", stream=stream, max_tokens=64,
                               source_format=chat_pb2.WIRE_FORMAT_OPENAI_CHAT,
                               messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[
                                   chat_pb2.ContentPart(text=chat_pb2.TextPart(text="Say hi"))])])
    return providers_pb2.GenerateRequest(request=req, plan=plan, request_id="r-emu")


async def test_overloaded_primary_falls_back_to_openai(emulator, stub):
    emulator.script("claude-sonnet-4-20250514", {"status": 529}, {"status": 529})
    emulator.script("gpt-4o-mini", {"reply": {"text": "Hello from the fallback"}, "chunks": 4,
                                     "chunk_delay": 0.05})
    batches = [b async for b in stub.Generate(request())]
    events = [ev for b in batches for ev in b.events]
    assert events[0].HasField("start") and events[-1].HasField("finish")
    start = events[0].start
    assert (start.provider, start.attempts) == ("openai/gpt-4o-mini", 3)
    assert "".join(ev.delta.text for ev in events if ev.HasField("delta")) == \
        "Hello from the fallback"
    assert len(batches) > 1            # frames 50 ms apart: one batch per read
    seen = [(r["api"], r["status"]) for r in emulator.requests()]
    assert len(seen) == 3 and [s for _, s in seen] == [529, 529, 200]


async def test_cancelled_stream_disconnects_from_the_emulator(emulator, stub):
    emulator.script("claude-sonnet-4-20250514",
                    {"reply": {"text": "one two three four five six"}, "chunks": 6,
                     "chunk_delay": 0.5})
    call = stub.Generate(request())
    first = await call.read()
    assert first.events[0].HasField("start")
    call.cancel()
    gone = await asyncio.to_thread(emulator.wait_for_disconnects, 1, 1.0)
    assert gone[0]["model"] == "claude-sonnet-4-20250514"
