"""Anthropic upstream codec: cross-format encoding, headers, responses, streams, errors."""
from __future__ import annotations

from pathlib import Path

import orjson

from switchyard.common.canonical.aggregate import aggregate
from switchyard.common.config.model import ProviderEntry
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.common.sse_parser import SSEParser
from switchyard.edge.formats import openai_chat
from switchyard.providers.adapters import anthropic as an

FIX = Path(__file__).parent / "fixtures" / "upstream"
SR = chat_pb2.StopReason


def entry(**kw) -> ProviderEntry:
    base = dict(name="anthropic/*", provider="anthropic", model="*", interface="anthropic",
                endpoint="https://api.anthropic.com/v1/messages", auth="x-api-key",
                access_key="sk-ant-upstream")
    base.update(kw)
    return ProviderEntry(**base)


def openai_req(**body) -> chat_pb2.ChatRequest:
    base = {"model": "claude", "messages": [{"role": "user", "content": "hi"}]}
    base.update(body)
    return openai_chat.decode_request(base)


def enc(req: chat_pb2.ChatRequest, e: ProviderEntry | None = None,
        model: str = "claude-sonnet-4-20250514") -> tuple[dict, list[str]]:
    raw, dropped = an.encode_request(req, e or entry(), model)
    assert isinstance(raw, bytes)
    return orjson.loads(raw), dropped


def replay(name: str) -> list[chat_pb2.StreamEvent]:
    dec = an.StreamDecoder()
    parser = SSEParser()
    out: list[chat_pb2.StreamEvent] = []
    for _event, data in parser.feed((FIX / name).read_bytes()) + parser.close():
        out += dec.feed(data)
    return out + dec.finish()


def kinds(events) -> list[str]:
    return [e.WhichOneof("event") for e in events]


# ---- encode: OpenAI client -> Anthropic upstream ------------------------------------------
AGENT_TURN = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "developer", "content": "Use celsius."},
    {"role": "assistant", "content": "", "reasoning_content": "thinking without signature",
     "tool_calls": [
         {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
         {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
         {"id": "call_3", "type": "function", "function": {"name": "get_weather", "arguments": "{broken"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
    {"role": "tool", "tool_call_id": "call_3", "content": "error"},
    {"role": "user", "content": [
        {"type": "text", "text": "And this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]},
]


def test_system_and_developer_hoisted_in_order():
    got, _ = enc(openai_req(messages=AGENT_TURN))
    assert got["system"] == [{"type": "text", "text": "You are terse."},
                             {"type": "text", "text": "Use celsius."}]
    assert all(m["role"] in ("user", "assistant") for m in got["messages"])


def test_tool_loop_translation():
    got, _ = enc(openai_req(messages=AGENT_TURN))
    msgs = got["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[0] == {"role": "user", "content": "Weather in Paris and Rome?"}
    # empty text and signature-less reasoning are not sent; arguments parsed, bad ones -> {}
    assert msgs[1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
        {"type": "tool_use", "id": "call_3", "name": "get_weather", "input": {}}]
    # consecutive tool messages + the next user message: ONE user message, tool results first
    content = msgs[2]["content"]
    assert [b["type"] for b in content] == ["tool_result"] * 3 + ["text", "image", "image"]
    assert content[0] == {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"}
    assert content[1] == {"type": "tool_result", "tool_use_id": "call_2", "content": "21C"}
    assert content[4] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                      "data": "iVBORw0KGgo="}}
    assert content[5] == {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}


def test_first_message_must_be_user():
    got, _ = enc(openai_req(messages=[{"role": "system", "content": "s"},
                                      {"role": "assistant", "content": "Hello, how can I help?"},
                                      {"role": "user", "content": "Hi"}]))
    assert got["messages"] == [{"role": "user", "content": "."},
                               {"role": "assistant", "content": "Hello, how can I help?"},
                               {"role": "user", "content": "Hi"}]


def test_adjacent_user_messages_merged():
    got, _ = enc(openai_req(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]))
    assert got["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                            {"type": "text", "text": "b"}]}]


def test_max_tokens_defaults_per_model_and_entry_override():
    assert enc(openai_req())[0]["max_tokens"] == 64000
    assert enc(openai_req(), model="claude-3-5-haiku-20241022")[0]["max_tokens"] == 8192
    assert enc(openai_req(), entry(default_max_tokens=2048))[0]["max_tokens"] == 2048
    assert enc(openai_req(max_completion_tokens=300))[0]["max_tokens"] == 300


def test_reasoning_effort_to_thinking_budget_and_clamps():
    got, dropped = enc(openai_req(reasoning_effort="high", temperature=0.2))
    assert got["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert "temperature" not in got and dropped == ["temperature"]
    got, _ = enc(openai_req(reasoning_effort="high", max_tokens=4000))
    assert got["thinking"]["budget_tokens"] == 3999 and got["max_tokens"] == 4000
    got, _ = enc(openai_req(reasoning_effort="low", max_tokens=500))
    assert got["thinking"]["budget_tokens"] == 1024 and got["max_tokens"] == 1524
    got, _ = enc(openai_req(reasoning_effort="minimal"))
    assert got["thinking"]["budget_tokens"] == 1024 < got["max_tokens"]


def test_temperature_clamped_to_anthropic_range_cross_format():
    assert enc(openai_req(temperature=1.7))[0]["temperature"] == 1.0
    assert enc(openai_req(temperature=0.4))[0]["temperature"] == 0.4


def test_sampling_user_and_stop():
    got, _ = enc(openai_req(stop="END", user="u-1", top_p=0.5, stream=True,
                            stream_options={"include_usage": True}))
    assert got["stop_sequences"] == ["END"]
    assert got["metadata"] == {"user_id": "u-1"}
    assert got["top_p"] == 0.5 and got["stream"] is True
    assert "stream_options" not in got and "stop" not in got and "user" not in got


def test_tools_and_tool_choice():
    tools = [{"type": "function", "function": {"name": "f", "description": "d", "strict": True,
                                               "parameters": {"type": "object", "properties": {}}}},
             {"type": "function", "function": {"name": "g"}}]
    got, _ = enc(openai_req(tools=tools, tool_choice="required"))
    assert got["tools"] == [{"name": "f", "description": "d",
                             "input_schema": {"type": "object", "properties": {}}},
                            {"name": "g", "input_schema": {"type": "object", "properties": {}}}]
    assert got["tool_choice"] == {"type": "any"}
    got, _ = enc(openai_req(tools=tools, tool_choice={"type": "function", "function": {"name": "g"}}))
    assert got["tool_choice"] == {"type": "tool", "name": "g"}
    assert enc(openai_req(tools=tools, tool_choice="none"))[0]["tool_choice"] == {"type": "none"}
    got, _ = enc(openai_req(tools=tools, parallel_tool_calls=False))
    assert got["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    got, _ = enc(openai_req(tools=tools, tool_choice="auto", parallel_tool_calls=False))
    assert got["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_parameters_without_counterpart_are_named_in_dropped():
    got, dropped = enc(openai_req(frequency_penalty=0.1, presence_penalty=0.1,
                                  logit_bias={"1": 2}, logprobs=True, top_logprobs=1, seed=3,
                                  n=1, max_completion_tokens=100))
    assert set(dropped) == {"frequency_penalty", "presence_penalty", "logit_bias", "logprobs",
                            "top_logprobs", "seed", "n"}
    for name in dropped:
        assert name not in got
    assert "max_completion_tokens" not in got and got["max_tokens"] == 100


def test_signed_reasoning_goes_back_byte_for_byte():
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_OPENAI_RESPONSES, messages=[
        chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text="q"))]),
        chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, parts=[
            chat_pb2.ContentPart(reasoning=chat_pb2.ReasoningPart(text="t", signature="sig/+=")),
            chat_pb2.ContentPart(reasoning=chat_pb2.ReasoningPart(redacted=True, redacted_data="RD==")),
            chat_pb2.ContentPart(reasoning=chat_pb2.ReasoningPart(text="unsigned")),
            chat_pb2.ContentPart(tool_call=chat_pb2.ToolCallPart(id="t1", name="f", arguments_json="[1]"))])])
    got, _ = enc(req)
    assert got["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "t", "signature": "sig/+="},
        {"type": "redacted_thinking", "data": "RD=="},
        {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]



def test_openai_encrypted_reasoning_is_not_sent_to_anthropic():
    """A conversation moving from an OpenAI Responses upstream: its encrypted blob is not an
    Anthropic signature, and Anthropic would refuse the request over it."""
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_OPENAI_RESPONSES, messages=[
        chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text="q"))]),
        chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, parts=[
            chat_pb2.ContentPart(reasoning=chat_pb2.ReasoningPart(
                text="t", signature="openai-encrypted:gAAAA")),
            chat_pb2.ContentPart(text=chat_pb2.TextPart(text="a"))])])
    got, _ = enc(req)
    assert got["messages"][1]["content"] in ("a", [{"type": "text", "text": "a"}])

# ---- headers -------------------------------------------------------------------------------
def test_headers_version_beta_and_auth():
    h = an.build_headers(entry(), "client", {})
    assert h["x-api-key"] == "sk-ant-upstream" and h["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in h and "Authorization" not in h
    h = an.build_headers(entry(passthrough_auth=True), "client",
                         {"Anthropic-Version": "2024-01-01", "anthropic-beta": "prompt-caching-2024-07-31"})
    assert h["x-api-key"] == "client" and h["anthropic-version"] == "2024-01-01"
    assert h["anthropic-beta"] == "prompt-caching-2024-07-31"
    h = an.build_headers(entry(auth="bearer", headers={"X-Proxy": "1"}), "", {})
    assert h["Authorization"] == "Bearer sk-ant-upstream" and h["X-Proxy"] == "1"
    assert an.endpoint_url(entry(), "claude-x") == "https://api.anthropic.com/v1/messages"


# ---- non-streaming responses ---------------------------------------------------------------
def test_decode_response_tool_use_with_thinking():
    body = orjson.loads((FIX / "anthropic_response_tool_use.json").read_bytes())
    events = an.decode_response(body)
    assert kinds(events) == ["start",
                             "block_start", "delta", "delta", "block_stop",
                             "block_start", "block_stop",
                             "block_start", "delta", "block_stop",
                             "block_start", "delta", "block_stop",
                             "finish"]
    assert [e.block_start.index for e in events if e.WhichOneof("event") == "block_start"] == [0, 1, 2, 3]
    s = events[0].start
    assert (s.id, s.model, s.usage.input_tokens) == ("msg_01Aq9w938a90dw8q", "claude-sonnet-4-20250514", 2095)
    turn = aggregate(events)
    th, red, text, tool = turn.choices[0].parts
    assert th.reasoning.signature == body["content"][0]["signature"]
    assert th.reasoning.text == body["content"][0]["thinking"]
    assert red.reasoning.redacted and red.reasoning.redacted_data == body["content"][1]["data"]
    assert text.text.text == "I'll check the current weather in San Francisco for you."
    assert orjson.loads(tool.tool_call.arguments_json) == {"location": "San Francisco, CA", "unit": "celsius"}
    assert turn.choices[0].stop_reason == SR.STOP_REASON_TOOL_USE
    u = turn.usage
    assert (u.input_tokens, u.output_tokens, u.cache_creation_tokens, u.cache_read_tokens) == (2095, 503, 2051, 10)


def test_decode_response_stop_sequence():
    events = an.decode_response(orjson.loads((FIX / "anthropic_response_stop_sequence.json").read_bytes()))
    f = events[-1].finish
    assert f.stop_reason == SR.STOP_REASON_STOP_SEQUENCE and f.stop_sequence == "\n\nHuman:"


# ---- streams -------------------------------------------------------------------------------
def test_stream_text():
    events = replay("anthropic_stream_text.sse")
    assert kinds(events) == ["start", "block_start", "delta", "delta", "block_stop", "finish"]
    assert events[0].start.usage.input_tokens == 25
    assert events[0].start.id == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
    f = events[-1].finish
    assert f.stop_reason == SR.STOP_REASON_END_TURN
    assert (f.usage.input_tokens, f.usage.output_tokens) == (25, 15)
    assert aggregate(events).choices[0].parts[0].text.text == "Hello!"


def test_stream_tool_use():
    events = replay("anthropic_stream_tool_use.sse")
    turn = aggregate(events)
    text, tool = turn.choices[0].parts
    assert text.text.text == "Okay, let's check the weather for San Francisco, CA:"
    assert tool.tool_call.id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    assert orjson.loads(tool.tool_call.arguments_json) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert turn.choices[0].stop_reason == SR.STOP_REASON_TOOL_USE
    assert (turn.usage.input_tokens, turn.usage.cache_read_tokens, turn.usage.output_tokens) == (472, 100, 89)
    assert [e.delta.index for e in events if e.WhichOneof("event") == "delta"][-1] == 1


def test_stream_thinking_with_signature_and_redacted():
    turn = aggregate(replay("anthropic_stream_thinking.sse"))
    th, red, text = turn.choices[0].parts
    assert th.reasoning.text.startswith("Let me solve this step by step")
    assert th.reasoning.text.endswith("453 = 400 + 50 + 3")
    assert th.reasoning.signature == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."
    assert red.reasoning.redacted_data == "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw..."
    assert text.text.text == "27 * 453 = 12,231"


def test_stream_error_event_mid_stream():
    events = replay("anthropic_stream_error.sse")
    assert kinds(events) == ["start", "block_start", "delta", "error"]
    err = events[-1].error
    assert (err.http_status, err.type, err.message) == (529, "overloaded", "Overloaded")


def test_stream_cut_before_message_delta_is_an_error():
    events = replay("anthropic_stream_cut.sse")
    assert kinds(events)[-1] == "error"
    assert events[-1].error.message == "upstream stream ended before completion"
    assert events[-1].error.http_status == 502


def test_stream_message_stop_without_message_delta_still_finishes():
    dec = an.StreamDecoder()
    dec.feed(b'{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":3}}}')
    dec.feed(b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}')
    dec.feed(b'{"type":"message_stop"}')
    out = dec.finish()
    assert kinds(out) == ["block_stop", "finish"]


def test_stream_unknown_block_types_are_ignored_with_their_deltas():
    dec = an.StreamDecoder()
    dec.feed(b'{"type":"message_start","message":{"id":"m","model":"c","usage":{}}}')
    out = dec.feed(b'{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"s","name":"web_search","input":{}}}')
    out += dec.feed(b'{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}')
    out += dec.feed(b'{"type":"content_block_stop","index":0}')
    assert out == []


# ---- errors --------------------------------------------------------------------------------
def test_decode_error_overloaded_is_529():
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}'
    err = an.decode_error(529, body, {"retry-after": "2"})
    assert (err.http_status, err.type, err.message, err.retry_after) == (529, "overloaded", "Overloaded", 2.0)
    assert an.decode_error(503, body, {}).http_status == 529


def test_decode_error_keeps_message_and_maps_status():
    body = b'{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}'
    err = an.decode_error(400, body, {})
    assert (err.http_status, err.type, err.message) == (400, "invalid_request", "messages: roles must alternate")
    err = an.decode_error(413, b'{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}', {})
    assert err.type == "request_too_large"
    err = an.decode_error(429, b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}',
                          {"retry-after-ms": "250"})
    assert (err.type, err.retry_after) == ("rate_limit", 0.25)


def test_decode_stream_error_payload():
    err = an.decode_stream_error({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}})
    assert (err.http_status, err.type, err.message) == (500, "api_error", "Internal server error")


def test_tool_results_first_in_their_user_message():
    text = chat_pb2.ContentPart(text=chat_pb2.TextPart(text="here you go"))
    result = chat_pb2.ContentPart(tool_result=chat_pb2.ToolResultPart(
        tool_call_id="t1", is_error=True, content=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text="boom"))]))
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_OPENAI_RESPONSES, messages=[
        chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text="q"))]),
        chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, parts=[
            chat_pb2.ContentPart(tool_call=chat_pb2.ToolCallPart(id="t1", name="f", arguments_json="{}"))]),
        chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[text]),
        chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[text, result])])
    got, _ = enc(req)
    assert got["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True},
        {"type": "text", "text": "here you go"}, {"type": "text", "text": "here you go"}]


def test_arguments_nested_too_deep_to_encode_are_the_clients_400():
    """Tool-call arguments become an object upstream; JSON deeper than orjson writes is a
    400 naming the cause, not a codec failure (a 500)."""
    deep = "[" * 300 + "]" * 300
    req = openai_req(messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "f", "arguments": '{"a": ' + deep + "}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"}])
    try:
        an.encode_request(req, entry(), "claude-sonnet-4-20250514")
    except GatewayError as exc:
        assert exc.http_status == 400 and "cannot be encoded" in exc.message
    else:
        raise AssertionError("a body orjson cannot write must be refused")
