"""Google's own SDK (google-genai) against the real gateway, reaching the OpenAI, the
Anthropic and the Gemini-native routes of the emulator: generate, stream, function calling
(manual and automatic), structured output, countTokens, errors."""
from __future__ import annotations

import pydantic
import pytest
from google.genai import errors, types

from tests.e2e.clients import TOOL_SCHEMA, gemini_sdk

MODELS = {"openai": ("gpt-4o-mini", "/chat/completions"),
          "anthropic": ("claude-3-5-sonnet-20241022", "/messages"),
          "gemini": ("gemini-2.0-flash", ":generateContent")}


@pytest.fixture
def sdk(gateway):
    return gemini_sdk(gateway.url)


@pytest.fixture(params=list(MODELS))
def route(request):
    return request.param


def upstream_request(emu, route: str) -> dict:
    reqs = [r for r in emu.requests() if r["path"].endswith(MODELS[route][1])
            or (route == "gemini" and r.get("api") == "gemini")]   # or :streamGenerateContent
    assert reqs, f"nothing reached the {route} upstream"
    return reqs[-1]


def upstream_body(emu, route: str) -> dict:
    return upstream_request(emu, route)["json"]


def test_generate(sdk, emu, route):
    model = MODELS[route][0]
    r = sdk.models.generate_content(
        model=model, contents="Hello from Gemini",
        config=types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.2,
                                           max_output_tokens=64))
    assert r.text == "Echo: Hello from Gemini"
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.model_version == model and r.response_id
    u = r.usage_metadata
    assert u.prompt_token_count > 0 and u.candidates_token_count > 0
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count
    body = upstream_body(emu, route)
    if route == "anthropic":
        assert body["system"] == [{"type": "text", "text": "Be brief."}] or \
            body["system"] == "Be brief."
        assert body["max_tokens"] == 64
    elif route == "gemini":   # same format: what the SDK sent, model in the path
        assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
        assert body["generationConfig"]["maxOutputTokens"] == 64
        assert body["generationConfig"]["temperature"] == 0.2
    else:
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body.get("max_tokens", body.get("max_completion_tokens")) == 64


def test_stream(sdk, emu, route):
    model = MODELS[route][0]
    emu.script(model, {"reply": {"text": "one two three four"}, "chunks": 4,
                       "chunk_delay": 0.05})   # frames apart, so chunks are apart
    chunks = list(sdk.models.generate_content_stream(model=model, contents="count"))
    assert len(chunks) >= 2   # streamed, not one reply in disguise
    assert "".join(c.text or "" for c in chunks) == "one two three four"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count > 0
    if route == "gemini":   # Gemini names the streaming operation in the path
        assert ":streamGenerateContent" in upstream_request(emu, route)["path"]
    else:
        assert upstream_body(emu, route)["stream"] is True


def test_function_calling_loop_without_automatic_calling(sdk, emu, route):
    model = MODELS[route][0]
    emu.script(model, {"reply": {"tool_calls": [
        {"id": "call_9", "name": "get_weather", "arguments": {"city": "Paris"}}]}})
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(
        name="get_weather", description="Weather", parameters_json_schema=TOOL_SCHEMA)])
    config = types.GenerateContentConfig(tools=[tool])
    question = types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])
    first = sdk.models.generate_content(model=model, contents=[question], config=config)
    (call,) = first.function_calls
    assert (call.id, call.name, call.args) == ("call_9", "get_weather", {"city": "Paris"})
    answer = types.Part.from_function_response(name="get_weather", response={"result": "18C"})
    answer.function_response.id = call.id
    second = sdk.models.generate_content(
        model=model, config=config,
        contents=[question, first.candidates[0].content,
                  types.Content(role="user", parts=[answer])])
    assert second.text
    body = upstream_body(emu, route)
    if route == "anthropic":
        result = body["messages"][-1]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == "call_9"
    elif route == "gemini":
        (part,) = body["contents"][-1]["parts"]
        assert part["functionResponse"]["name"] == "get_weather"
        assert part["functionResponse"]["id"] == "call_9"
        assert part["functionResponse"]["response"] == {"result": "18C"}
    else:
        assert body["messages"][-1] == {"role": "tool", "tool_call_id": "call_9",
                                        "content": "18C"}


def test_automatic_function_calling_runs_the_python_function(sdk, emu, route):
    model = MODELS[route][0]
    emu.script(model, {"reply": {"tool_calls": [
        {"id": "call_3", "name": "get_weather", "arguments": {"city": "Oslo"}}]}})
    seen = []

    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return f"{city}: 3C and snow"

    r = sdk.models.generate_content(model=model, contents="Weather in Oslo?",
                                    config=types.GenerateContentConfig(tools=[get_weather]))
    assert seen == ["Oslo"]
    assert r.text   # the model's answer after the SDK sent the function's result back
    assert len(r.automatic_function_calling_history) >= 3
    body = upstream_body(emu, route)
    if route == "anthropic":
        block = body["messages"][-1]["content"][0]
        text = block["content"] if isinstance(block["content"], str) else \
            "".join(b["text"] for b in block["content"])
        assert block["tool_use_id"] == "call_3" and text == "Oslo: 3C and snow"
    elif route == "gemini":
        (part,) = body["contents"][-1]["parts"]
        assert part["functionResponse"]["name"] == "get_weather"
        assert part["functionResponse"]["response"] == {"result": "Oslo: 3C and snow"}
    else:
        assert body["messages"][-1] == {"role": "tool", "tool_call_id": "call_3",
                                        "content": "Oslo: 3C and snow"}


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("target", ["openai", "gemini"])
def test_structured_output_parses_into_the_pydantic_model(sdk, emu, target):
    model = MODELS[target][0]
    emu.script(model, {"reply": {"text": '{"name": "Paris", "population": 2100000}'}})
    r = sdk.models.generate_content(
        model=model, contents="A city, as JSON",
        config=types.GenerateContentConfig(response_mime_type="application/json",
                                           response_schema=City))
    assert r.parsed == City(name="Paris", population=2100000)
    body = upstream_body(emu, target)
    if target == "gemini":   # same format: the schema reaches Gemini as the SDK wrote it
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        assert "population" in schema["properties"]
        return
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "City"
    assert fmt["json_schema"]["schema"]["properties"]["population"]["type"] == "integer"


def test_count_tokens(sdk, emu, route):
    r = sdk.models.count_tokens(model=MODELS[route][0], contents="How many tokens is this?")
    assert r.total_tokens > 0
    counted = [q for q in emu.requests() if q.get("api") == "gemini_count_tokens"]
    if route == "gemini":   # the upstream's own count, with the whole request
        assert counted and counted[-1]["json"]["generateContentRequest"]["model"] == \
            "models/gemini-2.0-flash"
    else:
        assert not counted


def test_models_list_and_get(sdk):
    names = [m.name for m in sdk.models.list()]
    assert "models/gpt-4o-mini" in names
    assert sdk.models.get(model="gpt-4o-mini").name == "models/gpt-4o-mini"


def test_unknown_model_is_a_404_client_error(sdk):
    with pytest.raises(errors.ClientError) as info:
        sdk.models.generate_content(model="no-such-model-anywhere", contents="hi")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_upstream_429_is_a_429_client_error(sdk, emu, route, stream):
    model = MODELS[route][0]
    emu.script(model, *[{"status": 429, "error": {"message": "slow down"}}] * 5)
    with pytest.raises(errors.ClientError) as info:
        if stream:
            list(sdk.models.generate_content_stream(model=model, contents="hi"))
        else:
            sdk.models.generate_content(model=model, contents="hi")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"


def test_mid_stream_failure_raises_a_server_error(sdk, emu):
    model = MODELS["openai"][0]
    emu.script(model, {"abort_after_chunks": 3, "reply": {"text": "a b c d e f g h"},
                       "chunks": 8})
    with pytest.raises(errors.APIError):
        list(sdk.models.generate_content_stream(model=model, contents="hi"))
