"""Anthropic Messages client codec: request decoding/validation, responses, errors."""
from __future__ import annotations

import copy

import anthropic
import httpx2
import orjson
import pytest

from switchyard.common.canonical.aggregate import Choice, Turn
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import anthropic_messages as am
from tests.unit.fixtures.client.codec_helpers import canonical, json_transport, load, turn

MIN = {"model": "claude-sonnet-4-5", "max_tokens": 1024,
       "messages": [{"role": "user", "content": "Hello, world"}]}


def with_(**kw) -> dict:
    body = copy.deepcopy(MIN)
    body.update(kw)
    return body


# ---- decode ----------------------------------------------------------------------------
def test_decode_golden_agent_request():
    fx = load("anthropic_request_agent.json")
    assert canonical(am.decode_request(fx["request"])) == fx["canonical"]


def test_decode_minimal():
    req = am.decode_request(MIN)
    assert req.source_format == chat_pb2.WIRE_FORMAT_ANTHROPIC
    assert req.max_tokens == 1024 and req.extra_json == b""
    assert not req.system_as_string and not req.HasField("parallel_tool_calls")
    assert [m.role for m in req.messages] == [chat_pb2.ROLE_USER]


def test_system_string_sets_system_as_string():
    req = am.decode_request(with_(system="Be terse."))
    assert req.system_as_string
    assert req.messages[0].role == chat_pb2.ROLE_SYSTEM
    assert req.messages[0].parts[0].text.text == "Be terse."
    assert req.messages[1].role == chat_pb2.ROLE_USER


def test_metadata_user_id_to_user_rest_stays_in_extra():
    req = am.decode_request(with_(metadata={"user_id": "u1", "trace": "t"}))
    assert req.user == "u1"
    assert orjson.loads(req.extra_json) == {"metadata": {"trace": "t"}}


def test_tool_choice_variants():
    req = am.decode_request(with_(tool_choice={"type": "tool", "name": "get_weather"}))
    assert (req.tool_choice.mode, req.tool_choice.name) == (chat_pb2.ToolChoice.MODE_NAMED,
                                                            "get_weather")
    assert not req.HasField("parallel_tool_calls")
    req = am.decode_request(with_(tool_choice={"type": "any",
                                               "disable_parallel_tool_use": False}))
    assert req.tool_choice.mode == chat_pb2.ToolChoice.MODE_REQUIRED
    assert req.parallel_tool_calls is True
    req = am.decode_request(with_(tool_choice={"type": "none"}))
    assert req.tool_choice.mode == chat_pb2.ToolChoice.MODE_NONE


def test_thinking_disabled_or_adaptive_rides_in_extra():
    req = am.decode_request(with_(thinking={"type": "disabled"}))
    assert not req.reasoning.enabled
    assert orjson.loads(req.extra_json) == {"thinking": {"type": "disabled"}}


def test_signature_and_redacted_data_kept_byte_for_byte():
    sig = "EqQBCgIYAhIM+/=\u00e9\\n"
    req = am.decode_request(with_(messages=[
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": sig},
            {"type": "redacted_thinking", "data": "ZGF0YQ==\n"}]}]))
    parts = req.messages[1].parts
    assert parts[0].reasoning.signature == sig and parts[0].reasoning.text == ""
    assert parts[1].reasoning.redacted and parts[1].reasoning.redacted_data == "ZGF0YQ==\n"


def test_empty_tool_input_and_tool_result_without_content():
    req = am.decode_request(with_(messages=[
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                           "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]))
    assert req.messages[0].parts[0].tool_call.arguments_json == "{}"
    tr = req.messages[1].parts[0].tool_result
    assert tr.tool_call_id == "t" and len(tr.content) == 0 and not tr.is_error


BAD = [
    (with_(model=["m"]), "model"),
    (with_(model=7), "model"),
    ({"model": "m", "messages": MIN["messages"]}, "max_tokens"),
    (with_(max_tokens=0), "max_tokens"),
    (with_(max_tokens=-5), "max_tokens"),
    (with_(max_tokens="100"), "max_tokens"),
    (with_(max_tokens=10.5), "max_tokens"),
    (with_(max_tokens=True), "max_tokens"),
    ({"model": "m", "max_tokens": 5}, "messages"),
    (with_(messages={"role": "user"}), "messages"),
    (with_(messages=[]), "messages"),
    (with_(messages=[{"role": "tool", "content": "x"}]), "messages.0.role"),
    (with_(messages=[{"role": "user", "content": "x"}, {"role": "system", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://x"}}]}]),
     "messages.1.content.0.type"),
    (with_(output_config={"format": {"type": "json_object"}}), "output_config.format.type"),
    (with_(output_config={"format": {"type": "json_schema"}}), "output_config.format.schema"),
    (with_(output_config={"effort": "huge"}), "output_config.effort"),
    (with_(output_config="high"), "output_config"),
    (with_(output_format={"type": "json_schema", "schema": []}), "output_format.schema"),
    (with_(messages=[{"content": "x"}]), "messages.0.role"),
    (with_(messages=[{"role": "user"}]), "messages.0.content"),
    (with_(messages=[{"role": "user", "content": 3}]), "messages.0.content"),
    (with_(messages=[{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b",
                                                   "input": {}}]}]), "messages.0.content.0.type"),
    (with_(messages=[{"role": "assistant", "content": [{"type": "tool_result",
                                                        "tool_use_id": "a"}]}]),
     "messages.0.content.0.type"),
    (with_(messages=[{"role": "user", "content": [{"type": "audio"}]}]),
     "messages.0.content.0.type"),
    (with_(messages=[{"role": "user", "content": [{"type": "text"}]}]),
     "messages.0.content.0.text"),
    (with_(messages=[{"role": "assistant", "content": [{"type": "tool_use", "id": "a",
                                                        "name": "b", "input": "{}"}]}]),
     "messages.0.content.0.input"),
    (with_(messages=[{"role": "assistant", "content": [{"type": "thinking",
                                                        "thinking": "x"}]}]),
     "messages.0.content.0.signature"),
    (with_(messages=[{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "data": "x"}}]}]), "messages.0.content.0.source.media_type"),
    (with_(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a",
                                                   "is_error": "no"}]}]),
     "messages.0.content.0.is_error"),
    (with_(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a",
                                                   "content": [{"type": "tool_use"}]}]}]),
     "messages.0.content.0.content.0.type"),
    (with_(system=5), "system"),
    (with_(system=[{"type": "image"}]), "system.0.type"),
    (with_(temperature=1.5), "temperature"),
    (with_(temperature="0.5"), "temperature"),
    (with_(top_p=2), "top_p"),
    (with_(top_k=-1), "top_k"),
    (with_(top_k=1.5), "top_k"),
    (with_(stop_sequences="END"), "stop_sequences"),
    (with_(stop_sequences=[1]), "stop_sequences.0"),
    (with_(stream="true"), "stream"),
    (with_(metadata="u"), "metadata"),
    (with_(metadata={"user_id": 5}), "metadata.user_id"),
    (with_(thinking={"type": "enabled"}), "thinking.enabled.budget_tokens"),
    (with_(thinking={"type": "enabled", "budget_tokens": 500}),
     "thinking.enabled.budget_tokens"),
    (with_(thinking={"type": "enabled", "budget_tokens": 2048}), "max_tokens"),
    (with_(thinking={}), "thinking.type"),
    (with_(tools=[{"description": "no name", "input_schema": {}}]), "tools.0.name"),
    (with_(tools=[{"name": "f"}]), "tools.0.custom.input_schema"),
    (with_(tools=[{"name": "f", "input_schema": "{}"}]), "tools.0.custom.input_schema"),
    (with_(tools={"name": "f"}), "tools"),
    (with_(tool_choice="auto"), "tool_choice"),
    (with_(tool_choice={"type": "required"}), "tool_choice.type"),
    (with_(tool_choice={"type": "tool"}), "tool_choice.tool.name"),
    (with_(tool_choice={"type": "auto", "disable_parallel_tool_use": "yes"}),
     "tool_choice.disable_parallel_tool_use"),
]


@pytest.mark.parametrize("body,param", BAD)
def test_invalid_requests_are_400_naming_the_param(body, param):
    with pytest.raises(GatewayError) as exc:
        am.decode_request(body)
    assert exc.value.http_status == 400 and exc.value.type == "invalid_request"
    assert exc.value.param == param
    assert param in exc.value.message


# ---- encode_response -------------------------------------------------------------------
def test_encode_response_matches_official_example():
    want = load("anthropic_message_official.json")
    del want["about"]
    t = Turn(usage=chat_pb2.Usage(input_tokens=2095, output_tokens=503))
    t.choices.append(Choice(parts=[chat_pb2.ContentPart(
        text=chat_pb2.TextPart(text="Hi! My name is Claude."))],
        stop_reason=chat_pb2.STOP_REASON_END_TURN))
    got = am.encode_response(t, model=want["model"], response_id=want["id"], created=0)
    assert got == want


def test_encode_response_tool_use_wins_over_upstream_stop_and_input_is_parsed():
    got = am.encode_response(turn("events_parallel_tools.json"), model="claude-x",
                             response_id="chatcmpl-abc", created=0)
    assert got["id"] == "msg_chatcmpl-abc"
    assert got["stop_reason"] == "tool_use"  # upstream said stop; agents need tool_use
    assert got["content"] == [
        {"type": "text", "text": "Checking both. Done."},
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {"tz": "CET"}}]
    assert got["usage"] == {"input_tokens": 80, "output_tokens": 31,
                            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20}


def test_encode_response_thinking_blocks_and_bad_arguments():
    got = am.encode_response(turn("events_thinking.json"), model="m", response_id="msg_1",
                             created=0)
    assert got["content"] == [
        {"type": "thinking", "thinking": "Let me work this out.",
         "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+/=="},
        {"type": "redacted_thinking",
         "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
        {"type": "text", "text": "The answer is 42."}]
    assert got["stop_reason"] == "max_tokens"
    t = Turn()
    t.choices.append(Choice(stop_reason=chat_pb2.STOP_REASON_STOP_SEQUENCE, stop_sequence="##",
                            parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text="")),
                                   chat_pb2.ContentPart(tool_call=chat_pb2.ToolCallPart(
                                       id="t1", name="f", arguments_json="{broken")),
                                   chat_pb2.ContentPart(tool_call=chat_pb2.ToolCallPart(
                                       id="t2", name="g", arguments_json="[1]"))]))
    got = am.encode_response(t, model="m", response_id="msg_2", created=0)
    assert [b.get("input") for b in got["content"]] == [{}, {}]  # empty text block dropped
    assert got["stop_reason"] == "tool_use" and got["stop_sequence"] == "##"


def test_sdk_parses_encoded_response():
    body = am.encode_response(turn("events_thinking.json"), model="claude-x",
                              response_id="msg_9", created=0)
    client = anthropic.Anthropic(api_key="k", base_url="http://gw", max_retries=0,
                                 http_client=httpx2.Client(transport=json_transport(200, body)))
    msg = client.messages.create(model="claude-x", max_tokens=10,
                                 messages=[{"role": "user", "content": "x"}])
    assert [b.type for b in msg.content] == ["thinking", "redacted_thinking", "text"]
    assert msg.content[0].signature.endswith("+/==")
    assert msg.usage.cache_creation_input_tokens == 7


# ---- error_body ------------------------------------------------------------------------
@pytest.mark.parametrize("err,status,etype", [
    (GatewayError(400, "bad"), 400, "invalid_request_error"),
    (GatewayError(404, "no model"), 404, "not_found_error"),
    (GatewayError(413, "too big", type="request_too_large"), 413, "request_too_large"),
    (GatewayError(429, "slow"), 429, "rate_limit_error"),
    (GatewayError(529, "busy", type="overloaded"), 529, "overloaded_error"),
    (GatewayError(503, "down"), 503, "overloaded_error"),
    (GatewayError(504, "late"), 504, "timeout_error"),
])
def test_error_body_shape(err, status, etype):
    assert am.error_body(err) == (status, {"type": "error",
                                           "error": {"type": etype, "message": err.message}})


@pytest.mark.parametrize("status,cls", [
    (400, anthropic.BadRequestError), (401, anthropic.AuthenticationError),
    (404, anthropic.NotFoundError), (429, anthropic.RateLimitError),
    (503, anthropic.ServiceUnavailableError), (529, anthropic.OverloadedError),
])
def test_error_body_parsed_by_the_anthropic_sdk(status, cls):
    http_status, body = am.error_body(GatewayError(status, f"failure {status}"))
    client = anthropic.Anthropic(api_key="k", base_url="http://gw", max_retries=0,
                                 http_client=httpx2.Client(transport=json_transport(http_status,
                                                                                    body)))
    with pytest.raises(cls) as exc:
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user",
                                                                    "content": "x"}])
    assert exc.value.status_code == status
    assert exc.value.body == body
    assert f"failure {status}" in str(exc.value)
