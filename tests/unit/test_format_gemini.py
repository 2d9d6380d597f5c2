"""Gemini client codec, request side and whole replies: golden bodies in, canonical out;
canonical turns in, Google's JSON out; errors in Google's shape."""
from __future__ import annotations

import orjson
import pytest

from switchyard.common.canonical.aggregate import Choice, Turn
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats.gemini import FORMAT, STREAM_KEY, decode_request, encode_response
from switchyard.edge.formats.gemini.schema import to_json_schema
from switchyard.edge.formats.gemini.signatures import from_client, to_client

TC = chat_pb2.ToolChoice


def decode(body: dict) -> chat_pb2.ChatRequest:
    return decode_request({"model": "models/gpt-4o-mini", **body})[0]


def user(text: str = "hi") -> dict:
    return {"role": "user", "parts": [{"text": text}]}


def test_model_path_prefix_and_stream_flag():
    req, ctx = decode_request({"model": "models/claude-x", "contents": [user()],
                               STREAM_KEY: "json"})
    assert req.model == "claude-x" and req.stream and not ctx.sse
    assert req.source_format == chat_pb2.WIRE_FORMAT_GEMINI
    req, ctx = decode_request({"model": "gpt-4o", "contents": [user()]})
    assert req.model == "gpt-4o" and not req.stream and ctx.sse


def test_contents_system_and_roles():
    req = decode({"systemInstruction": {"parts": [{"text": "be brief"}, {"text": "be kind"}]},
                  "contents": [user("a"), {"role": "model", "parts": [{"text": "b"}]},
                               {"parts": [{"text": "c"}]}]})
    roles = [m.role for m in req.messages]
    assert roles == [chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_USER,
                     chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_USER]
    assert [m.parts[0].text.text for m in req.messages] == ["be brief", "be kind", "a", "b",
                                                            "c"]


@pytest.mark.parametrize("spelling", ["camel", "snake"])
def test_camel_and_snake_case_decode_alike(spelling):
    camel = {"systemInstruction": {"parts": [{"text": "sys"}]},
             "contents": [{"role": "user", "parts": [
                 {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
                 {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/f.pdf"}}]}],
             "toolConfig": {"functionCallingConfig": {"mode": "ANY",
                                                      "allowedFunctionNames": ["f"]}},
             "generationConfig": {"maxOutputTokens": 9, "topP": 0.5, "topK": 3.0,
                                  "stopSequences": ["x"],
                                  "thinkingConfig": {"thinkingBudget": 2048}}}
    body = camel if spelling == "camel" else orjson.loads(
        orjson.dumps(camel).replace(b"systemInstruction", b"system_instruction")
        .replace(b"inlineData", b"inline_data").replace(b"mimeType", b"mime_type")
        .replace(b"fileData", b"file_data").replace(b"fileUri", b"file_uri")
        .replace(b"toolConfig", b"tool_config")
        .replace(b"functionCallingConfig", b"function_calling_config")
        .replace(b"allowedFunctionNames", b"allowed_function_names")
        .replace(b"generationConfig", b"generation_config")
        .replace(b"maxOutputTokens", b"max_output_tokens").replace(b"topP", b"top_p")
        .replace(b"topK", b"top_k").replace(b"stopSequences", b"stop_sequences")
        .replace(b"thinkingConfig", b"thinking_config")
        .replace(b"thinkingBudget", b"thinking_budget"))
    req = decode(body)
    image, doc = req.messages[1].parts
    assert (image.image.media_type, image.image.data_base64) == ("image/png", "iVBOR")
    assert (doc.document.media_type, doc.document.url) == ("application/pdf", "gs://b/f.pdf")
    assert (req.tool_choice.mode, req.tool_choice.name) == (TC.MODE_NAMED, "f")
    assert (req.max_tokens, req.top_p, req.top_k, list(req.stop)) == (9, 0.5, 3, ["x"])
    assert req.reasoning.enabled and req.reasoning.budget_tokens == 2048
    assert req.extra_json == b""


def test_function_call_loop_pairs_ids_and_keeps_signatures():
    sig = "EkCTOpMqCsMPITL98ZYVnfZ4+e1TMnzT8TaaSywYK2lM65M6kyoKww8hMv3xlhWd9nj5"
    req = decode({"contents": [
        user("weather?"),
        {"role": "model", "parts": [
            {"text": "Let me think", "thought": True, "thoughtSignature": sig},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
             "thoughtSignature": sig},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}},
            {"functionResponse": {"name": "get_weather", "response": {"error": "down"}}}]}]})
    thought, call1, call2 = req.messages[1].parts
    assert (thought.reasoning.text, thought.reasoning.signature) == ("Let me think", sig)
    assert call1.tool_call.name == "get_weather"
    assert orjson.loads(call1.tool_call.arguments_json) == {"city": "Paris"}
    assert orjson.loads(call1.extra_json) == {"thoughtSignature": sig}
    assert call1.tool_call.id != call2.tool_call.id
    r1, r2 = req.messages[2].parts
    assert r1.tool_result.tool_call_id == call1.tool_call.id
    assert r2.tool_result.tool_call_id == call2.tool_call.id
    assert r1.tool_result.content[0].text.text == "sunny" and not r1.tool_result.is_error
    assert r2.tool_result.content[0].text.text == "down" and r2.tool_result.is_error


def test_tools_with_either_schema_and_native_tools():
    req = decode({"contents": [user()], "tools": [
        {"functionDeclarations": [
            {"name": "a", "description": "A", "parameters": {
                "type": "OBJECT", "properties": {"x": {"type": "STRING", "nullable": True}},
                "required": ["x"], "propertyOrdering": ["x"]}},
            {"name": "b", "parametersJsonSchema": {"type": "object", "properties": {}}},
            {"name": "c", "behavior": "NON_BLOCKING"}]},
        {"googleSearch": {}}]})
    a, b, c, native = req.tools
    assert orjson.loads(a.parameters_json) == {
        "type": "object", "properties": {"x": {"type": ["string", "null"]}}, "required": ["x"]}
    assert orjson.loads(b.parameters_json) == {"type": "object", "properties": {}}
    assert orjson.loads(c.parameters_json) == {"type": "object", "properties": {}}
    assert orjson.loads(c.extra_json) == {"behavior": "NON_BLOCKING"}
    assert native.type == "googleSearch"


def test_structured_output_from_the_sdks_pydantic_schema():
    # What google-genai sends for response_schema=<pydantic model>: Gemini Schema, mixed case.
    req = decode({"contents": [user()], "generationConfig": {
        "responseMimeType": "application/json", "responseSchema": {
            "properties": {"a": {"title": "A", "type": "INTEGER"},
                           "b": {"items": {"type": "STRING"}, "nullable": True,
                                 "title": "B", "type": "ARRAY"}},
            "property_ordering": ["a", "b"], "required": ["a"], "title": "M",
            "type": "OBJECT"}}})
    assert orjson.loads(req.response_format_json) == {"type": "json_schema", "json_schema": {
        "name": "M", "schema": {
            "properties": {"a": {"title": "A", "type": "integer"},
                           "b": {"items": {"type": "string"}, "title": "B",
                                 "type": ["array", "null"]}},
            "required": ["a"], "title": "M", "type": "object"}}}


def test_json_schema_and_json_mode():
    req = decode({"contents": [user()], "generationConfig": {
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}}})
    fmt = orjson.loads(req.response_format_json)
    assert fmt["json_schema"]["name"] == "response"
    assert fmt["json_schema"]["schema"]["properties"] == {"n": {"type": "integer"}}
    req = decode({"contents": [user()],
                  "generationConfig": {"responseMimeType": "application/json"}})
    assert orjson.loads(req.response_format_json) == {"type": "json_object"}


def test_unnamed_fields_ride_in_extra_json():
    req = decode({"contents": [user()], "cachedContent": "cachedContents/1",
                  "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH",
                                      "threshold": "BLOCK_NONE"}],
                  "generationConfig": {"seed": 7, "temperature": 0.3, "thinkingConfig": {
                      "includeThoughts": True, "thinkingLevel": "low"}}})
    assert orjson.loads(req.extra_json) == {
        "cachedContent": "cachedContents/1",
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH",
                            "threshold": "BLOCK_NONE"}],
        "generationConfig": {"seed": 7, "thinkingConfig": {"includeThoughts": True}}}
    assert req.temperature == pytest.approx(0.3) and req.reasoning.effort == "low"


@pytest.mark.parametrize("body, param", [
    ({}, "contents"),
    ({"contents": []}, "contents"),
    ({"contents": "hi"}, "contents"),
    ({"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ({"contents": [{"role": "user", "parts": []}]}, "contents[0].parts"),
    ({"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]}, "contents[0].parts[0]"),
    ({"contents": [user()], "generationConfig": {"candidateCount": 2}},
     "generation_config.candidate_count"),
    ({"contents": [user()], "generationConfig": {"temperature": 3}},
     "generation_config.temperature"),
    ({"contents": [user()], "generationConfig": {"responseSchema": {"type": "OBJECT"}}},
     "generation_config.response_mime_type"),
    ({"contents": [user()], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
     "tool_config.function_calling_config.mode"),
    ({"contents": [user()], "generationConfig": {"thinkingConfig": {"thinkingBudget": -5}}},
     "generation_config.thinking_config.thinking_budget"),
])
def test_malformed_bodies_are_400s_naming_the_field(body, param):
    with pytest.raises(GatewayError) as info:
        decode(body)
    assert info.value.http_status == 400 and info.value.param == param


def test_missing_model_is_a_400():
    with pytest.raises(GatewayError) as info:
        decode_request({"contents": [user()]})
    assert info.value.http_status == 400 and info.value.param == "model"


def turn(*parts: chat_pb2.ContentPart, stop=chat_pb2.STOP_REASON_END_TURN,
         usage: chat_pb2.Usage | None = None) -> Turn:
    return Turn(choices=[Choice(parts=list(parts), stop_reason=stop)],
                usage=usage or chat_pb2.Usage())


def test_encode_whole_reply_golden():
    t = turn(chat_pb2.ContentPart(reasoning=chat_pb2.ReasoningPart(text="hmm", signature="")),
             chat_pb2.ContentPart(text=chat_pb2.TextPart(text="Hello")),
             chat_pb2.ContentPart(tool_call=chat_pb2.ToolCallPart(
                 id="call_1", name="f", arguments_json='{"x": 1}')),
             stop=chat_pb2.STOP_REASON_TOOL_USE,
             usage=chat_pb2.Usage(input_tokens=10, cache_read_tokens=20, output_tokens=7,
                                  reasoning_tokens=3))
    assert encode_response(t, model="fast-model", response_id="resp_1") == {
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "hmm", "thought": True}, {"text": "Hello"},
            {"functionCall": {"id": "call_1", "name": "f", "args": {"x": 1}}}]},
            "index": 0, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 4,
                          "totalTokenCount": 37, "thoughtsTokenCount": 3,
                          "cachedContentTokenCount": 20},
        "modelVersion": "fast-model", "responseId": "resp_1"}


def test_finish_reasons():
    for stop, name in ((chat_pb2.STOP_REASON_MAX_TOKENS, "MAX_TOKENS"),
                       (chat_pb2.STOP_REASON_REFUSAL, "SAFETY"),
                       (chat_pb2.STOP_REASON_STOP_SEQUENCE, "STOP")):
        body = encode_response(turn(stop=stop), model="m", response_id="r")
        assert body["candidates"][0]["finishReason"] == name
        assert body["candidates"][0]["content"]["parts"] == [{"text": ""}]


def test_foreign_signatures_become_base64_and_come_back():
    anthropic_sig = "Eq" + "A" * 10 + "+/x"   # not canonical base64
    wrapped = to_client(anthropic_sig)
    assert wrapped != anthropic_sig and from_client(wrapped) == anthropic_sig
    url_safe = wrapped.replace("+", "-").replace("/", "_")   # what the Python SDK sends back
    assert from_client(url_safe) == anthropic_sig
    google = "EkCTOpMq+/8="
    assert to_client(google) == google and from_client("EkCTOpMq-_8=") == google
    t = turn(chat_pb2.ContentPart(reasoning=chat_pb2.ReasoningPart(
        text="t", signature=anthropic_sig)))
    part = encode_response(t, model="m", response_id="r")["candidates"][0]["content"]["parts"][0]
    assert part == {"text": "t", "thought": True, "thoughtSignature": wrapped}
    back = decode({"contents": [{"role": "model", "parts": [part]}]})
    assert back.messages[0].parts[0].reasoning.signature == anthropic_sig


@pytest.mark.parametrize("status, code, name", [
    (400, 400, "INVALID_ARGUMENT"), (401, 401, "UNAUTHENTICATED"), (403, 403,
                                                                    "PERMISSION_DENIED"),
    (404, 404, "NOT_FOUND"), (429, 429, "RESOURCE_EXHAUSTED"), (500, 500, "INTERNAL"),
    (503, 503, "UNAVAILABLE"), (504, 504, "DEADLINE_EXCEEDED"), (529, 503, "UNAVAILABLE")])
def test_error_bodies_in_googles_shape(status, code, name):
    assert FORMAT.error_body(GatewayError(status, "nope")) == (
        code, {"error": {"code": code, "message": "nope", "status": name}})


def test_schema_conversion_keeps_json_schema_words():
    assert to_json_schema({"type": "ARRAY", "min_items": 1, "items": {
        "anyOf": [{"type": "STRING", "enum": ["a"]}, {"type": "NUMBER"}], "nullable": True},
        "example": [1]}) == {"type": "array", "minItems": 1, "items": {
            "anyOf": [{"type": "string", "enum": ["a"]}, {"type": "number"},
                      {"type": "null"}]}}
