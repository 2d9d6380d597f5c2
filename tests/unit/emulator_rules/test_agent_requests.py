"""The emulator's structured-output and agent-request rules: strict as the real APIs, and
scripted JSON answers in whatever form the request asked for."""
from __future__ import annotations

import json

import pytest

from tests.emulator.plan import NOT_ASKED
from tests.unit.emulator_rules.requests import anthropic_post, openai_post

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}
ANSWER = {"city": "Paris"}




@pytest.mark.parametrize("fmt, words", [
    ({"type": "xml"}, "Supported values"),
    ({"type": "json_schema"}, "response_format.json_schema"),
    ({"type": "json_schema", "json_schema": {"schema": SCHEMA}}, "name"),
    ({"type": "json_schema", "json_schema": {"name": "a b", "schema": SCHEMA}}, "pattern"),
    ({"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "x": 1}},
     "Unrecognized"),
    ({"type": "json_object"}, "must contain the word 'json'"),
])
def test_openai_response_format_is_checked(emu, fmt, words):
    r = openai_post(emu, response_format=fmt)
    assert r.status_code == 400 and words in r.json()["error"]["message"]


def test_openai_scripted_json_is_the_content(emu):
    emu.script("gpt-4o", {"reply": {"json": ANSWER}})
    r = openai_post(emu, response_format={"type": "json_schema", "json_schema": {
        "name": "p", "schema": SCHEMA}})
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == ANSWER


def test_openai_answers_json_as_the_forced_function(emu):
    emu.script("gpt-4o", {"reply": {"json": ANSWER}})
    r = openai_post(emu, tools=[{"type": "function", "function": {"name": "out",
                                                                "parameters": SCHEMA}}],
                    tool_choice={"type": "function", "function": {"name": "out"}})
    (call,) = r.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "out" and json.loads(call["function"]["arguments"]) == ANSWER
    assert r.json()["choices"][0]["finish_reason"] == "stop"   # OpenAI's, for a named choice


def test_a_required_tool_choice_with_one_tool_forces_it(emu):
    """OpenAI `required` / Anthropic `any` with one tool: the model must call that one (the
    AI SDK's Anthropic provider asks for JSON this way)."""
    tool = {"type": "function", "function": {"name": "json", "parameters": SCHEMA}}
    emu.script("gpt-4o", {"reply": {"json": ANSWER}}, {"reply": {"json": ANSWER}})
    r = openai_post(emu, tools=[tool], tool_choice="required")
    (call,) = r.json()["choices"][0]["message"]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == ANSWER
    assert r.json()["choices"][0]["finish_reason"] == "tool_calls"
    two = openai_post(emu, tools=[tool, {**tool, "function": {**tool["function"],
                                                              "name": "other"}}],
                      tool_choice="required")
    assert two.json()["choices"][0]["message"]["content"] == NOT_ASKED   # which one: unsaid
    emu.script("claude-x", {"reply": {"json": ANSWER}})
    r = anthropic_post(emu, tools=[{"name": "json", "input_schema": SCHEMA}],
                       tool_choice={"type": "any"})
    assert r.json()["content"][0]["input"] == ANSWER


def test_scripted_json_needs_a_request_that_asked_for_it(emu):
    emu.script("gpt-4o", {"reply": {"json": ANSWER}})
    assert openai_post(emu).json()["choices"][0]["message"]["content"] == NOT_ASKED


def test_scripted_json_must_match_the_requested_schema(emu):
    emu.script("gpt-4o", {"reply": {"json": {"town": 1}}})
    r = openai_post(emu, response_format={"type": "json_schema", "json_schema": {
        "name": "p", "schema": SCHEMA}})
    assert "does not match the requested schema" in r.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("config, words", [
    ({"format": {"type": "json"}}, "json_schema"),
    ({"format": {"type": "json_schema"}}, "schema: Field required"),
    ({"format": {"type": "json_schema", "schema": {"type": "object"}}}, "additionalProperties"),
    ({"format": {"type": "json_schema", "schema": {**SCHEMA, "properties": {
        "n": {"type": "integer", "minimum": 1}}}}}, "minimum"),
    ({"format": {"type": "json_schema", "schema": SCHEMA, "name": "x"}}, "Extra inputs"),
    ({"effort": "extreme"}, "output_config.effort"),
    ({"budget": 1}, "Extra inputs"),
])
def test_anthropic_output_config_is_checked(emu, config, words):
    r = anthropic_post(emu, output_config=config)
    assert r.status_code == 400 and words in r.json()["error"]["message"]


def test_anthropic_answers_json_as_text_or_as_the_forced_tool(emu):
    emu.script("claude-x", {"reply": {"json": ANSWER}}, {"reply": {"json": ANSWER}})
    r = anthropic_post(emu, output_config={"format": {"type": "json_schema", "schema": SCHEMA}})
    assert json.loads(r.json()["content"][0]["text"]) == ANSWER
    r = anthropic_post(emu, tools=[{"name": "out", "input_schema": SCHEMA}],
                       tool_choice={"type": "tool", "name": "out"})
    block = r.json()["content"][0]
    assert block["type"] == "tool_use" and block["name"] == "out" and block["input"] == ANSWER
    assert r.json()["stop_reason"] == "tool_use"


def test_system_turns_need_the_mid_conversation_beta(emu):
    msgs = [{"role": "user", "content": "hi"}, {"role": "system", "content": "new tools"}]
    r = anthropic_post(emu, messages=msgs)
    assert r.status_code == 400 and "'user' or 'assistant'" in r.json()["error"]["message"]
    beta = {"anthropic-beta": "claude-code-20250219,mid-conversation-tool-changes-2026-07-01"}
    assert anthropic_post(emu, beta, messages=msgs).status_code == 200


def test_thinking_with_a_forced_tool_is_refused(emu):
    r = anthropic_post(emu, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024},
                       tools=[{"name": "out", "input_schema": SCHEMA}],
                       tool_choice={"type": "tool", "name": "out"})
    assert r.status_code == 400 and "forces tool use" in r.json()["error"]["message"]


def test_claude_code_thinking_shape_is_accepted(emu):
    r = anthropic_post(emu, thinking={"type": "adaptive", "display": "omitted"},
                       output_config={"effort": "high"},
                       context_management={"edits": []})
    assert r.status_code == 200
    r = anthropic_post(emu, thinking={"type": "adaptive", "display": "hidden"})
    assert r.status_code == 400
