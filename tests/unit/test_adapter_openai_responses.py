"""The OpenAI Responses upstream codec: request encoding, Response objects, typed streams."""
from __future__ import annotations

import orjson
import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from switchyard.common.canonical.aggregate import aggregate
from switchyard.common.config.model import ProviderEntry
from switchyard.common.proto import chat_pb2
from switchyard.providers import adapters
from switchyard.providers.adapters import openai_compat, openai_responses
from switchyard.providers.adapters.openai_responses_request import encode_body
from switchyard.providers.adapters.openai_responses_response import StreamDecoder
from switchyard.providers.adapters.openai_responses_signatures import pack, unpack
from tests.emulator import responses_upstream_render as render
from tests.emulator.plan import Plan, ToolCall, Usage
from tests.emulator.responses_upstream_check import check_responses, decrypt

P = chat_pb2.ContentPart
U, A, S, D = (chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_SYSTEM,
              chat_pb2.ROLE_DEVELOPER)
ENTRY = ProviderEntry(name="openai/gpt-5-codex", provider="openai", model="gpt-5-codex",
                      interface="openai_responses", endpoint="https://api.openai.com/v1/responses",
                      auth="bearer", access_key="sk-unit-0001")
EVENTS = TypeAdapter(ResponseStreamEvent)


def text(t: str) -> P:
    return P(text=chat_pb2.TextPart(text=t))


def msg(role: int, *parts: P) -> chat_pb2.Message:
    return chat_pb2.Message(role=role, parts=list(parts))


def req(*messages: chat_pb2.Message, **fields) -> chat_pb2.ChatRequest:
    fields.setdefault("source_format", chat_pb2.WIRE_FORMAT_ANTHROPIC)
    return chat_pb2.ChatRequest(model="m", messages=list(messages), **fields)


def test_wildcard_openai_entries_pick_the_responses_codec_for_responses_only_models():
    wildcard = ProviderEntry(name="openai/*", provider="openai", model="*", interface="openai",
                             endpoint="https://api.openai.com/v1/chat/completions", auth="bearer")
    assert adapters.for_model(openai_compat, wildcard, "o3-pro") is openai_responses
    assert adapters.for_model(openai_compat, wildcard, "gpt-4o") is openai_compat
    groq = ProviderEntry(name="groq/*", provider="groq", model="*", interface="openai",
                         endpoint="https://api.groq.com/openai/v1/chat/completions", auth="bearer")
    assert adapters.for_model(openai_compat, groq, "o3-pro") is openai_compat
    assert openai_responses.endpoint_url(wildcard, "o3-pro") == "https://api.openai.com/v1/responses"
    assert openai_responses.endpoint_url(ENTRY, "gpt-5-codex") == ENTRY.endpoint


def test_the_whole_conversation_goes_with_store_false():
    call = P(tool_call=chat_pb2.ToolCallPart(id="call_1", name="f", arguments_json='{"a":1}'))
    result = P(tool_result=chat_pb2.ToolResultPart(tool_call_id="call_1", content=[text("ok")]))
    image = P(image=chat_pb2.ImagePart(media_type="image/png", data_base64="iVBOR"))
    doc = P(document=chat_pb2.DocumentPart(media_type="application/pdf", data_base64="JVBE",
                                           filename="a.pdf"))
    body, dropped = encode_body(req(msg(S, text("rule one")), msg(D, text("rule two")),
                                    msg(U, text("look"), image, doc), msg(A, text("calling"), call),
                                    msg(U, result), msg(S, text("late rule"))), ENTRY, "gpt-5-codex")
    assert body["instructions"] == "rule one\n\nrule two"
    assert body["store"] is False and body["stream"] is False
    assert body["input"] == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBOR", "detail": "auto"},
            {"type": "input_file", "filename": "a.pdf",
             "file_data": "data:application/pdf;base64,JVBE"}]},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "calling", "annotations": []}]},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a":1}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
        {"type": "message", "role": "system", "content": [
            {"type": "input_text", "text": "late rule"}]}]
    assert dropped == []
    check_responses(body)   # the strict emulator accepts it


def test_only_openai_encrypted_reasoning_goes_back():
    mine = P(reasoning=chat_pb2.ReasoningPart(text="thought", signature=pack("gAAAAAblob")))
    theirs = P(reasoning=chat_pb2.ReasoningPart(text="claude", signature="EqClaudeSig"))
    body, _ = encode_body(req(msg(U, text("q")), msg(A, theirs, mine, text("a")), msg(U, text("b"))),
                          ENTRY, "gpt-5-codex")
    assert body["input"][1] == {"type": "reasoning",
                                "summary": [{"type": "summary_text", "text": "thought"}],
                                "encrypted_content": "gAAAAAblob"}
    assert [i.get("role", i["type"]) for i in body["input"]] == ["user", "reasoning",
                                                                 "assistant", "user"]
    assert unpack("EqClaudeSig") is None and unpack(pack("x")) == "x"


def test_cross_format_settings_for_a_reasoning_model():
    r = req(msg(U, text("q")), temperature=0.2, top_p=0.9, top_k=3, stop=["x"], max_tokens=5,
            reasoning=chat_pb2.Reasoning(budget_tokens=9000), user="u1", prompt_cache_key="k1",
            tools=[chat_pb2.Tool(name="t", parameters_json='{"type":"object"}'),
                   chat_pb2.Tool(type="web_search")],
            tool_choice=chat_pb2.ToolChoice(mode=chat_pb2.ToolChoice.MODE_NAMED, name="t"))
    body, dropped = encode_body(r, ENTRY, "gpt-5-codex")
    assert body["max_output_tokens"] == 16
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["tools"] == [{"type": "function", "name": "t", "parameters": {"type": "object"},
                              "strict": False}]
    assert body["tool_choice"] == {"type": "function", "name": "t"}
    assert (body["user"], body["prompt_cache_key"]) == ("u1", "k1")
    assert "temperature" not in body and "top_p" not in body
    assert dropped == ["tools[web_search]", "max_tokens", "temperature", "top_p", "top_k", "stop"]


def test_a_non_reasoning_model_keeps_sampling_and_gets_no_reasoning_fields():
    body, dropped = encode_body(req(msg(U, text("q")), temperature=0.2), ENTRY, "gpt-4.1")
    assert body["temperature"] == 0.2 and "reasoning" not in body and "include" not in body
    assert dropped == []


def test_same_format_routes_keep_what_the_client_sent():
    extra = {"text": {"verbosity": "low"}, "service_tier": "flex", "max_tool_calls": 3}
    r = req(msg(U, text("q")), source_format=chat_pb2.WIRE_FORMAT_OPENAI_RESPONSES,
            extra_json=orjson.dumps(extra), temperature=0.5,
            reasoning=chat_pb2.Reasoning(effort="low"),
            response_format_json=orjson.dumps({"type": "json_schema", "json_schema": {
                "name": "out", "schema": {"type": "object"}, "strict": True}}),
            tools=[chat_pb2.Tool(name="t", type="function", extra_json=b'{"strict": true}'),
                   chat_pb2.Tool(type="web_search", extra_json=b'{"search_context_size": "low"}')])
    body, dropped = encode_body(r, ENTRY, "gpt-5-codex")
    assert body["text"] == {"format": {"type": "json_schema", "name": "out",
                                       "schema": {"type": "object"}, "strict": True},
                            "verbosity": "low"}
    assert body["reasoning"] == {"effort": "low"} and body["temperature"] == 0.5
    assert body["tools"][0]["strict"] is True
    assert body["tools"][1] == {"type": "web_search", "search_context_size": "low"}
    assert (body["service_tier"], body["max_tool_calls"]) == ("flex", 3) and dropped == []


# ---- replies ---------------------------------------------------------------------------
PLAN = Plan(text="Sunny.", thinking="Look it up.", stop="tool_use",
            tool_calls=[ToolCall("call_7", "get_weather", '{"city":"Oslo"}')],
            usage=Usage(input=10, output=6, cache_read=4, reasoning=2))
CTX_BODY = {"model": "gpt-5-codex", "input": "x", "reasoning": {"summary": "auto"},
            "store": False}


def test_a_response_object_decodes_to_blocks():
    body = render.response_body(PLAN, render.ResponsesContext(id="resp_1", body=CTX_BODY))
    turn = aggregate(openai_responses.decode_response(body))
    parts = turn.choices[0].parts
    assert parts[0].reasoning.text == "Look it up."
    assert decrypt(unpack(parts[0].reasoning.signature)) == "Look it up."
    assert parts[1].text.text == "Sunny."
    assert (parts[2].tool_call.id, parts[2].tool_call.name) == ("call_7", "get_weather")
    assert turn.choices[0].stop_reason == chat_pb2.STOP_REASON_TOOL_USE
    assert (turn.usage.input_tokens, turn.usage.cache_read_tokens, turn.usage.output_tokens,
            turn.usage.reasoning_tokens) == (10, 4, 6, 2)


def stream(frames: list[bytes]) -> list[chat_pb2.StreamEvent]:
    dec, out = StreamDecoder(), []
    for frame in frames:
        data = frame.split(b"\ndata: ", 1)[1].rstrip(b"\n")
        EVENTS.validate_json(data)   # every emulated event is a valid openai-python event
        out += dec.feed(data)
    return out + dec.finish()


def test_a_stream_decodes_like_the_whole_response():
    ctx = render.ResponsesContext(id="resp_2", body=CTX_BODY, chunks=2)
    streamed = aggregate(stream(render.stream_frames(PLAN, ctx)))
    whole = aggregate(openai_responses.decode_response(render.response_body(PLAN, ctx)))
    assert [p.WhichOneof("kind") for p in streamed.choices[0].parts] == [
        "reasoning", "text", "tool_call"]
    assert streamed.choices[0].parts[1:] == whole.choices[0].parts[1:]
    assert streamed.choices[0].parts[0].reasoning.text == "Look it up."
    assert streamed.usage == whole.usage


def test_incomplete_refusal_and_failure():
    ctx = render.ResponsesContext(id="resp_3", body=CTX_BODY)
    cut = aggregate(stream(render.stream_frames(Plan(text="a b", stop="max_tokens"), ctx)))
    assert cut.choices[0].stop_reason == chat_pb2.STOP_REASON_MAX_TOKENS
    refused = aggregate(stream(render.stream_frames(Plan(refusal="No.", stop="refusal"), ctx)))
    assert refused.choices[0].stop_reason == chat_pb2.STOP_REASON_REFUSAL
    assert refused.choices[0].parts[0].text.text == "No."
    failed = StreamDecoder().feed(render.failed_frame(ctx, "overloaded", "server_error", 0)
                                  .split(b"data: ", 1)[1])
    assert failed[-1].error.message == "overloaded" and failed[-1].error.http_status == 500
    err = openai_responses.decode_stream_error({"type": "error", "code": "rate_limit_exceeded",
                                                "message": "slow", "sequence_number": 4})
    assert (err.http_status, err.type, err.message) == (429, "rate_limit", "slow")


def test_custom_tool_calls_become_json_arguments():
    dec = StreamDecoder()
    events = dec.event({"type": "response.output_item.added", "output_index": 0, "item": {
        "type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": ""}})
    events += dec.event({"type": "response.custom_tool_call_input.delta", "output_index": 0,
                         "delta": 'line "1"\n'})
    events += dec.event({"type": "response.output_item.done", "output_index": 0, "item": {
        "type": "custom_tool_call", "call_id": "c1", "name": "apply_patch",
        "input": 'line "1"\n'}})
    events += dec.event({"type": "response.completed", "response": {"status": "completed"}})
    turn = aggregate(events)
    call = turn.choices[0].parts[0].tool_call
    assert orjson.loads(call.arguments_json) == {"input": 'line "1"\n'}
    assert turn.choices[0].stop_reason == chat_pb2.STOP_REASON_TOOL_USE


def test_a_stream_that_ends_before_completion_is_an_error():
    dec = StreamDecoder()
    dec.event({"type": "response.created", "response": {"id": "r", "model": "m"}})
    assert dec.finish()[0].error.http_status == 502


@pytest.mark.parametrize("item", [{"type": "web_search_call", "id": "ws_1", "status": "completed"}])
def test_hosted_tool_items_are_skipped(item):
    events = openai_responses.decode_response({"id": "r", "model": "m", "status": "completed",
                                               "output": [item], "usage": None})
    assert [e.WhichOneof("event") for e in events] == ["start", "finish"]
