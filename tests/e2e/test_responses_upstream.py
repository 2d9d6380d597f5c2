"""OpenAI Responses clients (openai SDK) on Responses-only OpenAI models and on Bedrock.

Same format (Responses client -> Responses upstream): what the canonical model does not
name (`text.verbosity`, hosted tools) reaches OpenAI as sent, and encrypted reasoning goes
back to OpenAI intact on the next turn — replayed by the client (`store: false`) or from
the gateway's own history (`previous_response_id`); the emulator refuses content it did not
encrypt. Cross format (Responses client -> Claude on Bedrock): text, tools and signed
reasoning across a tool loop."""
from __future__ import annotations

import json

import pytest

from tests.e2e.clients import TOOL_SCHEMA
from tests.e2e.harness import BEDROCK_CLAUDE

CODEX = "gpt-5-codex"
STRICT_SCHEMA = {**TOOL_SCHEMA, "additionalProperties": False}
TOOL = {"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": STRICT_SCHEMA}


def upstream_body(emu, api: str) -> dict:
    return [r for r in emu.requests() if r["api"] == api][-1]["json"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_same_format_fields_reach_openai_as_sent(openai_client, emu, stream):
    params = dict(model=CODEX, input="Say hi", text={"verbosity": "low"},
                  reasoning={"effort": "low"}, tools=[TOOL, {"type": "web_search"}],
                  store=False)
    if stream:
        with openai_client.responses.stream(**params) as s:
            final = s.get_final_response()
    else:
        final = openai_client.responses.create(**params)
    assert final.output_text == "Echo: Say hi"
    body = upstream_body(emu, "responses")
    assert body["store"] is False and body["text"] == {"verbosity": "low"}
    assert body["reasoning"] == {"effort": "low"}   # no summary added on a same-format route
    assert body["tools"][0] == {"type": "function", "name": "get_weather",
                                "description": "Weather", "parameters": STRICT_SCHEMA}
    assert {"type": "web_search"} in body["tools"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_replayed_reasoning_items_go_back_encrypted(openai_client, emu, stream):
    emu.script(CODEX, {"reply": {"thinking": "Call the tool.", "tool_calls": [
        {"id": "call_9", "name": "get_weather", "arguments": {"city": "Rome"}}]}})
    params = dict(model=CODEX, input=[{"role": "user", "content": "Rome?"}], tools=[TOOL],
                  reasoning={"effort": "medium", "summary": "auto"}, store=False)
    if stream:
        with openai_client.responses.stream(**params) as s:
            first = s.get_final_response()
    else:
        first = openai_client.responses.create(**params)
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "function_call"]
    reasoning, call = first.output
    issued = upstream_body(emu, "responses")
    assert issued["include"] == ["reasoning.encrypted_content"]
    assert reasoning.encrypted_content   # opaque to the client, sent back as it came
    replay = params["input"] + [item.model_dump(exclude_none=True) for item in first.output]
    replay.append({"type": "function_call_output", "call_id": call.call_id, "output": "warm"})
    second = openai_client.responses.create(**{**params, "input": replay})
    assert second.status == "completed"
    items = upstream_body(emu, "responses")["input"]
    assert [i["type"] for i in items] == ["message", "reasoning", "function_call",
                                          "function_call_output"]
    assert items[1]["encrypted_content"].startswith("gAAAAA")   # OpenAI's own blob, unmarked
    assert reasoning.encrypted_content.endswith(items[1]["encrypted_content"])


def test_the_gateways_history_carries_reasoning_to_the_next_turn(openai_client, emu):
    emu.script(CODEX, {"reply": {"thinking": "Think first.", "text": "First answer."}})
    first = openai_client.responses.create(model=CODEX, input="Question one",
                                           reasoning={"effort": "high"})
    assert first.output_text == "First answer."
    second = openai_client.responses.create(model=CODEX, input="Question two",
                                            previous_response_id=first.id)
    assert second.output_text == "Echo: Question two"
    items = upstream_body(emu, "responses")["input"]
    assert [i["type"] for i in items] == ["message", "reasoning", "message", "message"]
    assert items[1]["encrypted_content"].startswith("gAAAAA")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_responses_clients_call_claude_on_bedrock_with_tools(openai_client, emu, stream):
    emu.script(BEDROCK_CLAUDE, {"reply": {"text": "Looking.", "tool_calls": [
        {"id": "tooluse_r1", "name": "get_weather", "arguments": {"city": "Lima"}}]}})
    params = dict(model="bedrock-claude", input="Lima weather?", tools=[TOOL], store=False)
    if stream:
        with openai_client.responses.stream(**params) as s:
            first = s.get_final_response()
    else:
        first = openai_client.responses.create(**params)
    calls = [i for i in first.output if i.type == "function_call"]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("tooluse_r1", "get_weather", {"city": "Lima"})]
    replay = [{"role": "user", "content": "Lima weather?"},
              *[i.model_dump(exclude_none=True) for i in first.output],
              {"type": "function_call_output", "call_id": "tooluse_r1", "output": "cool"}]
    done = openai_client.responses.create(model="bedrock-claude", input=replay, tools=[TOOL],
                                          store=False)
    assert done.output_text == "Echo: Lima weather?"
    messages = upstream_body(emu, "bedrock")["messages"]
    assert messages[-1] == {"role": "user", "content": [{"toolResult": {
        "toolUseId": "tooluse_r1", "content": [{"text": "cool"}]}}]}


def test_claude_reasoning_on_bedrock_round_trips_through_a_responses_client(openai_client,
                                                                           emu):
    emu.script(BEDROCK_CLAUDE, {"reply": {"thinking": "Ponder.", "tool_calls": [
        {"id": "tooluse_r2", "name": "get_weather", "arguments": {"city": "Kyiv"}}]}})
    params = dict(model="bedrock-claude", tools=[TOOL], store=False,
                  reasoning={"effort": "low"}, max_output_tokens=4096)
    first = openai_client.responses.create(input="Kyiv?", **params)
    assert [i.type for i in first.output] == ["reasoning", "function_call"]
    replay = [{"role": "user", "content": "Kyiv?"},
              *[i.model_dump(exclude_none=True) for i in first.output],
              {"type": "function_call_output", "call_id": "tooluse_r2", "output": "snow"}]
    done = openai_client.responses.create(input=replay, **params)
    assert done.status == "completed"
    body = upstream_body(emu, "bedrock")   # the emulator verified the signature
    assert "reasoningText" in body["messages"][1]["content"][0]["reasoningContent"]
