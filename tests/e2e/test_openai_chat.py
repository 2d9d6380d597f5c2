"""The OpenAI SDK through `switchyard up` to an OpenAI-compatible upstream (the emulator)."""
import json

import httpx
import openai
import pytest

from tests.e2e.harness import OPENAI_KEY


def last_request(emu, path_suffix="/chat/completions"):
    reqs = [r for r in emu.requests() if r["path"].endswith(path_suffix)]
    assert reqs, f"the upstream saw no request to *{path_suffix}: {emu.requests()}"
    return reqs[-1]


def test_non_streaming_reaches_upstream_with_path_auth_and_body(openai_client, emu):
    completion = openai_client.chat.completions.create(
        model="gpt-4o-mini", max_tokens=50,
        messages=[{"role": "user", "content": "Hello, how are you?"}])
    assert completion.model == "gpt-4o-mini"
    assert completion.id.startswith("chatcmpl-")
    assert "Hello, how are you?" in completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0
    seen = last_request(emu)
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert seen["json"]["model"] == "gpt-4o-mini"
    assert seen["json"]["max_tokens"] == 50
    assert seen["json"]["messages"] == [{"role": "user", "content": "Hello, how are you?"}]


def test_streaming_through_an_alias_reports_the_upstream_model(openai_client, emu):
    stream = openai_client.chat.completions.create(
        model="fast-model", stream=True,
        messages=[{"role": "user", "content": "Tell me a short story"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Tell me a short story" in text
    assert {c.model for c in chunks} == {"gpt-4o-mini"}   # the upstream's name, for pricing
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert last_request(emu)["json"]["model"] == "gpt-4o-mini"


def test_stream_usage_chunk_only_when_asked(openai_client, emu):
    chunks = list(openai_client.chat.completions.create(
        model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "count me"}]))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    chunks = list(openai_client.chat.completions.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "no usage"}]))
    assert all(c.usage is None for c in chunks)


def test_provider_slash_model_name(openai_client, emu):
    completion = openai_client.chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert completion.model == "gpt-4o"
    assert last_request(emu)["json"]["model"] == "gpt-4o"


def test_wildcard_model_goes_to_the_anthropic_upstream(openai_client, emu):
    completion = openai_client.chat.completions.create(
        model="anthropic/claude-3-5-haiku-20241022", max_tokens=30,
        messages=[{"role": "user", "content": "wildcard"}])
    assert "wildcard" in completion.choices[0].message.content
    seen = last_request(emu, "/messages")
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == "sk-ant-test"
    assert seen["json"]["model"] == "claude-3-5-haiku-20241022"
    assert seen["json"]["max_tokens"] == 30


def test_groq_prefix_uses_its_path(openai_client, emu):
    openai_client.chat.completions.create(
        model="groq/llama-3.1-8b-instant", messages=[{"role": "user", "content": "hi"}])
    seen = last_request(emu)
    assert seen["path"] == "/openai/v1/chat/completions"
    assert seen["json"]["model"] == "llama-3.1-8b-instant"


def test_unknown_model_is_not_found(openai_client):
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.chat.completions.create(
            model="nonexistent-model", messages=[{"role": "user", "content": "Hello"}])
    message = info.value.body["message"] if "message" in info.value.body else str(info.value)
    assert "nonexistent-model" in message
    listed = message.split("Available models:")[1].strip().split(", ")
    configured = {m.id for m in openai_client.models.list()} | {
        "openai/gpt-4o", "azure_openai/gpt-4o-deploy", "openai/gpt-5-codex",
        "amazon_bedrock/us.anthropic.claude-sonnet-4-20250514-v1:0"}
    assert 1 <= len(listed) <= 5 and set(listed) <= configured | {"gpt-4o-deploy"}


def test_same_format_route_keeps_openai_only_parameters(openai_client, emu):
    openai_client.chat.completions.create(
        model="gpt-4o-mini", n=1, seed=7, response_format={"type": "json_object"},
        logit_bias={"50256": -100}, messages=[{"role": "user", "content": "json please"}])
    body = last_request(emu)["json"]
    assert body["seed"] == 7
    assert body["response_format"] == {"type": "json_object"}
    assert body["logit_bias"] == {"50256": -100}
    assert body["n"] == 1


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip(openai_client, emu, stream):
    emu.script("gpt-4o-mini", {"reply": {"tool_calls": [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]}})
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        calls: dict[int, dict] = {}
        finish = None
        for chunk in openai_client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=TOOLS, stream=True):
            for tc in chunk.choices[0].delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"id": tc.id, "name": "", "arguments": ""})
                entry["name"] += tc.function.name or ""
                entry["arguments"] += tc.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
        assert finish == "tool_calls"
        call = calls[0]
    else:
        completion = openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=TOOLS)
        assert completion.choices[0].finish_reason == "tool_calls"
        tc = completion.choices[0].message.tool_calls[0]
        call = {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
    assert call["id"] == "call_1" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    assert last_request(emu)["json"]["tools"] == TOOLS

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call["id"], "type": "function",
             "function": {"name": call["name"], "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"}]
    final = openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages,
                                                  tools=TOOLS)
    assert final.choices[0].finish_reason == "stop"
    sent = last_request(emu)["json"]["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"}
    assert sent[-2]["tool_calls"][0]["id"] == "call_1"


def test_upstream_400_message_reaches_the_client(openai_client, emu):
    emu.script("gpt-4o-mini", {"status": 400, "error": {"message": "bad temperature value"}})
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="gpt-4o-mini",
                                              messages=[{"role": "user", "content": "x"}])
    assert "bad temperature value" in str(info.value)


def test_malformed_json_is_a_400_in_openai_format(gateway):
    r = httpx.post(f"{gateway.url}/v1/chat/completions", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "JSON" in r.json()["error"]["message"]


def test_curl_style_request_without_auth_header(gateway, emu):
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json={
        "model": "fast-model", "messages": [{"role": "user", "content": "Summarize this"}],
        "max_tokens": 100})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "gpt-4o-mini"
    assert r.headers["x-request-id"]


def test_curl_style_streaming_ends_with_done(gateway, emu):
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json={
            "model": "gpt-4o-mini", "stream": True, "max_tokens": 200,
            "messages": [{"role": "user", "content": "Tell me a story"}]}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    events = [e for e in body.split("\n\n") if e.strip()]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_models_lists_models_and_aliases(openai_client):
    ids = {m.id for m in openai_client.models.list()}
    assert {"gpt-4o-mini", "fast-model", "smart-model", "llama3.1"} <= ids


def test_healthz(gateway):
    r = httpx.get(f"{gateway.url}/healthz")
    assert r.status_code == 200
    assert r.json()["services"] == {"router": True, "providers": True, "state": True}


def test_models_retrieve_and_anthropic_list(openai_client, anthropic_client):
    assert openai_client.models.retrieve("fast-model").owned_by == "switchyard"
    with pytest.raises(openai.NotFoundError):
        openai_client.models.retrieve("nonexistent-model")
    ids = [m.id for m in anthropic_client.models.list()]
    assert "gpt-4o-mini" in ids and "fast-model" in ids
    assert anthropic_client.models.retrieve("gpt-4o-mini").type == "model"
