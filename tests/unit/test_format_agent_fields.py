"""What agent clients send, decoded: Claude Code's fields on /v1/messages, OpenAI clients'
structured output, `thinking` and prompt_cache_key on /v1/chat/completions, no `model`."""
from __future__ import annotations

import orjson
import pytest

from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import anthropic_messages as am
from switchyard.edge.formats import openai_chat as oc

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}
# The shape of Claude Code's first request on a model it does not know.
CLAUDE_CODE = {
    "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": True,
    "system": [{"type": "text", "text": "You are Claude Code."},
               {"type": "text", "text": "Rules", "cache_control": {"type": "ephemeral"}},
               {"type": "text", "text": "Env", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "list files"}]},
        {"role": "system", "content": "Tools changed: Bash is available."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                           "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "is_error": True, "content": "denied",
                                      "cache_control": {"type": "ephemeral"}}]}],
    "tools": [{"name": "Bash", "description": "Run", "input_schema": {"type": "object"},
               "defer_loading": False},
              {"name": "Later", "description": "Deferred", "input_schema": {"type": "object"},
               "defer_loading": True}],
    "metadata": {"user_id": orjson.dumps({"device_id": "d", "session_id": "s"}).decode()},
    "thinking": {"type": "adaptive", "display": "omitted"},
    "output_config": {"effort": "max"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
}


def test_claude_code_request_decodes():
    req = am.decode_request(CLAUDE_CODE)
    roles = [m.role for m in req.messages]
    assert roles == [chat_pb2.ROLE_SYSTEM] * 3 + [
        chat_pb2.ROLE_USER, chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_USER]
    assert req.messages[4].parts[0].text.text == "Tools changed: Bash is available."
    result = req.messages[6].parts[0].tool_result
    assert result.is_error and orjson.loads(req.messages[6].parts[0].extra_json) == {
        "cache_control": {"type": "ephemeral"}}
    assert req.reasoning.enabled and req.reasoning.effort == "xhigh"   # max -> xhigh
    assert req.user.startswith("{")
    extra = orjson.loads(req.extra_json)
    assert extra["thinking"] == CLAUDE_CODE["thinking"]
    assert extra["output_config"] == {"effort": "max"}
    assert "context_management" in extra
    assert orjson.loads(req.tools[1].extra_json) == {"defer_loading": True}


@pytest.mark.parametrize("field, value", [
    ("output_config", {"format": {"type": "json_schema", "schema": SCHEMA}}),
    ("output_format", {"type": "json_schema", "schema": SCHEMA}),
])
def test_anthropic_structured_output_is_canonical(field, value):
    req = am.decode_request({"model": "m", "max_tokens": 10, field: value,
                             "messages": [{"role": "user", "content": "x"}]})
    assert orjson.loads(req.response_format_json) == {
        "type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}
    assert orjson.loads(req.extra_json) == {field: value}   # same-format routes send it as is


def test_no_model_is_the_default_route_on_both_formats():
    assert am.decode_request({"max_tokens": 5, "messages": [
        {"role": "user", "content": "x"}]}).model == ""
    assert oc.decode_request({"messages": [{"role": "user", "content": "x"}]}).model == ""


@pytest.mark.parametrize("fmt", [
    {"type": "json_object"},
    {"type": "json_schema", "json_schema": {"name": "Place", "schema": SCHEMA, "strict": True}},
    {"type": "text"},
])
def test_chat_response_format_is_canonical(fmt):
    req = oc.decode_request({"model": "m", "messages": [{"role": "user", "content": "json"}],
                             "response_format": fmt})
    assert orjson.loads(req.response_format_json) == fmt and not req.extra_json


def test_chat_thinking_and_prompt_cache_key():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "prompt_cache_key": "k"}
    req = oc.decode_request(body)
    assert req.reasoning.enabled and req.reasoning.budget_tokens == 1024
    assert req.prompt_cache_key == "k"
    assert orjson.loads(req.extra_json) == {"thinking": body["thinking"]}


def test_system_messages_in_messages_hold_text_only():
    with pytest.raises(GatewayError) as info:
        am.decode_request({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "x"},
            {"role": "system", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]})
    assert info.value.param == "messages.1.content.0.type"
