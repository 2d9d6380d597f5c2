"""OpenAI Chat Completions client codec: request decoding/validation, responses, errors."""
from __future__ import annotations

import copy

import httpx2
import openai
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchyard.common.canonical.aggregate import Choice, Turn
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import openai_chat as oc
from tests.unit.fixtures.client.codec_helpers import canonical, json_transport, load, subset, turn

MIN = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


def with_(**kw) -> dict:
    body = copy.deepcopy(MIN)
    body.update(kw)
    return body


# ---- decode: golden --------------------------------------------------------------------
def test_decode_golden_agent_request():
    fx = load("openai_chat_request_agent.json")
    assert canonical(oc.decode_request(fx["request"])) == fx["canonical"]


def test_decode_minimal_has_empty_extra_and_source_format():
    req = oc.decode_request(MIN)
    assert req.source_format == chat_pb2.WIRE_FORMAT_OPENAI_CHAT
    assert req.extra_json == b""
    assert req.messages[0].extra_json == b""
    assert not req.HasField("max_tokens") and not req.HasField("temperature")
    assert not req.HasField("parallel_tool_calls")


def test_max_tokens_alone_is_not_copied_to_extra():
    req = oc.decode_request(with_(max_tokens=100))
    assert req.max_tokens == 100 and req.extra_json == b""


def test_both_max_token_fields_keep_both_keys():
    req = oc.decode_request(with_(max_tokens=100, max_completion_tokens=200))
    assert req.max_tokens == 200
    assert orjson.loads(req.extra_json) == {"max_completion_tokens": 200, "max_tokens": 100}


def test_stop_list_and_named_tool_choice():
    req = oc.decode_request(with_(stop=["a", "b"], tools=[{"type": "function", "function":
                                                           {"name": "f"}}],
                                  tool_choice={"type": "function", "function": {"name": "f"}}))
    assert list(req.stop) == ["a", "b"]
    assert req.tool_choice.mode == chat_pb2.ToolChoice.MODE_NAMED
    assert req.tool_choice.name == "f"
    assert req.tools[0].parameters_json == "" and req.tools[0].extra_json == b""


def test_required_tool_choice_and_parallel_true():
    req = oc.decode_request(with_(tool_choice="required", parallel_tool_calls=True))
    assert req.tool_choice.mode == chat_pb2.ToolChoice.MODE_REQUIRED
    assert req.HasField("parallel_tool_calls") and req.parallel_tool_calls is True


def test_unknown_message_and_part_fields_ride_in_extra():
    req = oc.decode_request(with_(messages=[
        {"role": "user", "content": [{"type": "text", "text": "x",
                                      "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": "ok", "refusal": None, "audio": {"id": "a1"}},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
    ]))
    assert orjson.loads(req.messages[0].parts[0].extra_json) == {
        "cache_control": {"type": "ephemeral"}}
    assert orjson.loads(req.messages[1].extra_json) == {"refusal": None, "audio": {"id": "a1"}}
    refusal = req.messages[2].parts[0]
    assert refusal.text.text == "no" and orjson.loads(refusal.extra_json) == {"type": "refusal"}


def test_native_tool_type_is_carried_whole():
    tool = {"type": "custom", "custom": {"name": "grammar", "format": {"type": "text"}}}
    req = oc.decode_request(with_(tools=[tool]))
    t = req.tools[0]
    assert t.type == "custom" and t.name == "grammar"
    assert orjson.loads(t.extra_json) == {"custom": tool["custom"]}


def test_empty_model_string_is_allowed_for_the_default_route():
    assert oc.decode_request(with_(model="")).model == ""


# ---- decode: validation ----------------------------------------------------------------
BAD = [
    (with_(model=3), "model"),
    (with_(response_format="json"), "response_format"),
    (with_(response_format={"type": "xml"}), "response_format.type"),
    (with_(response_format={"type": "json_schema"}), "response_format.json_schema"),
    (with_(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
     "response_format.json_schema.name"),
    (with_(prompt_cache_key=5), "prompt_cache_key"),
    ({"model": "m"}, "messages"),
    (with_(messages=[]), "messages"),
    (with_(messages="hi"), "messages"),
    (with_(messages=[{"content": "x"}]), "messages[0].role"),
    (with_(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
    (with_(messages=[{"role": "user"}]), "messages[0].content"),
    (with_(messages=[{"role": "user", "content": None}]), "messages[0].content"),
    (with_(messages=[{"role": "assistant", "content": None}]), "messages[0].content"),
    (with_(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    (with_(messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]),
     "messages[0].content[0].type"),
    (with_(messages=[{"role": "system", "content": [{"type": "image_url",
                                                     "image_url": {"url": "x"}}]}]),
     "messages[0].content[0].type"),
    (with_(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]),
     "messages[0].content[0].text"),
    (with_(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
     "messages[0].content[0].image_url.url"),
    (with_(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
    (with_(messages=[{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]),
     "messages[0].tool_calls[0].function.arguments"),
    (with_(messages=[{"role": "assistant", "tool_calls": [{"type": "function"}]}]),
     "messages[0].tool_calls[0].id"),
    (with_(max_tokens="10"), "max_tokens"),
    (with_(max_tokens=0), "max_tokens"),
    (with_(max_completion_tokens=1.5), "max_completion_tokens"),
    (with_(max_tokens=True), "max_tokens"),
    (with_(temperature="hot"), "temperature"),
    (with_(temperature=2.5), "temperature"),
    (with_(top_p=1.5), "top_p"),
    (with_(n="2"), "n"),
    (with_(n=0), "n"),
    (with_(seed=1.5), "seed"),
    (with_(presence_penalty=3), "presence_penalty"),
    (with_(frequency_penalty="x"), "frequency_penalty"),
    (with_(stop=[1]), "stop[0]"),
    (with_(stop=5), "stop"),
    (with_(stream="yes"), "stream"),
    (with_(stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
    (with_(tools={"type": "function"}), "tools"),
    (with_(tools=[{"type": "function"}]), "tools[0].function"),
    (with_(tools=[{"type": "function", "function": {"description": "x"}}]),
     "tools[0].function.name"),
    (with_(tools=[{"type": "function", "function": {"name": "f", "parameters": "{}"}}]),
     "tools[0].function.parameters"),
    (with_(tool_choice="sometimes"), "tool_choice"),
    (with_(tool_choice={"type": "function", "function": {}}), "tool_choice.function.name"),
    (with_(tool_choice=1), "tool_choice"),
    (with_(parallel_tool_calls="no"), "parallel_tool_calls"),
    (with_(user=5), "user"),
    (with_(reasoning_effort=1), "reasoning_effort"),
]


@pytest.mark.parametrize("body,param", BAD)
def test_invalid_requests_are_400_naming_the_param(body, param):
    with pytest.raises(GatewayError) as exc:
        oc.decode_request(body)
    assert exc.value.http_status == 400
    assert exc.value.type == "invalid_request"
    assert exc.value.param == param
    assert f"'{param}'" in exc.value.message


# ---- decode: property (pitfalls list) ---------------------------------------------------
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
texts = st.text(max_size=20)
tool_call = st.builds(lambda i, n, a: {"id": f"call_{i}", "type": "function",
                                       "function": {"name": n, "arguments": a}},
                      ids, ids, st.one_of(st.just(""), st.just("{not json"), texts,
                                          st.just('{"a": 1}')))
message = st.one_of(
    st.builds(lambda r, t: {"role": r, "content": t}, st.sampled_from(["system", "developer"]),
              texts),
    st.builds(lambda t: {"role": "user", "content": t}, texts),
    st.builds(lambda t, b64: {"role": "user", "content": [
        {"type": "text", "text": t},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64}"}}]},
              texts, ids),
    st.builds(lambda t: {"role": "assistant", "content": t}, texts),
    st.builds(lambda calls: {"role": "assistant", "content": None, "tool_calls": calls},
              st.lists(tool_call, min_size=1, max_size=3)),
    st.builds(lambda i, t: {"role": "tool", "tool_call_id": f"call_{i}", "content": t},
              ids, texts),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(message, min_size=1, max_size=8), st.one_of(st.none(), texts,
                                                             st.lists(texts, max_size=3)),
       st.one_of(st.none(), ids))
def test_decoded_messages_are_what_the_pitfalls_list_expects(msgs, stop, user):
    body = {"model": "m", "messages": msgs}
    if stop is not None:
        body["stop"] = stop
    if user is not None:
        body["user"] = user
    req = oc.decode_request(body)
    assert len(req.messages) == len(msgs)  # nothing merged, dropped or reordered here
    for src, out in zip(msgs, req.messages):
        role = src["role"]
        if role in ("system", "developer"):
            # stay in place; the Anthropic encoder hoists them, none dropped
            assert out.role == (chat_pb2.ROLE_SYSTEM if role == "system"
                                else chat_pb2.ROLE_DEVELOPER)
            assert out.parts[0].text.text == src["content"]
        elif role == "tool":
            assert out.role == chat_pb2.ROLE_USER and len(out.parts) == 1
            tr = out.parts[0].tool_result
            assert tr.tool_call_id == src["tool_call_id"]
            assert tr.content[0].text.text == src["content"]
        elif role == "assistant" and src.get("tool_calls"):
            calls = [p.tool_call for p in out.parts]
            assert [(c.id, c.name, c.arguments_json) for c in calls] == [
                (c["id"], c["function"]["name"], c["function"]["arguments"])
                for c in src["tool_calls"]]  # arguments kept verbatim, even invalid JSON
        elif isinstance(src["content"], list):
            img = out.parts[1].image
            assert img.url == "" and img.media_type == "image/jpeg"
            assert img.data_base64 == src["content"][1]["image_url"]["url"].split(",", 1)[1]
        else:
            assert out.parts[0].text.text == src["content"]
    want_stop = [] if stop is None else [stop] if isinstance(stop, str) else stop
    assert list(req.stop) == want_stop
    assert req.user == (user or "")


# ---- encode_response -------------------------------------------------------------------
def _strip(obj, keys):
    if isinstance(obj, dict):
        return {k: _strip(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [_strip(v, keys) for v in obj]
    return obj


def _text_turn(text: str, stop: int, usage: chat_pb2.Usage, extra: dict | None = None) -> Turn:
    t = Turn(usage=usage)
    if extra:
        t.start.extra_json = orjson.dumps(extra)
    t.choices.append(Choice(index=0, parts=[chat_pb2.ContentPart(
        text=chat_pb2.TextPart(text=text))], stop_reason=stop))
    return t


def test_encode_response_matches_official_text_example():
    fx = load("openai_chat_response_official.json")
    want = _strip(fx["text"], set(fx["omitted"]))
    t = _text_turn("Hello! How can I assist you today?", chat_pb2.STOP_REASON_END_TURN,
                   chat_pb2.Usage(input_tokens=19, output_tokens=10),
                   {"service_tier": "default", "unrelated": 1})
    got = oc.encode_response(t, model=want["model"], response_id=want["id"],
                             created=want["created"])
    assert got == want


def test_encode_response_matches_official_tool_example():
    fx = load("openai_chat_response_official.json")
    want = _strip(fx["tools"], set(fx["omitted"]))
    t = Turn(usage=chat_pb2.Usage(input_tokens=82, output_tokens=17))
    t.choices.append(Choice(index=0, stop_reason=chat_pb2.STOP_REASON_TOOL_USE, parts=[
        chat_pb2.ContentPart(tool_call=chat_pb2.ToolCallPart(
            id="call_abc123", name="get_current_weather",
            arguments_json="{\n\"location\": \"Boston, MA\"\n}"))]))
    got = oc.encode_response(t, model="gpt-4o-mini", response_id="chatcmpl-abc123",
                             created=1699896916)
    assert got == want


def test_encode_response_tool_call_after_text_is_tool_calls_and_reasoning_separate():
    t = turn("events_parallel_tools.json")  # upstream said `stop` (END_TURN)
    got = oc.encode_response(t, model="alias", response_id="chatcmpl-1", created=1)
    choice = got["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking both. Done."
    assert [c["function"]["arguments"] for c in choice["message"]["tool_calls"]] == [
        '{"city": "Paris"}', '{"tz": "CET"}']
    assert got["model"] == "alias"
    assert got["usage"]["prompt_tokens"] == 100  # cached tokens are part of prompt_tokens
    assert got["usage"]["prompt_tokens_details"]["cached_tokens"] == 20

    thinking = oc.encode_response(turn("events_thinking.json"), model="m", response_id="x",
                                  created=1)
    msg = thinking["choices"][0]["message"]
    assert msg["content"] == "The answer is 42."  # never glued to the reasoning
    assert msg["reasoning_content"] == "Let me work this out."
    assert thinking["choices"][0]["finish_reason"] == "length"


def test_encode_response_system_fingerprint_and_multiple_choices():
    t = Turn()
    t.start.extra_json = orjson.dumps({"system_fingerprint": "fp_1"})
    for i in (0, 1):
        t.choices.append(Choice(index=i, parts=[chat_pb2.ContentPart(
            text=chat_pb2.TextPart(text=f"c{i}"))], stop_reason=chat_pb2.STOP_REASON_END_TURN))
    got = oc.encode_response(t, model="m", response_id="x", created=1)
    assert got["system_fingerprint"] == "fp_1"
    assert [(c["index"], c["message"]["content"]) for c in got["choices"]] == [
        (0, "c0"), (1, "c1")]


# ---- error_body ------------------------------------------------------------------------
@pytest.mark.parametrize("err,status,etype", [
    (GatewayError(400, "bad", param="messages"), 400, "invalid_request_error"),
    (GatewayError(404, "The model `x` does not exist", code="model_not_found"), 404,
     "not_found_error"),
    (GatewayError(429, "slow down"), 429, "rate_limit_error"),
    (GatewayError(529, "overloaded", type="overloaded"), 503, "service_unavailable"),
    (GatewayError(504, "timed out"), 504, "timeout"),
    (GatewayError(500, "weird", type="no_such_type"), 500, "api_error"),
])
def test_error_body_shape(err, status, etype):
    got_status, body = oc.error_body(err)
    assert got_status == status
    assert body == {"error": {"message": err.message, "type": etype,
                              "param": err.param or None, "code": err.code or None}}


@pytest.mark.parametrize("status,cls", [
    (400, openai.BadRequestError), (401, openai.AuthenticationError),
    (404, openai.NotFoundError), (429, openai.RateLimitError),
    (503, openai.InternalServerError), (529, openai.InternalServerError),
])
def test_error_body_parsed_by_the_openai_sdk(status, cls):
    err = GatewayError(status, f"failure {status}", param="model" if status == 404 else "")
    http_status, body = oc.error_body(err)
    client = openai.OpenAI(api_key="k", base_url="http://gw/v1", max_retries=0,
                           http_client=httpx2.Client(transport=json_transport(http_status,
                                                                              body)))
    with pytest.raises(cls) as exc:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == (503 if status == 529 else status)
    assert exc.value.message.endswith(f"failure {status}") or f"failure {status}" in str(
        exc.value)
    assert exc.value.body["type"] == body["error"]["type"]


def test_sdk_parses_encoded_response():
    t = turn("events_parallel_tools.json")
    body = oc.encode_response(t, model="alias", response_id="chatcmpl-9", created=7)
    client = openai.OpenAI(api_key="k", base_url="http://gw/v1", max_retries=0,
                           http_client=httpx2.Client(transport=json_transport(200, body)))
    out = client.chat.completions.create(model="alias", messages=[{"role": "user",
                                                                   "content": "x"}])
    calls = out.choices[0].message.tool_calls
    assert [c.id for c in calls] == ["call_a", "call_b"]
    assert out.choices[0].finish_reason == "tool_calls"
    assert out.usage.total_tokens == 131
    subset({"id": "chatcmpl-9", "created": 7}, out.model_dump())


def test_tool_level_and_function_level_extras_stay_apart():
    req = oc.decode_request(with_(tools=[{"type": "function", "x_tool": 1,
                                          "function": {"name": "f", "strict": True}}]))
    assert orjson.loads(req.tools[0].extra_json) == {"x_tool": 1, "function": {"strict": True}}


def test_file_part_with_only_a_file_id_is_a_document_and_round_trips():
    from switchyard.common.config.model import ProviderEntry
    from switchyard.providers.adapters import openai_compat
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-123"}}]}]}
    req = oc.decode_request(body)
    assert req.messages[0].parts[0].WhichOneof("kind") == "document"
    entry = ProviderEntry(name="openai/gpt-4o", provider="openai", model="gpt-4o",
                          interface="openai", endpoint="http://127.0.0.1:1/v1/chat/completions",
                          auth="bearer", access_key="k")
    sent, dropped = openai_compat.encode_request(req, entry, "gpt-4o")
    assert orjson.loads(sent)["messages"] == body["messages"] and dropped == []
