"""Every client decoder answers any body with a request or a GatewayError(400) — never
another exception, which would become a 500. Each valid seed body is mutated at every path
to every odd value, exhaustively (deterministic, fast)."""
import copy

import pytest

from switchyard.common.errors import GatewayError
from switchyard.edge.formats import anthropic_messages, openai_chat, openai_responses

# 2**40 overflows int32 proto fields; orjson itself turns larger integers into floats.
ODD_VALUES = [None, True, 0, -1, 2**40, 2**63 - 1, 1.5, 1e21, float("inf"), "", "x", [], [None],
              {}, {"x": 1}]
IMG = "data:image/png;base64,iVBORw0KGgo="

SEEDS = {
    "chat": (openai_chat.decode_request, {
        "model": "gpt-4o-mini", "max_tokens": 10, "temperature": 0.5, "stop": ["x"],
        "stream": True, "stream_options": {"include_usage": True}, "user": "u",
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                                                    "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [{"type": "text", "text": "hi"},
                                         {"type": "image_url", "image_url": {"url": IMG}}]},
            {"role": "assistant", "content": None, "reasoning_content": "r", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}),
    "messages": (anthropic_messages.decode_request, {
        "model": "claude-3-5-sonnet-20241022", "max_tokens": 2048, "stream": True,
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024}, "stop_sequences": ["x"],
        "metadata": {"user_id": "u"}, "top_k": 3,
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "iVBORw0KGgo="}},
                {"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "t", "signature": "sig"},
                {"type": "redacted_thinking", "data": "d"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "is_error": False,
                 "content": [{"type": "text", "text": "ok"}]}]}]}),
    "responses": (lambda b: openai_responses.decode_request(b), {
        "model": "gpt-4o-mini", "instructions": "be brief", "max_output_tokens": 10,
        "previous_response_id": "resp_1", "store": True, "metadata": {"k": "v"},
        "temperature": 0.5, "reasoning": {"effort": "low"}, "stream": False,
        "tool_choice": {"type": "function", "name": "f"},
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                                         {"type": "input_image", "image_url": IMG}]},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "hello"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"}]}),
}


def paths(node, prefix=()):
    """Every path to a value inside a JSON document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from paths(v, prefix + (i,))


def mutated(seed, path, value):
    doc = copy.deepcopy(seed)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize("fmt", list(SEEDS))
def test_every_path_with_every_odd_value(fmt):
    decode, seed = SEEDS[fmt]
    decode(copy.deepcopy(seed))  # the seed itself is valid
    failures = []
    for path in paths(seed):
        for value in ODD_VALUES:
            try:
                decode(mutated(seed, path, value))
            except GatewayError as exc:
                if exc.http_status != 400 or not exc.message:
                    failures.append((path, value, exc.http_status))
            except Exception as exc:  # noqa: BLE001 - this is what the test hunts
                failures.append((path, value, repr(exc)))
    assert not failures, "\n".join(map(str, failures[:40]))
