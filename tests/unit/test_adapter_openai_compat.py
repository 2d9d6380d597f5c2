"""OpenAI-compatible upstream codec: cross-format encoding, headers, responses, streams, errors."""
from __future__ import annotations

from pathlib import Path

import orjson

from switchyard.common.canonical.aggregate import aggregate
from switchyard.common.config.model import ProviderEntry
from switchyard.common.proto import chat_pb2
from switchyard.common.sse_parser import SSEParser
from switchyard.edge.formats import anthropic_messages
from switchyard.providers.adapters import openai_compat as oc

FIX = Path(__file__).parent / "fixtures" / "upstream"
SR = chat_pb2.StopReason


def entry(provider: str = "openai", **kw) -> ProviderEntry:
    base = dict(name=f"{provider}/m", provider=provider, model="m", interface="openai",
                endpoint="https://api.example.test/v1/chat/completions", auth="bearer",
                access_key="sk-upstream")
    base.update(kw)
    return ProviderEntry(**base)


def replay(name: str, dec: oc.StreamDecoder | None = None) -> list[chat_pb2.StreamEvent]:
    """Feed a recorded SSE transcript through the parser and decoder, then end the stream."""
    dec = dec or oc.StreamDecoder()
    parser = SSEParser()
    out: list[chat_pb2.StreamEvent] = []
    for _event, data in parser.feed((FIX / name).read_bytes()) + parser.close():
        out += dec.feed(data)
    return out + dec.finish()


def kinds(events) -> list[str]:
    return [e.WhichOneof("event") for e in events]


def anthropic_req(**body) -> chat_pb2.ChatRequest:
    base = {"model": "claude-x", "max_tokens": 1000,
            "messages": [{"role": "user", "content": "hi"}]}
    base.update(body)
    return anthropic_messages.decode_request(base)


def enc(req: chat_pb2.ChatRequest, e: ProviderEntry | None = None,
        model: str = "gpt-4o") -> tuple[dict, list[str]]:
    raw, dropped = oc.encode_request(req, e or entry(), model)
    assert isinstance(raw, bytes)
    return orjson.loads(raw), dropped


# ---- encode: Anthropic client -> OpenAI-compatible upstream ------------------------------
def test_cross_format_full_translation_and_dropped_list():
    body = orjson.loads((FIX / "anthropic_request_roundtrip.json").read_bytes())
    got, dropped = enc(anthropic_messages.decode_request(body), model="o4-mini")
    msgs = got["messages"]
    # system blocks stay as system messages, in order, no cache_control
    assert msgs[0] == {"role": "system",
                       "content": "You are an AI assistant tasked with analyzing literary works."}
    assert msgs[1] == {"role": "system", "content": "<the entire contents of Pride and Prejudice>"}
    user = msgs[2]["content"]
    assert user[0] == {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}}
    assert user[1]["image_url"]["url"].startswith("https://upload.wikimedia.org/")
    assert user[2] == {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQK",
                                                "filename": "Paper"}}
    assert user[3] == {"type": "text", "text": "The grass is green."}
    # thinking and redacted thinking are not sent back; tool call arguments are a JSON string
    assistant = msgs[3]
    assert assistant["content"] == "I'll check the current weather."
    call = assistant["tool_calls"][0]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert orjson.loads(call["function"]["arguments"]) == {"location": "San Francisco, CA",
                                                           "unit": "celsius"}
    # each tool_result is its own role:tool message, before the user's text
    assert msgs[4] == {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9",
                       "content": "15 degrees"}
    assert msgs[5] == {"role": "tool", "tool_call_id": "toolu_02",
                       "content": "error: timeout\nretry later"}
    assert msgs[6] == {"role": "user", "content": "Thanks"}
    assert got["tools"][0] == {"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a given location",
        "parameters": body["tools"][0]["input_schema"]}}
    assert len(got["tools"]) == 1
    assert got["tool_choice"] == "auto" and got["parallel_tool_calls"] is False
    assert got["max_completion_tokens"] == 16000 and "max_tokens" not in got
    assert got["reasoning_effort"] == "medium"  # budget 10000 -> nearest effort at or below
    assert got["stop"] == ["\n\nHuman:"]
    assert got["user"] == "13803d75-b4b5-4c3e-b2a2-6f21399b021b"
    assert got["stream"] is True and got["stream_options"] == {"include_usage": True}
    assert "metadata" not in got and "service_tier" not in got and "container" not in got
    assert set(dropped) == {"tools[web_search]", "tools[bash]", "service_tier", "container"}


def test_translated_effort_is_dropped_for_openai_models_without_reasoning():
    req = anthropic_req(max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2048})
    got, dropped = enc(req, model="gpt-4o")
    assert "reasoning_effort" not in got and dropped == ["reasoning_effort"]
    got, dropped = enc(req, entry("vllm"), model="gpt-4o")   # a server of its own: sent
    assert got["reasoning_effort"] == "low" and dropped == []


def test_developer_role_kept_for_openai_mapped_to_system_elsewhere():
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_OPENAI_RESPONSES, messages=[
        chat_pb2.Message(role=chat_pb2.ROLE_DEVELOPER,
                         parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text="rules"))]),
        chat_pb2.Message(role=chat_pb2.ROLE_USER,
                         parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text="hi"))])])
    assert enc(req)[0]["messages"][0]["role"] == "developer"
    assert enc(req, entry("azure_openai"))[0]["messages"][0]["role"] == "developer"
    assert enc(req, entry("groq"))[0]["messages"][0]["role"] == "system"
    assert enc(req, entry("vllm"))[0]["messages"][0]["role"] == "system"


def test_documents_dropped_with_a_note_for_servers_without_file_parts():
    req = anthropic_req(messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERi0="}},
        {"type": "text", "text": "summarise"}]}])
    got, dropped = enc(req, entry("groq"))
    assert got["messages"] == [{"role": "user", "content": "summarise"}]
    assert dropped == ["document"]
    assert got["max_tokens"] == 1000 and "max_completion_tokens" not in got


def test_tool_choice_modes_and_named():
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    assert enc(anthropic_req(tools=tools, tool_choice={"type": "any"}))[0]["tool_choice"] == "required"
    assert enc(anthropic_req(tools=tools, tool_choice={"type": "none"}))[0]["tool_choice"] == "none"
    assert enc(anthropic_req(tools=tools, tool_choice={"type": "tool", "name": "f"}))[0][
        "tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert "tool_choice" not in enc(anthropic_req(tools=tools))[0]


def test_top_k_sent_to_self_hosted_servers_dropped_for_openai():
    req = anthropic_req(top_k=40, temperature=0.3)
    got, dropped = enc(req)
    assert "top_k" not in got and dropped == ["top_k"] and got["temperature"] == 0.3
    got, dropped = enc(req, entry("vllm"))
    assert got["top_k"] == 40 and dropped == []


def test_non_stream_sends_stream_false_without_stream_options():
    got, _ = enc(anthropic_req())
    assert got["stream"] is False and "stream_options" not in got


def test_tool_result_image_has_no_counterpart_in_tool_messages():
    req = anthropic_req(messages=[
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "text", "text": "done"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]}]}])
    got, dropped = enc(req)
    assert got["messages"][0]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert got["messages"][1] == {"role": "tool", "tool_call_id": "t1", "content": "done"}
    assert dropped == ["tool_result.image"]


def test_same_format_file_part_by_id_is_carried_by_extra_json():
    part = chat_pb2.ContentPart(document=chat_pb2.DocumentPart(),
                                extra_json=b'{"file":{"file_id":"file-abc"}}')
    req = chat_pb2.ChatRequest(source_format=chat_pb2.WIRE_FORMAT_OPENAI_CHAT, messages=[
        chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[
            chat_pb2.ContentPart(text=chat_pb2.TextPart(text="read")), part])])
    assert enc(req)[0]["messages"][0]["content"][1] == {"type": "file", "file": {"file_id": "file-abc"}}


# ---- headers and URL -----------------------------------------------------------------------
def test_headers_per_auth_mode():
    assert oc.build_headers(entry(), "client-key", {})["Authorization"] == "Bearer sk-upstream"
    h = oc.build_headers(entry("azure_openai", auth="api-key"), "", {})
    assert h["api-key"] == "sk-upstream" and "Authorization" not in h
    h = oc.build_headers(entry("ollama", auth="none", access_key=None), "", {"anthropic-beta": "x"})
    assert h == {"Content-Type": "application/json"}
    h = oc.build_headers(entry("vllm", passthrough_auth=True, headers={"X-Org": "a"}), "client-key", {})
    assert h["Authorization"] == "Bearer client-key" and h["X-Org"] == "a"


def test_azure_url_fills_deployment_and_api_version():
    e = entry("azure_openai", auth="api-key", api_version="2024-10-21",
              endpoint="https://r.openai.azure.com/openai/deployments/{model}/chat/completions")
    assert oc.endpoint_url(e, "gpt-4o") == ("https://r.openai.azure.com/openai/deployments/gpt-4o"
                                            "/chat/completions?api-version=2024-10-21")
    e2 = entry(endpoint="https://api.openai.com/v1/chat/completions")
    assert oc.endpoint_url(e2, "gpt-4o") == "https://api.openai.com/v1/chat/completions"


# ---- non-streaming responses --------------------------------------------------------------
def test_decode_response_tool_calls_is_a_stream_shaped_sequence():
    events = oc.decode_response(orjson.loads((FIX / "openai_response_tool_calls.json").read_bytes()))
    assert kinds(events) == ["start", "block_start", "delta", "block_stop", "finish"]
    start = events[0].start
    assert start.id == "chatcmpl-abc123" and start.model == "gpt-4o-mini-2024-07-18"
    assert orjson.loads(start.extra_json) == {"system_fingerprint": "fp_44709d6fcb",
                                              "service_tier": "default"}
    tc = events[1].block_start.part.tool_call
    assert (tc.id, tc.name) == ("call_abc123", "get_current_weather")
    assert events[2].delta.arguments_json == "{\n\"location\": \"Boston, MA\"\n}"
    f = events[4].finish
    assert f.stop_reason == SR.STOP_REASON_TOOL_USE
    assert (f.usage.input_tokens, f.usage.cache_read_tokens, f.usage.output_tokens) == (18, 64, 17)


def test_decode_response_n2_with_refusal():
    turn = aggregate(oc.decode_response(orjson.loads((FIX / "openai_response_n2.json").read_bytes())))
    assert [c.index for c in turn.choices] == [0, 1]
    assert turn.choices[0].parts[0].text.text == "The image shows a wooden boardwalk."
    assert turn.choices[0].stop_reason == SR.STOP_REASON_END_TURN
    assert turn.choices[1].parts[0].text.text == "I'm sorry, I can't help with that."
    assert turn.choices[1].stop_reason == SR.STOP_REASON_REFUSAL


def test_decode_response_deepseek_reasoning_content():
    turn = aggregate(oc.decode_response(orjson.loads(
        (FIX / "openai_response_deepseek_reasoning.json").read_bytes())))
    parts = turn.choices[0].parts
    assert parts[0].reasoning.text == "Compare 9.11 and 9.8: 9.80 > 9.11."
    assert parts[1].text.text == "9.11 is smaller than 9.8."
    assert turn.usage.reasoning_tokens == 180


def test_decode_response_error_body_in_a_200():
    events = oc.decode_response({"error": {"message": "boom", "type": "server_error"}})
    assert kinds(events) == ["error"] and events[0].error.message == "boom"


# ---- streams -------------------------------------------------------------------------------
def test_stream_text_emits_finish_after_the_usage_chunk():
    dec = oc.StreamDecoder()
    parser = SSEParser()
    per_payload = [dec.feed(d) for _, d in parser.feed((FIX / "openai_stream_text.sse").read_bytes())]
    assert [kinds(x) for x in per_payload] == [
        ["start"], ["block_start", "delta"], ["delta"], ["block_stop"], ["finish"], []]
    events = [e for x in per_payload for e in x]
    assert events[1].block_start.part.WhichOneof("kind") == "text"
    assert events[2].delta.text == "Hello"  # first characters are not lost
    f = events[-1].finish
    assert f.stop_reason == SR.STOP_REASON_END_TURN
    assert (f.usage.input_tokens, f.usage.output_tokens) == (19, 10)
    assert dec.finish() == []


def test_stream_single_tool_call():
    turn = aggregate(replay("openai_stream_tool_call.sse"))
    (part,) = turn.choices[0].parts
    assert part.tool_call.id == "call_DdmO9pD3xa9XTPNJ32zg2hcA"
    assert part.tool_call.name == "get_weather"
    assert orjson.loads(part.tool_call.arguments_json) == {"location": "Paris, France"}
    assert turn.choices[0].stop_reason == SR.STOP_REASON_TOOL_USE


def test_stream_parallel_interleaved_tool_calls():
    events = replay("openai_stream_parallel_interleaved.sse")
    seq = [(k, getattr(e, k).index) for e, k in zip(events, kinds(events))
           if k in ("block_start", "block_stop")]
    # the text block closes before the first tool block opens; tool blocks stay open together
    assert seq == [("block_start", 0), ("block_stop", 0), ("block_start", 1), ("block_start", 2),
                   ("block_stop", 1), ("block_stop", 2)]
    turn = aggregate(events)
    text, a, b = turn.choices[0].parts
    assert text.text.text == "Checking both."
    assert (a.tool_call.id, orjson.loads(a.tool_call.arguments_json)) == ("call_a", {"location": "Paris"})
    assert (b.tool_call.id, orjson.loads(b.tool_call.arguments_json)) == ("call_b", {"tz": "Europe/Paris"})
    assert turn.usage.input_tokens == 50 and turn.usage.output_tokens == 30
    assert kinds(events)[-1] == "finish"


def test_stream_reasoning_content_then_text():
    events = replay("openai_stream_reasoning.sse")
    turn = aggregate(events)
    r, t = turn.choices[0].parts
    assert r.reasoning.text == "Compare the decimals." and t.text.text == "9.8 is larger."
    stops = [e.block_stop.index for e in events if e.WhichOneof("event") == "block_stop"]
    starts = [i for i, e in enumerate(events) if e.WhichOneof("event") == "block_start"]
    assert stops == [0, 1]
    assert events[starts[1] - 1].WhichOneof("event") == "block_stop"  # reasoning closed first
    u = turn.usage
    assert (u.input_tokens, u.cache_read_tokens, u.reasoning_tokens) == (10, 5, 30)


def test_stream_cut_before_finish_is_an_error():
    events = replay("openai_stream_cut.sse")
    assert kinds(events)[-1] == "error"
    err = events[-1].error
    assert (err.http_status, err.type) == (502, "api_error")
    assert err.message == "upstream stream ended before completion"


def test_stream_done_without_finish_reason_synthesises_block_stop_and_finish():
    dec = oc.StreamDecoder()
    dec.feed(b'{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}')
    out = dec.feed(b"[DONE]")
    assert kinds(out) == ["block_stop", "finish"]
    assert out[1].finish.stop_reason == SR.STOP_REASON_END_TURN
    assert dec.finish() == []


def test_stream_finish_reason_without_done_or_usage_finishes_at_end():
    dec = oc.StreamDecoder()
    dec.feed(b'{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}')
    assert kinds(dec.feed(b'{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}')) == ["block_stop"]
    out = dec.finish()
    assert kinds(out) == ["finish"] and out[0].finish.stop_reason == SR.STOP_REASON_MAX_TOKENS


def test_stream_stop_after_tool_calls_is_tool_use_and_refusal_is_refusal():
    dec = oc.StreamDecoder()
    dec.feed(b'{"id":"x","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{}"}}]}}]}')
    dec.feed(b'{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
    assert dec.feed(b"[DONE]")[-1].finish.stop_reason == SR.STOP_REASON_TOOL_USE
    dec = oc.StreamDecoder()
    out = dec.feed(b'{"id":"x","model":"m","choices":[{"index":0,"delta":{"refusal":"No."},"finish_reason":"stop"}]}')
    out += dec.feed(b"[DONE]")
    turn = aggregate(out)
    assert turn.choices[0].parts[0].text.text == "No."
    assert turn.choices[0].stop_reason == SR.STOP_REASON_REFUSAL


def test_stream_tool_fragments_before_the_name_are_kept():
    dec = oc.StreamDecoder()
    out = dec.feed(b'{"id":"x","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"arguments":"{\\"a\\""}}]}}]}')
    assert kinds(out) == ["start"]
    out += dec.feed(b'{"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":":1}"}}]}}]}')
    out += dec.feed(b"[DONE]")
    tc = aggregate(out).choices[0].parts[0].tool_call
    assert (tc.id, tc.name, tc.arguments_json) == ("c1", "f", '{"a":1}')


def test_stream_n2_blocks_carry_their_choice():
    dec = oc.StreamDecoder()
    out = dec.feed(b'{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"A"}},{"index":1,"delta":{"content":"B"}}]}')
    out += dec.feed(b'{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"length"}]}')
    out += dec.feed(b"[DONE]")
    assert [e.block_start.choice for e in out if e.WhichOneof("event") == "block_start"] == [0, 1]
    fins = [e.finish for e in out if e.WhichOneof("event") == "finish"]
    assert [(f.choice, f.stop_reason) for f in fins] == [(0, SR.STOP_REASON_END_TURN),
                                                        (1, SR.STOP_REASON_MAX_TOKENS)]


def test_stream_error_chunk_and_garbage():
    dec = oc.StreamDecoder()
    dec.feed(b'{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"A"}}]}')
    out = dec.feed(b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}')
    assert kinds(out) == ["error"]
    assert (out[0].error.http_status, out[0].error.type) == (429, "rate_limit")
    assert out[0].error.message == "Rate limit reached"
    assert dec.feed(b"[DONE]") == [] and dec.finish() == []
    dec = oc.StreamDecoder()
    assert kinds(dec.feed(b"{not json")) == ["error"]


# ---- errors --------------------------------------------------------------------------------
def test_decode_error_keeps_upstream_message_and_fields():
    body = orjson.dumps({"error": {"message": "Invalid 'messages[0].role': 'bogus'.",
                                   "type": "invalid_request_error", "param": "messages[0].role",
                                   "code": "invalid_value"}})
    err = oc.decode_error(400, body, {})
    assert (err.http_status, err.type) == (400, "invalid_request")
    assert err.message == "Invalid 'messages[0].role': 'bogus'."
    assert (err.param, err.code) == ("messages[0].role", "invalid_value")


def test_decode_error_rate_limit_retry_after():
    body = b'{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","code":"rate_limit_exceeded"}}'
    err = oc.decode_error(429, body, {"Retry-After-Ms": "1500", "retry-after": "9"})
    assert (err.type, err.retry_after) == ("rate_limit", 1.5)
    assert oc.decode_error(429, body, {"Retry-After": "9"}).retry_after == 9.0
    assert oc.decode_error(429, body, {"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}).retry_after == 0.0


def test_decode_error_non_json_and_other_server_shapes():
    err = oc.decode_error(502, b"<html>Bad Gateway</html>", {})
    assert (err.http_status, err.type, err.message) == (502, "upstream_unreachable", "<html>Bad Gateway</html>")
    err = oc.decode_error(400, b'{"object":"error","message":"max_tokens is too large","type":"BadRequestError","code":400}', {})
    assert err.message == "max_tokens is too large" and err.code == "400"
    assert oc.decode_error(503, b"", {}).message == "upstream returned HTTP 503"
    assert oc.decode_error(422, b'{"detail":"Field required"}', {}).message == "Field required"
