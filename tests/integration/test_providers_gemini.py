"""The executor with the real Gemini codec against the emulator's strict Gemini API."""
from __future__ import annotations

import orjson
import pytest

from switchyard.common.canonical.aggregate import aggregate, turn_message
from switchyard.common.config.model import ProviderEntry
from switchyard.common.proto import chat_pb2, providers_pb2, router_pb2
from switchyard.providers.execution import Executor
from switchyard.providers.http import ClientPool, Timeouts
from switchyard.providers.retry import RetryPolicy
from tests.emulator.runner import Emulator

KEY = "gemini-emulated-key-0003"
P = chat_pb2.ContentPart


@pytest.fixture
def emulator():
    with Emulator(gemini_keys=[KEY]) as emu:
        yield emu


@pytest.fixture
async def executor(emulator):
    entry = ProviderEntry(name="gemini/*", provider="gemini", model="*", interface="gemini",
                          endpoint=f"{emulator.gemini_base_url}/models/{{model}}:generateContent",
                          auth="x-goog-api-key", access_key=KEY)
    pool = ClientPool(Timeouts(1.0, 5.0, 5.0))
    yield Executor({entry.name: entry}.get, pool, retry=RetryPolicy(base_s=0.01, cap_s=0.02))
    await pool.close()


def generate(model: str, messages: list[chat_pb2.Message], *, stream: bool = True,
             **fields) -> providers_pb2.GenerateRequest:
    plan = router_pb2.RoutePlan(name=model, max_retries=2, timeout_s=10.0, targets=[
        router_pb2.Target(provider="gemini/*", model=model, wire=chat_pb2.WIRE_FORMAT_GEMINI)])
    req = chat_pb2.ChatRequest(model=model, stream=stream, messages=messages,
                               source_format=chat_pb2.WIRE_FORMAT_OPENAI_CHAT, **fields)
    return providers_pb2.GenerateRequest(request=req, plan=plan, request_id="r-gemini")


def user(t: str) -> chat_pb2.Message:
    return chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[P(text=chat_pb2.TextPart(text=t))])


async def events(ex: Executor, gen: providers_pb2.GenerateRequest) -> list[chat_pb2.StreamEvent]:
    return [e async for b in ex.generate(gen) for e in b.events]


@pytest.mark.parametrize("stream", [True, False])
async def test_text_streams_from_the_streaming_operation(emulator, executor, stream):
    emulator.script("gemini-2.0-flash", {"reply": {"text": "Hello from Gemini"}, "chunks": 3})
    turn = aggregate(await events(executor, generate("gemini-2.0-flash", [user("hi")],
                                                     stream=stream)))
    assert turn.error is None
    assert turn.choices[0].parts[0].text.text == "Hello from Gemini"
    assert turn.usage.output_tokens == 3
    sent = emulator.requests()[-1]
    op = ":streamGenerateContent" if stream else ":generateContent"
    assert sent["path"] == f"/v1beta/models/gemini-2.0-flash{op}"
    assert sent["query"] == ({"alt": "sse"} if stream else {})
    assert sent["headers"]["x-goog-api-key"] == KEY


async def test_a_tool_loop_on_gemini_3_sends_the_signatures_back(emulator, executor):
    tool = chat_pb2.Tool(name="get_weather", parameters_json='{"type":"object"}')
    emulator.script("gemini-3-pro-preview", {"reply": {"tool_calls": [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Tokyo"}}]}})
    first = aggregate(await events(executor, generate(
        "gemini-3-pro-preview", [user("Paris and Tokyo?")], tools=[tool])))
    assert first.choices[0].stop_reason == chat_pb2.STOP_REASON_TOOL_USE
    assistant = turn_message(first.choices[0])
    results = [chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[P(tool_result=chat_pb2.ToolResultPart(
        tool_call_id=p.tool_call.id, content=[P(text=chat_pb2.TextPart(text="sunny"))]))])
        for p in assistant.parts]
    second = aggregate(await events(executor, generate(
        "gemini-3-pro-preview", [user("Paris and Tokyo?"), assistant, *results], tools=[tool])))
    assert second.error is None, second.error
    assert second.choices[0].parts[0].text.text == "Echo: Paris and Tokyo?"
    sent = emulator.requests()[-1]["json"]["contents"][1]["parts"]
    assert sent[0]["thoughtSignature"] and "thoughtSignature" not in sent[1]

    # The same history with the signature lost is refused by the emulator, as Gemini 3 does.
    bare = chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, parts=[P(tool_call=chat_pb2.ToolCallPart(
        id=f"call_{i}", name="get_weather", arguments_json=p.tool_call.arguments_json))
        for i, p in enumerate(assistant.parts)])
    answers = [chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[P(tool_result=chat_pb2.ToolResultPart(
        tool_call_id=f"call_{i}", content=[P(text=chat_pb2.TextPart(text="x"))]))])
        for i in range(2)]
    refused = aggregate(await events(executor, generate(
        "gemini-3-pro-preview", [user("Paris and Tokyo?"), bare, *answers], tools=[tool])))
    assert refused.error is not None and refused.error.http_status == 400
    assert "thought_signature" in refused.error.message


async def test_rate_limit_retry_delay_is_honoured_then_succeeds(emulator, executor):
    emulator.script("gemini-2.0-flash", {"status": 429, "error": {"retry_delay": "0.05s"}},
                    {"reply": {"text": "after the wait"}})
    evs = await events(executor, generate("gemini-2.0-flash", [user("x")]))
    turn = aggregate(evs)
    assert turn.choices[0].parts[0].text.text == "after the wait"
    assert turn.start.attempts == 2
    assert [r["status"] for r in emulator.requests()] == [429, 200]


async def test_upstream_errors_keep_googles_message_and_never_the_key(emulator, executor):
    emulator.script("gemini-2.0-flash", {"status": 400, "error": {"message": f"bad key {KEY}"}})
    turn = aggregate(await events(executor, generate("gemini-2.0-flash", [user("x")])))
    assert turn.error is not None and turn.error.http_status == 400
    assert "bad key" in turn.error.message and KEY not in turn.error.message
    body = orjson.dumps(emulator.requests()[-1]["json"])
    assert b"generationConfig" not in body   # nothing asked for, nothing sent
