"""The Bedrock Converse codec: request encoding, replies and streams, errors, framing."""
from __future__ import annotations

from urllib.parse import urlsplit

import orjson
import pytest
from botocore.eventstream import ChecksumMismatch

from switchyard.common.canonical.aggregate import aggregate
from switchyard.common.config.model import AwsSettings, ProviderEntry
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.providers.adapters import bedrock, for_interface
from switchyard.providers.adapters.bedrock_request import encode_body, safe_tool_id
from switchyard.providers.adapters.bedrock_response import StreamDecoder
from switchyard.providers.adapters.bedrock_stream import EventParser
from switchyard.providers.adapters.openai_responses_signatures import pack
from switchyard.providers.http_client import origin_of
from tests.emulator import bedrock_render
from tests.emulator.bedrock_eventstream import event, exception
from tests.emulator.plan import Plan, ToolCall, Usage
from tests.emulator.text import sign_thinking

P = chat_pb2.ContentPart
CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "us.amazon.nova-pro-v1:0"
ENTRY = ProviderEntry(name="amazon_bedrock/*", provider="amazon_bedrock", model="*",
                      interface="bedrock", auth="bearer", access_key="ABSK-unit-key-0001",
                      endpoint="https://bedrock-runtime.us-east-1.amazonaws.com/model/{model}/converse",
                      aws=AwsSettings(region="us-east-1"))


def text(t: str) -> P:
    return P(text=chat_pb2.TextPart(text=t))


def msg(role: int, *parts: P) -> chat_pb2.Message:
    return chat_pb2.Message(role=role, parts=list(parts))


def req(*messages: chat_pb2.Message, **fields) -> chat_pb2.ChatRequest:
    fields.setdefault("source_format", chat_pb2.WIRE_FORMAT_OPENAI_CHAT)
    return chat_pb2.ChatRequest(model="m", messages=list(messages), **fields)


U, A, S = chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_SYSTEM


def test_the_codec_is_registered_for_the_bedrock_interface():
    assert for_interface("bedrock") is bedrock
    assert bedrock.WIRE == chat_pb2.WIRE_FORMAT_BEDROCK_CONVERSE


def test_system_is_hoisted_roles_alternate_and_a_user_turn_opens():
    body, dropped = encode_body(req(msg(S, text("be brief")), msg(A, text("earlier")),
                                    msg(U, text("a")), msg(U, text("b")),
                                    msg(S, text("mid rule"))), ENTRY, NOVA)
    assert body["system"] == [{"text": "be brief"}, {"text": "mid rule"}]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "."}]},
        {"role": "assistant", "content": [{"text": "earlier"}]},
        {"role": "user", "content": [{"text": "a"}, {"text": "b"}]}]
    assert dropped == [] and "modelId" not in body


def test_tool_calls_results_and_a_tool_config_for_the_history():
    call = P(tool_call=chat_pb2.ToolCallPart(id="call_1", name="get_weather",
                                             arguments_json='{"city": "Paris"}'))
    result = P(tool_result=chat_pb2.ToolResultPart(tool_call_id="call_1", is_error=True,
                                                   content=[text("boom")]))
    body, _ = encode_body(req(msg(U, text("q")), msg(A, text("let me see"), call),
                              msg(U, text("and?"), result)), ENTRY, NOVA)
    assert body["messages"][1]["content"][1] == {"toolUse": {
        "toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}}
    assert body["messages"][2]["content"] == [   # results open the user turn
        {"toolResult": {"toolUseId": "call_1", "content": [{"text": "boom"}],
                        "status": "error"}}, {"text": "and?"}]
    # The client no longer sends the tools: the history's are declared, as Converse needs.
    assert body["toolConfig"] == {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {
        "json": {"type": "object", "properties": {}}}}}]}


def test_long_or_foreign_tool_ids_map_to_safe_ones_consistently():
    long_id = "call_x__gsig_" + "A" * 80
    assert safe_tool_id("tooluse_ok-1.2:3") == "tooluse_ok-1.2:3"
    safe = safe_tool_id(long_id)
    assert len(safe) <= 64 and safe == safe_tool_id(long_id) and safe != long_id


@pytest.mark.parametrize(("mode", "expected", "dropped"), [
    (chat_pb2.ToolChoice.MODE_AUTO, {"auto": {}}, []),
    (chat_pb2.ToolChoice.MODE_REQUIRED, {"any": {}}, []),
    (chat_pb2.ToolChoice.MODE_NAMED, {"tool": {"name": "t"}}, [])])
def test_tool_choice(mode, expected, dropped):
    r = req(msg(U, text("q")), tools=[chat_pb2.Tool(name="t", description="d",
                                                    parameters_json='{"type":"object"}')],
            tool_choice=chat_pb2.ToolChoice(mode=mode, name="t"))
    body, got = encode_body(r, ENTRY, NOVA)
    assert body["toolConfig"]["toolChoice"] == expected and got == dropped
    assert body["toolConfig"]["tools"][0] == {"toolSpec": {
        "name": "t", "description": "d", "inputSchema": {"json": {"type": "object"}}}}


def test_tool_choice_none_without_history_offers_no_tools():
    r = req(msg(U, text("q")), tools=[chat_pb2.Tool(name="t")],
            tool_choice=chat_pb2.ToolChoice(mode=chat_pb2.ToolChoice.MODE_NONE))
    body, dropped = encode_body(r, ENTRY, NOVA)
    assert "toolConfig" not in body and dropped == []


def test_native_tools_and_parallel_false_are_reported_dropped():
    r = req(msg(U, text("q")), tools=[chat_pb2.Tool(type="web_search"), chat_pb2.Tool(name="t")],
            parallel_tool_calls=False)
    body, dropped = encode_body(r, ENTRY, NOVA)
    assert [t["toolSpec"]["name"] for t in body["toolConfig"]["tools"]] == ["t"]
    assert dropped == ["parallel_tool_calls", "tools[web_search]"]


def test_images_documents_and_what_converse_cannot_take():
    parts = [P(image=chat_pb2.ImagePart(media_type="image/png", data_base64="iVBOR")),
             P(image=chat_pb2.ImagePart(url="data:image/webp;base64,UklG")),
             P(image=chat_pb2.ImagePart(url="s3://bucket/cat.jpeg")),
             P(image=chat_pb2.ImagePart(url="https://example.com/cat.png")),
             P(document=chat_pb2.DocumentPart(media_type="application/pdf", data_base64="JVBE",
                                              filename="Q3 report (final).pdf")),
             P(document=chat_pb2.DocumentPart(text="plain words", title="notes: v2")),
             P(document=chat_pb2.DocumentPart(media_type="video/mp4", data_base64="AAAA"))]
    body, dropped = encode_body(req(msg(U, *parts)), ENTRY, NOVA)
    content = body["messages"][0]["content"]
    assert content[0] == {"image": {"format": "png", "source": {"bytes": "iVBOR"}}}
    assert content[1] == {"image": {"format": "webp", "source": {"bytes": "UklG"}}}
    assert content[2] == {"image": {"format": "jpeg", "source": {
        "s3Location": {"uri": "s3://bucket/cat.jpeg"}}}}
    assert content[3] == {"document": {"format": "pdf", "name": "Q3 report (final)-1",
                                       "source": {"bytes": "JVBE"}}}
    assert content[4] == {"document": {"format": "txt", "name": "notes v2-2",
                                       "source": {"text": "plain words"}}}
    assert content[5] == {"video": {"format": "mp4", "source": {"bytes": "AAAA"}}}
    assert dropped == ["image_url"]


def test_claude_thinking_budget_and_what_it_refuses():
    r = req(msg(U, text("q")), reasoning=chat_pb2.Reasoning(effort="high"), temperature=0.3,
            top_k=5, max_tokens=10_000)
    body, dropped = encode_body(r, ENTRY, CLAUDE)
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 9999}}
    assert body["inferenceConfig"] == {"maxTokens": 10_000}
    assert dropped == ["temperature", "top_k"]


def test_claude_thinking_without_max_tokens_gets_the_models_default():
    body, _ = encode_body(req(msg(U, text("q")), reasoning=chat_pb2.Reasoning(budget_tokens=2048)),
                          ENTRY, CLAUDE)
    assert body["inferenceConfig"]["maxTokens"] == 64000
    assert body["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 2048


def test_an_unsigned_tool_turn_answers_claude_without_thinking():
    call = P(tool_call=chat_pb2.ToolCallPart(id="c", name="t", arguments_json="{}"))
    result = P(tool_result=chat_pb2.ToolResultPart(tool_call_id="c", content=[text("r")]))
    r = req(msg(U, text("q")), msg(A, call), msg(U, result),
            reasoning=chat_pb2.Reasoning(effort="low"))
    body, dropped = encode_body(r, ENTRY, CLAUDE)
    assert "additionalModelRequestFields" not in body and dropped == ["reasoning_effort"]


def test_nova_reasoning_and_top_k_in_novas_shape():
    r = req(msg(U, text("q")), reasoning=chat_pb2.Reasoning(effort="minimal"), top_k=40,
            temperature=1.7)
    body, dropped = encode_body(r, ENTRY, NOVA)
    assert body["additionalModelRequestFields"] == {
        "inferenceConfig": {"topK": 40},
        "reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}}
    assert body["inferenceConfig"] == {"temperature": 1.0}   # Converse's range is 0..1
    assert dropped == []


def test_unknown_families_drop_reasoning_and_top_k():
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"
    r = req(msg(U, text("q")), reasoning=chat_pb2.Reasoning(effort="low"), top_k=3)
    body, dropped = encode_body(r, ENTRY, arn)
    assert "additionalModelRequestFields" not in body
    assert dropped == ["top_k", "reasoning_effort"]


def test_signed_reasoning_goes_back_and_openai_blobs_do_not():
    signed = P(reasoning=chat_pb2.ReasoningPart(text="hmm", signature="EqSig"))
    foreign = P(reasoning=chat_pb2.ReasoningPart(text="x", signature=pack("gAAAAblob")))
    redacted = P(reasoning=chat_pb2.ReasoningPart(redacted=True, redacted_data="UkVE"))
    body, _ = encode_body(req(msg(U, text("q")), msg(A, signed, foreign, redacted, text("a"))),
                          ENTRY, CLAUDE)
    assert body["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "EqSig"}}},
        {"reasoningContent": {"redactedContent": "UkVE"}}, {"text": "a"}]


def test_cache_control_becomes_cache_points():
    cached = P(text=chat_pb2.TextPart(text="long context"),
               extra_json=b'{"cache_control": {"type": "ephemeral", "ttl": "1h"}}')
    sys_cached = P(text=chat_pb2.TextPart(text="sys"),
                   extra_json=b'{"cache_control": {"type": "ephemeral"}}')
    body, _ = encode_body(req(msg(S, sys_cached), msg(U, cached),
                              source_format=chat_pb2.WIRE_FORMAT_ANTHROPIC), ENTRY, CLAUDE)
    assert body["system"] == [{"text": "sys"}, {"cachePoint": {"type": "default"}}]
    assert body["messages"][0]["content"] == [{"text": "long context"},
                                              {"cachePoint": {"type": "default", "ttl": "1h"}}]


def test_structured_output_stop_sequences_and_passthrough_fields():
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
        "type": "object", "properties": {"n": {"type": "integer"}}}}}
    extra = {"guardrailConfig": {"guardrailIdentifier": "gr1", "guardrailVersion": "1"},
             "additionalModelRequestFields": {"anthropic_beta": ["x"]}, "seed": 3}
    r = req(msg(U, text("q")), stop=["END"], response_format_json=orjson.dumps(fmt),
            extra_json=orjson.dumps(extra), top_k=4, user="u-1")
    body, dropped = encode_body(r, ENTRY, CLAUDE)
    assert body["outputConfig"] == {"textFormat": {"type": "json_schema", "structure": {
        "jsonSchema": {"schema": '{"type":"object","properties":{"n":{"type":"integer"}}}',
                       "name": "answer"}}}}
    assert body["inferenceConfig"]["stopSequences"] == ["END"]
    assert body["additionalModelResponseFieldPaths"] == ["/stop_sequence"]
    assert body["guardrailConfig"] == extra["guardrailConfig"]
    assert body["additionalModelRequestFields"] == {"top_k": 4, "anthropic_beta": ["x"]}
    assert dropped == ["user", "seed"]


def test_endpoint_urls_are_the_form_that_is_signed_and_sent():
    assert bedrock.endpoint_url(ENTRY, NOVA) == \
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-pro-v1:0/converse"
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0"
    url = bedrock.endpoint_url(ENTRY, arn, stream=True)
    assert url.endswith("/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile%2F"
                        "us.amazon.nova-pro-v1:0/converse-stream")
    # The upstream client puts exactly the signed path on the request line.
    assert origin_of(url).target.decode() == urlsplit(url).path


def test_headers_need_the_encoded_request_and_carry_the_api_key():
    import contextvars
    assert contextvars.copy_context().run(_headers_without_encoding) == "refused"
    bedrock.encode_request(req(msg(U, text("q"))), ENTRY, NOVA)
    headers = bedrock.build_headers(ENTRY, "", {})
    assert headers == {"Content-Type": "application/json",
                       "Authorization": "Bearer ABSK-unit-key-0001"}


def _headers_without_encoding() -> str:
    bedrock._PENDING.set(None)
    try:
        bedrock.build_headers(ENTRY, "", {})
    except GatewayError as exc:
        return "refused" if exc.http_status == 500 else "?"
    return "signed"


# ---- replies ---------------------------------------------------------------------------
PLAN = Plan(text="The answer.", thinking="Why not.", stop="tool_use",
            tool_calls=[ToolCall("tooluse_1", "get_weather", '{"city": "Oslo"}')],
            usage=Usage(input=11, output=7, cache_read=5, cache_creation=2))


def test_a_whole_reply_decodes_to_the_events_of_its_stream():
    body = bedrock_render.response_body(PLAN, bedrock_render.BedrockContext())
    turn = aggregate(bedrock.decode_response(body))
    parts = turn.choices[0].parts
    assert parts[0].reasoning.text == "Why not." and parts[0].reasoning.signature == \
        sign_thinking("Why not.")
    assert parts[1].text.text == "The answer."
    assert (parts[2].tool_call.id, orjson.loads(parts[2].tool_call.arguments_json)) == (
        "tooluse_1", {"city": "Oslo"})
    assert turn.choices[0].stop_reason == chat_pb2.STOP_REASON_TOOL_USE
    assert (turn.usage.input_tokens, turn.usage.output_tokens, turn.usage.cache_read_tokens,
            turn.usage.cache_creation_tokens) == (11, 7, 5, 2)


def stream_events(frames: list[bytes], split: int = 7) -> list[chat_pb2.StreamEvent]:
    """Frames through botocore's parser in odd-sized chunks, then the decoder."""
    raw = b"".join(frames)
    parser, dec, out = EventParser(), StreamDecoder(), []
    for i in range(0, len(raw), split):
        for _, data in parser.feed(raw[i:i + split]):
            out += dec.feed(data)
    return out + dec.finish()


def test_a_stream_decodes_like_the_whole_reply():
    frames = bedrock_render.stream_frames(PLAN, bedrock_render.BedrockContext(chunks=2))
    streamed = aggregate(stream_events(frames))
    whole = aggregate(bedrock.decode_response(
        bedrock_render.response_body(PLAN, bedrock_render.BedrockContext())))
    assert streamed.choices[0].parts == whole.choices[0].parts
    assert streamed.choices[0].stop_reason == whole.choices[0].stop_reason
    assert streamed.usage == whole.usage


def test_the_finish_waits_for_metadata_and_a_cut_stream_is_an_error():
    dec = StreamDecoder()
    out = dec.feed(b'{"messageStart": {"role": "assistant"}}')
    out += dec.feed(b'{"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "hi"}}}')
    out += dec.feed(b'{"messageStop": {"stopReason": "max_tokens"}}')
    assert not any(e.HasField("finish") for e in out)
    out += dec.feed(b'{"metadata": {"usage": {"inputTokens": 1, "outputTokens": 2}}}')
    assert out[-1].finish.stop_reason == chat_pb2.STOP_REASON_MAX_TOKENS
    assert out[-1].finish.usage.output_tokens == 2 and dec.finish() == []
    cut = StreamDecoder()
    cut.feed(b'{"messageStart": {"role": "assistant"}}')
    assert cut.finish()[0].error.http_status == 502


def test_redacted_reasoning_in_a_stream():
    dec = StreamDecoder()
    out = dec.feed(b'{"contentBlockDelta": {"contentBlockIndex": 0, "delta": '
                   b'{"reasoningContent": {"redactedContent": "UkVE"}}}}')
    assert out[0].HasField("start")
    assert out[1].block_start.part.reasoning.redacted_data == "UkVE"


def test_corrupt_frames_raise_and_exceptions_become_errors():
    good = event("messageStart", b'{"role": "assistant"}')
    bad = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(ChecksumMismatch):
        EventParser().feed(bad)
    name, data = EventParser().feed(exception("throttlingException", b'{"message": "slow"}'))[0]
    assert name == "error"
    err = bedrock.decode_stream_error(orjson.loads(data))
    assert (err.http_status, err.type, err.message, err.code) == (
        429, "rate_limit", "slow", "ThrottlingException")


@pytest.mark.parametrize(("status", "headers", "body", "expected"), [
    (400, {"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/x/"},
     b'{"message": "bad input"}', (400, "invalid_request", "bad input", "ValidationException")),
    (429, {}, b'{"__type": "com.amazon.bedrock#ModelNotReadyException", "message": "warming"}',
     (503, "unavailable", "warming", "ModelNotReadyException")),
    (403, {"X-Amzn-ErrorType": "UnrecognizedClientException:http://x/"},
     b'{"Message": "The security token included in the request is invalid."}',
     (401, "authentication", "The security token included in the request is invalid.",
      "UnrecognizedClientException")),
    (424, {"x-amzn-errortype": "ModelErrorException"},
     b'{"message": "model failed", "originalMessage": "oom"}',
     (502, "api_error", "model failed (oom)", "ModelErrorException")),
    (418, {}, b"teapot", (418, "invalid_request", "teapot", ""))])
def test_errors_keep_the_message(status, headers, body, expected):
    err = bedrock.decode_error(status, body, headers)
    assert (err.http_status, err.type, err.message, err.code) == expected
