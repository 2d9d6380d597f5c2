"""The emulator's rules for what agent CLIs send (Codex, Claude Code), and the scripted step
that calls a tool the request offered."""
from __future__ import annotations

import json

import httpx
import pytest

from tests.emulator import Emulator
from tests.emulator.text import sign_omitted, sign_thinking, verify_thinking
from tests.unit.emulator_rules.requests import ANTHROPIC, openai_post
from tests.unit.emulator_rules.requests import anthropic_post as _anthropic_post

MID = {"anthropic-beta": "claude-code-20250219,mid-conversation-tool-changes-2026-07-01"}
PER_TURN = {"anthropic-beta": "mid-conversation-tool-changes-2026-07-01,"
                              "per-turn-control-2026-07-01"}
BASH = {"name": "Bash", "description": "run", "input_schema": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"],
    "additionalProperties": False}}
EXEC = {"type": "function", "function": {"name": "exec_command", "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}}


def anthropic_post(emu, headers=None, **body) -> httpx.Response:
    """Claude Code's requests carry large budgets."""
    return _anthropic_post(emu, headers, max_tokens=4000, **body)


# ---- a scripted call of a tool the request offered ---------------------------------------

def test_offered_call_takes_the_first_offered_name(emu):
    emu.script("gpt-4o", {"reply": {"tool_calls": [
        {"name": ["shell", "exec_command"], "arguments": {"cmd": "ls"}, "offered": True}]}})
    r = openai_post(emu, tools=[EXEC])
    call = r.json()["choices"][0]["message"]["tool_calls"][0]["function"]
    assert call["name"] == "exec_command" and json.loads(call["arguments"]) == {"cmd": "ls"}


def test_offered_call_of_a_tool_not_offered_says_so_instead(emu):
    emu.script("gpt-4o", {"reply": {"tool_calls": [
        {"name": "apply_patch", "arguments": {"input": "x"}, "offered": True}]}})
    msg = openai_post(emu, tools=[EXEC]).json()["choices"][0]["message"]
    assert not msg.get("tool_calls")
    assert "offered no such tool (offered: exec_command)" in msg["content"]


def test_offered_call_arguments_must_fit_the_schema(emu):
    emu.script("claude-x", {"reply": {"tool_calls": [
        {"name": "Bash", "arguments": {"cmd": "ls"}, "offered": True}]}})
    body = anthropic_post(emu, tools=[BASH]).json()
    assert [b["type"] for b in body["content"]] == ["text"]
    assert "do not fit its schema" in body["content"][0]["text"]


def test_deferred_tools_are_offered_once_a_system_turn_adds_them(emu):
    deferred = {**BASH, "defer_loading": True}
    step = {"reply": {"tool_calls": [{"name": "Bash", "arguments": {"command": "ls"},
                                      "offered": True}]}}
    emu.script("claude-x", step)
    body = anthropic_post(emu, MID, tools=[deferred]).json()
    assert "offered no such tool" in body["content"][0]["text"]
    emu.script("claude-x", step)
    added = [{"role": "user", "content": "hi"},
             {"role": "system", "content": [{"type": "tool_addition", "tool": {
                 "type": "tool_reference", "name": "Bash"}}]}]
    body = anthropic_post(emu, MID, tools=[deferred], messages=added).json()
    assert body["content"][0] == {"type": "tool_use", "id": body["content"][0]["id"],
                                  "name": "Bash", "input": {"command": "ls"}}


def test_a_list_of_names_needs_offered():
    with pytest.raises(ValueError, match="needs offered"):
        Emulator().state.script("m", [{"reply": {"tool_calls": [{"name": ["a", "b"]}]}}])


# ---- Claude Code's request features ------------------------------------------------------

def test_omitted_thinking_comes_back_empty_and_signed(emu):
    r = anthropic_post(emu, thinking={"type": "adaptive", "display": "omitted"})
    block = r.json()["content"][0]
    assert block["type"] == "thinking" and block["thinking"] == ""
    assert verify_thinking("", block["signature"])
    assert not verify_thinking("", sign_thinking("something else"))
    assert not verify_thinking("", "Eo" + "A" * 64)   # not one the emulator issued


def test_omitted_thinking_streams_only_a_signature(emu):
    with httpx.stream("POST", f"{emu.url}/v1/messages", headers=ANTHROPIC, json={
            "model": "claude-x", "max_tokens": 4000, "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 1024, "display": "omitted"},
            "messages": [{"role": "user", "content": "hi"}]}) as r:
        deltas = [json.loads(line[6:])["delta"] for line in r.iter_lines()
                  if line.startswith("data: ") and '"content_block_delta"' in line]
    kinds = [d["type"] for d in deltas]
    assert "thinking_delta" not in kinds and kinds[0] == "signature_delta"


def test_an_omitted_thinking_block_is_accepted_back_with_a_tool_result(emu):
    sig = sign_omitted("hidden reasoning")
    msgs = [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "", "signature": sig},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": "a.txt", "is_error": False,
                                          "cache_control": {"type": "ephemeral"}}]}]
    thinking = {"type": "enabled", "budget_tokens": 1024, "display": "omitted"}
    assert anthropic_post(emu, messages=msgs, tools=[BASH], thinking=thinking).status_code == 200
    msgs[1]["content"][0]["signature"] = sig[:-4] + "AAAA"
    r = anthropic_post(emu, messages=msgs, tools=[BASH], thinking=thinking)
    assert r.status_code == 400 and "Invalid `signature`" in r.json()["error"]["message"]


def test_a_system_turn_carries_its_effort_under_the_per_turn_beta(emu):
    msgs = [{"role": "user", "content": "hi"},
            {"role": "system", "content": "env", "output_config": {"effort": "medium"}}]
    r = anthropic_post(emu, MID, messages=msgs)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "messages.1.output_config: Extra inputs are not permitted"
    assert anthropic_post(emu, PER_TURN, messages=msgs).status_code == 200
    msgs[1]["output_config"] = {"effort": "huge"}
    assert anthropic_post(emu, PER_TURN, messages=msgs).status_code == 400
    msgs[1]["output_config"] = {"format": {"type": "json_schema", "schema": {}}}
    r = anthropic_post(emu, PER_TURN, messages=msgs)
    assert "messages.1.output_config.format" in r.json()["error"]["message"]


def test_output_config_on_a_user_turn_is_refused_even_with_the_beta(emu):
    msgs = [{"role": "user", "content": "hi", "output_config": {"effort": "low"}}]
    r = anthropic_post(emu, PER_TURN, messages=msgs)
    assert r.status_code == 400 and "messages.0.output_config" in r.json()["error"]["message"]


@pytest.mark.parametrize("cm, ok", [
    ({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}, True),
    ({"edits": [{"type": "clear_tool_uses_20250919"}]}, True),
    ({"edits": [{"type": "forget_everything"}]}, False),
    ({"edits": {}}, False),
    ({"strategy": "x"}, False),
])
def test_context_management_edits_are_checked(emu, cm, ok):
    r = anthropic_post(emu, context_management=cm,
                       thinking={"type": "adaptive", "display": "omitted"})
    assert (r.status_code == 200) == ok, r.text


# ---- what Codex's Responses requests must not leak into Chat Completions ------------------

@pytest.mark.parametrize("field, value", [
    ("include", ["reasoning.encrypted_content"]), ("text", {"verbosity": "low"}),
    ("client_metadata", {"a": "b"}), ("reasoning", {"effort": "low"}),
    ("max_output_tokens", 10), ("instructions", "be brief"),
])
def test_responses_only_fields_are_unrecognized_by_chat_completions(emu, field, value):
    r = openai_post(emu, **{field: value})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == f"Unrecognized request argument supplied: {field}"


@pytest.mark.parametrize("body, ok", [
    ({"verbosity": "low"}, True), ({"verbosity": "loud"}, False),
    ({"tools": [EXEC], "parallel_tool_calls": True}, True),
    ({"tools": [EXEC], "parallel_tool_calls": "yes"}, False),
    ({"store": False, "prompt_cache_key": "s-1"}, True), ({"store": "no"}, False),
])
def test_codex_chat_fields_are_checked(emu, body, ok):
    assert (openai_post(emu, **body).status_code == 200) == ok


def test_at_most_four_cache_breakpoints(emu):
    mark = {"cache_control": {"type": "ephemeral"}}
    system = [{"type": "text", "text": f"part {i}", **mark} for i in range(3)]
    msgs = [{"role": "user", "content": [{"type": "text", "text": "hi", **mark}]}]
    assert anthropic_post(emu, system=system, messages=msgs).status_code == 200
    r = anthropic_post(emu, system=system, messages=msgs, tools=[{**BASH, **mark}])
    assert r.status_code == 400
    assert r.json()["error"]["message"] == ("A maximum of 4 blocks with cache_control may be "
                                            "provided. Found 5.")
