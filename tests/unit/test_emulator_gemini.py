"""The emulator's Gemini API, driven by the real google-genai SDK (and raw HTTP for framing)."""
from __future__ import annotations

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors, types

from tests.emulator import Emulator

KEY = "gemini-unit-key"
FLASH, G3 = "gemini-2.0-flash", "gemini-3-pro-preview"
TOOLS = [types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", parameters_json_schema={"type": "object"})])]
TWO_CALLS = {"reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}},
                                      {"name": "get_weather", "arguments": {"city": "Tokyo"}}]}}


@pytest.fixture(scope="module")
def server():
    with Emulator(gemini_keys={KEY}) as e:
        yield e


@pytest.fixture
def emu(server):
    server.reset()
    return server


@pytest.fixture
def client(emu):
    return genai.Client(api_key=KEY, http_options={"base_url": emu.url})


def raw(emu, model: str, method: str, body: dict, key: str | None = KEY, query: str = ""):
    headers = {"x-goog-api-key": key} if key else {}
    return httpx.post(f"{emu.url}/v1beta/models/{model}:{method}{query}", json=body,
                      headers=headers)


HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}


def test_generate_content_echoes_with_usage(client, emu):
    r = client.models.generate_content(model=FLASH, contents="hello there")
    assert r.text == "Echo: hello there"
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert (r.usage_metadata.prompt_token_count, r.usage_metadata.candidates_token_count,
            r.usage_metadata.total_token_count) == (2, 3, 5)
    assert r.model_version == FLASH and r.response_id
    rec = emu.requests()[-1]
    assert (rec["api"], rec["model"], rec["stream"]) == ("gemini", FLASH, False)


def test_stream_is_sse_with_crlf_frames_and_the_finish_on_the_last(client, emu):
    chunks = list(client.models.generate_content_stream(model=FLASH, contents="a b c"))
    assert "".join(c.text for c in chunks) == "Echo: a b c"
    assert [c.candidates[0].finish_reason for c in chunks][-1] == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    r = raw(emu, FLASH, "streamGenerateContent", HELLO, query="?alt=sse")
    assert r.headers["content-type"].startswith("text/event-stream")
    frames = r.content.split(b"\r\n\r\n")
    assert frames[-1] == b"" and all(f.startswith(b"data: {") for f in frames[:-1])
    last = orjson.loads(frames[-2][6:])
    assert last["usageMetadata"]["candidatesTokenCount"] == 3
    # Without alt=sse the stream is one JSON array.
    arr = raw(emu, FLASH, "streamGenerateContent", HELLO).json()
    assert isinstance(arr, list) and arr[-1]["candidates"][0]["finishReason"] == "STOP"


def test_key_in_the_query_string(emu):
    assert raw(emu, FLASH, "generateContent", HELLO, key=None, query=f"?key={KEY}").status_code == 200


def test_auth_errors_have_googles_shapes(emu):
    missing = raw(emu, FLASH, "generateContent", HELLO, key=None)
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    wrong = raw(emu, FLASH, "generateContent", HELLO, key="nope")
    err = wrong.json()["error"]
    assert (wrong.status_code, err["code"], err["status"]) == (400, 400, "INVALID_ARGUMENT")
    assert err["message"] == "API key not valid. Please pass a valid API key."
    assert err["details"][0]["reason"] == "API_KEY_INVALID"
    bearer = httpx.post(f"{emu.url}/v1beta/models/{FLASH}:generateContent", json=HELLO,
                        headers={"Authorization": "Bearer sk-not-oauth"})
    assert bearer.status_code == 401 and bearer.json()["error"]["status"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("body,needle", [
    ({**HELLO, "max_tokens": 5}, 'Unknown name "max_tokens": Cannot find field.'),
    ({"contents": [{"role": "user", "parts": [{"text": "x", "type": "text"}]}]},
     "Unknown name \"type\" at 'contents[0].parts[0]'"),
    ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
     "Please use a valid role: user, model."),
    ({"contents": []}, "contents is not specified"),
    ({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, "required oneof field 'data'"),
    ({"contents": [{"role": "user", "parts": [{"text": "x"}]},
                   {"role": "user", "parts": [{"functionResponse": {
                       "name": "f", "response": {}}}]}]},
     "function response turn comes immediately after a function call turn"),
    ({"contents": [{"role": "user", "parts": [{"text": "x"}]},
                   {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                   {"role": "user", "parts": [{"functionResponse": {
                       "name": "g", "response": {}}}]}]},
     "Function response name 'g' does not match"),
    ({**HELLO, "tools": [{"functionDeclarations": [{
        "name": "f", "parameters": {"type": "OBJECT"},
        "parametersJsonSchema": {"type": "object"}}]}]}, "cannot both be set"),
])
def test_invalid_requests_are_400_in_googles_words(emu, body, needle):
    r = raw(emu, FLASH, "generateContent", body)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert needle in r.json()["error"]["message"]


def test_snake_case_names_are_accepted_like_googles_parser(emu):
    body = {**HELLO, "generation_config": {"max_output_tokens": 2}}
    r = raw(emu, FLASH, "generateContent", body)
    assert r.status_code == 200 and r.json()["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_parallel_calls_and_thought_signatures_on_gemini_3(client, emu):
    emu.script(G3, TWO_CALLS)
    cfg = types.GenerateContentConfig(tools=TOOLS, thinking_config=types.ThinkingConfig(
        include_thoughts=True))
    r = client.models.generate_content(model=G3, contents="Paris and Tokyo?", config=cfg)
    parts = r.candidates[0].content.parts
    assert parts[0].thought is True and parts[0].thought_signature
    calls = [p for p in parts if p.function_call]
    assert [c.function_call.args for c in calls] == [{"city": "Paris"}, {"city": "Tokyo"}]
    assert calls[0].thought_signature and calls[1].thought_signature is None
    answers = types.Content(role="user", parts=[
        types.Part.from_function_response(name="get_weather", response={"t": "sunny"})] * 2)
    history = [types.Content(role="user", parts=[types.Part(text="Paris and Tokyo?")]),
               r.candidates[0].content, answers]
    again = client.models.generate_content(model=G3, contents=history, config=cfg)
    assert "Echo: Paris and Tokyo?" in again.text
    # The call turn without its signature is refused, as Gemini 3 does.
    bare = types.Content(role="model", parts=[types.Part(function_call=c.function_call)
                                              for c in calls])
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=G3, contents=[history[0], bare, answers], config=cfg)
    assert info.value.code == 400 and "thought_signature" in info.value.message
    # A forged signature is refused too; Google's documented skip value is not.
    forged = types.Content(role="model", parts=[
        types.Part(function_call=calls[0].function_call, thought_signature=b"forged"),
        types.Part(function_call=calls[1].function_call)])
    with pytest.raises(errors.ClientError, match="Corrupted thought signature"):
        client.models.generate_content(model=G3, contents=[history[0], forged, answers],
                                       config=cfg)
    skip = [{"role": "user", "parts": [{"text": "x"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}},
                                         "thoughtSignature": "skip_thought_signature_validator"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                              "response": {}}}]}]
    assert raw(emu, G3, "generateContent", {"contents": skip}).status_code == 200


def test_non_thinking_models_issue_and_need_no_call_signatures(client, emu):
    emu.script(FLASH, TWO_CALLS)
    r = client.models.generate_content(model=FLASH, contents="x",
                                       config=types.GenerateContentConfig(tools=TOOLS))
    assert all(p.thought_signature is None for p in r.candidates[0].content.parts)


def test_scripted_rate_limit_carries_retry_info(client, emu):
    emu.script(FLASH, {"status": 429, "error": {"message": "Quota exceeded.",
                                                "retry_delay": "12s"},
                       "headers": {"x-extra": "1"}})
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=FLASH, contents="x")
    e = info.value
    assert (e.code, e.status, e.message) == (429, "RESOURCE_EXHAUSTED", "Quota exceeded.")
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"} in \
        e.details["error"]["details"]


def test_scripted_stream_error_and_abort(emu):
    emu.script(FLASH, {"error_event_after_chunks": 1, "reply": {"text": "a b c d"}})
    frames = raw(emu, FLASH, "streamGenerateContent", HELLO, query="?alt=sse").content \
        .split(b"\r\n\r\n")
    assert orjson.loads(frames[1][6:])["error"]["status"] == "UNAVAILABLE" and frames[2] == b""
    emu.script(FLASH, {"abort_after_chunks": 2, "reply": {"text": "a b c d"}})
    with pytest.raises(httpx.HTTPError):
        raw(emu, FLASH, "streamGenerateContent", HELLO, query="?alt=sse")
    assert emu.requests()[-1]["aborted"] is True


def test_count_tokens(client, emu):
    assert client.models.count_tokens(model=FLASH, contents="one two three").total_tokens == 3
    r = raw(emu, FLASH, "countTokens", {"generateContentRequest": {**HELLO, "model": FLASH}})
    assert r.json()["totalTokens"] == 2
    assert raw(emu, FLASH, "countTokens", {"contents": [], "bogus": 1}).status_code == 400


def test_models_list_in_googles_shape(emu):
    names = [m["name"] for m in httpx.get(f"{emu.url}/v1beta/models",
                                          headers={"x-goog-api-key": KEY}).json()["models"]]
    assert f"models/{FLASH}" in names
