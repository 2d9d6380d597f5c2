"""Anthropic Messages SSE encoder: event grammar (one block at a time, dense indexes,
message_stop once), and the real anthropic SDK parsing it."""
from __future__ import annotations

import anthropic
import httpx2
import orjson
import pytest

from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import anthropic_messages as am
from tests.unit.fixtures.client.codec_helpers import events, sse_events, sse_transport, subset, text

E = chat_pb2.StreamEvent
REQ = chat_pb2.ChatRequest(model="claude-x", stream=True, max_tokens=100)


def encode_all(fixture: str, *, model: str = "claude-x", rid: str = "msg_1",
               batches: int = 3) -> bytes:
    evs = events(fixture)
    enc = am.StreamEncoder(model, rid, 0, REQ)
    step = max(1, len(evs) // batches)
    out = b"".join(enc.encode(evs[i:i + step]) for i in range(0, len(evs), step))
    return out + enc.done()


def grammar(raw: bytes) -> list[tuple]:
    """A compact view: (event, index, detail) for each frame, pings dropped."""
    out = []
    for name, data in sse_events(raw):
        assert name == data["type"], "event name and data.type must agree"
        if name == "ping":
            continue
        if name == "content_block_start":
            out.append((name, data["index"], data["content_block"]["type"]))
        elif name == "content_block_delta":
            d = data["delta"]
            out.append((name, data["index"], d[{"text_delta": "text",
                                               "input_json_delta": "partial_json",
                                               "thinking_delta": "thinking",
                                               "signature_delta": "signature"}[d["type"]]]))
        elif name == "content_block_stop":
            out.append((name, data["index"]))
        elif name == "message_delta":
            out.append((name, data["delta"]["stop_reason"]))
        else:
            out.append((name,))
    return out


def sdk_final(raw: bytes):
    client = anthropic.Anthropic(api_key="k", base_url="http://gw", max_retries=0,
                                 http_client=httpx2.Client(transport=sse_transport(raw)))
    with client.messages.stream(model="claude-x", max_tokens=100,
                                messages=[{"role": "user", "content": "x"}]) as s:
        return s.get_final_message()


def test_matches_official_stream_example():
    want = [(n, d) for n, d in sse_events(text("anthropic_stream_official.sse").encode())
            if n != "ping"]
    got_raw = encode_all("events_text.json", model="claude-opus-4-6",
                         rid="msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY")
    got = [(n, d) for n, d in sse_events(got_raw) if n != "ping"]
    assert [n for n, _ in got] == [n for n, _ in want]
    for (_, w), (_, g) in zip(want, got):
        subset(w, g)
    names = [n for n, _ in sse_events(got_raw)]
    assert names[:2] == ["message_start", "ping"] and names.count("ping") == 1


def test_interleaved_parallel_tool_calls_are_serialised_with_dense_indexes():
    raw = encode_all("events_parallel_tools.json", batches=14)
    assert grammar(raw) == [
        ("message_start",),
        ("content_block_start", 0, "text"),
        ("content_block_delta", 0, "Checking both."),
        ("content_block_delta", 0, " Done."),
        ("content_block_stop", 0),
        ("content_block_start", 1, "tool_use"),
        ("content_block_delta", 1, '{"city": '),
        ("content_block_delta", 1, '"Paris"}'),
        ("content_block_stop", 1),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, '{"tz": '),
        ("content_block_delta", 2, '"CET"}'),
        ("content_block_stop", 2),
        ("message_delta", "tool_use"),  # upstream said stop; a tool block was sent
        ("message_stop",),
    ]
    starts = [d for n, d in sse_events(raw) if n == "content_block_start"]
    assert starts[1]["content_block"] == {"type": "tool_use", "id": "call_a",
                                          "name": "get_weather", "input": {}}
    delta = [d for n, d in sse_events(raw) if n == "message_delta"][0]
    assert delta["usage"] == {"input_tokens": 80, "output_tokens": 31,
                              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20}


def test_the_sdk_rebuilds_parallel_tool_calls():
    msg = sdk_final(encode_all("events_parallel_tools.json"))
    assert msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    assert msg.content[0].text == "Checking both. Done."
    assert [(b.id, b.name, b.input) for b in msg.content[1:]] == [
        ("call_a", "get_weather", {"city": "Paris"}), ("call_b", "get_time", {"tz": "CET"})]
    assert msg.usage.output_tokens == 31 and msg.usage.cache_read_input_tokens == 20


def test_the_sdk_rebuilds_thinking_with_signature():
    raw = encode_all("events_thinking.json")
    assert grammar(raw)[1:5] == [
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "Let me work"),
        ("content_block_delta", 0, " this out."),
        ("content_block_delta", 0, "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+/=="),
    ]
    msg = sdk_final(raw)
    assert [b.type for b in msg.content] == ["thinking", "redacted_thinking", "text"]
    assert msg.content[0].thinking == "Let me work this out."
    assert msg.content[0].signature == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+/=="
    assert msg.content[1].data.startswith("EmwKAhgB")
    assert msg.stop_reason == "max_tokens"
    assert msg.usage.input_tokens == 50 and msg.usage.cache_creation_input_tokens == 7
    assert msg.id == "msg_1" and msg.model == "claude-x"


def test_message_stop_exactly_once_and_only_from_done():
    enc = am.StreamEncoder("m", "abc", 0, REQ)
    body = enc.encode(events("events_text.json"))
    assert b"message_delta" in body and b"message_stop" not in body  # state write goes here
    stop = enc.done()
    assert [n for n, _ in sse_events(stop)] == ["message_stop"]
    assert enc.done() == b""
    assert enc.encode(events("events_text.json")[-1:]) == b""  # no second message_delta


def test_done_closes_a_stream_that_never_finished():
    enc = am.StreamEncoder("m", "abc", 0, REQ)
    raw = enc.encode(events("events_parallel_tools.json")[:6]) + enc.done()
    g = grammar(raw)
    assert g[-2:] == [("message_delta", "tool_use"), ("message_stop",)]
    opened = [x[1] for x in g if x[0] == "content_block_start"]
    closed = [x[1] for x in g if x[0] == "content_block_stop"]
    assert opened == closed == [0, 1, 2]
    assert sse_events(raw)[0][1]["message"]["id"] == "msg_abc"


def test_empty_text_block_is_never_sent_and_does_not_take_an_index():
    enc = am.StreamEncoder("m", "msg_x", 0, REQ)
    raw = enc.encode([
        E(start=chat_pb2.StreamStart()),
        E(block_start=chat_pb2.BlockStart(index=0, part=chat_pb2.ContentPart(
            text=chat_pb2.TextPart()))),
        E(delta=chat_pb2.BlockDelta(index=0, text="")),
        E(block_start=chat_pb2.BlockStart(index=1, part=chat_pb2.ContentPart(
            tool_call=chat_pb2.ToolCallPart(id="t", name="f", arguments_json='{"a"')))),
        E(delta=chat_pb2.BlockDelta(index=1, arguments_json=": 1}")),
        E(block_stop=chat_pb2.BlockStop(index=0)),
        E(block_stop=chat_pb2.BlockStop(index=1)),
        E(finish=chat_pb2.StreamFinish(stop_reason=chat_pb2.STOP_REASON_END_TURN)),
    ]) + enc.done()
    assert grammar(raw) == [("message_start",), ("content_block_start", 0, "tool_use"),
                            ("content_block_delta", 0, '{"a"'),
                            ("content_block_delta", 0, ": 1}"),
                            ("content_block_stop", 0), ("message_delta", "tool_use"),
                            ("message_stop",)]
    assert sdk_final(raw).content[0].input == {"a": 1}


@pytest.mark.parametrize("etype,http,sdk_type", [
    ("overloaded", 529, "overloaded_error"), ("rate_limit", 429, "rate_limit_error"),
    ("timeout", 504, "timeout_error"),
])
def test_mid_stream_error_makes_the_sdk_raise(etype, http, sdk_type):
    enc = am.StreamEncoder("m", "msg_e", 0, REQ)
    raw = enc.encode(events("events_text.json")[:3]) + enc.error(chat_pb2.Error(
        http_status=http, type=etype, message="upstream gave up"))
    assert enc.done() == b""  # nothing may follow an error
    assert sse_events(raw)[-1] == ("error", {"type": "error", "error": {
        "type": sdk_type, "message": "upstream gave up"}})
    client = anthropic.Anthropic(api_key="k", base_url="http://gw", max_retries=0,
                                 http_client=httpx2.Client(transport=sse_transport(raw)))
    received = []
    with pytest.raises(anthropic.APIStatusError) as exc:
        with client.messages.stream(model="m", max_tokens=5,
                                    messages=[{"role": "user", "content": "x"}]) as s:
            for t in s.text_stream:
                received.append(t)
    assert "upstream gave up" in str(exc.value)
    assert exc.value.body["error"]["type"] == sdk_type
    assert received == ["Hello"]


def test_frames_are_well_formed_json_per_line():
    raw = encode_all("events_parallel_tools.json")
    for frame in raw.split(b"\n\n")[:-1]:
        event_line, data_line = frame.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        orjson.loads(data_line[6:])
