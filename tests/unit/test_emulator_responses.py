"""The emulator's OpenAI Responses API is strict where OpenAI's is (wording, order, fields)."""
from __future__ import annotations

import httpx
import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.emulator import Emulator
from tests.emulator.errors import ApiError
from tests.emulator.responses_upstream_check import check_responses, encrypt

BASE = {"model": "gpt-5-codex", "input": "hi", "store": False}
FN = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {
    "a": {"type": "string"}}}}


def refused(body: dict) -> dict:
    with pytest.raises(ApiError) as info:
        check_responses(body)
    return {**info.value.body["error"], "status": info.value.status}


@pytest.mark.parametrize(("body", "message"), [
    ({**BASE, "stop": ["x"]}, "Unknown parameter: 'stop'."),
    ({**BASE, "max_output_tokens": 3}, "Expected a value >= 16, but got 3 instead."),
    ({**BASE, "temperature": 0.3}, "'temperature' is not supported with this model."),
    ({**BASE, "model": "gpt-4.1", "reasoning": {"effort": "low"}},
     "'reasoning.effort' is not supported with this model."),
    ({**BASE, "tools": [FN]}, "'additionalProperties' is required to be supplied and to be false"),
    ({**BASE, "tools": [{**FN, "parameters": {**FN["parameters"], "additionalProperties": False}}]},
     "'required' is required to be supplied"),
    ({**BASE, "input": [{"type": "function_call_output", "call_id": "c9", "output": "x"}]},
     "No tool call found for function call output with call_id c9."),
    ({**BASE, "input": [{"type": "reasoning", "summary": [], "encrypted_content": "gAAAAAforged"}]},
     "could not be verified"),
    ({**BASE, "input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]},
     "Supported values are: 'output_text', 'refusal'."),
    ({**BASE, "include": ["reasoning.summary"]}, "Invalid value: 'reasoning.summary'")])
def test_requests_openai_refuses(body, message):
    err = refused(body)
    assert err["status"] == 400 and message in err["message"], err


def test_a_reasoning_item_by_id_alone_is_not_found_when_nothing_is_stored():
    err = refused({**BASE, "input": [{"type": "reasoning", "id": "rs_1", "summary": []}]})
    assert err["status"] == 404 and "Items are not persisted when `store` is set to false" in \
        err["message"]


def test_issued_reasoning_comes_back_and_strict_schemas_pass():
    ok = {**BASE, "tools": [{**FN, "strict": False}, {**FN, "name": "g", "parameters": {
        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
        "additionalProperties": False}}], "input": [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "summary": [], "encrypted_content": encrypt("why")}]}
    assert check_responses(ok) is ok


def test_the_stream_is_typed_ordered_and_numbered():
    events = TypeAdapter(ResponseStreamEvent)
    with Emulator(openai_keys=["sk-emu"]) as emu:
        emu.script("gpt-5-codex", {"reply": {"thinking": "hm", "text": "a b", "tool_calls": [
            {"id": "call_1", "name": "f", "arguments": {"a": "x"}}]}})
        r = httpx.post(f"{emu.url}/v1/responses", headers={"Authorization": "Bearer sk-emu"},
                       json={**BASE, "stream": True, "reasoning": {"summary": "auto"}})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        frames = [f for f in r.text.split("\n\n") if f]
        parsed = []
        for frame in frames:
            name, data = frame.split("\n", 1)
            ev = events.validate_json(data.removeprefix("data: "))
            assert name == f"event: {ev.type}"
            parsed.append(ev)
        assert [e.sequence_number for e in parsed] == list(range(len(parsed)))
        kinds = [e.type for e in parsed]
        assert kinds[:3] == ["response.created", "response.in_progress",
                             "response.output_item.added"]
        assert kinds[-1] == "response.completed"
        done = [e.item for e in parsed if e.type == "response.output_item.done"]
        assert [i.type for i in done] == ["reasoning", "message", "function_call"]
        assert done[0].id.startswith("rs_") and done[0].encrypted_content
        assert done[1].id.startswith("msg_") and done[2].id.startswith("fc_")
        whole = httpx.post(f"{emu.url}/v1/responses", headers={"Authorization": "Bearer sk-emu"},
                           json=BASE)
        Response.model_validate(whole.json())
        assert orjson.loads(whole.content)["store"] is False
