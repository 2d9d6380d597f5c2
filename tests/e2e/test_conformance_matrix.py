"""Client format x upstream family x case, through the real SDKs and the real services,
asserting both what the SDK parsed and what the upstream received."""
import json

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from tests.e2e.clients import AnthropicClient, GeminiClient, OpenAIChatClient, gemini_sdk
from tests.e2e.harness import BEDROCK_CLAUDE

UPSTREAMS = {"openai": ("gpt-4o-mini", "/chat/completions"),
             "anthropic": ("claude-3-5-sonnet-20241022", "/messages"),
             "gemini": ("gemini-2.0-flash", ":generateContent"),
             # Claude on Bedrock (Converse, SigV4), by an alias: its id holds ':'.
             "bedrock": ("bedrock-claude", "/converse"),
             # A model OpenAI serves only on the Responses API.
             "responses": ("gpt-5-codex", "/responses")}
# Upstreams the emulator's request log names by `api` (the path varies with streaming).
API = {"gemini": "gemini", "bedrock": "bedrock", "responses": "responses"}
TOOL_REPLY = {"reply": {"tool_calls": [
    {"id": "toolu_01", "name": "get_weather", "arguments": {"city": "Paris"}}]}}
TWO_TOOLS = {"interleave": True, "reply": {"text": "Checking both.", "tool_calls": [
    {"id": "call_a", "name": "get_weather", "arguments": {"city": "Paris"}},
    {"id": "call_b", "name": "get_weather", "arguments": {"city": "Tokyo, Japan"}}]}}


@pytest.fixture(params=["chat", "messages", "gemini"])
def client(request, openai_client, anthropic_client, gateway):
    if request.param == "gemini":
        return GeminiClient(gemini_sdk(gateway.url))
    return OpenAIChatClient(openai_client) if request.param == "chat" \
        else AnthropicClient(anthropic_client)


@pytest.fixture(params=list(UPSTREAMS))
def upstream(request):
    return request.param


def emulated(upstream):
    """The model name the emulator sees (and scripts are keyed by) for a column."""
    return BEDROCK_CLAUDE if upstream == "bedrock" else UPSTREAMS[upstream][0]


def sent(emu, upstream):
    path = UPSTREAMS[upstream][1]
    reqs = [r for r in emu.requests() if r["path"].endswith(path)
            or (upstream in API and r.get("api") == API[upstream])]   # or the stream's path
    assert reqs, f"nothing reached the {upstream} upstream"
    return reqs[-1]["json"]


USER = [{"role": "user", "content": "Hello there, gateway"}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_text(client, upstream, emu, stream):
    model = UPSTREAMS[upstream][0]
    r = client.ask(model, USER, stream=stream)
    assert "Hello there, gateway" in r.text
    assert r.stop == "end"
    assert r.input_tokens > 0 and r.output_tokens > 0
    body = sent(emu, upstream)
    if upstream == "gemini":   # the model is named in the path, not the body
        assert emu.requests()[-1]["model"] == model and "model" not in body
    elif upstream == "bedrock":   # the alias's model id, in the path
        assert emu.requests()[-1]["model"] == BEDROCK_CLAUDE and "modelId" not in body
        assert emu.requests()[-1]["path"].endswith("/converse-stream" if stream else "/converse")
        assert body["messages"][0]["role"] == "user"
    else:
        assert body["model"] == model
    if upstream == "anthropic":
        assert body["max_tokens"] > 0 and body["messages"][0]["role"] == "user"
    if upstream == "responses":   # the gateway keeps the conversation
        assert body["store"] is False and body["input"][-1]["role"] == "user"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_tool_call(client, upstream, emu, stream):
    model = UPSTREAMS[upstream][0]
    emu.script(emulated(upstream), TOOL_REPLY)
    r = client.ask(model, [{"role": "user", "content": "Weather in Paris?"}], stream=stream,
                   tools=True)
    assert r.tool_calls == [("toolu_01", "get_weather", {"city": "Paris"})]
    assert r.stop == "tool"
    body = sent(emu, upstream)
    if upstream == "bedrock":
        spec = body["toolConfig"]["tools"][0]["toolSpec"]
        assert spec["name"] == "get_weather" and spec["inputSchema"]["json"]["required"] == [
            "city"]
        return
    tools = body["tools"]
    if upstream == "anthropic":
        assert tools[0]["name"] == "get_weather" and "input_schema" in tools[0]
    elif upstream == "gemini":
        decl = tools[0]["functionDeclarations"][0]
        assert decl["name"] == "get_weather" and "parametersJsonSchema" in decl
    elif upstream == "responses":
        assert tools[0]["type"] == "function" and tools[0]["name"] == "get_weather"
        assert tools[0]["parameters"]["properties"] == {"city": {"type": "string"}}
    else:
        assert tools[0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_two_parallel_tool_calls(client, upstream, emu, stream):
    model = UPSTREAMS[upstream][0]
    emu.script(emulated(upstream), TWO_TOOLS)
    r = client.ask(model, [{"role": "user", "content": "Paris and Tokyo?"}], stream=stream,
                   tools=True)
    assert r.text == "Checking both."
    assert r.tool_calls == [("call_a", "get_weather", {"city": "Paris"}),
                            ("call_b", "get_weather", {"city": "Tokyo, Japan"})]
    assert r.stop == "tool"


def test_tool_result_turn(client, upstream, emu):
    model = UPSTREAMS[upstream][0]
    r = client.ask(model, client.tool_turn("call_77", "18C and sunny"), tools=True)
    assert r.stop == "end"
    body = sent(emu, upstream)
    if upstream == "gemini":
        contents = body["contents"]
        assert contents[-1] == {"role": "user", "parts": [{"functionResponse": {
            "id": "call_77", "name": "get_weather", "response": {"result": "18C and sunny"}}}]}
        assert contents[-2] == {"role": "model", "parts": [{"functionCall": {
            "id": "call_77", "name": "get_weather", "args": {"city": "Paris"}}}]}
        return
    if upstream == "responses":
        items = body["input"]
        assert items[-1] == {"type": "function_call_output", "call_id": "call_77",
                             "output": "18C and sunny"}
        call = items[-2]
        assert (call["type"], call["call_id"], call["name"]) == ("function_call", "call_77",
                                                                 "get_weather")
        assert json.loads(call["arguments"]) == {"city": "Paris"}
        return
    messages = body["messages"]
    if upstream == "bedrock":
        assert messages[-1] == {"role": "user", "content": [{"toolResult": {
            "toolUseId": "call_77", "content": [{"text": "18C and sunny"}]}}]}
        assert messages[-2] == {"role": "assistant", "content": [{"toolUse": {
            "toolUseId": "call_77", "name": "get_weather", "input": {"city": "Paris"}}}]}
        assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
        return
    if upstream == "anthropic":
        last = messages[-1]
        assert last["role"] == "user"
        block = last["content"][0]
        assert block["type"] == "tool_result" and block["tool_use_id"] == "call_77"
        text = block["content"] if isinstance(block["content"], str) else \
            "".join(b["text"] for b in block["content"])
        assert text == "18C and sunny"
        assert messages[-2]["content"][0] == {"type": "tool_use", "id": "call_77",
                                              "name": "get_weather", "input": {"city": "Paris"}}
    else:
        assert messages[-1] == {"role": "tool", "tool_call_id": "call_77",
                                "content": "18C and sunny"}
        assert messages[-2]["tool_calls"][0]["id"] == "call_77"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_thinking_is_kept_apart_from_text(client, upstream, emu, stream):
    model = UPSTREAMS[upstream][0]
    emu.script(emulated(upstream), {"reply": {"thinking": "Let me think about it.",
                                 "text": "The answer is 42."}})
    r = client.ask(model, [{"role": "user", "content": "Meaning of life?"}], stream=stream)
    assert r.text == "The answer is 42."
    assert r.reasoning == "Let me think about it."


def test_thinking_signature_survives_the_next_turn(anthropic_client, emu):
    """Anthropic client -> Anthropic upstream: the signed thinking block goes back intact
    (the emulator rejects a wrong signature with a 400)."""
    model = UPSTREAMS["anthropic"][0]
    first = anthropic_client.messages.create(
        model=model, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think, then answer."}])
    thinking = [b for b in first.content if b.type == "thinking"]
    assert thinking and thinking[0].signature
    second = anthropic_client.messages.create(
        model=model, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think, then answer."},
                  {"role": "assistant", "content": [b.model_dump() for b in first.content]},
                  {"role": "user", "content": "And again?"}])
    assert second.stop_reason == "end_turn"
    block = sent(emu, "anthropic")["messages"][1]["content"][0]
    assert block["type"] == "thinking" and block["signature"] == thinking[0].signature


def test_image(client, upstream, emu):
    model = UPSTREAMS[upstream][0]
    client.ask(model, client.image_message())
    body = sent(emu, upstream)
    if upstream == "gemini":
        parts = body["contents"][-1]["parts"]
        assert parts[1]["inlineData"]["mimeType"] == "image/png"
        assert parts[1]["inlineData"]["data"].startswith("iVBOR")
        return
    if upstream == "responses":
        image = [p for p in body["input"][-1]["content"] if p["type"] == "input_image"][0]
        assert image["image_url"].startswith("data:image/png;base64,iVBOR")
        return
    content = body["messages"][-1]["content"]
    if upstream == "bedrock":
        image = [b["image"] for b in content if "image" in b][0]
        assert image["format"] == "png" and image["source"]["bytes"].startswith("iVBOR")
        return
    if upstream == "anthropic":
        image = [b for b in content if b["type"] == "image"][0]
        assert image["source"]["type"] == "base64"
        assert image["source"]["media_type"] == "image/png"
    else:
        image = [b for b in content if b["type"] == "image_url"][0]
        assert image["image_url"]["url"].startswith("data:image/png;base64,iVBOR")


def test_stop_sequence(client, upstream, emu):
    model = UPSTREAMS[upstream][0]
    emu.script(emulated(upstream), {"reply": {"text": "hello world again"}})
    r = client.ask(model, USER, **client.stop_kw("world"))
    if upstream == "responses":   # the Responses API has no stop sequences: reported dropped
        assert r.text == "hello world again" and r.stop == "end"
        assert "stop" not in sent(emu, upstream)
        return
    assert r.text == "hello "
    if upstream == "bedrock":
        assert sent(emu, upstream)["inferenceConfig"]["stopSequences"] == ["world"]
        assert r.stop in ("end", "stop_sequence")
        if client.name == "messages":   # Claude names the sequence; Bedrock relays it
            assert r.stop == "stop_sequence" and r.raw.stop_sequence == "world"
        return
    if client.name == "messages" and upstream == "anthropic":
        assert r.stop == "stop_sequence" and r.raw.stop_sequence == "world"
    else:
        assert r.stop in ("end", "stop_sequence")
    body = sent(emu, upstream)
    assert (body.get("stop_sequences") or body.get("stop")
            or body.get("generationConfig", {}).get("stopSequences")) == ["world"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_max_tokens(client, upstream, emu, stream):
    model = UPSTREAMS[upstream][0]
    words = " ".join(["one two three four five six seven"] * (4 if upstream == "responses"
                                                               else 1))
    r = client.ask(model, [{"role": "user", "content": words}], stream=stream, max_tokens=3)
    assert r.stop == "max"
    body = sent(emu, upstream)
    if upstream == "responses":   # the API's floor is 16 tokens: raised, reported dropped
        assert body["max_output_tokens"] == 16
        return
    if upstream == "bedrock":
        assert body["inferenceConfig"]["maxTokens"] == 3
        return
    # OpenAI's own API takes max_completion_tokens (reasoning models require it).
    assert body.get("max_tokens", body.get("max_completion_tokens",
                                           body.get("generationConfig", {}).get(
                                               "maxOutputTokens"))) == 3


def test_upstream_400_reaches_the_client(client, upstream, emu):
    model = UPSTREAMS[upstream][0]
    emu.script(emulated(upstream), {"status": 400, "error": {"message": "messages: bad thing"}})
    with pytest.raises((openai.BadRequestError, anthropic.BadRequestError,
                        genai_errors.ClientError)) as info:
        client.ask(model, USER)
    assert "messages: bad thing" in str(info.value)
    if client.name == "gemini":   # ClientError is every 4xx: the code says which
        assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_rate_limit_is_rate_limit_error(client, upstream, emu, stream):
    model = UPSTREAMS[upstream][0]
    steps = [{"status": 429, "error": {"message": "slow down"}}] * 5
    emu.script(emulated(upstream), *steps)
    with pytest.raises((openai.RateLimitError, anthropic.RateLimitError,
                        genai_errors.ClientError)) as info:
        client.ask(model, USER, stream=stream)
    if client.name == "gemini":
        assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")


def test_mid_stream_abort_is_an_error_not_a_success(client, upstream, emu):
    model = UPSTREAMS[upstream][0]
    emu.script(emulated(upstream), {"abort_after_chunks": 3, "reply": {"text": "a b c d e f g h i j"},
                       "chunks": 8})
    with pytest.raises((openai.APIError, anthropic.APIError, genai_errors.APIError)):
        client.ask(model, USER, stream=True)


SCRIPTED_USAGE = {"reply": {"text": "counted", "usage": {
    "input_tokens": 10, "cache_read_input_tokens": 20, "output_tokens": 7}}}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_usage_lands_where_each_format_expects_it(openai_client, anthropic_client, upstream,
                                                  emu, stream):
    model = UPSTREAMS[upstream][0]
    msgs = [{"role": "user", "content": "count"}]
    emu.script(emulated(upstream), SCRIPTED_USAGE)
    if stream:
        chunks = list(openai_client.chat.completions.create(
            model=model, messages=msgs, stream=True, stream_options={"include_usage": True}))
        usage = chunks[-1].usage
    else:
        usage = openai_client.chat.completions.create(model=model, messages=msgs).usage
    # OpenAI: prompt_tokens includes cached tokens.
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (30, 7, 37)
    assert usage.prompt_tokens_details.cached_tokens == 20

    emu.script(emulated(upstream), SCRIPTED_USAGE)
    if stream:
        with anthropic_client.messages.stream(model=model, max_tokens=50, messages=msgs) as s:
            usage = s.get_final_message().usage
    else:
        usage = anthropic_client.messages.create(model=model, max_tokens=50,
                                                 messages=msgs).usage
    # Anthropic: input_tokens excludes cache reads.
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (10, 20, 7)


def test_reasoning_tokens_reach_openai_clients(openai_client, emu):
    emu.script("gpt-4o-mini", {"reply": {"text": "x", "usage": {
        "prompt_tokens": 5, "completion_tokens": 9, "reasoning_tokens": 4}}})
    usage = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "r"}]).usage
    assert usage.completion_tokens == 9
    assert usage.completion_tokens_details.reasoning_tokens == 4


def test_bedrock_thinking_signature_survives_the_next_turn(anthropic_client, emu):
    """Anthropic client -> Claude on Bedrock: the signed reasoning goes back intact as
    reasoningContent (the emulator rejects a wrong signature with a 400)."""
    model = UPSTREAMS["bedrock"][0]
    first = anthropic_client.messages.create(
        model=model, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think, then answer."}])
    thinking = [b for b in first.content if b.type == "thinking"]
    assert thinking and thinking[0].signature
    second = anthropic_client.messages.create(
        model=model, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think, then answer."},
                  {"role": "assistant", "content": [b.model_dump() for b in first.content]},
                  {"role": "user", "content": "And again?"}])
    assert second.stop_reason == "end_turn"
    body = sent(emu, "bedrock")
    assert body["additionalModelRequestFields"]["thinking"] == {"type": "enabled",
                                                                "budget_tokens": 1024}
    block = body["messages"][1]["content"][0]["reasoningContent"]["reasoningText"]
    assert block["signature"] == thinking[0].signature


@pytest.mark.parametrize(("status", "name", "sdk_status"), [
    (403, "AccessDeniedException", 403), (429, "ModelNotReadyException", 503),
    (503, "ServiceUnavailableException", 503), (400, "ValidationException", 400)])
def test_bedrock_exceptions_reach_every_client_as_their_status(client, emu, status, name,
                                                               sdk_status):
    model = UPSTREAMS["bedrock"][0]
    emu.script(BEDROCK_CLAUDE, *[{"status": status, "error": {
        "type": name, "message": f"bedrock says {name}"}}] * 3)
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError,
                        genai_errors.APIError)) as info:
        client.ask(model, USER)
    err = info.value
    assert (getattr(err, "status_code", None) or err.code) == sdk_status
    assert f"bedrock says {name}" in str(err)


def test_reasoning_tokens_of_a_responses_upstream_reach_openai_clients(openai_client, emu):
    emu.script("gpt-5-codex", {"reply": {"text": "x", "usage": {
        "prompt_tokens": 5, "completion_tokens": 9, "reasoning_tokens": 4}}})
    usage = openai_client.chat.completions.create(
        model="gpt-5-codex", messages=[{"role": "user", "content": "r"}]).usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (5, 9)
    assert usage.completion_tokens_details.reasoning_tokens == 4
