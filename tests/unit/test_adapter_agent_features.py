"""Upstream codecs and agent features: structured output on Anthropic (native or the forced
answer tool, unwrapped back into text), Anthropic output settings to OpenAI and Gemini,
mid-conversation system messages, thinking both ways, prompt_cache_key."""
from __future__ import annotations

import orjson
import pytest

from switchyard.common.canonical import mappings
from switchyard.common.canonical.aggregate import aggregate
from switchyard.common.config.model import ProviderEntry
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import anthropic_messages as am
from switchyard.edge.formats import openai_chat as ocf
from switchyard.edge.formats import openai_responses as orf
from switchyard.providers.adapters import anthropic as an
from switchyard.providers.adapters import gemini as gm
from switchyard.providers.adapters import openai_compat as oc
from switchyard.providers.adapters.anthropic_output import NotNative, fit_schema

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"},
                                           "n": {"type": "integer", "minimum": 1}},
          "required": ["city", "n"], "additionalProperties": False}
TOOL = mappings.STRUCTURED_OUTPUT_TOOL


def entry(interface: str, provider: str) -> ProviderEntry:
    return ProviderEntry(name=f"{provider}/m", provider=provider, model="m",
                         interface=interface, endpoint="https://up.test/x", auth="bearer",
                         access_key="k")


ANTHROPIC, OPENAI, GEMINI = (entry("anthropic", "anthropic"), entry("openai", "openai"),
                             entry("gemini", "gemini"))


def chat(**body) -> chat_pb2.ChatRequest:
    return ocf.decode_request({"model": "x", "messages": [{"role": "user", "content": "json"}],
                               **body})


def messages(**body) -> chat_pb2.ChatRequest:
    return am.decode_request({"model": "x", "max_tokens": 4000,
                              "messages": [{"role": "user", "content": "hi"}], **body})


FORMAT = {"type": "json_schema", "json_schema": {"name": "Place", "schema": SCHEMA}}


# ---- structured output to Anthropic ------------------------------------------------------
@pytest.mark.parametrize("model, native", [
    ("claude-sonnet-4-5-20250929", True), ("claude-opus-4-7", True), ("claude-haiku-4-5", True),
    ("claude-opus-4-1-20250805", False), ("claude-3-5-sonnet-20241022", False),
    ("claude-sonnet-4-20250514", False), ("kimi-k2", False)])
def test_the_family_rule(model, native):
    assert mappings.anthropic_native_structured_output(model) is native


def test_native_structured_output_fits_the_schema():
    body, dropped = an.encode_body(chat(response_format=FORMAT), ANTHROPIC, "claude-sonnet-4-5")
    fmt = body["output_config"]["format"]
    assert fmt["type"] == "json_schema" and dropped == []
    n = fmt["schema"]["properties"]["n"]
    assert n == {"type": "integer", "description": "{minimum: 1}"}   # moved, not enforced
    assert "tools" not in body and "tool_choice" not in body


def test_older_claude_gets_the_forced_answer_tool_and_no_thinking():
    req = chat(response_format=FORMAT, thinking={"type": "enabled", "budget_tokens": 1024},
               max_tokens=3000)
    body, dropped = an.encode_body(req, ANTHROPIC, "claude-3-5-sonnet-20241022")
    assert body["tools"] == [{"name": TOOL, "description": body["tools"][0]["description"],
                              "input_schema": SCHEMA}]
    assert body["tool_choice"] == {"type": "tool", "name": TOOL}
    assert "thinking" not in body and dropped == ["thinking"]
    assert "output_config" not in body


def test_forced_answer_tool_beside_the_clients_tools_lets_it_call_them():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body, _ = an.encode_body(chat(response_format=FORMAT, tools=tools), ANTHROPIC, "claude-3-5")
    assert [t["name"] for t in body["tools"]] == ["f", TOOL]
    assert body["tool_choice"] == {"type": "any"}


def test_json_object_and_open_objects_use_the_tool():
    body, _ = an.encode_body(chat(response_format={"type": "json_object"}), ANTHROPIC,
                             "claude-sonnet-4-5")
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    open_schema = {"type": "object", "additionalProperties": {"type": "string"}}
    body, _ = an.encode_body(chat(response_format={"type": "json_schema", "json_schema": {
        "name": "m", "schema": open_schema}}), ANTHROPIC, "claude-sonnet-4-5")
    assert body["tools"][0]["input_schema"] == open_schema
    with pytest.raises(NotNative):
        fit_schema(open_schema)


def test_a_non_object_schema_without_native_support_is_dropped_and_reported():
    body, dropped = an.encode_body(chat(response_format={"type": "json_schema", "json_schema": {
        "name": "m", "schema": {"type": "array", "items": {"type": "string"}}}}), ANTHROPIC,
        "claude-3-5-haiku")
    assert dropped == ["response_format"] and "tools" not in body


def test_fit_schema_closes_objects_and_keeps_refs():
    got = fit_schema({"$defs": {"P": {"type": "object", "properties": {
        "x": {"type": "string", "format": "email", "maxLength": 5}}}},
        "type": "object", "properties": {"p": {"$ref": "#/$defs/P"}}})
    assert got["additionalProperties"] is False
    assert got["$defs"]["P"]["additionalProperties"] is False
    assert got["$defs"]["P"]["properties"]["x"] == {"type": "string", "format": "email",
                                                    "description": "{maxLength: 5}"}
    assert got["properties"]["p"] == {"$ref": "#/$defs/P"}


ANSWER_STREAM = [
    {"type": "message_start", "message": {"id": "m", "model": "claude-3-5-sonnet-20241022",
                                          "usage": {"input_tokens": 3}}},
    {"type": "content_block_start", "index": 0, "content_block": {
        "type": "tool_use", "id": "t", "name": TOOL, "input": {}}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta",
                                                          "partial_json": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta",
                                                          "partial_json": '{"city": "Pa'}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta",
                                                          "partial_json": 'ris", "n": 2}'}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
     "usage": {"output_tokens": 5}},
    {"type": "message_stop"}]


def test_the_answer_tool_streams_back_as_text_deltas():
    dec = an.StreamDecoder()
    events = [e for f in ANSWER_STREAM for e in dec.feed(orjson.dumps(f))] + dec.finish()
    texts = [e.delta.text for e in events if e.HasField("delta")]
    assert texts == ['{"city": "Pa', 'ris", "n": 2}']
    choice = aggregate(events).choices[0]
    assert [p.WhichOneof("kind") for p in choice.parts] == ["text"]
    assert choice.stop_reason == chat_pb2.STOP_REASON_END_TURN


def test_the_answer_tool_in_a_whole_reply_is_the_text():
    events = an.decode_response({
        "id": "m", "type": "message", "role": "assistant", "model": "claude-3-5",
        "content": [{"type": "tool_use", "id": "t", "name": TOOL, "input": {"city": "Oslo"}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}})
    choice = aggregate(events).choices[0]
    assert orjson.loads(choice.parts[0].text.text) == {"city": "Oslo"}
    assert choice.stop_reason == chat_pb2.STOP_REASON_END_TURN


# ---- Anthropic output settings elsewhere ------------------------------------------------
def test_output_config_to_openai_and_gemini():
    req = messages(output_config={"format": {"type": "json_schema", "schema": SCHEMA},
                                  "effort": "low"})
    body, dropped = oc.encode_body(req, OPENAI, "o4-mini")
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": SCHEMA}}
    assert body["reasoning_effort"] == "low" and dropped == []   # translated, not dropped
    g, dropped = gm.encode_body(req, GEMINI, "gemini-2.5-flash")
    assert g["generationConfig"]["responseMimeType"] == "application/json"
    assert g["generationConfig"]["responseJsonSchema"] == SCHEMA and dropped == []


def test_same_format_anthropic_keeps_the_clients_own_output_and_thinking():
    req = messages(output_config={"format": {"type": "json_schema", "schema": SCHEMA},
                                  "effort": "high"},
                   thinking={"type": "adaptive", "display": "omitted"})
    body, dropped = an.encode_body(req, ANTHROPIC, "claude-3-5-sonnet")
    assert body["output_config"] == req_extra(req)["output_config"]
    assert body["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert "tools" not in body and dropped == []


def req_extra(req: chat_pb2.ChatRequest) -> dict:
    return orjson.loads(req.extra_json)


def test_adaptive_thinking_leaves_openai_its_default_effort():
    body, dropped = oc.encode_body(messages(thinking={"type": "adaptive"}), OPENAI, "o3")
    assert "reasoning_effort" not in body and dropped == []


# ---- system messages in place ------------------------------------------------------------
CONVO = [{"role": "user", "content": "a"}, {"role": "system", "content": "new rule"},
         {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]


def test_mid_conversation_system_message_stays_in_place_on_anthropic():
    req = am.decode_request({"model": "x", "max_tokens": 10, "system": "top",
                             "messages": CONVO})
    body, _ = an.encode_body(req, ANTHROPIC, "claude-x")
    assert body["system"] == "top"
    assert [m["role"] for m in body["messages"]] == ["user", "system", "assistant", "user"]
    assert body["messages"][1]["content"] == "new rule"


def test_mid_conversation_system_message_on_openai_and_gemini():
    req = am.decode_request({"model": "x", "max_tokens": 10, "messages": CONVO})
    body, _ = oc.encode_body(req, OPENAI, "gpt-4o")
    assert [m["role"] for m in body["messages"]] == ["user", "system", "assistant", "user"]
    g, _ = gm.encode_body(req, GEMINI, "gemini-2.5-flash")
    assert g["systemInstruction"] == {"parts": [{"text": "new rule"}]}   # merged, in order
    assert [c["role"] for c in g["contents"]] == ["user", "model", "user"]


def test_other_formats_system_messages_are_hoisted_for_anthropic():
    req = ocf.decode_request({"model": "x", "messages": [
        {"role": "user", "content": "a"}, {"role": "system", "content": "late"}]})
    body, _ = an.encode_body(req, ANTHROPIC, "claude-x")
    assert body["system"] == [{"type": "text", "text": "late"}]
    assert [m["role"] for m in body["messages"]] == ["user"]


# ---- thinking and prompt_cache_key from OpenAI clients ----------------------------------
def test_openai_clients_thinking_reaches_anthropic():
    req = chat(thinking={"type": "enabled", "budget_tokens": 2048}, max_tokens=5000)
    body, dropped = an.encode_body(req, ANTHROPIC, "claude-sonnet-4-5")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "thinking" not in dropped


def test_same_format_chat_thinking_is_passed_as_sent_without_an_effort():
    req = chat(thinking={"type": "enabled", "budget_tokens": 2048})
    body, _ = oc.encode_body(req, entry("openai", "vllm"), "qwen3")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "reasoning_effort" not in body


@pytest.mark.parametrize("e, sent", [(OPENAI, True), (entry("openai", "azure_openai"), True),
                                      (entry("openai", "groq"), False), (ANTHROPIC, False),
                                      (GEMINI, False)])
def test_prompt_cache_key_goes_to_openai_only(e, sent):
    req, _ = orf.decode_request({"model": "x", "input": "hi", "prompt_cache_key": "k"})
    codec = {"openai": oc, "anthropic": an, "gemini": gm}[e.interface]
    body, dropped = codec.encode_body(req, e, "m")
    assert (body.get("prompt_cache_key") == "k") is sent
    assert ("prompt_cache_key" in dropped) is not sent
