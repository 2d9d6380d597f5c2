"""The upstream emulator, driven by the real openai and anthropic SDKs (and raw HTTP)."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest

from tests.emulator import Emulator
from tests.emulator.text import sign_thinking
from tests.support.ports import free_port

OPENAI_KEY = "sk-openai-test"
ANTHROPIC_KEY = "sk-ant-test"
ANTHROPIC_HEADERS = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
WEATHER_TOOL_ANT = {"name": "get_weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture(scope="module")
def emu():
    with Emulator(openai_keys={OPENAI_KEY}, anthropic_keys={ANTHROPIC_KEY}) as e:
        yield e


@pytest.fixture(autouse=True)
def _fresh(emu):
    emu.reset()


@pytest.fixture
def oai(emu):
    return openai.OpenAI(base_url=emu.openai_base_url, api_key=OPENAI_KEY, max_retries=0)


@pytest.fixture
def ant(emu):
    return anthropic.Anthropic(base_url=emu.url, api_key=ANTHROPIC_KEY, max_retries=0)


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) per SSE event, asserting the `\\n\\n` framing."""
    assert text.endswith("\n\n")
    out = []
    for raw in text.strip("\n").split("\n\n"):
        name, data = None, None
        for line in raw.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data = value
            else:
                raise AssertionError(f"unexpected SSE line {line!r}")
        out.append((name, data))
    return out


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# ---- OpenAI ------------------------------------------------------------------------------
def test_openai_text_reply_and_recorded_request(emu, oai):
    r = oai.chat.completions.create(model="gpt-4o-mini", messages=user("hello big world"),
                                    extra_body={"some_new_param": 1}, extra_query={"trace": "1"})
    assert r.choices[0].message.content == "Echo: hello big world"
    assert r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion" and r.model == "gpt-4o-mini"
    assert r.usage.completion_tokens == 4 and r.usage.total_tokens == r.usage.prompt_tokens + 4
    [req] = emu.requests()
    assert req["method"] == "POST" and req["path"] == "/v1/chat/completions"
    assert req["query"] == {"trace": "1"}
    assert req["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert req["json"]["some_new_param"] == 1 and req["model"] == "gpt-4o-mini"
    assert req["status"] == 200 and req["api"] == "openai" and isinstance(req["time"], float)


def test_openai_stream_framing(emu, oai):
    chunks = list(oai.chat.completions.create(model="m", messages=user("one two three"), stream=True))
    assert {c.id for c in chunks} == {chunks[0].id} and len({c.created for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" and c.model == "m" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    text = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(text) == 4 and "".join(text) == "Echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert all(c.usage is None for c in chunks)


def test_openai_include_usage_raw(emu):
    body = {"model": "m", "messages": user("hi"), "stream": True,
            "stream_options": {"include_usage": True}}
    r = httpx.post(f"{emu.openai_base_url}/chat/completions", json=body,
                   headers={"Authorization": f"Bearer {OPENAI_KEY}"})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(d) for _, d in events[:-1]]
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_openai_tool_calls(emu, oai):
    emu.script("m", {"reply": {"tool_calls": [{"id": "call_1", "name": "get_weather",
                                               "arguments": {"city": "Paris"}}]}})
    r = oai.chat.completions.create(model="m", messages=user("weather?"), tools=[WEATHER_TOOL])
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls" and msg.content is None
    assert msg.tool_calls[0].id == "call_1" and msg.tool_calls[0].function.name == "get_weather"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"city": "Paris"}
    # The answered tool call is a valid next turn; the queue is empty so the default reply comes back.
    history = user("weather?") + [msg.model_dump(exclude_none=True),
                                  {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    r2 = oai.chat.completions.create(model="m", messages=history, tools=[WEATHER_TOOL])
    assert r2.choices[0].message.content == "Echo: weather?"


def test_openai_streamed_parallel_tool_calls_interleaved(emu, oai):
    emu.script("m", {"interleave": True, "reply": {"tool_calls": [
        {"id": "call_a", "name": "get_weather", "arguments": {"city": "Paris, France"}},
        {"id": "call_b", "name": "get_weather", "arguments": {"city": "Berlin, Germany"}}]}})
    chunks = list(oai.chat.completions.create(model="m", messages=user("x"), tools=[WEATHER_TOOL],
                                              stream=True))
    deltas = [tc for c in chunks if c.choices and c.choices[0].delta.tool_calls
              for tc in c.choices[0].delta.tool_calls]
    indexes = [d.index for d in deltas]
    assert indexes[:4] == [0, 1, 0, 1], "fragments of the two calls must interleave"
    args = {0: "", 1: ""}
    seen: set[int] = set()
    for d in deltas:
        if d.index not in seen:  # first fragment: id, type, name, empty arguments
            assert d.id and d.type == "function" and d.function.name == "get_weather"
            assert d.function.arguments == ""
            seen.add(d.index)
        else:
            assert d.id is None and d.type is None and d.function.name is None
        args[d.index] += d.function.arguments
    assert json.loads(args[0]) == {"city": "Paris, France"}
    assert json.loads(args[1]) == {"city": "Berlin, Germany"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_reasoning_content_when_scripted(emu):
    emu.script("*", {"reply": {"thinking": "think hard", "text": "done"}})
    r = httpx.post(f"{emu.openai_base_url}/chat/completions", json={"model": "m", "messages": user("q")},
                   headers={"Authorization": f"Bearer {OPENAI_KEY}"}).json()
    assert r["choices"][0]["message"]["reasoning_content"] == "think hard"
    assert r["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2


@pytest.mark.parametrize("messages, needle", [
    ([{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "x", "content": "r"}],
     "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'"),
    ([{"role": "user", "content": "a"},
      {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                            "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "user", "content": "b"}],
     "The following tool_call_ids did not have response messages: c1"),
    ([{"role": "user", "content": "a"},
      {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                            "function": {"name": "f", "arguments": {"k": 1}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "r"}],
     "Invalid type for 'messages[1].tool_calls[0].function.arguments'"),
    ([{"role": "bot", "content": "a"}], "Invalid value: 'bot'"),
    ([], "empty array"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": "http://x/y.png"}]}],
     "Invalid type for 'messages[0].content[0].image_url'"),
])
def test_openai_rejects_bad_messages(oai, messages, needle):
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model="m", messages=messages)
    assert needle in e.value.body["message"]
    assert e.value.body["type"] == "invalid_request_error"


def test_openai_rejects_bad_params(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model="m", messages=user("a"), max_tokens=0)
    assert e.value.body["code"] == "integer_below_min_value" and e.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError, match="only allowed when 'stream' is enabled"):
        oai.chat.completions.create(model="m", messages=user("a"), stream_options={"include_usage": True})
    with pytest.raises(openai.BadRequestError, match="Supported values are: 'function'"):
        oai.chat.completions.create(model="m", messages=user("a"),
                                    tools=[{"type": "tool", "function": {"name": "f"}}])


def test_openai_auth(emu):
    bad = openai.OpenAI(base_url=emu.openai_base_url, api_key="sk-wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model="m", messages=user("a"))
    assert e.value.status_code == 401
    assert e.value.body == {"message": e.value.body["message"], "type": "invalid_request_error",
                            "param": None, "code": "invalid_api_key"}
    r = httpx.post(f"{emu.openai_base_url}/chat/completions", json={"model": "m", "messages": user("a")})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_openai_scripted_429_then_default(emu, oai):
    emu.script("m", {"status": 429, "headers": {"retry-after": "1"}, "error": {"message": "slow down"}})
    with pytest.raises(openai.RateLimitError) as e:
        oai.chat.completions.create(model="m", messages=user("a"))
    assert e.value.response.headers["retry-after"] == "1"
    assert e.value.body["message"] == "slow down" and e.value.body["code"] == "rate_limit_exceeded"
    assert oai.chat.completions.create(model="m", messages=user("a")).choices[0].message.content == "Echo: a"


def test_openai_scripts_keyed_by_model_with_wildcard(emu, oai):
    emu.script("*", {"status": 500})
    emu.script("other", {"reply": {"text": "for other"}})
    r = oai.chat.completions.create(model="other", messages=user("a"))
    assert r.choices[0].message.content == "for other"
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="other", messages=user("a"))


def test_openai_max_tokens_and_stop(oai):
    r = oai.chat.completions.create(model="m", messages=user("a b c d e"), max_completion_tokens=3)
    assert r.choices[0].message.content == "Echo: a b" and r.choices[0].finish_reason == "length"
    r = oai.chat.completions.create(model="m", messages=user("alpha STOP beta"), stop=["STOP"])
    assert r.choices[0].message.content == "Echo: alpha " and r.choices[0].finish_reason == "stop"


def test_openai_abort_mid_stream(emu, oai):
    emu.script("m", {"abort_after_chunks": 2})
    got = []
    with pytest.raises((openai.APIConnectionError, httpx.RemoteProtocolError)):
        for c in oai.chat.completions.create(model="m", messages=user("a b c d"), stream=True):
            got.append(c)
    assert len(got) == 2
    [req] = emu.requests()
    assert req["aborted"] is True and emu.disconnects() == []


def test_openai_error_chunk_mid_stream(emu, oai):
    emu.script("m", {"error_event_after_chunks": 2, "error": {"message": "boom"}})
    got = []
    with pytest.raises(openai.APIError, match="boom"):
        for c in oai.chat.completions.create(model="m", messages=user("a b c d"), stream=True):
            got.append(c)
    assert len(got) == 2


def test_openai_refusal(oai, emu):
    emu.script("m", {"reply": {"refusal": "No."}})
    msg = oai.chat.completions.create(model="m", messages=user("a")).choices[0].message
    assert msg.refusal == "No." and msg.content is None


def test_azure_deployment_route(emu):
    az = openai.AzureOpenAI(azure_endpoint=emu.url, api_key=OPENAI_KEY, api_version="2024-10-21",
                            max_retries=0)
    r = az.chat.completions.create(model="my-deploy", messages=user("hi"))
    assert r.choices[0].message.content == "Echo: hi" and r.model == "my-deploy"
    req = emu.requests()[-1]
    assert req["path"] == "/openai/deployments/my-deploy/chat/completions"
    assert req["query"]["api-version"] == "2024-10-21" and req["headers"]["api-key"] == OPENAI_KEY
    chunks = list(az.chat.completions.create(model="my-deploy", messages=user("hi"), stream=True))
    assert chunks[0].choices == [] and "".join(
        c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hi"
    url = f"{emu.url}/openai/deployments/my-deploy/chat/completions"
    r = httpx.post(url, json={"messages": user("hi")}, headers={"api-key": OPENAI_KEY})
    assert r.status_code == 404 and r.json() == {"error": {"code": "404", "message": "Resource not found"}}
    r = httpx.post(url, params={"api-version": "2024-10-21"}, json={"messages": user("hi")},
                   headers={"Authorization": f"Bearer {OPENAI_KEY}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "401"


# ---- Anthropic ---------------------------------------------------------------------------
def test_anthropic_text_reply(emu, ant):
    r = ant.messages.with_raw_response.create(model="claude-x", max_tokens=100,
                                              messages=user("hello there"), system="be nice")
    assert r.headers["request-id"].startswith("req_")
    m = r.parse()
    assert m.content[0].type == "text" and m.content[0].text == "Echo: hello there"
    assert m.stop_reason == "end_turn" and m.stop_sequence is None and m.usage.output_tokens == 3
    req = emu.requests()[-1]
    # anthropic-sdk 2.x sends the key as a Bearer token; raw tests below use x-api-key.
    assert req["headers"]["authorization"] == f"Bearer {ANTHROPIC_KEY}" and req["path"] == "/v1/messages"
    assert req["json"]["system"] == "be nice"


def test_anthropic_stream_event_order(emu):
    body = {"model": "c", "max_tokens": 50, "stream": True, "messages": user("one two")}
    r = httpx.post(f"{emu.url}/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    events = sse_events(r.text)
    names = [n for n, _ in events]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                     "content_block_delta", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    datas = [json.loads(d) for _, d in events]
    assert all(d["type"] == n for n, d in zip(names, datas))
    start = datas[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] >= 1
    assert "".join(d["delta"]["text"] for d in datas[3:6]) == "Echo: one two"
    assert datas[7]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert datas[7]["usage"]["output_tokens"] == 3


def test_anthropic_streamed_tool_use_via_sdk(emu, ant):
    emu.script("c", {"reply": {"text": "Let me check.", "tool_calls": [
        {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}]}})
    with ant.messages.stream(model="c", max_tokens=100, messages=user("w"), tools=[WEATHER_TOOL_ANT]) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"city": "Paris"} and final.stop_reason == "tool_use"
    # The tool loop continues when the tool_result answers the tool_use id first thing.
    history = user("w") + [{"role": "assistant", "content": [b.model_dump() for b in final.content]},
                           {"role": "user", "content": [
                               {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                               {"type": "text", "text": "thanks"}]}]
    r = ant.messages.create(model="c", max_tokens=100, messages=history, tools=[WEATHER_TOOL_ANT])
    assert r.content[0].text == "Echo: thanks"


def _tool_history(result_first: bool = True, result_id: str = "toolu_1") -> list[dict]:
    result = {"type": "tool_result", "tool_use_id": result_id, "content": "sunny"}
    text = {"type": "text", "text": "and?"}
    return [{"role": "user", "content": "w"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [result, text] if result_first else [text, result]}]


@pytest.mark.parametrize("messages, needle", [
    (_tool_history(result_first=False), "messages.1: `tool_use` ids were found without `tool_result` "
                                        "blocks immediately after: toolu_1"),
    (_tool_history()[:2] + [{"role": "user", "content": "no results"}],
     "`tool_use` ids were found without `tool_result` blocks immediately after"),
    (_tool_history(result_id="toolu_9"), "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9"),
    ([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
     "messages.0.role: Input should be 'user' or 'assistant'"),
    ([{"role": "assistant", "content": "a"}, {"role": "user", "content": "u"}],
     'first message must use the "user" role'),
    ([{"role": "user", "content": "u", "name": "bob"}], "messages.0.name: Extra inputs are not permitted"),
    ([{"role": "user", "content": [{"type": "text", "text": ""}]}], "text content blocks must be non-empty"),
])
def test_anthropic_rejects_bad_messages(ant, messages, needle):
    with pytest.raises(anthropic.BadRequestError) as e:
        ant.messages.create(model="c", max_tokens=10, messages=messages)
    assert needle in e.value.body["error"]["message"]
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "invalid_request_error"
    assert e.value.body["request_id"] == e.value.response.headers["request-id"]


def test_anthropic_rejects_bad_params(emu, ant):
    r = httpx.post(f"{emu.url}/v1/messages", json={"model": "c", "messages": user("a")},
                   headers=ANTHROPIC_HEADERS)
    assert r.status_code == 400 and r.json()["error"]["message"] == "max_tokens: Field required"
    with pytest.raises(anthropic.BadRequestError, match="metadata.session: Extra inputs"):
        ant.messages.create(model="c", max_tokens=10, messages=user("a"),
                            metadata={"user_id": "u", "session": "s"})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(anthropic.BadRequestError, match="frequency_penalty: Extra inputs"):
        ant.messages.create(model="c", max_tokens=10, messages=user("a"),
                            extra_body={"frequency_penalty": 0.5})
    with pytest.raises(anthropic.BadRequestError, match="greater than or equal to 1024"):
        ant.messages.create(model="c", max_tokens=5000, messages=user("a"),
                            thinking={"type": "enabled", "budget_tokens": 512})
    with pytest.raises(anthropic.BadRequestError, match="must be greater than `thinking.budget_tokens`"):
        ant.messages.create(model="c", max_tokens=2000, messages=user("a"),
                            thinking={"type": "enabled", "budget_tokens": 2000})


def test_anthropic_auth_and_version_headers(emu):
    url = f"{emu.url}/v1/messages"
    body = {"model": "c", "max_tokens": 5, "messages": user("a")}
    r = httpx.post(url, json=body, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 401 and r.json()["error"] == {"type": "authentication_error",
                                                          "message": "x-api-key header is required"}
    assert r.headers["request-id"] == r.json()["request_id"]
    r = httpx.post(url, json=body, headers={"x-api-key": ANTHROPIC_KEY})
    assert r.status_code == 400 and r.json()["error"]["message"] == "anthropic-version: header is required"
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=emu.url, api_key="wrong", max_retries=0).messages.create(
            model="c", max_tokens=5, messages=user("a"))


def test_anthropic_thinking_roundtrip_and_signature_check(ant):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with ant.messages.stream(model="c", max_tokens=2048, messages=user("hi"), thinking=thinking) as s:
        first = s.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "text"]
    assert first.content[0].signature == sign_thinking(first.content[0].thinking)
    turn = [b.model_dump(exclude_none=True) for b in first.content]
    history = user("hi") + [{"role": "assistant", "content": turn}, {"role": "user", "content": "more"}]
    assert ant.messages.create(model="c", max_tokens=2048, messages=history,
                               thinking=thinking).content[1].text == "Echo: more"
    turn[0]["signature"] = "forged"
    with pytest.raises(anthropic.BadRequestError, match="messages.1.content.0: Invalid `signature`"):
        ant.messages.create(model="c", max_tokens=2048, messages=history, thinking=thinking)


def test_anthropic_thinking_required_before_tool_results(ant):
    with pytest.raises(anthropic.BadRequestError, match="Expected `thinking` or `redacted_thinking`, "
                                                        "but found `tool_use`"):
        ant.messages.create(model="c", max_tokens=2048, messages=_tool_history(),
                            thinking={"type": "enabled", "budget_tokens": 1024})


def test_anthropic_stop_sequence_and_max_tokens(ant):
    r = ant.messages.create(model="c", max_tokens=50, messages=user("one END two"), stop_sequences=["END"])
    assert r.content[0].text == "Echo: one " and r.stop_reason == "stop_sequence" and r.stop_sequence == "END"
    r = ant.messages.create(model="c", max_tokens=2, messages=user("one two three"))
    assert r.content[0].text == "Echo: one" and r.stop_reason == "max_tokens"


def test_anthropic_scripted_errors(emu, ant):
    emu.script("c", {"status": 429, "headers": {"retry-after": "2"}}, {"status": 529})
    with pytest.raises(anthropic.RateLimitError) as e:
        ant.messages.create(model="c", max_tokens=5, messages=user("a"))
    assert e.value.response.headers["retry-after"] == "2"
    assert e.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.APIStatusError) as e:
        ant.messages.create(model="c", max_tokens=5, messages=user("a"))
    assert e.value.status_code == 529 and e.value.body["error"] == {"type": "overloaded_error",
                                                                    "message": "Overloaded"}


def test_anthropic_error_event_mid_stream(emu, ant):
    emu.script("c", {"error_event_after_chunks": 3})
    with pytest.raises(anthropic.APIStatusError) as e:
        with ant.messages.stream(model="c", max_tokens=50, messages=user("a b c")) as s:
            for _ in s:
                pass
    assert e.value.body["error"]["type"] == "overloaded_error"
    raw = httpx.post(f"{emu.url}/v1/messages", headers=ANTHROPIC_HEADERS, json={
        "model": "c", "max_tokens": 50, "stream": True, "messages": user("a")})
    assert [n for n, _ in sse_events(raw.text)][-1] == "message_stop"  # script consumed


def test_client_disconnect_is_recorded(emu):
    emu.script("c", {"chunk_delay": 0.2})
    body = {"model": "c", "max_tokens": 50, "stream": True, "messages": user("a b c d e f")}
    with httpx.stream("POST", f"{emu.url}/v1/messages", json=body, headers=ANTHROPIC_HEADERS) as r:
        next(r.iter_raw())
    [d] = emu.wait_for_disconnects(1)
    assert d["stream"] is True and d["model"] == "c" and 1 <= d["frames_sent"] < 8
    assert d["request_index"] == emu.requests()[-1]["index"]


def test_client_timeout_during_delay_is_recorded(emu):
    emu.script("m", {"delay": 5})
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{emu.openai_base_url}/chat/completions", timeout=0.2,
                   json={"model": "m", "messages": user("a")},
                   headers={"Authorization": f"Bearer {OPENAI_KEY}"})
    [d] = emu.wait_for_disconnects(1)
    assert d["stream"] is False and d["api"] == "openai" and d["frames_sent"] == 0


def test_delay_step(emu, oai):
    emu.script("m", {"delay": 0.3})
    t0 = time.monotonic()
    oai.chat.completions.create(model="m", messages=user("a"))
    assert time.monotonic() - t0 >= 0.3


def test_count_tokens_and_models(emu, ant, oai):
    n = ant.messages.count_tokens(model="c", messages=user("four words right here"))
    assert n.input_tokens == 4
    assert [m.id for m in oai.models.list()][:1] == ["gpt-4o-mini"]
    assert [m.type for m in ant.models.list()][0] == "model"


def test_http_control_api(emu):
    bad = httpx.post(f"{emu.url}/_emulator/script", json={"model": "m", "steps": [{"stauts": 500}]})
    assert bad.status_code == 400 and "stauts" in bad.json()["error"]
    ok = httpx.post(f"{emu.url}/_emulator/script", json={"model": "m", "steps": [{"status": 503}]})
    assert ok.json() == {"queued": 1}
    r = httpx.post(f"{emu.openai_base_url}/chat/completions", json={"model": "m", "messages": user("a")},
                   headers={"Authorization": f"Bearer {OPENAI_KEY}"})
    assert r.status_code == 503 and r.json()["error"]["type"] == "server_error"
    recorded = httpx.get(f"{emu.url}/_emulator/requests").json()
    assert [x["status"] for x in recorded] == [503]
    assert httpx.get(f"{emu.url}/_emulator/disconnects").json() == []
    httpx.post(f"{emu.url}/_emulator/reset")
    assert httpx.get(f"{emu.url}/_emulator/requests").json() == []
    with pytest.raises(ValueError):
        emu.script("m", {"reply": {"txt": "typo"}})


def test_fast_mode_in_process():
    with Emulator(fast=True, chunks=3) as e:
        c = openai.OpenAI(base_url=e.openai_base_url, api_key="any", max_retries=0)
        chunks = list(c.chat.completions.create(model="m", messages=user("a"), stream=True))
        assert len([x for x in chunks if x.choices and x.choices[0].delta.content]) == 3
        assert e.requests() == [] and e.state.request_count == 1


def test_cli_serves_fast_mode():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulator", "--port", str(port), "--fast",
                             "--chunks", "4", "--anthropic-key", "k1"], stdout=subprocess.PIPE, text=True)
    try:
        assert "listening" in proc.stdout.readline()
        body = {"model": "c", "max_tokens": 9, "stream": True, "messages": user("a")}
        r = httpx.post(f"http://127.0.0.1:{port}/v1/messages", json=body,
                       headers={"x-api-key": "k1", "anthropic-version": "2023-06-01"})
        names = [n for n, _ in sse_events(r.text)]
        assert names.count("content_block_delta") == 4 and names[-1] == "message_stop"
        r = httpx.post(f"http://127.0.0.1:{port}/v1/messages", json=body,
                       headers={"x-api-key": "k2", "anthropic-version": "2023-06-01"})
        assert r.status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)
