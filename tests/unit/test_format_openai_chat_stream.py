"""OpenAI Chat Completions SSE encoder: chunk grammar, and the real openai SDK parsing it."""
from __future__ import annotations

import httpx2
import openai
import orjson
import pytest

from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import openai_chat as oc
from tests.unit.fixtures.client.codec_helpers import events, sse_events, sse_transport, text


def request(**kw) -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(model="m", stream=True, **kw)


def encode_all(fixture: str, *, include_usage: bool = False, model: str = "alias",
               rid: str = "chatcmpl-1", created: int = 1700000000,
               start_extra: dict | None = None, stop_reason: int | None = None) -> bytes:
    evs = events(fixture)
    if stop_reason is not None:
        evs[-1].finish.stop_reason = stop_reason
    if start_extra:
        evs[0].start.extra_json = orjson.dumps(start_extra)
    enc = oc.StreamEncoder(model, rid, created, request(include_usage=include_usage))
    # feed in uneven batches, as the providers service delivers them
    out = enc.encode(evs[:1]) + enc.encode(evs[1:4]) + enc.encode(evs[4:])
    return out + enc.done()


def sdk_stream(raw: bytes, **create_kw):
    client = openai.OpenAI(api_key="k", base_url="http://gw/v1", max_retries=0,
                           http_client=httpx2.Client(transport=sse_transport(raw)))
    return client.chat.completions.create(model="alias", stream=True,
                                          messages=[{"role": "user", "content": "x"}],
                                          **create_kw)


def test_matches_official_stream_example():
    want = sse_events(text("openai_chat_stream_official.sse").encode())
    got = sse_events(encode_all("events_text.json", model="gpt-4o-mini", rid="chatcmpl-123",
                                created=1694268190,
                                start_extra={"system_fingerprint": "fp_44709d6fcb"}))
    assert got == want


def test_every_chunk_has_id_created_model_and_usage_null_with_include_usage():
    frames = sse_events(encode_all("events_parallel_tools.json", include_usage=True))
    assert frames[-1] == (None, "[DONE]")
    chunks = [d for _, d in frames[:-1]]
    for c in chunks:
        assert (c["id"], c["object"], c["created"], c["model"]) == (
            "chatcmpl-1", "chat.completion.chunk", 1700000000, "alias")
    assert all(c["usage"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 100 and last["usage"]["completion_tokens"] == 31
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_no_usage_key_without_include_usage():
    chunks = [d for _, d in sse_events(encode_all("events_text.json"))[:-1]]
    assert all("usage" not in c for c in chunks)


def test_parallel_tool_calls_grammar():
    chunks = [d for _, d in sse_events(encode_all("events_parallel_tools.json"))[:-1]]
    tool_deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
                   if "tool_calls" in c["choices"][0]["delta"]]
    assert tool_deltas == [
        {"index": 0, "id": "call_a", "type": "function",
         "function": {"name": "get_weather", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"city": '}},
        {"index": 1, "id": "call_b", "type": "function",
         "function": {"name": "get_time", "arguments": ""}},
        {"index": 1, "function": {"arguments": '{"tz": '}},
        {"index": 0, "function": {"arguments": '"Paris"}'}},
        {"index": 1, "function": {"arguments": '"CET"}'}},
    ]
    # upstream said stop, but a tool call was seen
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)


def test_sdk_accumulates_parallel_tool_calls_and_usage():
    raw = encode_all("events_parallel_tools.json", include_usage=True)
    content, calls, finish, usage = "", {}, None, None
    for chunk in sdk_stream(raw, stream_options={"include_usage": True}):
        assert chunk.id == "chatcmpl-1" and chunk.model == "alias"
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            content += ch.delta.content or ""
            for tc in ch.delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"id": None, "name": "", "args": ""})
                entry["id"] = tc.id or entry["id"]
                entry["name"] += (tc.function.name or "") if tc.function else ""
                entry["args"] += (tc.function.arguments or "") if tc.function else ""
            finish = ch.finish_reason or finish
    assert content == "Checking both. Done."
    assert [(c["id"], c["name"], orjson.loads(c["args"])) for _, c in sorted(calls.items())] \
        == [("call_a", "get_weather", {"city": "Paris"}), ("call_b", "get_time", {"tz": "CET"})]
    assert finish == "tool_calls"
    assert usage.prompt_tokens == 100 and usage.prompt_tokens_details.cached_tokens == 20


def test_sdk_stream_helper_final_completion_with_reasoning():
    # (the SDK's helper refuses a `length` finish, so end the turn normally here)
    raw = encode_all("events_thinking.json", include_usage=True,
                     stop_reason=chat_pb2.STOP_REASON_END_TURN)
    client = openai.OpenAI(api_key="k", base_url="http://gw/v1", max_retries=0,
                           http_client=httpx2.Client(transport=sse_transport(raw)))
    with client.chat.completions.stream(model="alias", messages=[{"role": "user",
                                                                  "content": "x"}]) as s:
        final = s.get_final_completion()
    msg = final.choices[0].message
    assert msg.content == "The answer is 42."
    assert final.choices[0].finish_reason == "stop"
    assert final.usage.completion_tokens == 120
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or ""
                        for c in sdk_stream(raw) if c.choices)
    assert reasoning == "Let me work this out."


def test_mid_stream_error_makes_the_sdk_raise():
    enc = oc.StreamEncoder("alias", "chatcmpl-1", 1, request())
    evs = events("events_text.json")
    raw = enc.encode(evs[:3]) + enc.error(chat_pb2.Error(
        http_status=429, type="rate_limit", message="upstream rate limited", code="rl"))
    assert b"[DONE]" not in raw
    frame = sse_events(raw)[-1][1]
    assert frame == {"error": {"message": "upstream rate limited", "type": "rate_limit_error",
                               "param": None, "code": "rl"}}
    seen = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in sdk_stream(raw):
            seen.extend(ch.delta.content for ch in chunk.choices)
    assert exc.value.message == "upstream rate limited"
    assert seen == ["", "Hello"]  # what arrived before the error still reached the caller


def test_n_choices_get_their_own_role_and_tool_indexes():
    enc = oc.StreamEncoder("m", "c", 1, request())
    E = chat_pb2.StreamEvent
    raw = enc.encode([
        E(start=chat_pb2.StreamStart()),
        E(block_start=chat_pb2.BlockStart(index=0, choice=0, part=chat_pb2.ContentPart(
            tool_call=chat_pb2.ToolCallPart(id="a", name="f")))),
        E(block_start=chat_pb2.BlockStart(index=1, choice=1, part=chat_pb2.ContentPart(
            tool_call=chat_pb2.ToolCallPart(id="b", name="g")))),
        E(delta=chat_pb2.BlockDelta(index=1, arguments_json="{}")),
        E(finish=chat_pb2.StreamFinish(choice=0, stop_reason=chat_pb2.STOP_REASON_TOOL_USE)),
        E(finish=chat_pb2.StreamFinish(choice=1, stop_reason=chat_pb2.STOP_REASON_MAX_TOKENS)),
    ]) + enc.done()
    chunks = [d["choices"][0] for _, d in sse_events(raw)[:-1]]
    assert [(c["index"], c["delta"]) for c in chunks[:2]] == [
        (0, {"role": "assistant", "content": ""})] * 1 + [
        (0, {"tool_calls": [{"index": 0, "id": "a", "type": "function",
                             "function": {"name": "f", "arguments": ""}}]})]
    assert (chunks[2]["index"], chunks[2]["delta"]) == (1, {"role": "assistant", "content": ""})
    assert chunks[3]["delta"]["tool_calls"][0]["index"] == 0  # counted per choice
    assert chunks[4]["delta"]["tool_calls"][0] == {"index": 0, "function": {"arguments": "{}"}}
    assert [(c["index"], c["finish_reason"]) for c in chunks[5:]] == [(0, "tool_calls"),
                                                                     (1, "tool_calls")]
