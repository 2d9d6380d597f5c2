"""The executor with the real upstream codecs (services/providers/adapters/) against a fake
upstream that speaks the OpenAI and Anthropic wires."""
from __future__ import annotations

import dataclasses

import orjson
import pytest

from switchyard.common.proto import chat_pb2, providers_pb2
from switchyard.providers.execution import Executor, load_adapter
from switchyard.providers.http import ClientPool, Timeouts
from switchyard.providers.retry import RetryPolicy
from switchyard.providers.tokens import count_tokens
from tests.integration.test_providers_support import (
    FakeUpstream,
    Step,
    entry,
    gen_request,
    kinds,
    plan,
)


def data(obj) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else orjson.dumps(obj)) + b"\n\n"


def event(name: str, obj: dict) -> bytes:
    return f"event: {name}\n".encode() + data(obj)


def openai_chunk(delta: dict, finish: str | None = None) -> bytes:
    return data({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                 "model": "gpt-x", "choices": [{"index": 0, "delta": delta,
                                                "finish_reason": finish}]})


OPENAI_STREAM = [openai_chunk({"role": "assistant", "content": ""}), openai_chunk({"content": "Hel"}),
                 openai_chunk({"content": "lo"}), openai_chunk({}, "stop") + data(b"[DONE]")]

ANTHROPIC_STREAM = [
    event("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
        "stop_reason": None, "usage": {"input_tokens": 7, "output_tokens": 1}}}),
    event("content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}})
    + event("ping", {"type": "ping"}),
    event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "text_delta", "text": "Hello"}}),
    event("content_block_stop", {"type": "content_block_stop", "index": 0})
    + event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                              "usage": {"output_tokens": 2}})
    + event("message_stop", {"type": "message_stop"}),
]
SSE_HEADERS = {"content-type": "text/event-stream"}


@pytest.fixture
async def upstream():
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
async def pool():
    p = ClientPool(Timeouts(1.0, 5.0, 5.0))
    yield p
    await p.close()


def anthropic_entry(name: str, url: str):
    return dataclasses.replace(entry(name, url), provider="anthropic", interface="anthropic",
                               auth="x-api-key")


def executor(pool: ClientPool, *entries) -> Executor:
    table = {e.name: e for e in entries}
    return Executor(table.get, pool, retry=RetryPolicy(base_s=0.01, cap_s=0.02))


def text_of(batches) -> str:
    return "".join(ev.delta.text for b in batches for ev in b.events if ev.HasField("delta"))


async def test_openai_stream_through_real_codec(upstream, pool):
    upstream.script("oai", Step(chunks=OPENAI_STREAM, chunk_gap_s=0.02, headers=SSE_HEADERS))
    ex = executor(pool, entry("oai", upstream.url("oai")))
    batches = [b async for b in ex.generate(gen_request(plan("oai")))]
    assert kinds(batches)[0] == "start" and kinds(batches)[-1] == "finish"
    assert kinds(batches).count("start") == 1
    assert text_of(batches) == "Hello"
    assert batches[0].events[0].start.provider == "oai"
    assert upstream.headers["oai"][0]["authorization"] == "Bearer sk-secret-oai-0123456789"


async def test_a_key_with_a_newline_is_a_clear_error_and_the_plan_moves_on(upstream, pool):
    upstream.script("good", Step(chunks=OPENAI_STREAM, headers=SSE_HEADERS))
    bad = dataclasses.replace(entry("bad", upstream.url("bad")), access_key="sk-read-from-file\n")
    ex = executor(pool, bad, entry("good", upstream.url("good")))
    batches = [b async for b in ex.generate(gen_request(plan("bad", "good")))]
    assert text_of(batches) == "Hello" and batches[0].events[0].start.provider == "good"
    assert "bad" not in upstream.headers   # nothing was sent to the misconfigured entry
    alone = [b async for b in executor(pool, bad).generate(gen_request(plan("bad")))]
    err = alone[-1].events[-1].error
    assert err.http_status == 500 and err.provider == "bad"
    assert "misconfigured" in err.message and "'Authorization'" in err.message
    assert "sk-read-from-file" not in str(alone)


async def test_anthropic_overload_is_retried_then_streams(upstream, pool):
    overloaded = Step(status=529, headers={"content-type": "application/json"}, body=orjson.dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    upstream.script("claude", overloaded, Step(chunks=ANTHROPIC_STREAM, chunk_gap_s=0.02,
                                               headers=SSE_HEADERS))
    ex = executor(pool, anthropic_entry("claude", upstream.url("claude")))
    batches = [b async for b in ex.generate(gen_request(plan("claude")))]
    start = batches[0].events[0].start
    assert (start.provider, start.attempts, start.id) == ("claude", 2, "msg_1")
    assert text_of(batches) == "Hello"
    finish = [ev.finish for b in batches for ev in b.events if ev.HasField("finish")]
    assert len(finish) == 1 and finish[0].stop_reason == chat_pb2.STOP_REASON_END_TURN
    assert upstream.headers["claude"][1]["x-api-key"] == "sk-secret-claude-0123456789"


async def test_openai_400_message_reaches_the_client(upstream, pool):
    upstream.script("oai", Step(status=400, headers={"content-type": "application/json"},
                                body=orjson.dumps({"error": {
                                    "message": "Invalid value for 'temperature'",
                                    "type": "invalid_request_error", "param": "temperature"}})))
    ex = executor(pool, entry("oai", upstream.url("oai")))
    batches = [b async for b in ex.generate(gen_request(plan("oai")))]
    assert kinds(batches) == ["error"]
    err = batches[0].events[0].error
    assert (err.http_status, err.message, err.provider) == (
        400, "Invalid value for 'temperature'", "oai")


async def test_count_tokens_with_real_anthropic_codec(upstream, pool):
    e = anthropic_entry("claude", upstream.url("claude"))
    reply = await count_tokens(gen_request(plan("claude")), e, load_adapter(e), pool)
    assert (reply.input_tokens, reply.estimated) == (42, False)
    body = upstream.count_bodies[0]
    assert body["model"] == "claude-model" and body["messages"]
    assert "max_tokens" not in body and "stream" not in body
    assert isinstance(reply, providers_pb2.CountTokensReply)


async def test_error_object_in_a_200_body_is_an_error_not_a_reply(upstream, pool):
    upstream.script("oai", Step(headers={"content-type": "application/json"}, body=orjson.dumps(
        {"error": {"message": "model is loading", "type": "server_error"}})))
    ex = executor(pool, entry("oai", upstream.url("oai")))
    batches = [b async for b in ex.generate(gen_request(plan("oai", retries=1), stream=False))]
    assert kinds(batches) == ["error"]
    assert batches[0].events[0].error.message == "model is loading"
    assert len(upstream.calls["oai"]) == 2     # a 5xx-class error: retried once
