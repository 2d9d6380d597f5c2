"""The Gemini upstream codec: golden request bodies, whole and streamed replies (a recorded
emulator stream), thought signatures across a tool loop, errors and retry info."""
from __future__ import annotations

import dataclasses
import pathlib

import orjson
import pytest

from switchyard.common.canonical.aggregate import aggregate, turn_message
from switchyard.common.config.loader import parse_config
from switchyard.common.config.model import ProviderEntry
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.common.sse_parser import SSEParser
from switchyard.providers.adapters import for_interface, gemini
from switchyard.providers.adapters.gemini_ids import pack_call_id, unpack_call_id
from tests.emulator.errors import ApiError
from tests.emulator.gemini_check import check_gemini

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "gemini_stream_tools.sse"
ENTRY = ProviderEntry(name="gemini/*", provider="gemini", model="*", interface="gemini",
                      endpoint="https://g.test/v1beta/models/{model}:generateContent",
                      auth="x-goog-api-key", access_key="g-secret")
M = chat_pb2.Message
P = chat_pb2.ContentPart
WEATHER = chat_pb2.Tool(name="get_weather", description="Weather",
                        parameters_json='{"type":"object","properties":{"city":{"type":"string"}}}')


def text(t: str) -> chat_pb2.ContentPart:
    return P(text=chat_pb2.TextPart(text=t))


def user(*parts: chat_pb2.ContentPart) -> chat_pb2.Message:
    return M(role=chat_pb2.ROLE_USER, parts=list(parts))


def body_of(req: chat_pb2.ChatRequest, model: str = "gemini-2.0-flash") -> tuple[dict, list[str]]:
    raw, dropped = gemini.encode_request(req, ENTRY, model)
    return orjson.loads(raw), dropped


def test_the_codec_serves_the_gemini_interface():
    assert for_interface("gemini") is gemini
    assert gemini.WIRE == chat_pb2.WIRE_FORMAT_GEMINI


def test_encode_golden_body():
    req = chat_pb2.ChatRequest(
        model="g", source_format=chat_pb2.WIRE_FORMAT_OPENAI_CHAT, max_tokens=50,
        temperature=0.3, top_p=0.9, stop=["END"], tools=[WEATHER],
        tool_choice=chat_pb2.ToolChoice(mode=chat_pb2.ToolChoice.MODE_NAMED, name="get_weather"),
        reasoning=chat_pb2.Reasoning(effort="low"),
        response_format_json=b'{"type":"json_schema","json_schema":{"name":"w","schema":'
                             b'{"type":"object"}}}',
        extra_json=b'{"seed":7}',
        messages=[M(role=chat_pb2.ROLE_SYSTEM, parts=[text("Be brief.")]),
                  user(text("Look:"), P(image=chat_pb2.ImagePart(url="data:image/png;base64,iVBO")),
                       P(image=chat_pb2.ImagePart(url="https://x.test/cat.jpg")))])
    body, dropped = body_of(req)
    assert body == {
        "contents": [{"role": "user", "parts": [
            {"text": "Look:"}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/cat.jpg"}}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"functionDeclarations": [{
            "name": "get_weather", "description": "Weather",
            "parametersJsonSchema": {"type": "object",
                                     "properties": {"city": {"type": "string"}}}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY",
                                                 "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {"temperature": 0.3, "topP": 0.9, "maxOutputTokens": 50,
                             "stopSequences": ["END"], "responseMimeType": "application/json",
                             "responseJsonSchema": {"type": "object"},
                             "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True}},
    }
    assert dropped == ["seed"]   # cross-format: unnamed fields are reported, not sent
    check_gemini(body, "gemini-2.0-flash")   # the strict emulator accepts it


def test_same_format_route_merges_extra_json_back():
    req = chat_pb2.ChatRequest(
        source_format=chat_pb2.WIRE_FORMAT_GEMINI,
        extra_json=b'{"safetySettings":[{"category":"HARM_CATEGORY_HATE_SPEECH",'
                   b'"threshold":"BLOCK_NONE"}],"generationConfig":{"seed":3}}',
        messages=[user(P(text=chat_pb2.TextPart(text="hi"), extra_json=b'{"thought":false}'))])
    body, dropped = body_of(req)
    assert body["safetySettings"][0]["threshold"] == "BLOCK_NONE"
    assert body["generationConfig"] == {"seed": 3}
    assert body["contents"][0]["parts"] == [{"text": "hi", "thought": False}]
    assert dropped == []


def test_tool_results_name_their_function_from_the_matching_call():
    req = chat_pb2.ChatRequest(messages=[
        user(text("Weather?")),
        M(role=chat_pb2.ROLE_ASSISTANT, parts=[
            P(tool_call=chat_pb2.ToolCallPart(id="call_1", name="get_weather",
                                              arguments_json='{"city":"Paris"}')),
            P(tool_call=chat_pb2.ToolCallPart(id="call_2", name="get_time",
                                              arguments_json=""))]),
        # OpenAI clients send each result as its own message: they must share one turn.
        user(P(tool_result=chat_pb2.ToolResultPart(tool_call_id="call_2",
                                                   content=[text('{"t":"noon"}')]))),
        user(P(tool_result=chat_pb2.ToolResultPart(tool_call_id="call_1", is_error=True,
                                                   content=[text("no data")])))])
    body, _ = body_of(req)
    assert body["contents"][1] == {"role": "model", "parts": [
        {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"id": "call_2", "name": "get_time", "args": {}}}]}
    assert body["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"id": "call_2", "name": "get_time", "response": {"t": "noon"}}},
        {"functionResponse": {"id": "call_1", "name": "get_weather",
                              "response": {"error": "no data"}}}]}
    check_gemini(body, "gemini-2.0-flash")


def test_a_tool_result_without_its_call_is_the_clients_400():
    req = chat_pb2.ChatRequest(messages=[user(P(tool_result=chat_pb2.ToolResultPart(
        tool_call_id="call_x", content=[text("r")])))])
    with pytest.raises(GatewayError) as info:
        gemini.encode_request(req, ENTRY, "gemini-2.0-flash")
    assert info.value.http_status == 400


def test_thinking_off_and_on():
    off = chat_pb2.ChatRequest(reasoning=chat_pb2.Reasoning(effort="none"), messages=[user(text("x"))])
    assert body_of(off)[0]["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 0}}
    body, dropped = body_of(off, "gemini-3-pro-preview")   # Gemini 3 always thinks
    assert "generationConfig" not in body and dropped == ["reasoning_effort"]
    budget = chat_pb2.ChatRequest(reasoning=chat_pb2.Reasoning(budget_tokens=3000, enabled=True),
                                  messages=[user(text("x"))])
    assert body_of(budget)[0]["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 3000, "includeThoughts": True}


def test_endpoint_and_headers():
    assert gemini.endpoint_url(ENTRY, "gemini-2.0-flash", stream=False) == \
        "https://g.test/v1beta/models/gemini-2.0-flash:generateContent"
    assert gemini.endpoint_url(ENTRY, "gemini-2.0-flash", stream=True) == \
        "https://g.test/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    assert gemini.endpoint_url(ENTRY, "m").endswith("/models/m:generateContent")
    headers = gemini.build_headers(dataclasses.replace(ENTRY, headers={"x-extra": "1"}), "", {})
    assert headers == {"Content-Type": "application/json", "x-goog-api-key": "g-secret",
                       "x-extra": "1"}


def test_config_gemini_is_native_unless_the_openai_interface_is_asked_for():
    data = {"version": "v0.3.0", "listeners": [{"type": "model", "name": "l", "port": 1}],
            "model_providers": [
                {"model": "gemini/gemini-2.5-flash", "access_key": "k"},
                {"model": "gemini/gemini-2.0-flash", "access_key": "k",
                 "provider_interface": "openai"},
                {"model": "proxy/gemini-x", "access_key": "k", "provider_interface": "gemini",
                 "base_url": "http://h:9/v1beta"}]}
    native, compat, custom = parse_config(data).providers
    assert (native.interface, native.auth, native.endpoint) == (
        "gemini", "x-goog-api-key",
        "https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent")
    assert (compat.interface, compat.auth, compat.endpoint) == (
        "openai", "bearer",
        "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions")
    assert (custom.interface, custom.auth, custom.endpoint) == (
        "gemini", "x-goog-api-key", "http://h:9/v1beta/models/{model}:generateContent")


def test_decode_whole_response():
    body = {"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Hel"}, {"text": "lo"}]}, "finishReason": "MAX_TOKENS", "index": 0}],
        "usageMetadata": {"promptTokenCount": 30, "cachedContentTokenCount": 20,
                          "candidatesTokenCount": 5, "thoughtsTokenCount": 2,
                          "totalTokenCount": 37},
        "modelVersion": "gemini-2.0-flash", "responseId": "r1"}
    turn = aggregate(gemini.decode_response(body))
    assert (turn.start.id, turn.start.model) == ("r1", "gemini-2.0-flash")
    choice = turn.choices[0]
    assert [p.text.text for p in choice.parts] == ["Hello"]
    assert choice.stop_reason == chat_pb2.STOP_REASON_MAX_TOKENS
    assert (turn.usage.input_tokens, turn.usage.cache_read_tokens, turn.usage.output_tokens,
            turn.usage.reasoning_tokens) == (10, 20, 7, 2)


def test_a_blocked_prompt_is_a_refusal():
    turn = aggregate(gemini.decode_response({"promptFeedback": {"blockReason": "SAFETY"},
                                             "usageMetadata": {"promptTokenCount": 3}}))
    assert turn.choices[0].stop_reason == chat_pb2.STOP_REASON_REFUSAL


def _decode_fixture(split: int) -> list[chat_pb2.StreamEvent]:
    raw = FIXTURE.read_bytes()
    parser, decoder = SSEParser(), gemini.StreamDecoder()
    events: list[chat_pb2.StreamEvent] = []
    for i in range(0, len(raw), split):   # arbitrary network boundaries, CRLF split included
        for _, data in parser.feed(raw[i:i + split]):
            events += decoder.feed(data)
    for _, data in parser.close():
        events += decoder.feed(data)
    return events + decoder.finish()


@pytest.mark.parametrize("split", [7, 64, 100_000])
def test_stream_decode_of_a_recorded_stream(split):
    events = _decode_fixture(split)
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "start" and kinds[-1] == "finish" and "error" not in kinds
    turn = aggregate(events)
    parts = turn.choices[0].parts
    assert [p.WhichOneof("kind") for p in parts] == ["reasoning", "text", "tool_call", "tool_call"]
    assert parts[0].reasoning.text == "Two cities, two calls." and parts[0].reasoning.signature
    assert parts[1].text.text == "Checking both."
    first, second = parts[2].tool_call, parts[3].tool_call
    assert (first.name, orjson.loads(first.arguments_json)) == ("get_weather", {"city": "Paris"})
    assert orjson.loads(second.arguments_json) == {"city": "Tokyo"}
    assert first.id != second.id   # Gemini sent no ids: each call gets its own
    assert unpack_call_id(first.id)[1] and not unpack_call_id(second.id)[1]
    assert turn.choices[0].stop_reason == chat_pb2.STOP_REASON_TOOL_USE
    assert (turn.usage.input_tokens, turn.usage.cache_read_tokens, turn.usage.output_tokens,
            turn.usage.reasoning_tokens) == (10, 4, 12, 5)


def test_a_stream_without_finish_reason_is_cut():
    decoder = gemini.StreamDecoder()
    first = FIXTURE.read_bytes().split(b"\r\n\r\n")[0][len(b"data: "):]
    decoder.feed(first)
    assert decoder.finish()[-1].error.message == "upstream stream ended before completion"


def test_thought_signatures_survive_a_tool_loop():
    """Decode the recorded turn, fold it into history as the edge does, answer the calls:
    the next request carries both signatures back where Gemini put them, and the strict
    emulator (which 400s a gemini-3 call turn without its signature) accepts it."""
    assistant = turn_message(aggregate(_decode_fixture(100_000)).choices[0])
    ids = [p.tool_call.id for p in assistant.parts if p.WhichOneof("kind") == "tool_call"]
    req = chat_pb2.ChatRequest(
        source_format=chat_pb2.WIRE_FORMAT_ANTHROPIC, tools=[WEATHER],
        reasoning=chat_pb2.Reasoning(budget_tokens=2048, enabled=True),
        messages=[user(text("Weather in Paris and Tokyo?")), assistant,
                  user(*[P(tool_result=chat_pb2.ToolResultPart(tool_call_id=i,
                                                               content=[text("sunny")]))
                         for i in ids])])
    body, _ = body_of(req, "gemini-3-pro-preview")
    model_turn = body["contents"][1]["parts"]
    recorded = [orjson.loads(f[len(b"data: "):]) for f in
                FIXTURE.read_bytes().split(b"\r\n\r\n") if f]
    thought = recorded[0]["candidates"][0]["content"]["parts"][0]
    calls = recorded[-1]["candidates"][0]["content"]["parts"]
    assert model_turn[0] == {"text": thought["text"], "thought": True,
                             "thoughtSignature": thought["thoughtSignature"]}
    assert model_turn[2] == {"functionCall": calls[0]["functionCall"],
                             "thoughtSignature": calls[0]["thoughtSignature"]}
    assert model_turn[3] == {"functionCall": calls[1]["functionCall"]}
    assert [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]] == \
        ["get_weather", "get_weather"]
    check_gemini(body, "gemini-3-pro-preview")
    del model_turn[2]["thoughtSignature"]
    with pytest.raises(ApiError) as info:
        check_gemini(body, "gemini-3-pro-preview")
    assert "missing a thought_signature" in info.value.body["error"]["message"]


def test_call_ids_pack_and_unpack():
    assert unpack_call_id(pack_call_id("fc_1", "a+b/c==")) == ("fc_1", "a+b/c==")
    assert unpack_call_id(pack_call_id("gcall_00", "sig")) == ("", "sig")
    assert unpack_call_id("call_77") == ("call_77", "")
    packed = pack_call_id("x", "EkB+gR9l/ZZ=")
    assert set(packed) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def test_rate_limit_error_keeps_the_retry_delay():
    body = orjson.dumps({"error": {"code": 429, "message": "You exceeded your current quota.",
                                   "status": "RESOURCE_EXHAUSTED", "details": [
                                       {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                                       {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                        "retryDelay": "37s"}]}})
    err = gemini.decode_error(429, body, {})
    assert (err.http_status, err.type, err.message, err.retry_after, err.code) == (
        429, "rate_limit", "You exceeded your current quota.", 37.0, "RESOURCE_EXHAUSTED")
    assert gemini.decode_error(429, body, {"retry-after": "2"}).retry_after == 2.0


def test_other_errors():
    bad_key = orjson.dumps({"error": {"code": 400, "message": "API key not valid.",
                                      "status": "INVALID_ARGUMENT", "details": [
                                          {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                           "reason": "API_KEY_INVALID"}]}})
    err = gemini.decode_error(400, bad_key, {})
    assert (err.http_status, err.type) == (401, "authentication")
    err = gemini.decode_error(400, orjson.dumps({"error": {
        "code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}), {})
    assert (err.http_status, err.type, err.message) == (400, "invalid_request",
                                                        "Invalid JSON payload received.")
    err = gemini.decode_error(502, b"<html>Bad Gateway</html>", {})
    assert err.http_status == 502 and "Bad Gateway" in err.message
    err = gemini.decode_stream_error({"error": {"code": 503, "message": "The model is overloaded.",
                                                "status": "UNAVAILABLE"}})
    assert (err.http_status, err.type, err.message) == (503, "unavailable",
                                                        "The model is overloaded.")
    decoder = gemini.StreamDecoder()
    assert decoder.feed(b'{"error": {"status": "INTERNAL", "message": "x"}}')[0].error.http_status \
        == 500
