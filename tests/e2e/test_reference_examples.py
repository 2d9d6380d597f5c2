"""The client-libraries page's examples, as written, plus the provider paths and headers
they depend on (Ollama without a key, Azure deployments, count_tokens, dropped params)."""
import anthropic
import httpx
import openai
import pytest

from tests.e2e.harness import OPENAI_KEY


def last(emu):
    return emu.requests()[-1]


def test_openai_sdk_calls_claude_and_ollama(openai_client, emu):
    completion = openai_client.chat.completions.create(
        model="claude-3-5-sonnet-20241022", max_tokens=50,
        messages=[{"role": "user", "content": "Explain quantum computing briefly"}])
    assert "Explain quantum computing briefly" in completion.choices[0].message.content
    assert last(emu)["path"] == "/v1/messages"
    completion = openai_client.chat.completions.create(
        model="llama3.1", max_tokens=50,
        messages=[{"role": "user", "content": "What's the capital of France?"}])
    assert completion.choices[0].message.content
    seen = last(emu)
    assert seen["path"] == "/ollama/v1/chat/completions"
    assert "authorization" not in seen["headers"]  # Ollama takes no key
    assert seen["json"]["model"] == "llama3.1"


@pytest.mark.parametrize("model", ["gpt-4o-mini", "llama3.1"])
def test_anthropic_sdk_calls_gpt_and_ollama_streaming(anthropic_client, emu, model):
    with anthropic_client.messages.stream(
            model=model, max_tokens=50,
            messages=[{"role": "user", "content": "Tell me about artificial intelligence"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert "Tell me about artificial intelligence" in text
    assert "".join(b.text for b in final.content if b.type == "text") == text
    assert final.model == model and final.stop_reason == "end_turn"
    assert last(emu)["json"]["messages"][-1]["content"] == "Tell me about artificial intelligence"


def test_azure_deployment_path_key_and_version(openai_client, emu):
    openai_client.chat.completions.create(model="azure_openai/gpt-4o-deploy",
                                          messages=[{"role": "user", "content": "hi"}])
    seen = last(emu)
    assert seen["path"] == "/openai/deployments/gpt-4o-deploy/chat/completions"
    assert seen["query"]["api-version"] == "2024-10-21"
    assert seen["headers"]["api-key"] == OPENAI_KEY
    assert "authorization" not in seen["headers"]


def test_curl_anthropic_endpoint(gateway, emu):
    r = httpx.post(f"{gateway.url}/v1/messages", headers={
        "content-type": "application/json", "x-api-key": "test-key",
        "anthropic-version": "2023-06-01"}, json={
        "model": "claude-3-5-sonnet-20241022", "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hello Claude!"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"][0]["type"] == "text" and "Hello Claude!" in body["content"][0]["text"]
    assert r.headers["request-id"]
    assert last(emu)["headers"]["anthropic-version"] == "2023-06-01"


def test_anthropic_sdk_not_found(anthropic_client):
    with pytest.raises(anthropic.NotFoundError) as info:
        anthropic_client.messages.create(model="nonexistent-model", max_tokens=50,
                                         messages=[{"role": "user", "content": "Hello"}])
    assert info.value.body["error"]["type"] == "not_found_error"


def test_count_tokens(anthropic_client, emu):
    counted = anthropic_client.messages.count_tokens(
        model="claude-3-5-sonnet-20241022",
        messages=[{"role": "user", "content": "count these words please"}])
    assert counted.input_tokens > 0
    assert last(emu)["path"] == "/v1/messages/count_tokens"
    raw = anthropic_client.messages.with_raw_response.count_tokens(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "estimate these words"}])
    assert raw.parse().input_tokens > 0
    assert raw.headers["x-switchyard-estimated"] == "true"


def test_dropped_parameters_are_named(openai_client, emu):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="claude-3-5-sonnet-20241022", seed=3, frequency_penalty=0.5,
        messages=[{"role": "user", "content": "hi"}])
    dropped = set(raw.headers["x-switchyard-dropped-params"].split(","))
    assert {"seed", "frequency_penalty"} <= dropped
    sent = last(emu)["json"]
    assert "seed" not in sent and "frequency_penalty" not in sent


def test_overloaded_anthropic_is_503_for_openai_clients(openai_client, emu):
    emu.script("claude-3-5-sonnet-20241022", *[{"status": 529}] * 5)
    with pytest.raises(openai.InternalServerError) as info:
        openai_client.chat.completions.create(model="claude-3-5-sonnet-20241022",
                                              messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503


def test_overloaded_anthropic_stays_529_for_anthropic_clients(anthropic_client, emu):
    emu.script("claude-3-5-sonnet-20241022", *[{"status": 529}] * 5)
    with pytest.raises(anthropic.APIStatusError) as info:
        anthropic_client.messages.create(model="claude-3-5-sonnet-20241022", max_tokens=10,
                                         messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"


def test_reasoning_effort_becomes_a_thinking_budget(openai_client, emu):
    openai_client.chat.completions.create(
        model="claude-3-5-sonnet-20241022", reasoning_effort="low", max_tokens=4000,
        messages=[{"role": "user", "content": "think"}])
    sent = last(emu)["json"]
    assert sent["thinking"]["type"] == "enabled"
    assert 1024 <= sent["thinking"]["budget_tokens"] < sent["max_tokens"]


def test_system_and_developer_messages_become_anthropic_system_blocks(openai_client, emu):
    openai_client.chat.completions.create(
        model="claude-3-5-sonnet-20241022",
        messages=[{"role": "system", "content": "Be terse."},
                  {"role": "developer", "content": "Answer in French."},
                  {"role": "user", "content": "hi"}])
    sent = last(emu)["json"]
    texts = [b["text"] for b in sent["system"]] if isinstance(sent["system"], list) \
        else [sent["system"]]
    assert texts == ["Be terse.", "Answer in French."]
    assert [m["role"] for m in sent["messages"]] == ["user"]


def test_passthrough_auth_forwards_the_clients_key(gateway, emu):
    from openai import OpenAI
    client = OpenAI(api_key=OPENAI_KEY, base_url=f"{gateway.url}/v1", max_retries=0)
    client.chat.completions.create(model="gpt-4.1-nano",
                                   messages=[{"role": "user", "content": "my key"}])
    assert last(emu)["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    wrong = OpenAI(api_key="sk-wrong", base_url=f"{gateway.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="gpt-4.1-nano",
                                      messages=[{"role": "user", "content": "bad key"}])


def test_anthropic_same_format_route_loses_nothing(gateway, emu):
    body = {
        "model": "claude-3-5-sonnet-20241022", "max_tokens": 300, "top_k": 5,
        "temperature": 0.3, "metadata": {"user_id": "user-42"},
        "stop_sequences": ["END"],
        "system": [{"type": "text", "text": "You are terse.",
                    "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "get_weather", "description": "Weather",
                   "input_schema": {"type": "object",
                                    "properties": {"city": {"type": "string"}}},
                   "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather?", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_9", "name": "get_weather",
                 "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_9", "content": "cold",
                 "is_error": False}]}]}
    r = httpx.post(f"{gateway.url}/v1/messages", json=body, headers={
        "x-api-key": "k", "anthropic-version": "2023-06-01",
        "anthropic-beta": "prompt-caching-2024-07-31"})
    assert r.status_code == 200, r.text
    seen = last(emu)
    assert seen["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert {k: v for k, v in seen["json"].items() if k != "stream"} == body


def test_openai_same_format_route_loses_nothing(gateway, emu):
    body = {
        "model": "gpt-4o-mini", "max_completion_tokens": 300, "temperature": 0.3,
        "top_p": 0.9, "n": 1, "seed": 11, "logprobs": True, "top_logprobs": 2,
        "presence_penalty": 0.1, "frequency_penalty": 0.2, "logit_bias": {"1": 2},
        "user": "user-42", "service_tier": "auto", "stop": ["END"],
        "metadata": {"team": "search"}, "parallel_tool_calls": False,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "w", "schema": {"type": "object"}, "strict": True}},
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather", "strict": True,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "messages": [
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "name": "ann", "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png",
                                                    "detail": "low"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_9", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_9", "content": "cold"}]}
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json={**body, "store": False})
    assert r.status_code == 200, r.text
    sent = dict(last(emu)["json"])
    sent.pop("stream", None)
    assert sent == body


def test_thinking_budget_becomes_reasoning_effort(anthropic_client, emu):
    anthropic_client.messages.create(
        model="ollama/llama3.1", max_tokens=16000,
        thinking={"type": "enabled", "budget_tokens": 8192},
        messages=[{"role": "user", "content": "think hard"}])
    assert last(emu)["json"]["reasoning_effort"] == "medium"


def test_thinking_for_a_model_without_reasoning_is_dropped_and_named(anthropic_client, emu):
    raw = anthropic_client.messages.with_raw_response.create(
        model="gpt-4o-mini", max_tokens=16000, thinking={"type": "enabled", "budget_tokens": 8192},
        messages=[{"role": "user", "content": "think hard"}])
    assert "reasoning_effort" not in last(emu)["json"]   # OpenAI would refuse it for gpt-4o-mini
    assert "reasoning_effort" in raw.headers["x-switchyard-dropped-params"]


def test_openai_client_tool_loop_with_reasoning_on_claude(openai_client, emu):
    """Chat Completions cannot carry a thinking signature back, so the gateway answers the
    tool turn without thinking instead of letting Anthropic refuse it."""
    model = "claude-3-5-sonnet-20241022"
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    emu.script(model, {"reply": {"thinking": "Need the tool.", "tool_calls": [
        {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Oslo"}}]}})
    first = openai_client.chat.completions.create(
        model=model, reasoning_effort="low", max_tokens=4000, tools=tools,
        messages=[{"role": "user", "content": "Weather in Oslo?"}])
    msg = first.choices[0].message
    assert msg.model_extra["reasoning_content"] == "Need the tool."
    raw = openai_client.chat.completions.with_raw_response.create(
        model=model, reasoning_effort="low", max_tokens=4000, tools=tools,
        messages=[{"role": "user", "content": "Weather in Oslo?"},
                  msg.model_dump(exclude_none=True),
                  {"role": "tool", "tool_call_id": "toolu_1", "content": "cold"}])
    assert raw.parse().choices[0].finish_reason == "stop"
    assert "reasoning_effort" in raw.headers["x-switchyard-dropped-params"]
    assert "thinking" not in last(emu)["json"]


def test_prometheus_metrics(gateway, openai_client, emu, tmp_path):
    openai_client.chat.completions.create(model="gpt-4o-mini",
                                          messages=[{"role": "user", "content": "count"}])
    text = httpx.get(f"{gateway.url}/metrics").text
    assert 'switchyard_http_requests_total{route="create_chat_completion",status="200"}' in text
    assert "switchyard_gateway_overhead_seconds_bucket" in text
