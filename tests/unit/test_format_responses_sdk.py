"""The Responses codec's bytes, parsed by the real openai SDK (httpx MockTransport)."""
from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import orjson
import pytest

from switchyard.common.canonical.aggregate import aggregate
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import openai_responses as r
from tests.unit.test_format_responses import events_of, load

RESPONSE_ID = "resp_0123456789abcdef01234567"


def gateway(events: list[dict], *, fail: chat_pb2.Error | None = None,
            seen: list | None = None) -> Callable[[httpx.Request], httpx.Response]:
    """A fake /v1/responses: decodes the SDK's body, answers `events` as JSON or SSE."""
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/responses" and request.method == "POST"
        req, ctx = r.decode_request(orjson.loads(request.content))
        if seen is not None:
            seen.append((req, ctx))
        evs = events_of(events)
        if not req.stream:
            body = r.encode_response(aggregate(evs), model=req.model, response_id=RESPONSE_ID,
                                     created=1700000000, ctx=ctx)
            return httpx.Response(200, content=orjson.dumps(body),
                                  headers={"content-type": "application/json"})
        enc = r.StreamEncoder(req.model, RESPONSE_ID, 1700000000, req, ctx)
        chunks = [enc.encode([e]) for e in evs]  # one event per write, as a slow upstream
        chunks.append(enc.error(fail) if fail is not None else enc.completed())
        return httpx.Response(200, content=b"".join(chunks) + enc.done(),
                              headers={"content-type": "text/event-stream"})
    return handler


def client_for(handler) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url="http://gateway.test/v1", max_retries=0,
                         http_client=httpx.Client(transport=httpx.MockTransport(handler)))


TEXT = load("response_reasoning_text.json")["events"]
TOOLS = load("response_parallel_tools.json")["events"]
TOOL_DEF = [{"type": "function", "name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}]


def test_non_streaming_text_parses_with_output_text():
    seen: list = []
    client = client_for(gateway(TEXT, seen=seen))
    resp = client.responses.create(model="gpt-x", input="hi", instructions="Be brief.",
                                   metadata={"a": "b"})
    assert resp.output_text == "Hello world"
    assert resp.id == RESPONSE_ID and resp.status == "completed"
    assert [o.type for o in resp.output] == ["reasoning", "message"]
    assert resp.output[0].summary[0].text == "Think hard."
    assert resp.usage.input_tokens == 14 and resp.usage.input_tokens_details.cached_tokens == 4
    assert resp.usage.total_tokens == 19
    assert resp.usage.input_tokens_details.cache_write_tokens == 0  # required by the SDK type
    assert resp.instructions == "Be brief." and resp.metadata == {"a": "b"}
    req, ctx = seen[0]
    assert req.messages[0].role == chat_pb2.ROLE_SYSTEM and ctx.instructions == "Be brief."


def test_non_streaming_parallel_tool_calls():
    client = client_for(gateway(TOOLS))
    resp = client.responses.create(model="gpt-x", input="weather?", tools=TOOL_DEF)
    calls = [o for o in resp.output if o.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_a", "get_weather", '{"city":"Oslo"}'), ("call_b", "get_weather", '{"city":"Lima"}')]
    assert resp.output_text == "Checking."
    assert resp.usage.output_tokens_details.reasoning_tokens == 12


def test_create_stream_text_events():
    client = client_for(gateway(TEXT))
    events = list(client.responses.create(model="gpt-x", input="hi", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in types
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello world"
    assert events[-1].response.output_text == "Hello world"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_stream_helper_final_response_text():
    client = client_for(gateway(TEXT))
    with client.responses.stream(model="gpt-x", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Hello world"
    assert final.output_text == "Hello world" and final.id == RESPONSE_ID
    assert final.output[0].encrypted_content == "sig=="


def test_stream_helper_interleaved_parallel_tool_calls():
    client = client_for(gateway(TOOLS))
    with client.responses.stream(model="gpt-x", input="weather?", tools=TOOL_DEF) as stream:
        arg_events = [e for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    calls = [o for o in final.output if o.type == "function_call"]
    assert [(c.call_id, c.arguments) for c in calls] == [
        ("call_a", '{"city":"Oslo"}'), ("call_b", '{"city":"Lima"}')]
    # the SDK's own snapshot per item accumulated the right fragments
    assert {e.output_index: e.snapshot for e in arg_events} == {
        1: '{"city":"Oslo"}', 2: '{"city":"Lima"}'}
    assert final.output_text == "Checking."


def test_stream_incomplete_event():
    client = client_for(gateway(load("response_incomplete.json")["events"]))
    events = list(client.responses.create(model="gpt-x", input="x", stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert events[-1].response.output_text == "Once upon"


FAIL = chat_pb2.Error(http_status=502, type="upstream_unreachable", message="upstream died")


def test_stream_failure_raises_api_error_for_create():
    client = client_for(gateway(TEXT[:8], fail=FAIL))
    seen = []
    with pytest.raises(openai.APIError) as info:
        for event in client.responses.create(model="gpt-x", input="hi", stream=True):
            seen.append(event)
    assert "upstream died" in str(info.value)
    assert seen[-1].type == "response.failed"
    assert seen[-1].response.error.message == "upstream died"


def test_stream_failure_raises_api_error_for_stream_helper():
    client = client_for(gateway(TEXT[:8], fail=FAIL))
    with pytest.raises(openai.APIError):
        with client.responses.stream(model="gpt-x", input="hi") as stream:
            stream.get_final_response()


@pytest.mark.parametrize("status, type_, exc", [
    (400, "invalid_request", openai.BadRequestError),
    (404, "not_found", openai.NotFoundError),
    (429, "rate_limit", openai.RateLimitError),
    (529, "overloaded", openai.InternalServerError),
])
def test_error_body_becomes_the_sdk_exception(status, type_, exc):
    def handler(request: httpx.Request) -> httpx.Response:
        code, body = r.error_body(GatewayError(status, "nope", type=type_, param="input"))
        return httpx.Response(code, content=orjson.dumps(body),
                              headers={"content-type": "application/json"})
    with pytest.raises(exc) as info:
        client_for(handler).responses.create(model="gpt-x", input="hi")
    assert info.value.body["param"] == "input" and info.value.body["message"] == "nope"
    assert info.value.status_code == (503 if status == 529 else status)


def test_decode_rejection_reaches_the_sdk_as_bad_request():
    def handler(request: httpx.Request) -> httpx.Response:
        try:
            r.decode_request(orjson.loads(request.content))
        except GatewayError as err:
            code, body = r.error_body(err)
            return httpx.Response(code, content=orjson.dumps(body))
        raise AssertionError("expected a 400")
    with pytest.raises(openai.BadRequestError) as info:
        client_for(handler).responses.create(model="gpt-x", input="hi",
                                             tools=[{"type": "function"}])
    assert "'name'" in info.value.message


def test_input_items_list_auto_paginates():
    _, ctx = r.decode_request({"model": "m", "input": [
        {"role": "user", "content": f"turn {i}"} for i in range(5)]})
    items = ctx.input_items

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/v1/responses/{RESPONSE_ID}/input_items"
        q = request.url.params
        page = r.input_items_page(items, limit=int(q.get("limit", "20")),
                                  order=q.get("order", "desc"), after=q.get("after"))
        return httpx.Response(200, content=orjson.dumps(page),
                              headers={"content-type": "application/json"})

    got = list(client_for(handler).responses.input_items.list(RESPONSE_ID, limit=2))
    assert [it.content[0].text for it in got] == [f"turn {i}" for i in range(4, -1, -1)]
    assert [it.id for it in got] == [it["id"] for it in reversed(items)]
