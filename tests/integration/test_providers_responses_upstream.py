"""The executor with the real OpenAI Responses codec against the emulator's strict Responses
API: store false, whole conversations, encrypted reasoning carried to the next turn."""
from __future__ import annotations

import pytest

from switchyard.common.canonical.aggregate import aggregate, turn_message
from switchyard.common.config.model import ProviderEntry
from switchyard.common.proto import chat_pb2, providers_pb2, router_pb2
from switchyard.providers.execution import Executor
from switchyard.providers.http import ClientPool, Timeouts
from switchyard.providers.retry import RetryPolicy
from tests.emulator.runner import Emulator

KEY = "sk-openai-responses-0001"
CODEX = "gpt-5-codex"
P = chat_pb2.ContentPart


@pytest.fixture(scope="module")
def emulator():
    with Emulator(openai_keys=[KEY]) as emu:
        yield emu


@pytest.fixture
def emu(emulator):
    emulator.reset()
    return emulator


@pytest.fixture
async def executor(emulator):
    # A wildcard openai/* entry configured for chat completions: Responses-only models it
    # answers go to /v1/responses (adapters.for_model).
    entry = ProviderEntry(name="openai/*", provider="openai", model="*", interface="openai",
                          endpoint=f"{emulator.openai_base_url}/chat/completions",
                          auth="bearer", access_key=KEY)
    pool = ClientPool(Timeouts(1.0, 5.0, 5.0))
    yield Executor({entry.name: entry}.get, pool, retry=RetryPolicy(base_s=0.01, cap_s=0.02))
    await pool.close()


def generate(model: str, messages: list[chat_pb2.Message], *, stream: bool = True,
             **fields) -> providers_pb2.GenerateRequest:
    plan = router_pb2.RoutePlan(name=model, max_retries=0, timeout_s=10.0, targets=[
        router_pb2.Target(provider="openai/*", model=model)])
    req = chat_pb2.ChatRequest(model=model, stream=stream, messages=messages,
                               source_format=chat_pb2.WIRE_FORMAT_ANTHROPIC, **fields)
    return providers_pb2.GenerateRequest(request=req, plan=plan, request_id="r-responses")


def user(t: str) -> chat_pb2.Message:
    return chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[P(text=chat_pb2.TextPart(text=t))])


async def events(ex: Executor, gen: providers_pb2.GenerateRequest) -> list[chat_pb2.StreamEvent]:
    return [e async for b in ex.generate(gen) for e in b.events]


@pytest.mark.parametrize("stream", [True, False])
async def test_a_responses_only_model_on_a_wildcard_entry_uses_v1_responses(emu, executor,
                                                                            stream):
    emu.script(CODEX, {"reply": {"text": "Hello from codex"}, "chunks": 2})
    turn = aggregate(await events(executor, generate(CODEX, [user("hi")], stream=stream)))
    assert turn.error is None, turn.error
    assert turn.choices[0].parts[0].text.text == "Hello from codex"
    sent = emu.requests()[-1]
    assert sent["path"] == "/v1/responses" and sent["status"] == 200
    assert sent["json"]["store"] is False and sent["json"]["stream"] is stream
    assert sent["json"]["input"] == [{"type": "message", "role": "user",
                                      "content": [{"type": "input_text", "text": "hi"}]}]


async def test_other_models_stay_on_chat_completions(emu, executor):
    turn = aggregate(await events(executor, generate("gpt-4o-mini", [user("hi")])))
    assert turn.error is None and emu.requests()[-1]["path"] == "/v1/chat/completions"


@pytest.mark.parametrize("stream", [True, False])
async def test_encrypted_reasoning_goes_back_on_the_next_turn(emu, executor, stream):
    tool = chat_pb2.Tool(name="get_weather", parameters_json='{"type":"object"}')
    emu.script(CODEX, {"reply": {"thinking": "Check the weather tool.", "tool_calls": [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]}})
    effort = chat_pb2.Reasoning(effort="high")
    first = aggregate(await events(executor, generate(CODEX, [user("Paris?")], tools=[tool],
                                                      reasoning=effort, stream=stream)))
    assert first.error is None, first.error
    choice = first.choices[0]
    assert choice.stop_reason == chat_pb2.STOP_REASON_TOOL_USE
    reasoning = choice.parts[0].reasoning
    assert reasoning.text == "Check the weather tool."   # the summary, asked for cross-format
    assert reasoning.signature.startswith("openai-encrypted:")
    body = emu.requests()[-1]["json"]
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assistant = turn_message(choice)
    result = chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[P(tool_result=chat_pb2.ToolResultPart(
        tool_call_id="call_1", content=[P(text=chat_pb2.TextPart(text="sunny"))]))])
    second = aggregate(await events(executor, generate(CODEX, [user("Paris?"), assistant, result],
                                                       tools=[tool], reasoning=effort,
                                                       stream=stream)))
    assert second.error is None, second.error
    items = emu.requests()[-1]["json"]["input"]
    assert [i["type"] for i in items] == ["message", "reasoning", "function_call",
                                          "function_call_output"]
    assert items[1]["encrypted_content"] == reasoning.signature.removeprefix("openai-encrypted:")
    assert items[3] == {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}


async def test_a_foreign_signature_is_not_sent_as_encrypted_content(emu, executor):
    assistant = chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, parts=[
        P(reasoning=chat_pb2.ReasoningPart(text="t", signature="EqAnthropicSignature")),
        P(text=chat_pb2.TextPart(text="earlier answer"))])
    turn = aggregate(await events(executor, generate(CODEX, [user("a"), assistant, user("b")])))
    assert turn.error is None, turn.error
    assert [i["type"] for i in emu.requests()[-1]["json"]["input"]] == ["message"] * 3


async def test_max_tokens_below_the_floor_is_raised_and_reported(emu, executor):
    evs = await events(executor, generate(CODEX, [user("one two")], max_tokens=3))
    assert evs[0].start.dropped_params == ["max_tokens"]
    assert emu.requests()[-1]["json"]["max_output_tokens"] == 16


async def test_a_truncated_answer_is_max_tokens(emu, executor):
    emu.script(CODEX, {"reply": {"text": " ".join(["word"] * 40)}})
    turn = aggregate(await events(executor, generate(CODEX, [user("go")], max_tokens=20)))
    assert turn.choices[0].stop_reason == chat_pb2.STOP_REASON_MAX_TOKENS


async def test_a_failed_response_mid_stream_is_an_error(emu, executor):
    emu.script(CODEX, {"reply": {"text": "a b c d e f"}, "error_event_after_chunks": 6,
                       "chunk_delay": 0.02, "error": {"message": "model crashed"}})
    evs = await events(executor, generate(CODEX, [user("x")]))
    assert any(e.HasField("delta") for e in evs)
    assert evs[-1].HasField("error") and evs[-1].error.message == "model crashed"
    assert evs[-1].error.http_status == 500


async def test_an_upstream_400_keeps_its_message(emu, executor):
    emu.script(CODEX, {"status": 400, "error": {"message": "input: bad thing", "param": "input"}})
    turn = aggregate(await events(executor, generate(CODEX, [user("x")])))
    assert (turn.error.http_status, turn.error.message) == (400, "input: bad thing")
