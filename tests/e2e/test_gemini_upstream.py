"""OpenAI and Anthropic clients in a tool loop with a Gemini 3 model through the gateway: the
thought signatures Gemini put on its calls go back with them (the emulator, like Gemini 3,
answers a function-call turn without them with a 400)."""
import json

import pytest

from tests.e2e.clients import TOOL_SCHEMA

MODEL = "gemini-3-pro-preview"
CALLS = {"reply": {"text": "Checking.", "tool_calls": [
    {"name": "get_weather", "arguments": {"city": "Paris"}},
    {"name": "get_weather", "arguments": {"city": "Tokyo"}}]}}
OPENAI_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": TOOL_SCHEMA}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "input_schema": TOOL_SCHEMA}]


def last_model_turn(emu) -> list[dict]:
    body = [r for r in emu.requests() if r["api"] == "gemini"][-1]["json"]
    return [c for c in body["contents"] if c["role"] == "model"][-1]["parts"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_openai_client_tool_loop_keeps_the_signatures(openai_client, emu, stream):
    emu.script(MODEL, CALLS)
    question = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
    if stream:
        calls: dict[int, dict] = {}
        for chunk in openai_client.chat.completions.create(model=MODEL, messages=question,
                                                           tools=OPENAI_TOOLS, stream=True):
            for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                entry = calls.setdefault(tc.index, {"id": tc.id, "name": "", "arguments": ""})
                entry["name"] += tc.function.name or ""
                entry["arguments"] += tc.function.arguments or ""
        tool_calls = [calls[i] for i in sorted(calls)]
    else:
        msg = openai_client.chat.completions.create(model=MODEL, messages=question,
                                                    tools=OPENAI_TOOLS).choices[0].message
        tool_calls = [{"id": t.id, "name": t.function.name, "arguments": t.function.arguments}
                      for t in msg.tool_calls]
    assert [json.loads(t["arguments"]) for t in tool_calls] == [{"city": "Paris"},
                                                                {"city": "Tokyo"}]
    history = question + [{"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": t["id"], "type": "function",
         "function": {"name": t["name"], "arguments": t["arguments"]}} for t in tool_calls]}]
    history += [{"role": "tool", "tool_call_id": t["id"], "content": "sunny"} for t in tool_calls]
    done = openai_client.chat.completions.create(model=MODEL, messages=history, tools=OPENAI_TOOLS)
    assert done.choices[0].finish_reason == "stop"
    assert done.choices[0].message.content == "Echo: Weather in Paris and Tokyo?"
    parts = last_model_turn(emu)
    calls_sent = [p for p in parts if "functionCall" in p]
    assert calls_sent[0]["thoughtSignature"] and "thoughtSignature" not in calls_sent[1]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_anthropic_client_tool_loop_with_thinking_keeps_the_signatures(anthropic_client, emu,
                                                                       stream):
    emu.script(MODEL, {"reply": {**CALLS["reply"], "thinking": "Two cities: two calls."}})
    params = dict(model=MODEL, max_tokens=4096, tools=ANTHROPIC_TOOLS,
                  thinking={"type": "enabled", "budget_tokens": 2048},
                  messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}])
    if stream:
        with anthropic_client.messages.stream(**params) as s:
            first = s.get_final_message()
    else:
        first = anthropic_client.messages.create(**params)
    assert first.stop_reason == "tool_use"
    kinds = [b.type for b in first.content]
    assert kinds == ["thinking", "text", "tool_use", "tool_use"]
    assert first.content[0].thinking == "Two cities: two calls." and first.content[0].signature
    uses = [b for b in first.content if b.type == "tool_use"]
    params["messages"] = params["messages"] + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": b.id,
                                      "content": "sunny"} for b in uses]}]
    done = anthropic_client.messages.create(**params)
    assert done.stop_reason == "end_turn"
    assert [b.text for b in done.content if b.type == "text"] == \
        ["Echo: Weather in Paris and Tokyo?"]
    parts = last_model_turn(emu)
    assert parts[0]["thought"] is True and parts[0]["thoughtSignature"]
    calls_sent = [p for p in parts if "functionCall" in p]
    assert calls_sent[0]["thoughtSignature"]


def test_lost_signatures_are_refused_as_gemini_3_does(openai_client, emu):
    """The check is real: the same loop with ids the gateway did not mint (no signature) is
    the upstream's 400, passed to the client."""
    import openai
    history = [{"role": "user", "content": "Weather?"},
               {"role": "assistant", "content": None, "tool_calls": [{
                   "id": "call_made_up", "type": "function",
                   "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
               {"role": "tool", "tool_call_id": "call_made_up", "content": "sunny"}]
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model=MODEL, messages=history, tools=OPENAI_TOOLS)
    assert "thought_signature" in str(info.value)
