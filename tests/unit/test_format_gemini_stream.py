"""Gemini streaming: canonical event batches -> SSE `data:` chunks or one streamed JSON
array, tool calls sent whole, finishReason and usage on the last chunk, errors in-stream."""
from __future__ import annotations

import orjson

from switchyard.common.proto import chat_pb2
from switchyard.edge.formats.gemini import StreamEncoder
from switchyard.providers.adapters import events as ev


def frames(data: bytes) -> list[dict]:
    return [orjson.loads(line[6:]) for line in data.split(b"\n\n") if line.startswith(b"data: ")]


def text_turn() -> list[list[chat_pb2.StreamEvent]]:
    return [[ev.start("up", "m", chat_pb2.Usage(input_tokens=4)),
             ev.block_start(0, ev.text_part()), ev.text(0, "Hel"), ev.text(0, "lo")],
            [ev.block_stop(0),
             ev.finish(chat_pb2.STOP_REASON_END_TURN, chat_pb2.Usage(output_tokens=2))]]


def test_sse_chunks_merge_a_batchs_text_and_end_with_usage():
    enc = StreamEncoder("fast-model", "resp_1", sse_frames=True)
    assert enc.media_type == "text/event-stream"
    out = b"".join(enc.encode(batch) for batch in text_turn()) + enc.done()
    first, last = frames(out)
    assert first == {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello"}]},
                                     "index": 0}],
                     "modelVersion": "fast-model", "responseId": "resp_1"}
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"] == {"promptTokenCount": 4, "candidatesTokenCount": 2,
                                     "totalTokenCount": 6}


def test_json_array_stream_is_one_valid_array():
    enc = StreamEncoder("m", "r", sse_frames=False)
    assert enc.media_type == "application/json"
    out = b"".join(enc.encode(batch) for batch in text_turn()) + enc.done()
    chunks = orjson.loads(out)
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, "STOP"]
    assert chunks[0]["candidates"][0]["content"]["parts"] == [{"text": "Hello"}]


def test_tool_call_arguments_are_held_until_the_block_ends():
    enc = StreamEncoder("m", "r", sse_frames=True)
    call = chat_pb2.ContentPart(tool_call=chat_pb2.ToolCallPart(id="call_a", name="f"))
    assert enc.encode([ev.start("u", "m"), ev.block_start(0, call),
                       ev.arguments(0, '{"city": ')]) == b""
    out = enc.encode([ev.arguments(0, '"Paris"}'), ev.block_stop(0),
                      ev.finish(chat_pb2.STOP_REASON_TOOL_USE)])
    (chunk,) = frames(out)
    assert chunk["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"id": "call_a", "name": "f", "args": {"city": "Paris"}}}]
    assert chunk["candidates"][0]["finishReason"] == "STOP"


def test_reasoning_is_a_thought_part_with_its_signature():
    enc = StreamEncoder("m", "r", sse_frames=True)
    reasoning = chat_pb2.ContentPart(reasoning=chat_pb2.ReasoningPart())
    out = enc.encode([ev.start("u", "m"), ev.block_start(0, reasoning),
                      ev.reasoning(0, "think"), ev.signature(0, "EkCTOpMq+/8=")])
    (chunk,) = frames(out)
    assert chunk["candidates"][0]["content"]["parts"] == [
        {"text": "think", "thought": True},
        {"text": "", "thought": True, "thoughtSignature": "EkCTOpMq+/8="}]


def test_error_mid_stream_is_an_error_element_and_closes_the_array():
    enc = StreamEncoder("m", "r", sse_frames=False)
    head = enc.encode(text_turn()[0])
    tail = enc.error(chat_pb2.Error(http_status=529, type="overloaded", message="busy"))
    chunks = orjson.loads(head + tail)
    assert chunks[-1] == {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}
    assert enc.done() == b""


def test_sse_error_frame_and_nothing_after():
    enc = StreamEncoder("m", "r", sse_frames=True)
    out = enc.error(chat_pb2.Error(http_status=429, type="rate_limit", message="slow"))
    assert frames(out) == [{"error": {"code": 429, "message": "slow",
                                      "status": "RESOURCE_EXHAUSTED"}}]
    assert enc.encode(text_turn()[0]) == b"" and enc.done() == b""


def test_a_turn_without_finish_still_ends_with_a_finish_chunk():
    enc = StreamEncoder("m", "r", sse_frames=False)
    assert orjson.loads(enc.done()) == [{
        "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "index": 0,
                        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 0, "candidatesTokenCount": 0,
                          "totalTokenCount": 0},
        "modelVersion": "m", "responseId": "r"}]
