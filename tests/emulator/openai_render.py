"""Render a Plan as an OpenAI (or Azure OpenAI) chat completion: JSON body or SSE frames."""
from __future__ import annotations

from dataclasses import dataclass

import orjson

from tests.emulator.plan import Plan, Usage
from tests.emulator.text import fragments, text_chunks

FINGERPRINT = "fp_emulator"
_FINISH = {"tool_use": "tool_calls", "max_tokens": "length"}
_SAFE = {"filtered": False, "severity": "safe"}
_AZURE_FILTERS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}


@dataclass
class OpenAIContext:
    id: str
    created: int
    model: str
    include_usage: bool = False
    azure: bool = False
    n: int = 1
    interleave: bool = False
    chunks: int | None = None


def finish_reason(plan: Plan) -> str:
    """OpenAI's finish_reason for how the plan ended (refusals end with 'stop')."""
    return plan.finish_reason or _FINISH.get(plan.stop, "stop")


def usage_body(u: Usage) -> dict:
    """OpenAI usage: prompt_tokens includes cached tokens."""
    prompt = u.input + u.cache_read + u.cache_creation
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output,
        "total_tokens": prompt + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def response_body(plan: Plan, ctx: OpenAIContext) -> dict:
    """The non-streaming `chat.completion` object."""
    msg: dict = {"role": "assistant",
                 "content": plan.text if plan.text or not (plan.tool_calls or plan.refusal) else None,
                 "refusal": plan.refusal, "annotations": []}
    if plan.thinking:
        msg["reasoning_content"] = plan.thinking
    if plan.tool_calls:
        msg["tool_calls"] = [{"id": c.id, "type": "function",
                              "function": {"name": c.name, "arguments": c.arguments}}
                             for c in plan.tool_calls]
    choices = []
    for k in range(ctx.n):
        choice = {"index": k, "message": msg, "logprobs": None, "finish_reason": finish_reason(plan)}
        if ctx.azure:
            choice["content_filter_results"] = _AZURE_FILTERS
        choices.append(choice)
    body = {"id": ctx.id, "object": "chat.completion", "created": ctx.created, "model": ctx.model,
            "choices": choices, "usage": usage_body(plan.usage), "service_tier": "default",
            "system_fingerprint": FINGERPRINT}
    if ctx.azure:
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _AZURE_FILTERS}]
    return body


def _frame(obj: dict) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _tool_deltas(plan: Plan, interleave: bool) -> list[dict]:
    """tool_calls deltas: id/type/name on a call's first fragment, then argument fragments."""
    per_call = []
    for idx, c in enumerate(plan.tool_calls):
        seq = [{"index": idx, "id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": ""}}]
        seq += [{"index": idx, "function": {"arguments": f}} for f in fragments(c.arguments) if f]
        per_call.append(seq)
    if not interleave:
        return [d for seq in per_call for d in seq]
    out, i = [], 0
    while any(i < len(seq) for seq in per_call):
        out += [seq[i] for seq in per_call if i < len(seq)]
        i += 1
    return out


def stream_frames(plan: Plan, ctx: OpenAIContext) -> list[bytes]:
    """Every SSE frame of the streamed reply, ending with `data: [DONE]`."""
    base = {"id": ctx.id, "object": "chat.completion.chunk", "created": ctx.created, "model": ctx.model,
            "service_tier": "default", "system_fingerprint": FINGERPRINT}
    if ctx.include_usage:
        base["usage"] = None

    def chunk(index: int, delta: dict, finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _frame({**base, "choices": [choice]})

    frames = []
    if ctx.azure:  # Azure opens with a prompt-filter chunk that has no choices
        frames.append(_frame({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                              "prompt_filter_results": [{"prompt_index": 0,
                                                         "content_filter_results": _AZURE_FILTERS}]}))
    tool_deltas = _tool_deltas(plan, ctx.interleave)
    for k in range(ctx.n):
        frames.append(chunk(k, {"role": "assistant", "content": "", "refusal": None}))
        for frag in text_chunks(plan.thinking or ""):
            frames.append(chunk(k, {"reasoning_content": frag}))
        for frag in text_chunks(plan.text, ctx.chunks):
            frames.append(chunk(k, {"content": frag}))
        for frag in text_chunks(plan.refusal or ""):
            frames.append(chunk(k, {"refusal": frag}))
        for d in tool_deltas:
            frames.append(chunk(k, {"tool_calls": [d]}))
        frames.append(chunk(k, {}, finish_reason(plan)))
    if ctx.include_usage:
        frames.append(_frame({**base, "choices": [], "usage": usage_body(plan.usage)}))
    frames.append(b"data: [DONE]\n\n")
    return frames


def error_frame(error: dict) -> bytes:
    """A mid-stream error as OpenAI sends it: a data line holding `{"error": {...}}`."""
    return _frame({"error": error})
