"""What agent clients send, through `switchyard up` and the strict emulator, with the real
openai and anthropic SDKs: structured output on every route, Codex's Responses tools
(namespace, custom, tool_search, hosted) and their round trips, Claude Code's request on an
OpenAI and an Anthropic route, the default model, upstream model names, the WebSocket 426."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from pydantic import BaseModel
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.test_launcher import cmdline, maps_file
from tests.emulator.text import sign_thinking

OLD_CLAUDE = "claude-3-5-sonnet-20241022"     # structured output through the forced tool
NEW_CLAUDE = "claude-sonnet-4-5-20250929"     # structured output natively (output_config)
GPT = "gpt-4o-mini"
GEMINI = "gemini-2.5-flash"
ROUTES = [GPT, OLD_CLAUDE, NEW_CLAUDE, GEMINI]
PATHS = {GPT: "/chat/completions", OLD_CLAUDE: "/messages", NEW_CLAUDE: "/messages",
         GEMINI: "generatecontent"}   # :generateContent or :streamGenerateContent
ANSWER = {"city": "Paris", "population": 2100000}
STRUCTURED_TOOL = "switchyard_structured_output"


class Place(BaseModel):
    city: str
    population: int


def upstream(emu, model: str) -> dict:
    """The last request the emulator got for `model`."""
    seen = [r for r in emu.requests() if PATHS[model] in r["path"].lower() and r["model"] == model]
    assert seen, f"the upstream saw no {model} request: {[r['path'] for r in emu.requests()]}"
    return seen[-1]


def assert_schema_reached(emu, model: str) -> None:
    """The upstream got the schema the way it takes one."""
    body = upstream(emu, model)["json"]
    if model == GPT:
        assert body["response_format"]["type"] == "json_schema"
        assert set(body["response_format"]["json_schema"]["schema"]["properties"]) == set(ANSWER)
    elif model == GEMINI:
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert set(config["responseJsonSchema"]["properties"]) == set(ANSWER)
    elif model == NEW_CLAUDE:
        schema = body["output_config"]["format"]["schema"]
        assert set(schema["properties"]) == set(ANSWER) and "tools" not in body
    else:
        assert body["tool_choice"] == {"type": "tool", "name": STRUCTURED_TOOL}
        assert set(body["tools"][0]["input_schema"]["properties"]) == set(ANSWER)


# ---- structured output -------------------------------------------------------------------
@pytest.mark.parametrize("model", ROUTES)
def test_chat_completions_parse(openai_client, emu, model):
    emu.script(model, {"reply": {"json": ANSWER}})
    done = openai_client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "Where is the Louvre?"}],
        response_format=Place)
    assert done.choices[0].message.parsed == Place(**ANSWER)
    assert done.choices[0].finish_reason == "stop"
    assert_schema_reached(emu, model)


@pytest.mark.parametrize("model", [GPT, OLD_CLAUDE])
def test_chat_completions_parse_streamed(openai_client, emu, model):
    emu.script(model, {"reply": {"json": ANSWER}})
    with openai_client.chat.completions.stream(
            model=model, messages=[{"role": "user", "content": "Where?"}],
            response_format=Place) as stream:
        deltas = [e for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Place(**ANSWER)
    assert len(deltas) > 1   # the answer tool's input arrives as text deltas


@pytest.mark.parametrize("model", ROUTES)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_responses_parse(openai_client, emu, model, stream):
    emu.script(model, {"reply": {"json": ANSWER}})
    if stream:
        with openai_client.responses.stream(model=model, input="Where is the Louvre?",
                                            text_format=Place) as s:
            for _ in s:
                pass
            resp = s.get_final_response()
    else:
        resp = openai_client.responses.parse(model=model, input="Where is the Louvre?",
                                             text_format=Place)
    assert resp.output_parsed == Place(**ANSWER)
    assert resp.text.format.type == "json_schema"   # what was applied is what is echoed
    assert_schema_reached(emu, model)


@pytest.mark.parametrize("model", [GPT, "gemini-2.5-flash"])
def test_anthropic_output_format_on_other_routes(anthropic_client, emu, model):
    emu.script(model, {"reply": {"json": ANSWER}})
    msg = anthropic_client.messages.parse(
        model=model, max_tokens=200, output_format=Place,
        messages=[{"role": "user", "content": "Where is the Louvre?"}])
    assert msg.parsed_output == Place(**ANSWER)
    body = upstream(emu, model)["json"]
    if model == GPT:
        assert body["response_format"]["json_schema"]["schema"]["required"] == ["city",
                                                                                "population"]
    else:
        assert body["generationConfig"]["responseMimeType"] == "application/json"


# ---- Codex: Responses tools --------------------------------------------------------------
NAMESPACE = {"type": "namespace", "name": "crm", "description": "Customer records", "tools": [
    {"type": "function", "name": "lookup", "description": "Find a customer",
     "parameters": {"type": "object", "properties": {"id": {"type": "string"}},
                    "required": ["id"], "additionalProperties": False}, "strict": False}]}
APPLY_PATCH = {"type": "custom", "name": "apply_patch", "description": "Edit files",
               "format": {"type": "grammar", "syntax": "lark",
                          "definition": "start: begin_patch hunk+ end_patch"}}
CODEX_TOOLS = [
    {"type": "function", "name": "shell", "description": "Run a command",
     "parameters": {"type": "object", "properties": {"command": {
         "type": "array", "items": {"type": "string"}}}, "required": ["command"]}},
    NAMESPACE, APPLY_PATCH,
    {"type": "tool_search", "execution": "client", "description": "Find more tools",
     "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}},
    {"type": "web_search"}]
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+Hello \"world\"\n*** End Patch\n"


def codex_body(model: str, items: list[dict], **kw) -> dict:
    """Codex's request: streamed, store false, developer instructions as an input item."""
    return {"model": model, "stream": True, "store": False, "tools": CODEX_TOOLS,
            "tool_choice": "auto", "parallel_tool_calls": False,
            "reasoning": {"effort": "medium", "summary": "auto"},
            "include": ["reasoning.encrypted_content"], "text": {"verbosity": "low"},
            "prompt_cache_key": "thread-1", "client_metadata": {"originator": "codex_exec"},
            "input": [{"type": "message", "id": "msg_dev", "role": "developer",
                       "content": [{"type": "input_text", "text": "You are Codex."}]},
                      *items], **kw}


def sse_events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


@pytest.mark.parametrize("model", [GPT, OLD_CLAUDE])
def test_codex_first_request_is_served(gateway, emu, model):
    r = httpx.post(f"{gateway.url}/v1/responses", timeout=30, headers={
        "authorization": "Bearer test-key"}, json=codex_body(model, [
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "say hi"}]}]))
    assert r.status_code == 200, r.text
    events = sse_events(r.text)
    assert events[-1]["type"] == "response.completed"
    dropped = r.headers["x-switchyard-dropped-params"].split(",")
    assert "tools[web_search]" in dropped
    body = upstream(emu, model)["json"]
    names = sorted(t["function"]["name"] if "function" in t else t["name"]
                   for t in body["tools"])
    assert names == ["apply_patch", "crm__lookup", "shell", "tool_search"]
    if model == GPT:
        assert body["prompt_cache_key"] == "thread-1"
        assert body["messages"][0] == {"role": "developer", "content": "You are Codex."}
    else:
        assert "prompt_cache_key" in dropped
        assert body["system"] == [{"type": "text", "text": "You are Codex."}]


def tool_calls_step() -> dict:
    return {"reply": {"tool_calls": [
        {"id": "call_ns", "name": "crm__lookup", "arguments": {"id": "42"}},
        {"id": "call_patch", "name": "apply_patch", "arguments": {"input": PATCH}}]}}


@pytest.mark.parametrize("model", [GPT, OLD_CLAUDE])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_namespace_and_custom_tool_round_trip(openai_client, emu, model, stream):
    emu.script(model, tool_calls_step(), {"reply": {"text": "Patched and looked up."}})
    user = {"role": "user", "content": "look up 42 and add hello.txt"}
    if stream:
        with openai_client.responses.stream(model=model, input=[user], tools=CODEX_TOOLS,
                                            store=False) as s:
            types = [e.type for e in s]
            first = s.get_final_response()
        assert "response.custom_tool_call_input.delta" in types
        assert "response.custom_tool_call_input.done" in types
    else:
        first = openai_client.responses.create(model=model, input=[user], tools=CODEX_TOOLS,
                                               store=False)
    fn, custom = first.output
    assert (fn.type, fn.namespace, fn.name, json.loads(fn.arguments)) == (
        "function_call", "crm", "lookup", {"id": "42"})
    assert (custom.type, custom.name, custom.input) == ("custom_tool_call", "apply_patch",
                                                        PATCH)
    # The client runs both and sends the whole conversation back (store: false).
    follow = [user, *(o.model_dump(exclude_none=True) for o in first.output),
              {"type": "function_call_output", "call_id": fn.call_id, "output": "Ada"},
              {"type": "custom_tool_call_output", "call_id": custom.call_id,
               "output": "Done!"}]
    second = openai_client.responses.create(model=model, input=follow, tools=CODEX_TOOLS,
                                            store=False)
    assert second.output_text == "Patched and looked up."
    body = upstream(emu, model)["json"]
    if model == GPT:
        assistant = body["messages"][1]
        assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["crm__lookup",
                                                                            "apply_patch"]
        assert json.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {
            "input": PATCH}
        assert [(m["role"], m["content"]) for m in body["messages"][2:]] == [
            ("tool", "Ada"), ("tool", "Done!")]
    else:
        calls = body["messages"][1]["content"]
        assert [(b["name"], b["input"]) for b in calls] == [
            ("crm__lookup", {"id": "42"}), ("apply_patch", {"input": PATCH})]
        results = body["messages"][2]["content"]
        assert [b["content"] for b in results] == ["Ada", "Done!"]


def test_client_tool_search_round_trip(openai_client, emu):
    emu.script(GPT, {"reply": {"tool_calls": [
        {"id": "call_ts", "name": "tool_search", "arguments": {"query": "calendar"}}]}},
        {"reply": {"tool_calls": [{"id": "call_b", "name": "book", "arguments": {}}]}})
    first = openai_client.responses.create(model=GPT, input="book a meeting",
                                           tools=CODEX_TOOLS, store=False)
    (search,) = first.output
    assert search.type == "tool_search_call" and search.arguments == {"query": "calendar"}
    loaded = {"type": "tool_search_output", "call_id": search.call_id, "execution": "client",
              "tools": [{"type": "function", "name": "book", "description": "Book a slot",
                         "parameters": {"type": "object", "properties": {}}}]}
    second = openai_client.responses.create(
        model=GPT, tools=CODEX_TOOLS, store=False,
        input=[{"role": "user", "content": "book a meeting"},
               search.model_dump(exclude_none=True), loaded])
    assert second.output[0].type == "function_call" and second.output[0].name == "book"
    sent = upstream(emu, GPT)["json"]
    assert "book" in [t["function"]["name"] for t in sent["tools"]]


# ---- Claude Code -------------------------------------------------------------------------
BETAS = ("claude-code-20250219,interleaved-thinking-2025-05-14,"
         "context-management-2025-06-27,mid-conversation-tool-changes-2026-07-01")


THOUGHT = "I should run ls."


def claude_code_body(model: str) -> dict:
    return {
        "model": model, "max_tokens": 32000, "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code, Anthropic's CLI."},
                   {"type": "text", "text": "Be concise.",
                    "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "cwd: /work", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "list the files"}]},
            {"role": "system", "content": "The Bash tool is now available."},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": THOUGHT, "signature": sign_thinking(THOUGHT)},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                 "input": {"command": "ls"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                 "content": "permission denied", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "try again"}]}],
        "tools": [{"name": "Bash", "description": "Run a shell command",
                   "input_schema": {"type": "object", "properties": {
                       "command": {"type": "string"}}, "required": ["command"]}},
                  {"name": "WebFetch", "description": "Fetch a URL", "defer_loading": True,
                   "input_schema": {"type": "object", "properties": {
                       "url": {"type": "string"}}}}],
        "metadata": {"user_id": json.dumps({"device_id": "abc", "session_id": "s-1"})},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "medium"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015",
                                          "keep": "all"}]},
    }


def claude_code_post(gateway, model: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/messages?beta=true", json=claude_code_body(model),
                      timeout=30, headers={"x-api-key": "test-key",
                                           "anthropic-version": "2023-06-01",
                                           "anthropic-beta": BETAS, "x-app": "cli"})


def test_claude_code_request_on_an_openai_route(gateway, emu):
    r = claude_code_post(gateway, GPT)
    assert r.status_code == 200, r.text
    names = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    body = upstream(emu, GPT)["json"]
    assert [m["role"] for m in body["messages"]] == [
        "system", "system", "system", "user", "system", "assistant", "tool", "user"]
    assert body["messages"][4]["content"] == "The Bash tool is now available."
    assert body["messages"][6] == {"role": "tool", "tool_call_id": "toolu_1",
                                   "content": "permission denied"}
    assert [t["function"]["name"] for t in body["tools"]] == ["Bash", "WebFetch"]
    dropped = r.headers["x-switchyard-dropped-params"].split(",")
    # gpt-4o-mini takes no reasoning_effort; Anthropic-only context_management has no peer
    assert {"reasoning_effort", "context_management"} <= set(dropped)
    assert "reasoning_effort" not in body


def as_blocks(content: str | list[dict]) -> list[dict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def test_claude_code_request_on_an_anthropic_route_passes_through(gateway, emu):
    r = claude_code_post(gateway, NEW_CLAUDE)
    assert r.status_code == 200, r.text
    seen = upstream(emu, NEW_CLAUDE)
    sent, want = seen["json"], claude_code_body(NEW_CLAUDE)
    for key in ("system", "tools", "metadata", "thinking", "output_config",
                "context_management"):
        assert sent[key] == want[key], key
    # the same messages, in place (one bare text block may travel as a string)
    assert [(m["role"], as_blocks(m["content"])) for m in sent["messages"]] == [
        (m["role"], as_blocks(m["content"])) for m in want["messages"]]
    assert seen["headers"]["anthropic-beta"] == BETAS
    assert "x-switchyard-dropped-params" not in r.headers


def test_openai_clients_thinking_reaches_claude(openai_client, emu):
    openai_client.chat.completions.create(
        model=NEW_CLAUDE, max_tokens=4000, messages=[{"role": "user", "content": "think"}],
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}})
    assert upstream(emu, NEW_CLAUDE)["json"]["thinking"] == {"type": "enabled",
                                                            "budget_tokens": 1024}


# ---- model names -------------------------------------------------------------------------
@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/messages", {"max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/responses", {"input": "hi"}),
])
def test_no_model_takes_the_default_entry(gateway, emu, path, body):
    r = httpx.post(f"{gateway.url}{path}", json=body, timeout=30, headers={
        "authorization": "Bearer k", "anthropic-version": "2023-06-01"})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == GPT
    assert upstream(emu, GPT)["json"]["model"] == GPT


def test_replies_name_the_upstream_model_not_the_alias(openai_client, anthropic_client, emu):
    done = openai_client.chat.completions.create(
        model="fast-model", messages=[{"role": "user", "content": "hi"}])
    assert done.model == GPT
    chunks = list(openai_client.chat.completions.create(
        model="smart-model", stream=True, messages=[{"role": "user", "content": "hi"}]))
    assert {c.model for c in chunks} == {OLD_CLAUDE}
    msg = anthropic_client.messages.create(model="fast-model", max_tokens=20,
                                           messages=[{"role": "user", "content": "hi"}])
    assert msg.model == GPT
    raw = openai_client.responses.with_raw_response.create(model="fast-model", input="hi")
    assert raw.parse().model == GPT and raw.headers["x-switchyard-upstream"] == "openai/gpt-4o-mini"


# ---- WebSocket ---------------------------------------------------------------------------
def test_websocket_upgrade_on_responses_is_426(gateway):
    async def attempt(path: str) -> int:
        url = gateway.url.replace("http://", "ws://") + path
        with pytest.raises(InvalidStatus) as info:
            async with connect(url, open_timeout=10):
                pass
        return info.value.response.status_code

    edge = [p for p in gateway.children() if " serve edge" in cmdline(p)][0]
    # The WebSocket protocol is loaded by the first upgrade (the only one in this module).
    assert not maps_file(edge, "/websockets/")
    assert asyncio.run(attempt("/v1/responses")) == 426
    assert maps_file(edge, "/websockets/")
    assert asyncio.run(attempt("/v1/chat/completions")) != 426
