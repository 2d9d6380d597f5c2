"""OpenAI Responses codec: request decoding, response and stream encoding, errors, listings."""
from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from google.protobuf import json_format

from switchyard.common.canonical.aggregate import aggregate
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import openai_responses as r

FIXTURES = Path(__file__).parent / "fixtures" / "responses"


def load(name: str):
    return orjson.loads((FIXTURES / name).read_bytes())


def events_of(dicts: list[dict]) -> list[chat_pb2.StreamEvent]:
    return [json_format.ParseDict(d, chat_pb2.StreamEvent()) for d in dicts]


def parse_sse(data: bytes) -> list[tuple[str, dict]]:
    """Split SSE bytes into (event name, payload); asserts every frame is well formed."""
    out = []
    assert data.endswith(b"\n\n") or not data
    for frame in data.decode().split("\n\n")[:-1]:
        lines = frame.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: ")
        payload = orjson.loads(lines[1][len("data: "):])
        assert payload["type"] == lines[0][len("event: "):]
        out.append((payload["type"], payload))
    return out


def decode(body: dict) -> tuple[chat_pb2.ChatRequest, r.ResponsesContext]:
    return r.decode_request({"model": "m", **body})


def msgs(req: chat_pb2.ChatRequest) -> list[dict]:
    return [json_format.MessageToDict(m) for m in req.messages]


# ---- decode ------------------------------------------------------------------------------
def test_string_input_is_one_user_message_with_an_item_id():
    req, ctx = decode({"input": "Hello"})
    assert msgs(req) == [{"role": "ROLE_USER", "parts": [{"text": {"text": "Hello"}}]}]
    assert req.source_format == chat_pb2.WIRE_FORMAT_OPENAI_RESPONSES
    assert req.include_usage and not req.stream
    [item] = ctx.input_items
    assert re.fullmatch(r"msg_[0-9a-f]{32}", item.pop("id"))
    assert item == {"type": "message", "role": "user", "status": "completed",
                    "content": [{"type": "input_text", "text": "Hello"}]}
    assert ctx.store is True and ctx.previous_response_id is None and ctx.instructions is None


def test_every_input_form_matches_the_golden_fixture():
    body = load("request_all_items.body.json")
    want = load("request_all_items.expected.json")
    req, ctx = r.decode_request(body)
    assert orjson.loads(req.extra_json) == want["extra_json"]
    assert [orjson.loads(t.extra_json) for t in req.tools] == want["tool_extra_json"]
    req.ClearField("extra_json")
    for t in req.tools:
        t.ClearField("extra_json")
    assert json_format.MessageToDict(req) == want["request"]
    ids = [it["id"] for it in ctx.input_items]
    assert [i.split("_")[0] for i in ids] == want["id_prefixes"]
    assert len(set(ids)) == len(ids)
    given = {"rs_prev1", "fc_prev1", "msg_prev2"}
    stripped = [{k: v for k, v in it.items() if k != "id" or v in given} for it in ctx.input_items]
    assert stripped == want["input_items"]
    assert ctx.instructions == "You are a terse assistant."
    assert ctx.store is False and ctx.previous_response_id == "resp_prev"
    assert ctx.metadata == {"session": "s1"} and ctx.user == "user-42"
    assert ctx.tool_choice == {"type": "function", "name": "get_weather"}
    assert ctx.tools[0]["strict"] is True and ctx.parallel_tool_calls is False
    assert ctx.reasoning == {"effort": "low", "summary": "auto"}


def test_instructions_lead_but_are_not_input_items():
    req, ctx = decode({"instructions": "Be terse.", "input": [{"role": "user", "content": "x"}]})
    assert [m.role for m in req.messages] == [chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_USER]
    assert req.messages[0].parts[0].text.text == "Be terse."
    assert [it["role"] for it in ctx.input_items] == ["user"]
    req, ctx = decode({"instructions": "", "input": "x"})
    assert ctx.instructions is None and [m.role for m in req.messages] == [chat_pb2.ROLE_USER]


def test_assistant_turn_items_share_one_message_and_outputs_one_user_message():
    req, _ = decode({"input": [
        {"role": "user", "content": "go"},
        {"type": "reasoning", "summary": [], "encrypted_content": "sig"},
        {"role": "assistant", "content": "calling"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{\"a\":1}"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": "two"},
        {"role": "user", "content": "thanks"},
    ]})
    kinds = [(m.role, [p.WhichOneof("kind") for p in m.parts]) for m in req.messages]
    assert kinds == [
        (chat_pb2.ROLE_USER, ["text"]),
        (chat_pb2.ROLE_ASSISTANT, ["reasoning", "text", "tool_call", "tool_call"]),
        (chat_pb2.ROLE_USER, ["tool_result", "tool_result"]),
        (chat_pb2.ROLE_USER, ["text"]),
    ]
    assert req.messages[1].parts[0].reasoning.signature == "sig"
    assert [p.tool_result.tool_call_id for p in req.messages[2].parts] == ["c1", "c2"]


def test_function_call_without_preceding_assistant_message_starts_one():
    req, _ = decode({"input": [
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"}]})
    assert [m.role for m in req.messages] == [chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_USER]


@pytest.mark.parametrize("choice, mode, name", [
    ("auto", chat_pb2.ToolChoice.MODE_AUTO, ""),
    ("none", chat_pb2.ToolChoice.MODE_NONE, ""),
    ("required", chat_pb2.ToolChoice.MODE_REQUIRED, ""),
    ({"type": "function", "name": "f"}, chat_pb2.ToolChoice.MODE_NAMED, "f"),
])
def test_tool_choice(choice, mode, name):
    req, ctx = decode({"input": "x", "tool_choice": choice,
                       "tools": [{"type": "function", "name": "f"}]})
    assert req.tool_choice.mode == mode and req.tool_choice.name == name
    assert ctx.tool_choice == choice


def test_flat_function_tool_decodes():
    req, ctx = decode({"input": "x", "tools": [
        {"type": "function", "name": "f", "description": "d",
         "parameters": {"type": "object"}, "strict": False}]})
    t = req.tools[0]
    assert (t.name, t.description, t.type) == ("f", "d", "function")
    assert orjson.loads(t.parameters_json) == {"type": "object"}
    assert orjson.loads(t.extra_json) == {"strict": False}
    assert ctx.tools == [{"type": "function", "name": "f", "description": "d",
                          "parameters": {"type": "object"}, "strict": False}]


def test_sampling_fields():
    req, ctx = decode({"input": "x", "max_output_tokens": 50, "temperature": 0, "top_p": 1,
                       "parallel_tool_calls": True, "reasoning": {"effort": "medium"},
                       "user": "u", "stream": True})
    assert req.max_tokens == 50 and req.temperature == 0.0 and req.top_p == 1.0
    assert req.HasField("temperature") and req.parallel_tool_calls is True
    assert req.reasoning.effort == "medium" and req.user == "u" and req.stream
    assert ctx.max_output_tokens == 50 and ctx.temperature == 0.0
    req, _ = decode({"input": "x", "reasoning": {"effort": "none"}})
    assert req.reasoning.effort == ""
    req, _ = decode({"input": "x"})
    assert not req.HasField("max_tokens") and not req.HasField("temperature")


def test_unnamed_fields_ride_in_extra_json_default_text_does_not():
    req, ctx = decode({"input": "x", "service_tier": "flex", "top_logprobs": 2,
                       "text": {"format": {"type": "text"}}, "include": ["x"], "store": True})
    assert orjson.loads(req.extra_json) == {"service_tier": "flex", "top_logprobs": 2}
    assert ctx.text == {"format": {"type": "text"}}
    req, ctx = decode({"input": "x", "text": {"format": {"type": "json_object"}}})
    assert orjson.loads(req.response_format_json) == {"type": "json_object"}
    assert not req.extra_json
    assert ctx.text == {"format": {"type": "json_object"}}


def test_text_format_json_schema_becomes_a_chat_response_format():
    fmt = {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}
    req, ctx = decode({"input": "x", "text": {"format": fmt, "verbosity": "low"}})
    assert orjson.loads(req.response_format_json) == {"type": "json_schema", "json_schema": {
        "name": "w", "schema": {"type": "object"}, "strict": True}}
    assert orjson.loads(req.extra_json) == {"text": {"verbosity": "low"}}
    assert ctx.text["format"] == fmt
    with pytest.raises(GatewayError):
        decode({"input": "x", "text": {"format": {"type": "json_schema"}}})


@pytest.mark.parametrize("body, param, words", [
    ({}, "input", "input"),
    ({"input": 5}, "input", "string"),
    ({"input": [{"role": "user", "content": [
        {"type": "input_image", "file_id": "file-1"}]}]}, "input[0].content[0].file_id",
     "not supported"),
    ({"input": [{"role": "user", "content": [
        {"type": "input_file", "file_id": "file-1"}]}]}, "input[0].content[0].file_id",
     "not supported"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "input[0].content[0].type", "not supported"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "role"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "not supported"),
    ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id", "call_id"),
    ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]},
     "input[0].output", "output"),
    ({"input": "x", "tools": [{"type": "function", "function": {"name": "f"}}]},
     "tools[0].name", "name"),
    ({"input": "x", "tool_choice": "any"}, "tool_choice", "tool_choice"),
    ({"input": "x", "max_output_tokens": 0}, "max_output_tokens", "positive"),
    ({"input": "x", "temperature": 3}, "temperature", "between"),
    ({"input": "x", "top_p": "1"}, "top_p", "between"),
    ({"input": "x", "parallel_tool_calls": "yes"}, "parallel_tool_calls", "boolean"),
    ({"input": "x", "reasoning": {"effort": "maximum"}}, "reasoning.effort", "effort"),
    ({"input": "x", "tools": [{"name": "f"}]}, "tools[0].type", "type"),
    ({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "f"}]}, "input[0].input",
     "input"),
    ({"input": "x", "store": "no"}, "store", "boolean"),
    ({"input": "x", "metadata": {"a": 1}}, "metadata.a", "strings"),
    ({"input": "x", "instructions": ["x"]}, "instructions", "string"),
    ({"input": "x", "previous_response_id": ""}, "previous_response_id", "non-empty"),
    ({"input": "x", "conversation": 7}, "conversation", "conversation id"),
    ({"input": "x", "conversation": "conv 1"}, "conversation", "begins with 'conv'"),
    ({"input": "x", "conversation": {"id": "resp_1"}}, "conversation", "begins with 'conv'"),
    ({"input": "x", "prompt": {"id": "pmpt_1"}}, "prompt", "not supported"),
    ({"input": "x", "background": True}, "background", "not supported"),
])
def test_invalid_requests_are_400_with_param(body, param, words):
    with pytest.raises(GatewayError) as info:
        decode(body)
    err = info.value
    assert err.http_status == 400 and err.type == "invalid_request"
    assert err.param == param
    assert words in err.message


def test_non_base64_data_url_is_rejected():
    with pytest.raises(GatewayError) as info:
        decode({"input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/png,raw"}]}]})
    assert info.value.http_status == 400


# ---- encode ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["response_reasoning_text", "response_parallel_tools",
                                  "response_incomplete"])
def test_encode_response_matches_golden(name):
    fx = load(f"{name}.json")
    _, ctx = r.decode_request(fx["request"])
    got = r.encode_response(aggregate(events_of(fx["events"])), model="gpt-x",
                            response_id=fx["response_id"], created=fx["created"], ctx=ctx)
    assert got == fx["expected"]


def test_refusal_is_incomplete_content_filter_and_redacted_reasoning_round_trips():
    _, ctx = decode({"input": "x"})
    turn = aggregate(events_of([
        {"start": {}},
        {"blockStart": {"index": 0, "part": {"reasoning": {"redacted": True,
                                                            "redactedData": "opaque=="}}}},
        {"blockStop": {"index": 0}},
        {"finish": {"stopReason": "STOP_REASON_REFUSAL"}}]))
    out = r.encode_response(turn, model="m", response_id="resp_1", created=1, ctx=ctx)
    assert out["status"] == "incomplete"
    assert out["incomplete_details"] == {"reason": "content_filter"}
    [item] = out["output"]
    assert item["summary"] == [] and item["encrypted_content"] == "redacted:opaque=="
    req, _ = decode({"input": [item]})
    part = req.messages[0].parts[0].reasoning
    assert part.redacted and part.redacted_data == "opaque==" and not part.signature


def test_thinking_signature_round_trips_through_output_items():
    fx = load("response_reasoning_text.json")
    _, ctx = r.decode_request(fx["request"])
    out = r.encode_response(aggregate(events_of(fx["events"])), model="m",
                            response_id="resp_1", created=1, ctx=ctx)
    req, _ = decode({"input": out["output"]})
    [msg] = req.messages
    assert msg.role == chat_pb2.ROLE_ASSISTANT
    assert msg.parts[0].reasoning.text == "Think hard."
    assert msg.parts[0].reasoning.signature == "sig=="
    assert msg.parts[1].text.text == "Hello world"


def test_usage_counts_cache_reads_and_writes_as_input():
    _, ctx = decode({"input": "x"})
    turn = aggregate(events_of([
        {"start": {"usage": {"inputTokens": 5, "cacheReadTokens": 7,
                             "cacheCreationTokens": 11}}},
        {"finish": {"usage": {"outputTokens": 3}}}]))
    usage = r.encode_response(turn, model="m", response_id="resp_1", created=1, ctx=ctx)["usage"]
    assert usage["input_tokens"] == 23 and usage["total_tokens"] == 26
    assert usage["input_tokens_details"] == {"cached_tokens": 7, "cache_write_tokens": 11}


def test_turn_error_renders_a_failed_response():
    _, ctx = decode({"input": "x"})
    turn = aggregate(events_of([{"start": {}}, {"error": {"httpStatus": 429, "type": "rate_limit",
                                                          "message": "slow down"}}]))
    out = r.encode_response(turn, model="m", response_id="resp_1", created=1, ctx=ctx)
    assert out["status"] == "failed"
    assert out["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}


# ---- stream ------------------------------------------------------------------------------
def _encoder(fx: dict) -> r.StreamEncoder:
    req, ctx = r.decode_request(fx["request"])
    return r.StreamEncoder("gpt-x", fx["response_id"], fx["created"], req, ctx)


def test_stream_matches_golden_bytes():
    fx = load("response_reasoning_text.json")
    enc = _encoder(fx)
    got = enc.encode(events_of(fx["events"])) + enc.completed()
    assert got == (FIXTURES / "stream_reasoning_text.sse").read_bytes()
    assert enc.done() == b""


def test_stream_never_emits_terminal_event_until_completed():
    fx = load("response_reasoning_text.json")
    enc = _encoder(fx)
    body = enc.encode(events_of(fx["events"]))
    types = [t for t, _ in parse_sse(body)]
    assert "response.completed" not in types and types[:2] == ["response.created",
                                                               "response.in_progress"]
    final = enc.final_response()
    assert final == fx["expected"]
    tail = parse_sse(enc.completed())
    assert [t for t, _ in tail] == ["response.completed"]
    assert tail[0][1]["response"] == final
    assert tail[0][1]["sequence_number"] == len(types)
    assert enc.completed() == b"" and enc.error(chat_pb2.Error(message="late")) == b""


def test_stream_in_batches_equals_stream_at_once():
    fx = load("response_parallel_tools.json")
    evs = events_of(fx["events"])
    whole = _encoder(fx)
    a = whole.encode(evs) + whole.completed()
    split = _encoder(fx)
    b = b"".join(split.encode([e]) for e in evs) + split.completed()
    assert a == b


def test_interleaved_parallel_tool_calls_form_well_formed_items():
    fx = load("response_parallel_tools.json")
    enc = _encoder(fx)
    frames = parse_sse(enc.encode(events_of(fx["events"])) + enc.completed())
    assert [p["sequence_number"] for _, p in frames] == list(range(len(frames)))
    added = [p["output_index"] for t, p in frames if t == "response.output_item.added"]
    done = [p["output_index"] for t, p in frames if t == "response.output_item.done"]
    assert sorted(added) == [0, 1, 2] and sorted(done) == [0, 1, 2]
    ids = {p["output_index"]: p["item"]["id"] for t, p in frames
           if t == "response.output_item.added"}
    args: dict[int, str] = {}
    for t, p in frames:
        if t == "response.function_call_arguments.delta":
            assert p["item_id"] == ids[p["output_index"]]
            assert p["output_index"] in added[: added.index(p["output_index"]) + 1]
            args[p["output_index"]] = args.get(p["output_index"], "") + p["delta"]
    assert args == {1: '{"city":"Oslo"}', 2: '{"city":"Lima"}'}
    dones = {p["output_index"]: p["arguments"] for t, p in frames
             if t == "response.function_call_arguments.done"}
    assert dones == args
    # every delta of an item comes after its `added` and before its `done`
    position = {(t, p["output_index"]): i for i, (t, p) in enumerate(frames)
                if t in ("response.output_item.added", "response.output_item.done")}
    for i, (t, p) in enumerate(frames):
        if t.endswith(".delta"):
            idx = p["output_index"]
            assert position[("response.output_item.added", idx)] < i
            assert i < position[("response.output_item.done", idx)]
    assert frames[-1][1]["response"] == fx["expected"]


def test_stream_incomplete_ends_with_response_incomplete():
    fx = load("response_incomplete.json")
    enc = _encoder(fx)
    frames = parse_sse(enc.encode(events_of(fx["events"])) + enc.completed())
    deltas = "".join(p["delta"] for t, p in frames if t == "response.output_text.delta")
    assert deltas == "Once upon"
    assert frames[-1][0] == "response.incomplete"
    assert frames[-1][1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_finish_closes_blocks_left_open():
    _, ctx = decode({"input": "x"})
    enc = r.StreamEncoder("m", "resp_1", 1, chat_pb2.ChatRequest(), ctx)
    frames = parse_sse(enc.encode(events_of([
        {"start": {}}, {"blockStart": {"index": 0, "part": {"text": {}}}},
        {"delta": {"index": 0, "text": "hi"}},
        {"finish": {"stopReason": "STOP_REASON_END_TURN"}}])))
    assert [t for t, _ in frames][-3:] == ["response.output_text.done",
                                           "response.content_part.done",
                                           "response.output_item.done"]
    assert enc.final_response()["output"][0]["content"][0]["text"] == "hi"


def test_error_mid_stream_is_response_failed_then_error_event():
    _, ctx = decode({"input": "x"})
    enc = r.StreamEncoder("m", "resp_1", 1, chat_pb2.ChatRequest(), ctx)
    first = parse_sse(enc.encode(events_of([
        {"start": {}}, {"blockStart": {"index": 0, "part": {"text": {}}}},
        {"delta": {"index": 0, "text": "partial"}}])))
    frames = parse_sse(enc.error(chat_pb2.Error(http_status=502, type="upstream_unreachable",
                                                message="upstream died")))
    assert [t for t, _ in frames] == ["response.failed", "error"]
    failed = frames[0][1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "upstream died"}
    assert failed["output"][0]["content"][0]["text"] == "partial"
    assert failed["output"][0]["status"] == "incomplete"
    err = frames[1][1]
    assert err["message"] == "upstream died" and err["error"]["type"] == "api_error"
    seqs = [p["sequence_number"] for _, p in first + frames]
    assert seqs == list(range(len(seqs)))
    assert enc.completed() == b"" and enc.encode(events_of([{"finish": {}}])) == b""


def test_error_event_inside_a_batch_and_before_start():
    _, ctx = decode({"input": "x"})
    enc = r.StreamEncoder("m", "resp_1", 1, chat_pb2.ChatRequest(), ctx)
    frames = parse_sse(enc.encode(events_of([{"error": {"httpStatus": 429, "type": "rate_limit",
                                                        "message": "busy"}}])))
    assert [t for t, _ in frames] == ["response.created", "response.in_progress",
                                      "response.failed", "error"]
    assert frames[2][1]["response"]["error"]["code"] == "rate_limit_exceeded"


def test_completed_without_finish_fails_the_response():
    _, ctx = decode({"input": "x"})
    enc = r.StreamEncoder("m", "resp_1", 1, chat_pb2.ChatRequest(), ctx)
    enc.encode(events_of([{"start": {}}]))
    with pytest.raises(GatewayError) as info:
        enc.final_response()
    assert info.value.http_status == 502
    assert [t for t, _ in parse_sse(enc.completed())] == ["response.failed", "error"]


# ---- errors and listings -----------------------------------------------------------------
@pytest.mark.parametrize("status, type_, want_status, want_type", [
    (400, "invalid_request", 400, "invalid_request_error"),
    (404, "not_found", 404, "not_found_error"),
    (429, "rate_limit", 429, "rate_limit_error"),
    (529, "overloaded", 503, "service_unavailable"),
    (504, "timeout", 504, "timeout"),
])
def test_error_body(status, type_, want_status, want_type):
    got = r.error_body(GatewayError(status, "boom", type=type_))
    assert got == (want_status, {"error": {"message": "boom", "type": want_type,
                                           "param": None, "code": None}})


def test_error_body_keeps_param_and_code():
    _, body = r.error_body(GatewayError(400, "bad", param="input", code="invalid_value"))
    assert body["error"]["param"] == "input" and body["error"]["code"] == "invalid_value"


ITEMS = [{"id": f"msg_{i}", "type": "message", "role": "user", "content": []} for i in range(5)]


def test_input_items_page_orders_and_paginates():
    page = r.input_items_page(ITEMS, limit=2)
    assert [it["id"] for it in page["data"]] == ["msg_4", "msg_3"]
    assert (page["object"], page["first_id"], page["last_id"], page["has_more"]) == (
        "list", "msg_4", "msg_3", True)
    page = r.input_items_page(ITEMS, limit=2, after="msg_3")
    assert [it["id"] for it in page["data"]] == ["msg_2", "msg_1"] and page["has_more"]
    page = r.input_items_page(ITEMS, limit=2, order="asc", after="msg_2")
    assert [it["id"] for it in page["data"]] == ["msg_3", "msg_4"] and not page["has_more"]
    assert r.input_items_page(ITEMS)["has_more"] is False
    empty = r.input_items_page([])
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None,
                     "has_more": False}


@pytest.mark.parametrize("kwargs, param", [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"order": "up"}, "order"),
    ({"after": "msg_missing"}, "after")])
def test_input_items_page_rejects_bad_arguments(kwargs, param):
    with pytest.raises(GatewayError) as info:
        r.input_items_page(ITEMS, **kwargs)
    assert info.value.http_status == 400 and info.value.param == param
