"""OpenAI Chat Completions non-streaming encoding: a `chat.completion` object for a finished
Turn, and the error body."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from switchyard.common.canonical import mappings
from switchyard.common.canonical.aggregate import Turn
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats.errors import openai_error_body as error_body

__all__ = ["encode_response", "error_body"]


def _finish_reason(parts: Sequence[chat_pb2.ContentPart], stop_reason: int) -> str:
    if any(p.WhichOneof("kind") == "tool_call" for p in parts):
        return "tool_calls"
    return mappings.STOP_TO_OPENAI_FINISH.get(stop_reason, "stop")


def start_extras(start: chat_pb2.StreamStart) -> dict[str, Any]:
    """system_fingerprint / service_tier the upstream reported, when it speaks OpenAI."""
    if not start.extra_json:
        return {}
    try:
        extra = orjson.loads(start.extra_json)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(extra, dict):
        return {}
    return {k: extra[k] for k in ("system_fingerprint", "service_tier") if k in extra}


def encode_response(turn: Turn, *, model: str, response_id: str, created: int) -> dict[str, Any]:
    """A `chat.completion` object for a finished Turn."""
    choices = []
    for c in turn.choices or []:
        texts, reasoning, calls = [], [], []
        for p in c.parts:
            kind = p.WhichOneof("kind")
            if kind == "text":
                texts.append(p.text.text)
            elif kind == "reasoning" and p.reasoning.text:
                reasoning.append(p.reasoning.text)
            elif kind == "tool_call":
                tc = p.tool_call
                calls.append({"id": tc.id, "type": "function",
                              "function": {"name": tc.name, "arguments": tc.arguments_json}})
        message: dict[str, Any] = {"role": "assistant",
                                   "content": "".join(texts) if texts or not calls else None,
                                   "refusal": None}
        if calls:
            message["tool_calls"] = calls
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        choices.append({"index": c.index, "message": message, "logprobs": None,
                        "finish_reason": _finish_reason(c.parts, c.stop_reason)})
    if not choices:
        choices.append({"index": 0, "message": {"role": "assistant", "content": "",
                                                "refusal": None},
                        "logprobs": None, "finish_reason": "stop"})
    out = {"id": response_id, "object": "chat.completion", "created": created, "model": model,
           "choices": choices, "usage": mappings.usage_to_openai(turn.usage)}
    out.update(start_extras(turn.start))
    return out
